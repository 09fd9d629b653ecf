"""Numbers for people: sizes and spans as operators read them, shared by every channel.

Pure formatting with no I/O, so collectors (their messages and recommendations) and sinks
(embeds) write figures the same way without depending on each other.
"""

from __future__ import annotations


def fmt_bytes(n: float) -> str:
    """Binary units with three significant figures: 412 MiB, 1.21 GiB, 512 B."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{value:,.0f} B"
            return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:,.0f} TiB"


def fmt_duration(seconds: float) -> str:
    """A span for people: 45 s, 12 min, 5 h 3 min, 3 d 4 h."""
    s = int(max(0, seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 172800:
        minutes = s % 3600 // 60
        return f"{s // 3600} h" + (f" {minutes} min" if minutes else "")
    return f"{s // 86400} d {s % 86400 // 3600} h"
