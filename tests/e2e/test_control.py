"""The control endpoint of the real sidecar: its own token, mutes, and what a mute changes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Launch, webhook_channels
from tests.e2e.test_config import assert_one_line_error, check
from tests.fake_discord import FakeDiscord
from tests.sidecar import Sidecar

CONTROL_TOKEN = "control-token-0123456789abcdef"
INGEST_TOKEN = "ingest-token-0123456789abcdef"
CONTROL = f'[control]\ntoken = "{CONTROL_TOKEN}"\n'
# A watched process that never runs: a critical process_down alert, repeated every second.
DOWN = """
[flush]
interval = 0.3
[collectors.process]
interval = 0.2
[collectors.errors]
interval = 0.2
[alerts]
cooldown = 1
[[watch.process]]
name = "ghost"
pid_file = "/nonexistent/ghost.pid"
"""


def control(
    sidecar: Sidecar, path: str, body: Any = None, token: str | None = CONTROL_TOKEN
) -> tuple[int, dict[str, Any]]:
    """Call ``/v1/control/<path>`` (POST with a JSON body, else GET); status and answer."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{sidecar.base_url}/v1/control/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_without_a_control_token_the_routes_are_off_and_say_why(launch: Launch) -> None:
    """No [control] token: every control route answers 404 naming the setting to add."""
    sidecar = launch()
    for path, body in (("health", None), ("mute", {"alert": "cpu", "duration": "1h"})):
        status, answer = control(sidecar, path, body)
        assert status == 404
        assert "set [control] token" in answer["error"]
    assert sidecar.stop() == 0


def test_only_the_control_token_grants_control(launch: Launch) -> None:
    """No token, a wrong one, or the ingest token: 401; the control token: the answer."""
    sidecar = launch(CONTROL, ingest=f'token = "{INGEST_TOKEN}"\n')
    mute = {"alert": "cpu", "duration": "1h"}
    for token in (None, "wrong-token-0123456789", INGEST_TOKEN):
        assert control(sidecar, "mute", mute, token=token)[0] == 401
        assert control(sidecar, "health", token=token)[0] == 401
    assert control(sidecar, "health")[1]["muted"] == []
    status, health = control(sidecar, "health")
    assert status == 200
    assert 0 <= health["score"] <= 100
    assert health["muted"] == []
    figures = sidecar.health()["statistics"]["control"]
    assert figures == {"enabled": True, "requests": 8, "unauthorized": 6, "mutes": 0}
    assert sidecar.stop() == 0
    assert CONTROL_TOKEN not in sidecar.stderr + sidecar.stdout


def test_bad_mute_requests_are_refused_with_the_reason(launch: Launch) -> None:
    """A duration astra cannot read, a week and more, an unknown field: 400 and why; 413 when
    the body is too large for a control request."""
    sidecar = launch(CONTROL)
    cases = [
        ({"alert": "cpu", "duration": "soon"}, "duration: not a duration: 'soon'"),
        ({"alert": "cpu", "duration": "8d"}, "duration: at most 7d"),
        ({"alert": "", "duration": "1h"}, "alert: name a rule"),
        ({"alert": "cpu", "duration": "1h", "forever": True}, "invalid body"),
    ]
    for body, reason in cases:
        status, answer = control(sidecar, "mute", body)
        assert status == 400
        assert answer["error"].startswith(reason), answer
    status, answer = control(sidecar, "mute", {"alert": "x" * 5000, "duration": "1h"})
    assert (status, answer["error"]) == (413, "body too large: limit is 4096 bytes")
    status, answer = control(sidecar, "unmute", {"alert": "cpu"})
    assert (status, answer["error"]) == (404, "'cpu' is not muted")
    assert sidecar.stop() == 0


