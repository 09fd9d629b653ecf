"""Who a post notifies: routine windows arrive silently, alerts that matter ping on purpose.

Window posts carry Discord's SUPPRESS_NOTIFICATIONS flag unless the channel sets
``notify = true``, so a channel can be followed without a buzz every 30 seconds. A window
holding a firing alert that matters (severity critical, a process down, a fleet member
silent) notifies, and pings the ``[alerts]`` role and users through the message content,
with ``allowed_mentions`` naming exactly them. A muted alert does neither. Text from events
is escaped, so it never pings anyone.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from astra.events import Alert, Event
from astra.sinks.messages import CONTENT_MAX, OutgoingMessage, cut, escape_text

SUPPRESS_NOTIFICATIONS = 1 << 12
# Rules that page whatever their severity: a watched process down, a fleet member silent.
PING_RULES = frozenset({"process_down", "member_silent"})
SUMMARY_MAX = 300


class Mentions(msgspec.Struct, frozen=True, kw_only=True):
    """Who an urgent alert pings: role ids and user ids (``[alerts] mention_*``)."""

    roles: list[str] = msgspec.field(default_factory=list)
    users: list[str] = msgspec.field(default_factory=list)


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """How one window's posts notify: their flags, and the ping the first one carries."""

    flags: int = 0
    content: str = ""
    roles: list[str] = msgspec.field(default_factory=list)
    users: list[str] = msgspec.field(default_factory=list)


def urgent_alerts(events: Sequence[Event]) -> list[Alert]:
    """Firing, unmuted alerts that are critical or of a rule that always pages."""
    return [
        e
        for e in events
        if isinstance(e, Alert)
        and e.state == "firing"
        and not e.muted
        and (e.severity == "critical" or e.rule in PING_RULES)
    ]


def window_notice(events: Sequence[Event], *, notify: bool, mentions: Mentions) -> Notice:
    """The notice for a window's posts: silent, notifying, or notifying with a ping."""
    alerts = urgent_alerts(events)
    if not alerts:
        return Notice(flags=0 if notify else SUPPRESS_NOTIFICATIONS)
    if not (mentions.roles or mentions.users):
        return Notice()
    tags = " ".join([f"<@&{r}>" for r in mentions.roles] + [f"<@{u}>" for u in mentions.users])
    first = alerts[0]
    text = f"{first.rule} {first.subject}: {first.message}" if first.message else first.rule
    more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
    summary = escape_text(cut(text, SUMMARY_MAX))
    content = cut(f"{tags} 🚨 {first.severity}: {summary}{more}", CONTENT_MAX)
    return Notice(content=content, roles=list(mentions.roles), users=list(mentions.users))


def apply_notice(messages: list[OutgoingMessage], notice: Notice) -> list[OutgoingMessage]:
    """Every message gets the notice's flags; the first one carries its ping."""
    out = [msgspec.structs.replace(m, flags=notice.flags) for m in messages]
    if out and notice.content:
        out[0] = msgspec.structs.replace(
            out[0], content=notice.content, ping_roles=notice.roles, ping_users=notice.users
        )
    return out


def inherit(replacement: list[OutgoingMessage], refused: OutgoingMessage) -> list[OutgoingMessage]:
    """A refused message's simpler replacements keep its flags, and its ping on the first."""
    notice = Notice(
        flags=refused.flags,
        content=refused.content,
        roles=refused.ping_roles,
        users=refused.ping_users,
    )
    return apply_notice(replacement, notice)
