"""End to end: with no client at all, the real CLI reports this machine by itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord
from tests.sidecar import free_port

REPO = Path(__file__).resolve().parents[2]
FAST_COLLECTORS = """
[flush]
interval = 0.5
[collectors.system]
interval = 0.3
[collectors.process]
interval = 0.3
[collectors.performance]
interval = 0.5
[collectors.errors]
interval = 0.3
[collectors.health]
interval = 0.5
[alerts]
cpu_percent = 0.01
"""


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> bool:
    """Poll ``condition`` (bounded); True once it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def memory_total() -> str:
    """How the performance channel shows this machine's total memory."""
    from astra.units import fmt_bytes

    return f"of {fmt_bytes(psutil.virtual_memory().total)}"


def test_shipped_config_previews_performance_and_diagnostics_from_this_machine(
    tmp_path: Path,
) -> None:
    """The shipped config (intervals shortened, ports changed) previews real host figures."""
    port = free_port()
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:8787", f"127.0.0.1:{port}")
    # Every schedule (flush and each collector) shortened; everything else as shipped.
    text, count = re.subn(r"(?m)^interval = \d+", "interval = 0.5", text)
    assert count == 7
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "astra", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ASTRA_CONFIG": ""},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()

    def both_posted() -> bool:
        out = "".join(lines)
        return "▸ CPU" in out and "🩺 health " in out and "▸ Pipeline" in out

    try:
        assert wait_until(both_posted), "".join(lines)[-3000:]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        reader.join(timeout=10)
    out = "".join(lines)
    assert process.returncode == 0, err
    assert "#performance (preview" in out and "#diagnostics (preview" in out
    assert re.search(r"▸ CPU\n┃   \d+\.\d %", out)
    assert memory_total() in out
    assert re.search(rf"┃   astra +{process.pid} ", out), "astra's own process row"
    assert re.search(r"🩺 health \d+/100", out)
    assert "collector system" in out and "channel performance" in out
    assert "Traceback" not in err


def test_collectors_post_through_the_strict_fake_discord(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Performance, diagnostics and an alert reach their channels within every limit."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST_COLLECTORS)

    def titles(channel: str) -> str:
        return " ".join(
            str(e.get("title", "")) + str(e.get("fields", ""))
            for m in discord.messages(ids[channel])
            for e in m.embeds
        )

    sidecar.wait_for(
        lambda: (
            "CPU" in titles("performance")
            and "health" in titles("diagnostics")
            and "CPU" in titles("logs")
        ),
        timeout=60,
    )
    assert sidecar.stop() == 0
    discord.assert_no_violations()
    kinds = {e["kind"] for e in discord.all_events(ids["performance"])}
    assert {"system", "process", "performance"} <= kinds
    alerts = [e for e in discord.all_events(ids["logs"]) if e["kind"] == "alert"]
    assert alerts and alerts[0]["rule"] == "cpu" and alerts[0]["state"] == "firing"
    health = [e for e in discord.all_events(ids["diagnostics"]) if e["kind"] == "health"]
    assert health and 0 <= health[0]["score"] <= 100 and health[0]["components"]
