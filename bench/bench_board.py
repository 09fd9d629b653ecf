"""What the status board and the heartbeat cost, and how long finding the board takes.

Runs the real CLI against the strict fake Discord (all four channels provisioned with the
bot token, no Message Content intent, recovery off so only the board reads history) with
the board on and a heartbeat going to a local HTTP server: measures the sidecar's CPU and
RSS, the board's edits and the heartbeat's calls over ``--seconds``. Then it buries the
board under ``--history`` other posts of the same webhook and restarts astra: the time
until the board is found and edited again, and the requests that took (history pages and
webhook-message fetches).

Usage: python bench/bench_board.py [--seconds 60] [--history 1900]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import provisioned_channels  # noqa: E402
from tests.fake_discord import FakeDiscord  # noqa: E402
from tests.sidecar import Sidecar, free_port, write_config  # noqa: E402

MARKER = "astra status board"
HEALTH_INTERVAL_S = 2.0


class Beats(BaseHTTPRequestHandler):
    """Counts heartbeat calls."""

    calls = 0

    def do_GET(self) -> None:
        Beats.calls += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def board_of(discord: FakeDiscord, channel: int) -> tuple[int, int]:
    """The board's message id and edit count (0, 0 when there is none)."""
    for message in discord.messages(channel):
        if any(e.get("footer", {}).get("text") == MARKER for e in message.embeds):
            return message.message_id, message.edits
    return 0, 0


def healthz(sidecar: Sidecar) -> dict[str, object]:
    """The sidecar's /healthz statistics."""
    with urllib.request.urlopen(f"{sidecar.base_url}/healthz", timeout=5) as response:
        data: dict[str, object] = json.loads(response.read())["statistics"]
        return data


def main() -> None:
    """Parse the arguments, run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--history", type=int, default=1900)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Beats)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/push/token"
    extra = (
        f"[collectors.health]\ninterval = {HEALTH_INTERVAL_S}\n"
        f'[heartbeat]\nurl = "{url}"\ninterval = 1\n'
        # Only the board reads history here (recovery would read it too).
        "[recovery]\nenabled = false\n"
    )
    with (
        FakeDiscord(bucket_limit=50, bucket_window=1.0, message_content_intent=False) as discord,
        tempfile.TemporaryDirectory() as tmp,
    ):
        body, ids = provisioned_channels(discord)
        channel = ids["diagnostics"]
        port = free_port()
        config = write_config(Path(tmp) / "config.toml", port, body + extra)
        sidecar = Sidecar(config, port).start()
        watched = psutil.Process(sidecar.process.pid if sidecar.process else 0)
        time.sleep(5.0)
        before, started = watched.cpu_times(), time.monotonic()
        edits_before, beats_before = board_of(discord, channel)[1], Beats.calls
        rss: list[int] = []
        while time.monotonic() - started < args.seconds:
            rss.append(watched.memory_info().rss)
            time.sleep(1.0)
        after, elapsed = watched.cpu_times(), time.monotonic() - started
        edits = board_of(discord, channel)[1] - edits_before
        beats = Beats.calls - beats_before
        sidecar.stop()
        cpu_s = (after.user + after.system) - (before.user + before.system)
        print(
            f"astra run with the board (health every {HEALTH_INTERVAL_S:g} s) and a 1 s heartbeat"
        )
        print(
            f"  machine: {platform.machine()}, {psutil.cpu_count()} cores, Python "
            f"{platform.python_version()}"
        )
        print(f"  {elapsed:.0f} s: {edits} board edits, {beats} heartbeat calls")
        print(f"  CPU: {cpu_s:.3f} s = {100 * cpu_s / elapsed:.2f} % of one core")
        print(f"  RSS: max {max(rss) / 2**20:.1f} MiB, last {rss[-1] / 2**20:.1f} MiB")

        board_id, edits = board_of(discord, channel)
        hook = discord.webhooks(channel)[0]
        for n in range(args.history):
            discord.store_through_webhook(hook, {"embeds": [{"title": f"window {n}"}]})
        requests = len(discord.requests)
        port = free_port()
        config = write_config(Path(tmp) / "again.toml", port, body + extra)
        began = time.monotonic()
        second = Sidecar(config, port).start()
        while board_of(discord, channel)[1] <= edits and time.monotonic() - began < 120:
            time.sleep(0.05)
        found_after = time.monotonic() - began
        figures = healthz(second)
        second.stop()
        reads = [
            r for r in discord.requests[requests:] if r.method == "GET" and ("/messages" in r.path)
        ]
        pages = sum(1 for r in reads if r.path.startswith("/api/v10/channels/"))
        kept = "kept" if board_of(discord, channel)[0] == board_id else "NOT kept"
        board = figures["board"]
        found = board.get("found") if isinstance(board, dict) else None
        print(
            f"  restart with the board under {args.history:,} newer posts: found and edited "
            f"{found_after:.2f} s after start (board {kept}, found={found}), "
            f"{pages} history pages, {len(reads) - pages} webhook-message fetches"
        )
    server.shutdown()


if __name__ == "__main__":
    main()
