"""End to end: routine posts arrive silently, a critical alert pings exactly who was asked."""

from __future__ import annotations

from tests.conftest import Launch, webhook_channels
from tests.fake_discord import SUPPRESS_NOTIFICATIONS, FakeDiscord

ROLE = "123456789012345678"
USER = "223456789012345678"
PROCESS_DOWN = f"""
[flush]
interval = 0.5
[collectors.process]
interval = 0.3
[collectors.errors]
interval = 0.3
[[watch.process]]
name = "bot"
pattern = "astra-test-no-such-process-[0-9]{{12}}"
[alerts]
mention_role = "{ROLE}"
mention_users = ["{USER}"]
"""


def test_process_down_pings_the_role_and_every_other_post_is_silent(
    discord: FakeDiscord, launch: Launch
) -> None:
    """The process_down post pings the role and user; the others carry SUPPRESS_NOTIFICATIONS."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + PROCESS_DOWN)
    # Text from events never pings, whatever it holds.
    hostile = f"<@&{ROLE}> <@{USER}> @everyone"
    assert sidecar.post({"kind": "log", "level": "error", "message": hostile}).status == 200

    def pinged() -> list[object]:
        return [m for m in discord.all_messages() if m.mention_roles or m.mentions]

    sidecar.wait_for(lambda: pinged() and discord.messages(ids["performance"]))
    assert sidecar.stop() == 0
    discord.assert_no_violations()
    (alert_post,) = [m for m in discord.all_messages() if m.mention_roles or m.mentions]
    assert alert_post.channel_id == ids["logs"]
    assert alert_post.mention_roles == [ROLE] and alert_post.mentions == [USER]
    assert alert_post.payload["allowed_mentions"] == {
        "parse": [],
        "roles": [ROLE],
        "users": [USER],
    }
    assert alert_post.flags == 0
    content = alert_post.content or ""
    assert content.startswith(f"<@&{ROLE}> <@{USER}> 🚨 critical: process\\_down process:bot")
    alerts = [e for e in alert_post.jsonl_events() if e["kind"] == "alert"]
    assert alerts and alerts[0]["rule"] == "process_down"
    others = [m for m in discord.all_messages() if m.message_id != alert_post.message_id]
    assert others and all(m.flags == SUPPRESS_NOTIFICATIONS for m in others)
    assert all(m.payload["allowed_mentions"] == {"parse": []} for m in others)
    logged = [e for e in discord.all_events(ids["logs"]) if e["kind"] == "log"]
    assert logged[0]["message"] == hostile


def test_notify_true_makes_a_channel_buzz_and_no_mentions_means_no_ping(
    discord: FakeDiscord, launch: Launch
) -> None:
    """notify = true drops the silent flag; a critical alert without mention_* notifies unpinged."""
    body, ids = webhook_channels(discord)
    body = body.replace("[channels.performance]\n", "[channels.performance]\nnotify = true\n")
    config = PROCESS_DOWN.split("[alerts]")[0]
    sidecar = launch(body + config)

    def alert_posts() -> list[int]:
        return [
            m.flags
            for m in discord.messages(ids["logs"])
            if any(e["kind"] == "alert" for e in m.jsonl_events())
        ]

    sidecar.wait_for(lambda: alert_posts() and discord.messages(ids["performance"]))
    assert sidecar.stop() == 0
    discord.assert_no_violations()
    assert alert_posts()[0] == 0
    assert all(m.flags == 0 for m in discord.messages(ids["performance"]))
    assert all(m.flags == SUPPRESS_NOTIFICATIONS for m in discord.messages(ids["diagnostics"]))
    assert not any(m.mention_roles or m.mentions or m.content for m in discord.all_messages())
