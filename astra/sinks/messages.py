"""Discord message shapes and the limits they are packed to.

Nothing leaves astra that Discord would refuse: every text is cut to its limit, every
embed to 25 fields, every message to 10 embeds and 6000 characters, 10 files of at most
``MAX_FILE_BYTES`` each. Limits from shared/discord-api.md.
"""

from __future__ import annotations

import re

import msgspec

from astra.events import Event

CONTENT_MAX = 2000
EMBEDS_PER_MESSAGE = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_PER_EMBED = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
MESSAGE_TEXT_MAX = 6000
FILES_PER_MESSAGE = 10
# Discord allows 10 MiB per webhook file; keep headroom for multipart framing.
MAX_FILE_BYTES = 10 * 1024 * 1024 - 64 * 1024

ELLIPSIS = "…"


class Field(msgspec.Struct, frozen=True):
    """An embed field."""

    name: str
    value: str
    inline: bool = False


class Footer(msgspec.Struct, frozen=True):
    """An embed footer."""

    text: str


class Embed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An embed, encoded exactly as Discord's JSON wants it."""

    title: str = ""
    description: str = ""
    color: int = 0
    fields: list[Field] = msgspec.field(default_factory=list)
    footer: Footer | None = None
    timestamp: str = ""

    def text_length(self) -> int:
        """Characters that count toward the 6000-per-message limit."""
        total = len(self.title) + len(self.description)
        total += sum(len(f.name) + len(f.value) for f in self.fields)
        if self.footer is not None:
            total += len(self.footer.text)
        return total

    def is_empty(self) -> bool:
        """Discord refuses an embed with nothing in it."""
        return not (self.title.strip() or self.description.strip() or self.fields or self.footer)


class Attachment(msgspec.Struct, frozen=True):
    """A file to upload with a message, with the events it holds (to split it if refused)."""

    filename: str
    data: bytes
    events: list[Event] = msgspec.field(default_factory=list)
    # The channel's number of the first event in this run (see ``astra.sinks.attachments``).
    first: int = 0


class OutgoingMessage(msgspec.Struct, kw_only=True):
    """One webhook execute: embeds and files, within every limit."""

    embeds: list[Embed] = msgspec.field(default_factory=list)
    files: list[Attachment] = msgspec.field(default_factory=list)
    content: str = ""
    # Discord message flags (SUPPRESS_NOTIFICATIONS for routine posts).
    flags: int = 0
    # Role and user ids the content mentions on purpose: the only pings allowed.
    ping_roles: list[str] = msgspec.field(default_factory=list)
    ping_users: list[str] = msgspec.field(default_factory=list)

    def is_empty(self) -> bool:
        """Discord refuses a message with no content, embeds or files."""
        return not (self.content or self.embeds or self.files)


# --- escaping ----------------------------------------------------------------------------

_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()#-])")
_MENTION = re.compile(r"@(?=[^\s])|<(?=[@#&]|/)")
_ZWSP = "\u200b"
_BACKTICK_RUN = re.compile(r"`(?=`)")


def escape_text(text: str) -> str:
    """Escape markdown and break every mention (@everyone, @here, <@id>, <@&role>, <#id>)."""
    text = _MARKDOWN.sub(r"\\\1", text)
    return _MENTION.sub(lambda m: m.group(0) + _ZWSP, text)


def escape_code(text: str) -> str:
    """Make text safe inside a ``` block: it must not close the block early.

    Mentions are broken here too: Discord does not parse them in code blocks or embeds,
    but a reader copying the text elsewhere should not carry a live @everyone with it.
    """
    # After every backtick that another follows: no run of three survives, however long
    # the run (a plain replace of "```" leaves a fence behind in "````").
    text = _BACKTICK_RUN.sub("`" + _ZWSP, text)
    return _MENTION.sub(lambda m: m.group(0) + _ZWSP, text)


