"""What a ``/metrics`` scrape costs an idle sidecar: latency seen by the scraper and the
sidecar's own CPU time per scrape, for the Prometheus text format and for OpenMetrics.

    python bench/bench_metrics.py [--scrapes 500]

Starts ``astra run`` (terminal preview, every collector on) on a free port, waits for it,
then scrapes it back to back over one keep-alive connection.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sidecar import free_port

FORMATS = {
    "prometheus text": "",
    "openmetrics": "application/openmetrics-text; version=1.0.0",
}


def start(port: int, folder: Path) -> subprocess.Popen[bytes]:
    config = folder / "config.toml"
    config.write_text(f'[ingest]\nhttp = "127.0.0.1:{port}"\nudp = "127.0.0.1:{port}"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "astra", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("astra did not start")


def measure(port: int, pid: int, accept: str, scrapes: int) -> tuple[list[float], float, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    server = psutil.Process(pid)
    latencies = []
    size = 0
    before = server.cpu_times()
    for _ in range(scrapes):
        started = time.perf_counter()
        connection.request("GET", "/metrics", headers={"Accept": accept})
        body = connection.getresponse().read()
        latencies.append((time.perf_counter() - started) * 1000)
        size = len(body)
    after = server.cpu_times()
    cpu_ms = ((after.user + after.system) - (before.user + before.system)) * 1000 / scrapes
    return latencies, cpu_ms, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=500)
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        process = start(port, Path(folder))
        try:
            time.sleep(1.0)  # let start-up settle: the sidecar is idle from here on
            for label, accept in FORMATS.items():
                measure(port, process.pid, accept, 20)  # warm-up
                latencies, cpu_ms, size = measure(port, process.pid, accept, args.scrapes)
                latencies.sort()
                p50 = latencies[len(latencies) // 2]
                p99 = latencies[int(len(latencies) * 0.99) - 1]
                print(
                    f"{label:>16}: {args.scrapes} scrapes, {size:,} bytes each; latency "
                    f"mean {statistics.fmean(latencies):.2f} ms, p50 {p50:.2f} ms, "
                    f"p99 {p99:.2f} ms; sidecar CPU {cpu_ms:.2f} ms per scrape"
                )
        finally:
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
