"""The sidecar writes no file: no log, no spool, no temp file, no database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import Launch
from tests.e2e.test_export import readable_channels
from tests.fake_discord import FakeDiscord

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


def test_reading_back_writes_no_file(launch: Launch, tmp_path: Path) -> None:
    """Recovery at start, ``astra export`` and ``astra report`` leave an empty directory empty."""
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {**os.environ, "TMPDIR": str(workdir), "HOME": str(workdir)}
    with FakeDiscord(bucket_limit=50) as discord:
        body, ids = readable_channels(discord)
        first = launch(body + "[flush]\ninterval = 0.3\n", env=env, cwd=str(workdir))
        assert (
            first.post([{"kind": "log", "level": "error", "message": "m", "id": "z1"}]).status
            == 200
        )
        first.wait_for(lambda: any(e["id"] == "z1" for e in discord.all_events(ids["logs"])))
        assert first.stop() == 0
        second = launch(body + "[flush]\ninterval = 0.3\n", env=env, cwd=str(workdir))
        second.wait_for(
            lambda: any(
                e.get("action") == "recovered" for e in discord.all_events(ids["diagnostics"])
            )
        )
        assert second.stop() == 0
        assert "recovery: read" in second.stderr
        config = tmp_path / "config.toml"
        config.write_text(body, encoding="utf-8")
        for command in (["export", "--channel", "all"], ["report"]):
            done = subprocess.run(
                [sys.executable, "-m", "astra", command[0], "--config", str(config), *command[1:]],
                capture_output=True,
                cwd=workdir,
                env=env,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
        assert list(workdir.iterdir()) == []