def cut(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + ELLIPSIS


def code_block(lines: list[str], limit: int = FIELD_VALUE_MAX) -> str:
    """A code block of ``lines`` that stays within ``limit`` characters and stays closed."""
    head, tail = "```\n", "\n```"
    budget = limit - len(head) - len(tail)
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        line = escape_code(line)
        remaining = len(lines) - index - 1
        more = f"… {remaining + 1} more"
        cost = len(line) + (1 if kept else 0)
        # Leave room for the "… N more" line unless this is the last line.
        reserve = len(more) + 1 if remaining else 0
        if used + cost + reserve > budget:
            kept.append(more)
            break
        kept.append(line)
        used += cost
    return head + "\n".join(kept) + tail if kept else ""


# --- fitting and packing -------------------------------------------------------------------


def fit_embed(embed: Embed) -> Embed | None:
    """Cut an embed to Discord's per-embed limits and to 6000 characters; None if empty."""
    # Discord trims text before checking it: blank is empty, and empty is refused.
    fields = [
        Field(
            cut(f.name, FIELD_NAME_MAX) if f.name.strip() else _ZWSP,
            cut(f.value, FIELD_VALUE_MAX) if f.value.strip() else _ZWSP,
            f.inline,
        )
        for f in embed.fields
    ]
    footer = embed.footer.text if embed.footer is not None else ""
    fitted = msgspec.structs.replace(
        embed,
        title=cut(embed.title, TITLE_MAX) if embed.title.strip() else "",
        description=cut(embed.description, DESCRIPTION_MAX) if embed.description.strip() else "",
        fields=fields[:FIELDS_PER_EMBED],
        footer=Footer(cut(footer, FOOTER_MAX)) if footer.strip() else None,
        color=min(max(embed.color, 0), 0xFFFFFF),
    )
    omitted = len(embed.fields) - len(fitted.fields)
    while fitted.text_length() > MESSAGE_TEXT_MAX and fitted.fields:
        fitted = msgspec.structs.replace(fitted, fields=fitted.fields[:-1])
        omitted += 1
    if omitted:
        note = Field("\u200b", f"… {omitted} more not shown: every event is in the attachment")
        while fitted.fields and (
            len(fitted.fields) >= FIELDS_PER_EMBED
            or fitted.text_length() + len(note.name) + len(note.value) > MESSAGE_TEXT_MAX
        ):
            fitted = msgspec.structs.replace(fitted, fields=fitted.fields[:-1])
        fitted = msgspec.structs.replace(fitted, fields=[*fitted.fields, note])
    if fitted.text_length() > MESSAGE_TEXT_MAX:
        budget = MESSAGE_TEXT_MAX - fitted.text_length() + len(fitted.description)
        fitted = msgspec.structs.replace(fitted, description=cut(fitted.description, budget))
    return None if fitted.is_empty() else fitted


def pack_messages(embeds: list[Embed], files: list[Attachment]) -> list[OutgoingMessage]:
    """Pack embeds and files into as few messages as Discord's limits allow."""
    messages: list[OutgoingMessage] = []
    current = OutgoingMessage()
    used = 0
    for raw in embeds:
        embed = fit_embed(raw)
        if embed is None:
            continue
        size = embed.text_length()
        if current.embeds and (
            len(current.embeds) >= EMBEDS_PER_MESSAGE or used + size > MESSAGE_TEXT_MAX
        ):
            messages.append(current)
            current = OutgoingMessage()
            used = 0
        current.embeds.append(embed)
        used += size
    if current.embeds:
        messages.append(current)
    # Attachments ride on the first messages, ten to a message.
    remaining = list(files)
    index = 0
    while remaining:
        if index >= len(messages):
            messages.append(OutgoingMessage())
        messages[index].files = remaining[:FILES_PER_MESSAGE]
        remaining = remaining[FILES_PER_MESSAGE:]
        index += 1
    return [m for m in messages if not m.is_empty()]
