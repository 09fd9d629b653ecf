"""Numbers for people: counts, sizes, spans, latencies and rates as operators read them.

The one place astra writes a figure with its unit. Pure formatting with no I/O, so
collectors (their messages and recommendations) and sinks (embeds, the terminal preview)
write figures the same way without depending on each other.
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


def fmt_int(n: float) -> str:
    """A count with thousands separators: 12,345."""
    return f"{n:,.0f}"


def fmt_num(x: float) -> str:
    """A compact number: 12,345 / 12.3 / 0.042."""
    if x != x:  # NaN
        return "nan"
    if abs(x) >= 1000 or x == int(x):
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:,.1f}"
    return f"{x:.3g}"


def fmt_ms(ms: float) -> str:
    """A latency: 840 ms, 1.25 s, 2.1 min."""
    if ms < 1000:
        return f"{fmt_num(round(ms, 1))} ms"
    if ms < 60_000:
        return f"{ms / 1000:.3g} s"
    return f"{ms / 60_000:.2g} min"


def fmt_pct(x: float, *, digits: int = 1) -> str:
    """A percentage, one decimal unless told: 93.4 %."""
    return f"{x:.{digits}f} %"


def fmt_rate(bytes_per_s: float | None) -> str:
    """A transfer rate: 12.4 KiB/s (``-`` when unknown)."""
    return "-" if bytes_per_s is None else f"{fmt_bytes(bytes_per_s)}/s"


def fmt_growth(bytes_per_day: float) -> str:
    """A size's change per day, signed: +1.2 MiB/day, -512 B/day."""
    return f"{'+' if bytes_per_day >= 0 else '-'}{fmt_bytes(abs(bytes_per_day))}/day"


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text`` such as ``90s``, ``30m``, ``2h``, ``1d`` or ``1h30m``.

    Raises ``ValueError`` with a message naming the accepted forms.
    """
    spec = text.strip().lower().replace(" ", "")
    total, number = 0.0, ""
    for char in spec:
        if char.isdigit() or char == ".":
            number += char
            continue
        if char not in _DURATION_UNITS or not number.replace(".", "", 1).isdigit():
            break
        total += float(number) * _DURATION_UNITS[char]
        number = ""
    else:
        if spec and not number and total > 0:
            return total
    raise ValueError(f"not a duration: {text[:40]!r} (use e.g. 90s, 30m, 2h, 1d or 1h30m)")
