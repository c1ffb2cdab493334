#!/usr/bin/env bash
# Set up (first run) and start CSM Studio. Arguments go to `python -m desktop_app`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$root/scripts/setup.sh" app
exec "$root/.venv/bin/python" -m desktop_app "$@"
