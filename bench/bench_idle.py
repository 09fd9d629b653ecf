"""The sidecar's idle cost: CPU and RSS of ``astra run`` with every collector on.

Starts the real CLI on the shipped config.toml (ports changed, nothing else unless
``--fast``), lets it settle, then measures its CPU time and RSS with psutil over a period
with no client at all. ``--fast`` shortens every collector's interval (and the flush) to a
few seconds: a pessimistic bound, well above what the shipped defaults cost.

Usage: python bench/bench_idle.py [--seconds 60] [--fast]
"""

from __future__ import annotations

import argparse
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.sidecar import free_port  # noqa: E402

WARMUP_S = 5.0
FAST_INTERVAL_S = 2


def config_text(port: int, fast: bool) -> str:
    """The shipped config with its ports moved (and every interval shortened when fast)."""
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:8787", f"127.0.0.1:{port}")
    if fast:
        text = re.sub(r"(?m)^interval = \d+", f"interval = {FAST_INTERVAL_S}", text)
    return text


def measure(seconds: float, fast: bool) -> None:
    """Run astra, then print its CPU share and RSS over ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(config_text(free_port(), fast), encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "astra", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            watched = psutil.Process(process.pid)
            time.sleep(WARMUP_S)
            before, started = watched.cpu_times(), time.monotonic()
            rss: list[int] = []
            while time.monotonic() - started < seconds:
                rss.append(watched.memory_info().rss)
                time.sleep(1.0)
            after, elapsed = watched.cpu_times(), time.monotonic() - started
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    cpu_s = (after.user + after.system) - (before.user + before.system)
    mib = 1024 * 1024
    mode = f"every interval {FAST_INTERVAL_S} s (--fast)" if fast else "shipped intervals"
    print(f"astra run, all collectors on, {mode}, idle for {elapsed:.0f} s")
    print(
        f"  machine: {platform.machine()}, {psutil.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    print(f"  CPU: {cpu_s:.3f} s in {elapsed:.0f} s = {100 * cpu_s / elapsed:.2f} % of one core")
    print(f"  RSS: max {max(rss) / mib:.1f} MiB, last {rss[-1] / mib:.1f} MiB")


def main() -> None:
    """Parse the arguments and measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fast", action="store_true", help="every interval 2 s")
    args = parser.parse_args()
    measure(args.seconds, args.fast)


if __name__ == "__main__":
    main()
