"""``astra top``: a live view of a running sidecar in the terminal, like ``vector top``.

Reads the typed statistics snapshot from the sidecar's ``GET /healthz`` once a second and
draws one frame: ingest rates, each channel's pending, posted, rate, 429s and last post,
the collectors and their last run, and what was dropped. Rates come from the difference
between two snapshots, so even ``--once`` takes two, a second apart.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import TextIO

import msgspec

from astra.errors import SidecarUnreachable as SidecarUnreachable  # re-exported
from astra.statistics import SidecarStatistics
from astra.units import fmt_duration

REFRESH_S = 1.0
# Clear the screen and move to the top-left corner before each frame on a terminal.
_CLEAR = "\x1b[2J\x1b[H"


def fetch(url: str, timeout_s: float = 3.0) -> SidecarStatistics:
    """One statistics snapshot from the sidecar at ``url``.

    Raises ``SidecarUnreachable`` with the cause when nothing answers or the answer is not
    an astra sidecar's.
    """
    target = url.rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(target, timeout=timeout_s) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SidecarUnreachable(f"{target} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        why = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        raise SidecarUnreachable(f"no sidecar at {url}: {str(why).lower()}") from None
    except ValueError:
        raise SidecarUnreachable(f"{target} did not answer JSON") from None
    try:
        return msgspec.convert(body["statistics"], SidecarStatistics, strict=False)
    except (KeyError, TypeError, msgspec.ValidationError):
        raise SidecarUnreachable(f"{target} is not an astra sidecar's health endpoint") from None


def _rate(now: float, before: float, seconds: float) -> str:
    return f"{max(0.0, now - before) / seconds:,.1f}/s"


def _ago(at: float | None, now: float) -> str:
    return "never" if at is None else f"{fmt_duration(now - at)} ago"


def frame(now: SidecarStatistics, before: SidecarStatistics) -> str:
    """The text of one frame, from two snapshots (``before`` is the earlier one)."""
    span = max(1e-3, now.at - before.at)
    totals = now.totals
    lines = [
        f"astra {now.version} · up {fmt_duration(now.uptime_s)} · "
        f"{now.bus.held:,} held of {now.bus.max_events:,} · {now.bus.published:,} published",
        "",
        f"{'ingest':<10}{'received':>12}{'rate':>12}{'rejected':>10}{'unauth':>8}",
    ]
    for name, stage, earlier, rejected, unauthorized in (
        (
            "http",
            now.http,
            before.http,
            now.http.rejected + now.http.refused_requests,
            now.http.unauthorized,
        ),
        ("udp", now.udp, before.udp, now.udp.malformed, now.udp.unauthorized),
    ):
        lines.append(
            f"{name:<10}{stage.received:>12,}{_rate(stage.received, earlier.received, span):>12}"
            f"{rejected:>10,}{unauthorized:>8,}"
        )
    lines += [
        "",
        f"{'channel':<13}{'mode':<9}{'pending':>9}{'posted':>10}{'rate':>11}"
        f"{'429s':>6}{'dropped':>9}  last post",
    ]
    for name, channel in now.channels.items():
        delivery, stream = channel.delivery, channel.stream
        previous = before.channels.get(name, channel).delivery.posted_events
        rate = _rate(delivery.posted_events, previous, span)
        lines.append(
            f"{name:<13}{delivery.mode:<9}{stream.pending:>9,}{delivery.posted_events:>10,}"
            f"{rate:>11}{delivery.rate_limited:>6,}{stream.dropped_total:>9,}  "
            f"{_ago(delivery.last_post, now.at)}"
        )
    lines += ["", f"{'collector':<13}{'every':>8}{'runs':>7}{'failed':>8}  last run"]
    for collector in now.collectors:
        lines.append(
            f"{collector.name:<13}{collector.interval_s:>7g}s{collector.runs:>7,}"
            f"{collector.failures:>8,}  {_ago(collector.last_ok, now.at)}"
        )
    lines += [
        "",
        f"dropped: {totals.dropped_buffer:,} by the memory bound · "
        f"{totals.kernel_drops:,} datagrams by the kernel · "
        f"{totals.undeliverable:,} undeliverable",
    ]
    return "\n".join(lines)


def run(url: str, *, once: bool, out: TextIO = sys.stdout) -> None:
    """Draw frames every second until interrupted, or one frame with ``once``.

    Raises ``SidecarUnreachable`` when the sidecar does not answer.
    """
    before = fetch(url)
    clear = _CLEAR if out.isatty() and not once else ""
    while True:
        time.sleep(REFRESH_S)
        now = fetch(url)
        out.write(clear + frame(now, before) + "\n")
        out.flush()
        if once:
            return
        before = now
