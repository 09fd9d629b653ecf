"""The collector suite: which collectors run in threads, and how process_down is decided."""

from __future__ import annotations

import time
from pathlib import Path

from astra.collectors.suite import Collectors
from astra.config import CHANNELS, parse
from astra.events import Alert, Event
from astra.redaction import Redactor
from astra.statistics import SidecarStatistics
from astra.streams.bus import Bus
from astra.streams.router import Router
from astra.streams.windows import ChannelStream


def test_suite_runs_blocking_collectors_in_threads_and_decides_process_down_in_errors(
    tmp_path: Path,
) -> None:
    """system and process run in threads (process holds no shared state); a watched process
    gone reaches the errors collector over the bus, which raises process_down."""
    pid_file = tmp_path / "bot.pid"
    config = parse(f'[[watch.process]]\nname = "bot"\npid_file = "{pid_file}"\n', "c.toml", {})
    streams = [ChannelStream(name, 30.0, 1.0, time.monotonic) for name in CHANNELS]
    bus = Bus(Router(config.routes), streams, Redactor(), max_events=10_000, max_bytes=1 << 30)
    published: list[Event] = []
    bus.subscribe(published.extend)
    empty = SidecarStatistics(version="t", at=0, started=0)
    collectors = Collectors(
        config, emit=bus.publish, subscribe=bus.subscribe, snapshot=lambda: empty
    )
    entries = {e.collector.name: e for e in collectors.scheduler._entries}
    assert {name: e.in_thread for name, e in entries.items()} == {
        "system": True,
        "process": True,
        "performance": False,
        "errors": False,
        "health": False,
        "report": False,
        "digest": False,
    }
    collectors.scheduler.run_once(entries["process"].collector)
    collectors.scheduler.run_once(entries["errors"].collector)
    (alert,) = [e for e in published if isinstance(e, Alert)]
    assert (alert.rule, alert.state, alert.severity) == ("process_down", "firing", "critical")
    assert alert.message == f"watched process bot is not running ({pid_file})"
