"""The sidecar writes no file: no log, no spool, no temp file, no database."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.conftest import Launch

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR


def files_open_for_writing(pid: int) -> list[str]:
    """The files (not sockets, pipes or devices) ``pid`` holds open for writing."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        if not target.startswith("/") or target.startswith(("/dev/", "/proc/")):
            continue  # sockets, pipes, anon inodes, /dev/null
        flags_line = next(line for line in info.splitlines() if line.startswith("flags:"))
        flags = int(flags_line.split()[1], 8)
        if flags & WRITE_FLAGS:
            found.append(target)
    return found


def test_no_file_is_written_or_held_open_for_writing(launch: Launch, tmp_path: Path) -> None:
    """Under load the sidecar holds no file open for writing and leaves its directories empty."""
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {"TMPDIR": str(workdir), "HOME": str(workdir)}
    sidecar = launch("[flush]\ninterval = 0.3\n", env=env, cwd=str(workdir))
    assert sidecar.process is not None
    events = [{"kind": "log", "level": "warning", "message": f"m{i}"} for i in range(2000)]
    assert sidecar.post(events).status == 200
    sidecar.send_udp([b'{"kind":"metric","name":"x","value":1}', b"garbage"])
    sidecar.wait_for(lambda: sidecar.health()["posted_events"] >= 2000, timeout=30)
    assert files_open_for_writing(sidecar.process.pid) == []
    assert sidecar.stop(signal.SIGTERM) == 0
    assert list(workdir.iterdir()) == []
