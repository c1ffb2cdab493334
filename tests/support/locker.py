"""Another program holding a library's database: a child process that takes SQLite's write lock
(``BEGIN IMMEDIATE``) and keeps it until the ``with`` block ends."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

_HOLD = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
for statement in sys.argv[2:]:
    db.execute(statement)
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
db.execute("COMMIT")
"""


@contextlib.contextmanager
def held(database: Path, *statements: str) -> Iterator[subprocess.Popen[str]]:
    """The write lock of ``database`` held by another process (which first runs ``statements``
    inside its transaction, committed when the block ends)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(database), *statements],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "locked"
        yield child
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        child.stdout.close()
