"""End to end: one status board message in #diagnostics, edited in place, kept across restarts."""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import Launch, provisioned_channels, webhook_channels
from tests.fake_discord import FakeDiscord, PostedMessage

MARKER = "astra status board"
FAST_HEALTH = """
[flush]
interval = 0.5
[collectors.health]
interval = 0.5
"""


def boards(discord: FakeDiscord, channel_id: int) -> list[PostedMessage]:
    """The status board messages in a channel (recognised by their footer)."""
    return [
        m
        for m in discord.messages(channel_id)
        if any(e.get("footer", {}).get("text") == MARKER for e in m.embeds)
    ]


def fields(message: PostedMessage) -> dict[str, str]:
    """The board embed's fields by name (continuation fields joined to the one before)."""
    out: dict[str, str] = {}
    last = ""
    for field in message.embeds[0].get("fields", []):
        if field["name"] != "\u200b":
            last = field["name"]
        out[last] = (out.get(last, "") + "\n" + field["value"]).strip()
    return out


@pytest.mark.parametrize("intent", [True, False], ids=["message-content", "no-intent"])
def test_board_is_edited_in_place_and_found_again_after_a_restart(
    launch: Launch, intent: bool
) -> None:
    """One board message shows score, channels, components, host, uptime; a restart reuses it.

    Without the Message Content intent the listing hides the board's embeds: it is
    confirmed through the webhook.
    """
    with FakeDiscord(message_content_intent=intent) as discord:
        board_across_restarts(discord, launch)
        fetches = [r for r in discord.requests if r.method == "GET" and "/webhooks/" in r.path]
        assert bool(fetches) is not intent


def board_across_restarts(discord: FakeDiscord, launch: Launch) -> None:
    """Run astra twice on provisioned channels; the second run edits the first run's board."""
    body, ids = provisioned_channels(discord)
    channel = ids["diagnostics"]
    first = launch(body + FAST_HEALTH)
    first.wait_for(
        lambda: (
            len(boards(discord, channel)) == 1
            and boards(discord, channel)[0].edits >= 3
            and "/100" in boards(discord, channel)[0].embeds[0]["title"]
        )
    )
    (board,) = boards(discord, channel)
    shown = fields(board)
    assert board.embeds[0]["title"].startswith("📋 astra status · ")
    assert shown["Alerts firing now"] == "none"
    for name in ("analytics", "diagnostics", "logs", "performance"):
        assert f"**#{name}** → Discord" in shown["Channels"]
    assert "collector health" in shown["Components"] and "ingest" in shown["Components"]
    assert socket.gethostname().replace("-", "\\-") in shown["Hosts"]
    assert shown["Uptime"] and shown["Version"]
    assert board.flags == 4096
    assert first.stop() == 0
    (stopped,) = boards(discord, channel)
    assert stopped.embeds[0]["title"] == "⏹️ astra stopped"
    assert any(e["kind"] == "health" for e in discord.all_events(channel))

    # A new process cannot know how much of the webhook's bucket the last one used up.
    time.sleep(discord.bucket_window)
    second = launch(body + FAST_HEALTH)
    second.wait_for(lambda: "/100" in boards(discord, channel)[0].embeds[0]["title"])
    assert second.health()["statistics"]["board"]["found"] == 1
    assert second.stop() == 0
    (again,) = boards(discord, channel)
    assert again.message_id == board.message_id and again.edits > stopped.edits
    assert "found the earlier board" in second.stderr
    discord.assert_no_violations()


def test_deleted_board_is_posted_again(discord: FakeDiscord, launch: Launch) -> None:
    """When someone deletes the board, the next edit answers 404 and a new board is posted."""
    body, ids = webhook_channels(discord)
    channel = ids["diagnostics"]
    sidecar = launch(body + FAST_HEALTH)
    sidecar.wait_for(lambda: len(boards(discord, channel)) == 1)
    old = boards(discord, channel)[0].message_id
    discord.delete_message(old)
    sidecar.wait_for(lambda: [b.message_id for b in boards(discord, channel)] not in ([], [old]))
    assert sidecar.health()["statistics"]["board"]["recreated"] == 1
    assert sidecar.stop() == 0
    assert len(boards(discord, channel)) == 1
    assert "status board: its message was deleted; posting a new one" in sidecar.stderr
    assert discord.refusals == [f"404 Unknown Message (message {old})"]
    discord.assert_no_violations()


def test_without_bot_token_each_run_posts_its_own_board(
    discord: FakeDiscord, launch: Launch
) -> None:
    """With webhook URLs only, a restart cannot find the old board: it says so and posts anew."""
    body, ids = webhook_channels(discord)
    for _ in range(2):
        sidecar = launch(body + FAST_HEALTH)
        wanted = len(boards(discord, ids["diagnostics"])) + 1

        def posted(wanted: int = wanted) -> bool:
            return len(boards(discord, ids["diagnostics"])) == wanted

        sidecar.wait_for(posted)
        assert sidecar.stop() == 0
        assert sidecar.stderr.count("cannot find its board after a restart") == 1
    assert len(boards(discord, ids["diagnostics"])) == 2
    discord.assert_no_violations()


def test_board_shows_alerts_firing_now(discord: FakeDiscord, launch: Launch) -> None:
    """A firing alert appears on the board with its rule and subject."""
    body, ids = webhook_channels(discord)
    config = (
        FAST_HEALTH
        + """
[collectors.process]
interval = 0.3
[collectors.errors]
interval = 0.3
[[watch.process]]
name = "bot"
pattern = "astra-test-no-such-process-[0-9]{12}"
"""
    )
    sidecar = launch(body + config)

    def firing() -> str:
        found = boards(discord, ids["diagnostics"])
        return fields(found[0]).get("Alerts firing now", "") if found else ""

    sidecar.wait_for(lambda: "process\\_down" in firing())
    assert sidecar.stop() == 0
    assert "🔴 **process\\_down** process:bot" in firing()
    discord.assert_no_violations()


def test_board_can_be_switched_off(discord: FakeDiscord, launch: Launch) -> None:
    """[status_board] enabled = false posts no board."""
    body, ids = webhook_channels(discord)
    sidecar = launch(body + FAST_HEALTH + "[status_board]\nenabled = false\n")
    sidecar.wait_for(
        lambda: any(e["kind"] == "health" for e in discord.all_events(ids["diagnostics"]))
    )
    assert sidecar.stop() == 0
    assert boards(discord, ids["diagnostics"]) == []


def test_unreadable_history_posts_a_board_and_says_why(
    discord: FakeDiscord, launch: Launch
) -> None:
    """Without Read Message History the old board cannot be searched: one line, a new board."""
    body, ids = provisioned_channels(discord)
    discord.add_channel(ids["diagnostics"], read_history=False)
    sidecar = launch(body + FAST_HEALTH + "[recovery]\nenabled = false\n")
    sidecar.wait_for(lambda: len(boards(discord, ids["diagnostics"])) == 1)
    assert sidecar.stop() == 0
    assert sidecar.stderr.count("status board: cannot look for the earlier board") == 1
    assert "the bot needs View Channel and Read Message History" in sidecar.stderr
    discord.assert_no_violations()
