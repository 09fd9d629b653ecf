"""Terminal preview: what would be posted, as readable text on stdout."""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime
from typing import TextIO

from astra.sinks.messages import Embed, OutgoingMessage
from astra.units import fmt_bytes, fmt_int

log = logging.getLogger("astra.preview")

_TIMESTAMP = re.compile(r"<t:(\d+):([tTdDfFR])>")
_ESCAPE = re.compile(r"\\([\\*_~`|>\[\]()#-])")
_STYLES = {
    "t": "%H:%M",
    "T": "%H:%M:%S",
    "d": "%Y-%m-%d",
    "D": "%d %B %Y",
    "f": "%d %B %Y %H:%M",
    "F": "%A, %d %B %Y %H:%M",
    "R": "%H:%M:%S",
}


def _local_time(match: re.Match[str]) -> str:
    try:
        return datetime.fromtimestamp(int(match.group(1))).strftime(_STYLES[match.group(2)])
    except (ValueError, OverflowError, OSError):
        # Out of range: event text may hold anything; keep it as it was written.
        return match.group(0)


def plain(text: str) -> str:
    """Discord markup to terminal text: local times, no escapes, no bold markers."""
    text = _TIMESTAMP.sub(_local_time, text)
    text = text.replace("\u200b", "").replace("**", "")
    return _ESCAPE.sub(r"\1", text).replace("```\n", "").replace("\n```", "\n").replace("```", "")


def format_embed(embed: Embed) -> list[str]:
    """One embed as indented text lines."""
    lines = [f"┃ {plain(embed.title)}"] if embed.title else []
    lines += [f"┃ {line}" for line in plain(embed.description).splitlines()]
    for field in embed.fields:
        lines.append(f"┃ ▸ {plain(field.name)}")
        lines += [f"┃   {line}" for line in plain(field.value).splitlines()]
    if embed.footer is not None:
        lines.append(f"┃ — {plain(embed.footer.text)}")
    return lines


def format_message(channel: str, message: OutgoingMessage) -> str:
    """A whole message as a block of text for the terminal."""
    head = f"── #{channel} (preview: no webhook configured) ".ljust(72, "─")
    lines = [head]
    for embed in message.embeds:
        lines += format_embed(embed)
    for attachment in message.files:
        if attachment.filename.endswith(".png"):
            # A chart: the terminal cannot show it, only that it would be posted.
            lines.append(f"┃ 📎 {attachment.filename} (chart, {fmt_bytes(len(attachment.data))})")
            continue
        lines.append(
            f"┃ 📎 {attachment.filename} ({fmt_int(len(attachment.events))} events, "
            f"{fmt_bytes(len(attachment.data))} gzip)"
        )
    return "\n".join(lines) + "\n"


class Preview:
    """Writes messages to a terminal stream instead of posting them."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def show(self, channel: str, message: OutgoingMessage) -> None:
        """Print one message."""
        stream = self._stream or sys.stdout
        try:
            stream.write(format_message(channel, message))
            stream.flush()
        except (OSError, ValueError) as exc:
            # A closed or broken stdout must not take the sidecar down (ValueError: closed file).
            log.warning(
                "preview of #%s not shown: stdout unusable (%s)", channel, type(exc).__name__
            )