def test_a_muted_alert_is_recorded_marked_muted_until_unmuted(
    discord: FakeDiscord, launch: Launch
) -> None:
    """While muted, process_down reminders reach #logs marked muted; after unmute, not."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + DOWN + CONTROL)

    def alerts() -> list[dict[str, Any]]:
        return [e for e in discord.all_events(ids["logs"]) if e["kind"] == "alert"]

    sidecar.wait_for(lambda: len(alerts()) >= 1)
    status, answer = control(
        sidecar, "mute", {"alert": "process_down", "duration": "1h", "by": "alice"}
    )
    assert status == 200
    assert [m["alert"] for m in answer["muted"]] == ["process_down"]
    assert control(sidecar, "health")[1]["muted"][0]["by"] == "alice"
    sidecar.wait_for(lambda: any(a.get("muted") for a in alerts()))
    status, answer = control(sidecar, "unmute", {"alert": "process_down", "by": "alice"})
    assert (status, answer["muted"]) == (200, [])
    muted_seen = len(alerts())
    sidecar.wait_for(lambda: any(not a.get("muted") for a in alerts()[muted_seen:]))
    assert sidecar.stop() == 0
    discord.assert_no_violations()

    first = alerts()[0]
    assert (first["rule"], first["subject"], first["severity"]) == (
        "process_down",
        "process:ghost",
        "critical",
    )
    assert first["muted"] is False
    texts = [
        str(embed.get("fields", ""))
        for message in discord.messages(ids["logs"])
        for embed in message.embeds
    ]
    assert any("🔇 muted · 🔴 **critical** watched process ghost" in t for t in texts)
    lifecycle = [e for e in discord.all_events(ids["diagnostics"]) if e["kind"] == "lifecycle"]
    details = {(e["action"], e["detail"]) for e in lifecycle}
    assert ("alert_muted", "process_down for 1 h by alice") in details
    assert ("alert_unmuted", "process_down by alice") in details


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('[control]\ntoken = "short"\n', ["control.token", "at least 16"]),
        (
            f'[ingest]\ntoken = "{INGEST_TOKEN}"\n[control]\ntoken = "{INGEST_TOKEN}"\n',
            ["control.token", "must differ from ingest.token"],
        ),
        (f'[ingest]\nhttp = "off"\n[control]\ntoken = "{CONTROL_TOKEN}"\n', ["ingest.http"]),
        ("[control]\ntokn = 1\n", ["control.tokn", "unknown key"]),
    ],
)
def test_control_config_errors_are_one_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    """``astra check`` names the control key and the problem, never the token itself."""
    code, output = check(tmp_path, text)
    assert_one_line_error(code, output, *needles)
    assert INGEST_TOKEN not in output


def test_a_control_token_over_plain_http_beyond_loopback_is_warned_about(tmp_path: Path) -> None:
    """``astra check`` warns that the control token would cross the network in clear text."""
    text = (
        f'[ingest]\nhttp = "0.0.0.0:8787"\ntoken = "{INGEST_TOKEN}"\n'
        f'[control]\ntoken = "{CONTROL_TOKEN}"\n'
    )
    code, output = check(tmp_path, text)
    assert code == 0, output
    assert "the control token (who may mute alerts) crosses the network in clear text" in output
    assert CONTROL_TOKEN not in output


def test_a_muted_alert_neither_pings_nor_notifies_until_unmuted(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Posts holding only muted alerts carry no mention and the silent flag; once unmuted,
    the same alert pings the role again."""
    role = "987654321098765432"
    body, ids = webhook_channels(discord)
    config = DOWN.replace("[alerts]\n", f'[alerts]\nmention_role = "{role}"\n')
    sidecar = launch(body + config + CONTROL)

    def alert_posts(muted: bool) -> list[Any]:
        return [
            m
            for m in discord.messages(ids["logs"])
            if any(e["kind"] == "alert" for e in m.jsonl_events())
            and all(e.get("muted") is muted for e in m.jsonl_events() if e["kind"] == "alert")
        ]

    sidecar.wait_for(lambda: alert_posts(False))
    assert alert_posts(False)[0].mention_roles == [role]
    assert control(sidecar, "mute", {"alert": "process_down", "duration": "1h"})[0] == 200
    sidecar.wait_for(lambda: alert_posts(True))
    assert control(sidecar, "unmute", {"alert": "process_down"})[0] == 200
    pinged_before = len(alert_posts(False))
    sidecar.wait_for(lambda: len(alert_posts(False)) > pinged_before)
    assert sidecar.stop() == 0
    for post in alert_posts(True):
        assert post.mention_roles == [] and post.flags & 4096, post.payload
        assert post.payload["allowed_mentions"] == {"parse": []}
    assert alert_posts(False)[-1].mention_roles == [role]
    discord.assert_no_violations()
