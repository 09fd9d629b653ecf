"""The analytics channel: who used the bot and how."""

from __future__ import annotations

from collections import Counter, defaultdict

from astra.events import Command, Guild, Member, Message, Reaction, Voice
from astra.sinks.messages import Embed, Field, code_block
from astra.sinks.render.format import (
    COLOR_OK,
    TOP_N,
    header,
    kind_counts,
    pack_embeds,
    sparkline,
    table,
)
from astra.sinks.render.names import NameBook
from astra.streams.windows import Window
from astra.units import fmt_int, fmt_num


def render_analytics(window: Window, names: NameBook | None = None) -> list[Embed]:
    """Who used the bot and how: activity by kind, top commands, guilds, reactions, people.

    Guilds and channels are shown by name where ``names`` (or this window) knows it.
    """
    events = window.events
    if names is None:
        names = NameBook()
        names.learn(events)
    embed = header(window, COLOR_OK, f"activity {_activity(window)}" if events else "")
    fields = [Field("Activity", code_block(table(kind_counts(events))), inline=False)]

    commands: dict[str, list[float]] = defaultdict(list)
    command_counts: Counter[str] = Counter()
    guilds: Counter[int] = Counter()
    channels: Counter[int] = Counter()
    authors: set[int] = set()
    emojis: Counter[str] = Counter()
    for ev in events:
        if isinstance(ev, Command):
            command_counts[ev.name] += 1
            if ev.duration_ms is not None:
                commands[ev.name].append(ev.duration_ms)
        if isinstance(ev, Message) and ev.author_id is not None:
            authors.add(ev.author_id)
        if isinstance(ev, Reaction) and ev.action == "add":
            emojis[ev.emoji] += 1
        guild_id = getattr(ev, "guild_id", None)
        if isinstance(ev, Message | Command | Reaction | Voice) and guild_id is not None:
            guilds[guild_id] += 1
        channel_id = getattr(ev, "channel_id", None)
        if isinstance(ev, Message | Command | Reaction) and channel_id is not None:
            channels[channel_id] += 1
    if command_counts:
        command_rows = []
        for name, count in command_counts.most_common():
            times = commands.get(name, [])
            avg = fmt_num(sum(times) / len(times)) if times else "-"
            peak = fmt_num(max(times)) if times else "-"
            command_rows.append((name, fmt_int(count), avg, peak))
        fields.append(
            Field(
                "Top commands",
                code_block(table(command_rows, ("command", "uses", "avg ms", "max ms"))),
            )
        )
    if guilds:
        guild_rows = [(names.guild(g), fmt_int(c)) for g, c in guilds.most_common(TOP_N)]
        fields.append(
            Field("Busiest guilds", code_block(table(guild_rows, ("guild", "events"))), True)
        )
    if channels:
        channel_rows = [(names.channel(ch), fmt_int(c)) for ch, c in channels.most_common(TOP_N)]
        fields.append(
            Field("Busiest channels", code_block(table(channel_rows, ("channel", "events"))), True)
        )
    if emojis:
        emoji_rows = [(e, fmt_int(c)) for e, c in emojis.most_common(TOP_N)]
        fields.append(
            Field("Top reactions", code_block(table(emoji_rows, ("emoji", "adds"))), True)
        )
    joins = sum(1 for e in events if isinstance(e, Guild | Member) and e.action == "join")
    leaves = sum(1 for e in events if isinstance(e, Guild | Member) and e.action == "leave")
    if authors or joins or leaves:
        fields.append(
            Field(
                "People",
                f"{fmt_int(len(authors))} distinct authors · {fmt_int(joins)} joins · "
                f"{fmt_int(leaves)} leaves",
            )
        )
    return pack_embeds(embed, fields)


def _activity(window: Window, buckets: int = 12) -> str:
    """Events over the window's time as a sparkline (one character per 1/12th)."""
    span = window.closed - window.opened
    if span <= 0 or len(window.events) < 2:
        return sparkline([len(window.events)])
    counts = [0] * buckets
    for ev in window.events:
        index = int((ev.time - window.opened) / span * buckets)
        counts[min(buckets - 1, max(0, index))] += 1
    return sparkline(counts, lo=0)
