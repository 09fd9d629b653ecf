"""What charts cost: time and memory per chart, and the sidecar's RSS while it draws them.

(a) In this process: each of the four chart kinds of a daily report (24 hourly buckets),
drawn ``--repeat`` times: time per chart, PNG size, and the peak Python memory one drawing
allocates (tracemalloc).
(b) ``astra run`` on the shipped config with the hourly digest every 2 s (so it draws four
charts every 2 s) and the system collector every second, no client: its RSS over the run,
next to the same sidecar with the digest off.

Usage: python bench/bench_charts.py [--seconds 30] [--repeat 20]
"""

from __future__ import annotations

import argparse
import math
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from astra.events import Chart, ChartSeries  # noqa: E402
from astra.sinks.render.charts import draw_chart  # noqa: E402
from tests.sidecar import free_port  # noqa: E402

WARMUP_S = 5.0
MIB = 1024 * 1024


def day_charts() -> list[Chart]:
    """A day's four charts with plausible data."""
    hours = [f"{h:02d}:00" for h in range(24)]
    wave = [50 + 30 * math.sin(h / 4) for h in range(24)]
    return [
        Chart(
            name="host",
            title="Host CPU and memory",
            unit="%",
            labels=hours,
            series=[
                ChartSeries(label="cpu", values=list(wave)),
                ChartSeries(label="memory", values=[60.0 + h for h in range(24)]),
            ],
        ),
        Chart(
            name="latency",
            title="Gateway latency",
            unit="ms",
            labels=hours,
            series=[
                ChartSeries(label="p50", values=[v * 2 for v in wave]),
                ChartSeries(label="p95", values=[v * 5 for v in wave]),
            ],
        ),
        Chart(
            name="activity",
            title="Commands and errors per hour",
            style="bar",
            labels=hours,
            series=[
                ChartSeries(label="commands", values=[v * 40 for v in wave]),
                ChartSeries(label="errors", values=[v / 10 for v in wave]),
            ],
        ),
        Chart(
            name="channels",
            title="Events per channel",
            style="bar",
            labels=["analytics", "diagnostics", "logs", "performance"],
            series=[ChartSeries(label="events", values=[120_000, 900, 4_500, 30_000])],
        ),
    ]


def in_process(repeat: int) -> None:
    """Time, size and peak allocation of each chart."""
    print(f"(a) one chart drawn in this process, best of {repeat}")
    for chart in day_charts():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            data = draw_chart(chart)
            times.append(time.perf_counter() - started)
        tracemalloc.start()
        draw_chart(chart)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"  {chart.name:<9} {min(times) * 1000:6.1f} ms  PNG {len(data):>6,} B"
            f"  peak allocation {peak / 1024:,.0f} KiB"
        )


def sidecar_rss(seconds: float, digest: bool) -> tuple[float, float]:
    """Max and last RSS (MiB) of ``astra run`` with the digest every 2 s, or off."""
    port = free_port()
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:8787", f"127.0.0.1:{port}")
    text, found = re.subn(r"(?m)^interval = 120\b", "interval = 1", text)
    assert found == 1, "the system collector's interval line"
    text += f"\n[collectors.digest]\nenabled = {str(digest).lower()}\ninterval = 2\n"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(text, encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "astra", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            watched = psutil.Process(process.pid)
            time.sleep(WARMUP_S)
            rss: list[int] = []
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                rss.append(watched.memory_info().rss)
                time.sleep(0.5)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return max(rss) / MIB, rss[-1] / MIB


def main() -> None:
    """Parse the arguments and measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {psutil.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    in_process(args.repeat)
    print(f"(b) astra run, shipped config, system every 1 s, {args.seconds:.0f} s, no client")
    for digest in (False, True):
        high, last = sidecar_rss(args.seconds, digest)
        what = "digest every 2 s (4 charts each)" if digest else "digest off"
        print(f"  {what:<34} RSS max {high:.1f} MiB, last {last:.1f} MiB")


if __name__ == "__main__":
    main()
