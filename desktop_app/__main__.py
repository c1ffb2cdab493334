"""``python -m desktop_app``: the command line, which starts the studio window by default."""

from __future__ import annotations

import sys

from desktop_app.cli import main

if __name__ == "__main__":
    sys.exit(main())
