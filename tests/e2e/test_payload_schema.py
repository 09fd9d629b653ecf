"""What astra posts matches Discord's OpenAPI schema for execute_webhook.

The fake Discord checks every execute body against the rules it encodes from
discord/discord-api-spec (IncomingWebhookRequestPartial and the schemas it references);
the real sidecar posts windows on all four channels to it, and what was recorded is read.
"""

from __future__ import annotations

from tests.conftest import Launch, webhook_channels
from tests.fake_discord import FakeDiscord
from tests.sinks.test_discord_http import assert_attachment_ids_name_the_files

FAST = "[flush]\ninterval = 0.5\ncritical_delay = 0.2\n"
ROUNDS = 3


def round_events(round_: int) -> dict[str, dict[str, object]]:
    """One event per channel, keyed by the channel it is routed to."""
    return {
        "analytics": {"kind": "command", "name": "ping", "duration_ms": 3, "id": f"a{round_}"},
        "logs": {"kind": "log", "level": "warning", "message": "slow", "id": f"l{round_}"},
        "performance": {"kind": "metric", "name": "queue", "value": round_, "id": f"p{round_}"},
        "diagnostics": {
            "kind": "lifecycle",
            "action": "gateway.ready",
            "detail": "shard 0",
            "id": f"d{round_}",
        },
    }


def test_sidecar_windows_on_every_channel_match_the_spec_schema(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Windows with attachments on all four channels pass the spec checks, ids as strings."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST)
    for round_ in range(ROUNDS):
        events = round_events(round_)
        answer = sidecar.post(list(events.values()))
        assert answer.status == 200 and not answer.body["rejected"], answer

        def arrived(events: dict[str, dict[str, object]] = events) -> bool:
            return all(
                event["id"] in {e.get("id") for e in discord.all_events(ids[name])}
                for name, event in events.items()
            )

        # Waiting for each round keeps the rounds in separate windows.
        sidecar.wait_for(arrived, timeout=30)
    assert sidecar.stop() == 0

    discord.assert_no_violations()
    assert not [r for r in discord.requests if r.status == 400]
    for name, channel_id in ids.items():
        with_files = [m for m in discord.messages(channel_id) if m.files]
        assert len(with_files) >= ROUNDS, f"{name}: {len(with_files)} messages with files"
    posted = discord.all_messages()
    assert posted
    for message in posted:
        assert_attachment_ids_name_the_files(message)
