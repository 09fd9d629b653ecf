"""Which posts notify and which ping: the notice a window's posts carry."""

from __future__ import annotations

from astra.events import Alert, Log
from astra.sinks.messages import Embed, OutgoingMessage
from astra.sinks.notify import (
    SUPPRESS_NOTIFICATIONS,
    Mentions,
    apply_notice,
    inherit,
    window_notice,
)

ROLE = "123456789012345678"
MENTIONS = Mentions(roles=[ROLE], users=[])


def alert(**changes: object) -> Alert:
    """A firing critical alert, changed as asked."""
    fields: dict[str, object] = {
        "rule": "process_down",
        "subject": "process:bot",
        "state": "firing",
        "severity": "critical",
        "message": "bot is not running",
    }
    fields.update(changes)
    return Alert(**fields)  # type: ignore[arg-type]


def test_routine_window_is_silent_unless_the_channel_notifies() -> None:
    """A window without urgent alerts suppresses notifications, unless notify is set."""
    events = [Log(level="info", message="hello")]
    assert window_notice(events, notify=False, mentions=MENTIONS).flags == SUPPRESS_NOTIFICATIONS
    assert window_notice(events, notify=True, mentions=MENTIONS).flags == 0


def test_urgent_alert_pings_the_role_through_escaped_content() -> None:
    """A critical firing alert notifies and pings the role; its text is escaped."""
    notice = window_notice([alert(message="@everyone <@&1>")], notify=False, mentions=MENTIONS)
    assert notice.flags == 0 and notice.roles == [ROLE]
    assert notice.content.startswith(f"<@&{ROLE}> 🚨 critical: process\\_down")
    assert "@\u200beveryone" in notice.content and "<@&1>" not in notice.content


def test_muted_resolved_and_minor_alerts_do_not_ping_or_notify() -> None:
    """Muted, resolved and warning alerts (of rules that do not page) stay silent."""
    for quiet in (
        alert(muted=True),
        alert(state="resolved"),
        alert(rule="cpu", severity="warning"),
    ):
        notice = window_notice([quiet], notify=False, mentions=MENTIONS)
        assert notice.flags == SUPPRESS_NOTIFICATIONS and not notice.content


def test_member_silent_pages_at_any_severity() -> None:
    """A silent fleet member pings even when its severity is only a warning."""
    notice = window_notice(
        [alert(rule="member_silent", severity="warning")], notify=False, mentions=MENTIONS
    )
    assert notice.roles == [ROLE]


def test_ping_rides_on_the_first_message_and_survives_a_repair() -> None:
    """Only the first message carries the ping; a simpler replacement keeps it."""
    notice = window_notice([alert()], notify=False, mentions=MENTIONS)
    first, second = apply_notice(
        [OutgoingMessage(embeds=[Embed(title="a")]), OutgoingMessage(embeds=[Embed(title="b")])],
        notice,
    )
    assert first.ping_roles == [ROLE] and first.content and not second.content
    (fallback,) = inherit([OutgoingMessage(embeds=[Embed(title="simpler")])], first)
    assert fallback.content == first.content and fallback.ping_roles == [ROLE]
