"""The README's first command: the shipped config.toml runs with no Discord at all."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.sidecar import Sidecar, free_port

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_previews_batches_in_the_terminal(tmp_path: Path) -> None:
    """The shipped config.toml, with no Discord configured, previews the windows in the terminal."""
    port = free_port()
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    assert text.count('"127.0.0.1:8787"') == 2
    config = tmp_path / "config.toml"
    config.write_text(text.replace("127.0.0.1:8787", f"127.0.0.1:{port}"), encoding="utf-8")
    sidecar = Sidecar(config, port).start()
    answer = sidecar.post(
        [
            {"kind": "command", "name": "ping", "duration_ms": 12.5, "guild_id": 42},
            {"kind": "error", "type": "KeyError", "message": "'votes'", "severity": "error"},
        ]
    )
    assert answer.status == 200 and answer.body["accepted"] == 2
    assert sidecar.stop(signal.SIGINT) == 0
    out = sidecar.stdout
    assert "#diagnostics (preview" in out and "started" in out
    assert "#analytics (preview" in out and "ping" in out
    assert "#logs (preview" in out and "KeyError" in out
    assert "events-analytics-" in out
    assert "Traceback" not in sidecar.stderr


def test_event_text_that_looks_like_markup_cannot_break_the_preview(tmp_path: Path) -> None:
    """Discord timestamp markup with absurd values in event text cannot break the preview."""
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[ingest]\nhttp = "127.0.0.1:{port}"\nudp = "127.0.0.1:{port}"\n[flush]\ninterval = 0.2\n',
        encoding="utf-8",
    )
    sidecar = Sidecar(config, port).start()
    weird = [
        {"kind": "log", "level": "warning", "message": "see <t:99999999999999999999:F> now"},
        {"kind": "log", "level": "warning", "message": "and <t:99999999999999:F> too"},
        {"kind": "error", "message": "x", "ts": "0001-01-01T00:00:00Z"},
    ]
    answer = sidecar.post(weird)
    assert answer.status == 200 and answer.body["accepted"] == 2
    assert "ts" in answer.body["rejected"][0]["error"]
    sidecar.wait_for(lambda: sidecar.health()["posted_events"] >= 2, timeout=20)
    assert sidecar.health()["status"] == "ok"
    assert sidecar.stop() == 0
    assert "<t:99999999999999999999:F>" in sidecar.stdout
    assert "Traceback" not in sidecar.stderr
