"""The PyInstaller build of the bundle, started in the background as soon as a test session has
collected a packaging test, so its minutes of mostly one-core work overlap with the rest of the
pass instead of adding to it; the packaging tests wait for it.

Under pytest-xdist every worker collects every test: the first to claim the session's build
folder (named by the controlling process, the workers' parent) starts the one build, and
whichever worker runs the packaging tests waits for its exit code file. The controlling process
ends a build still running and removes the folder when the session ends.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUILD_TIMEOUT = 1200.0


def _folder() -> Path:
    """The session's build folder: named by the controlling process."""
    owner = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()
    return Path(tempfile.gettempdir()) / f"csm-bundle-{owner}"


def start(repo: Path) -> None:
    """Start the build unless this session's has started already."""
    out = _folder()
    try:
        out.mkdir(mode=0o700)
    except FileExistsError:
        return
    command = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--distpath", str(out / "dist"), "--workpath", str(out / "build"), "build.spec",
    ]  # fmt: skip
    script = (
        f"{shlex.join(command)} > {shlex.quote(str(out / 'build.log'))} 2>&1; "
        f"echo $? > {shlex.quote(str(out / 'rc.tmp'))} && "
        f"mv {shlex.quote(str(out / 'rc.tmp'))} {shlex.quote(str(out / 'rc'))}"
    )
    # started in the background of a shell that ends at once, in a process group of its own: no
    # child of this process is left running (a Popen of a running child is a ResourceWarning,
    # an error here), and the controlling process ends the whole group
    shell = subprocess.Popen(["sh", "-c", f"({script}) &"], cwd=repo, start_new_session=True)
    shell.wait(timeout=30)
    (out / "pid").write_text(str(shell.pid))


def finished(repo: Path) -> Path:
    """The built ``dist/csm-studio`` folder, once the build has ended (started now if it was not).

    Raises:
        RuntimeError: the build failed (its last output is in the message) or ran too long.
    """
    start(repo)
    out = _folder()
    deadline = time.monotonic() + BUILD_TIMEOUT
    while not (out / "rc").is_file():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the PyInstaller build ran past {BUILD_TIMEOUT:.0f} s")
        time.sleep(1)
    code = int((out / "rc").read_text().strip() or "1")
    if code != 0:
        tail = (out / "build.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"PyInstaller exited with {code}:\n{tail}")
    return out / "dist" / "csm-studio"


def stop() -> None:
    """End a build still running and remove its folder (the controlling process, at the end)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    out = _folder()
    if not out.is_dir():
        return
    with contextlib.suppress(OSError, ValueError):  # ended already
        os.killpg(int((out / "pid").read_text()), signal.SIGKILL)  # the build's process group
    shutil.rmtree(out, ignore_errors=True)
