"""``astra export`` reads the channels back from the fake Discord: every event once, in order."""

from __future__ import annotations

import gzip
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHANNEL_NAMES, Launch
from tests.fake_discord import FakeDiscord
from tests.sidecar import run_cli, write_config

ASTRA = (sys.executable, "-m", "astra")
FAST = "[flush]\ninterval = 0.3\ncritical_delay = 0.1\n"
QUIET_COLLECTORS = "".join(
    f"[collectors.{name}]\nenabled = false\n"
    for name in ("system", "process", "performance", "errors", "health", "report")
)


def readable_channels(fake: FakeDiscord) -> tuple[str, dict[str, int]]:
    """Config lines: the bot token, and each channel's id and a bot-made webhook."""
    lines = [f'[discord]\napi_base = "{fake.api_base}"\ntoken = "{fake.bot_token}"\n']
    ids: dict[str, int] = {}
    for index, name in enumerate(CHANNEL_NAMES):
        channel_id = 1419858425424255000 + index
        fake.add_channel(channel_id)
        hook = fake.create_webhook(channel_id, name="astra", application_id=fake.application_id)
        lines.append(f'[channels.{name}]\nid = {channel_id}\nwebhook = "{hook.url}"\n')
        ids[name] = channel_id
    return "\n".join(lines), ids


def bot_events(prefix: str, n: int, start_ts: float = 1_790_000_000.0) -> list[dict[str, Any]]:
    """``n`` log events with ids ``prefix-0``… and increasing timestamps."""
    return [
        {
            "kind": "log",
            "id": f"{prefix}-{i}",
            "ts": start_ts + i,
            "level": "info",
            "message": f"line {i}",
            "source": "bot",
        }
        for i in range(n)
    ]


def jsonl(events: list[dict[str, Any]]) -> bytes:
    """``events`` as a gzipped JSON Lines file, as astra attaches them."""
    return gzip.compress("".join(json.dumps(e) + "\n" for e in events).encode())


def export(config: Path, *args: str, timeout: float = 60) -> tuple[list[dict[str, Any]], str]:
    """Run ``astra export``; the NDJSON lines it printed, and its stderr."""
    done = run_cli("export", "--config", str(config), *args, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def post_in_batches(
    sidecar: Any, events: list[dict[str, Any]], discord: FakeDiscord, channel: int, size: int
) -> None:
    """Send ``events`` a batch at a time, each batch posted before the next is sent."""
    for first in range(0, len(events), size):
        batch = events[first : first + size]
        assert sidecar.post(batch).status == 200
        last = batch[-1]["id"]
        sidecar.wait_for(lambda last=last: last in {e["id"] for e in discord.all_events(channel)})


def test_export_yields_each_event_once_in_order_through_failures_and_a_duplicate(
    launch: Launch, tmp_path: Path
) -> None:
    """Export prints every event of #logs once, in order, after read 5xx, 429s and a post
    Discord stored twice (its confirmation lost)."""
    with FakeDiscord(bucket_limit=50) as discord:
        body, ids = readable_channels(discord)
        text = body.replace("[discord]\n", "[discord]\ntimeout = 1\n", 1) + FAST + QUIET_COLLECTORS
        sidecar = launch(text)
        events = bot_events("e", 60)
        post_in_batches(sidecar, events[:20], discord, ids["logs"], 10)
        # The next post is stored but answered after the client gave up: posted twice.
        discord.delay_next(1, 2.0)
        post_in_batches(sidecar, events[20:40], discord, ids["logs"], 20)
        post_in_batches(sidecar, events[40:], discord, ids["logs"], 10)

        def stored_twice() -> bool:
            names = [name for m in discord.messages(ids["logs"]) for name, _ in m.files]
            return len(names) > len(set(names))

        # The delayed copy is stored two seconds after it was sent, whatever came since.
        sidecar.wait_for(stored_twice, timeout=30)
        assert sidecar.stop() == 0
        discord.fail_reads_next(2, 503)
        discord.ratelimit_reads_next(1, retry_after=0.3)
        config_path = write_config(tmp_path / "export.toml", 1, text)
        exported, stderr = export(config_path, "--channel", "logs", "--kind", "log")
        assert [e["id"] for e in exported] == [e["id"] for e in events]
        first = exported[0]
        assert first["kind"] == "log" and first["message"] == "line 0" and first["seq"] > 0
        assert first["ts"] == events[0]["ts"] and first["source"] == "bot"
        assert stderr == ""  # not a terminal: no progress line
        discord.assert_no_violations()


def test_export_without_the_message_content_intent_fetches_through_the_webhook(
    launch: Launch, tmp_path: Path
) -> None:
    """Without the intent, export fetches each post through astra's webhook and says so."""
    with FakeDiscord(bucket_limit=50, message_content_intent=False) as discord:
        body, ids = readable_channels(discord)
        sidecar = launch(body + FAST + QUIET_COLLECTORS)
        events = bot_events("n", 30)
        post_in_batches(sidecar, events, discord, ids["logs"], 10)
        assert sidecar.stop() == 0
        config_path = write_config(tmp_path / "export.toml", 1, body)
        exported, stderr = export(config_path, "--channel", "logs", "--source", "bot")
        assert [e["id"] for e in exported] == [e["id"] for e in events]
        assert stderr.count("Message Content intent") == 1
        fetches = [
            r for r in discord.requests if re.search(r"/webhooks/\d+/[^/]+/messages/", r.path)
        ]
        assert len(fetches) >= 3
        discord.assert_no_violations()


def test_export_skips_foreign_messages_reports_corrupt_files_and_deleted_ranges(
    launch: Launch, tmp_path: Path
) -> None:
    """People's and other bots' posts and foreign files are skipped; a corrupt attachment
    and a deleted message are reported on stderr, and every other event still comes out."""
    with FakeDiscord(bucket_limit=50) as discord:
        body, ids = readable_channels(discord)
        sidecar = launch(body + FAST + QUIET_COLLECTORS)
        events = bot_events("m", 40)
        post_in_batches(sidecar, events, discord, ids["logs"], 10)
        assert sidecar.stop() == 0
        posts = [m for m in discord.messages(ids["logs"]) if m.files]
        deleted = posts[1]
        discord.delete_message(deleted.message_id)
        lost = {e["id"] for e in deleted.jsonl_events()}
        discord.post_as_user(ids["logs"], "did the bot just restart?")
        discord.post_as_user(ids["logs"], "beep", bot=True, files=[("notes.txt", b"x")])
        hook = discord.webhooks(ids["logs"])[0]
        name = re.fullmatch(r"events-logs-([0-9a-f]+)-\d+-(\d+)\.jsonl\.gz", posts[-1].files[-1][0])
        assert name is not None
        run, last_number = name.group(1), int(name.group(2))
        corrupt = f"events-logs-{run}-{last_number + 1}-{last_number + 2}.jsonl.gz"
        broken = gzip.compress(b'{"kind": "log"')[:-9]
        discord.store_through_webhook(
            hook, {"embeds": [{"title": "broken"}]}, [(corrupt, broken), ("a.png", b"\x89PNG")]
        )
        # Another webhook's post with a file named like astra's is someone else's.
        impostor = discord.create_webhook(ids["logs"], name="impostor")
        forged = bot_events("forged", 3)
        discord.store_through_webhook(
            impostor,
            {"embeds": [{"title": "logs"}]},
            [(f"events-logs-{run}-{last_number + 3}-{last_number + 5}.jsonl.gz", jsonl(forged))],
        )
        config_path = write_config(tmp_path / "export.toml", 1, body)
        exported, stderr = export(config_path, "--channel", "logs")
        assert [e["id"] for e in exported if e.get("source") == "bot"] == [
            e["id"] for e in events if e["id"] not in lost
        ]
        assert not any(e["id"].startswith("forged") for e in exported)
        assert f"{corrupt} is corrupt" in stderr
        first, last = re.search(r"events-logs-[0-9a-f]+-(\d+)-(\d+)", deleted.files[0][0]).groups()  # type: ignore[union-attr]
        assert f"events {first}–{last} are missing" in stderr
        assert stderr.count("are missing") == 1
        assert discord.bot_token not in stderr and "hm=" not in stderr


def test_export_merges_all_channels_in_time_order_and_filters_by_time(
    launch: Launch, tmp_path: Path
) -> None:
    """``--channel all`` merges the channels by event time; ``--since``/``--until`` cut it."""
    with FakeDiscord(bucket_limit=50) as discord:
        body, ids = readable_channels(discord)
        sidecar = launch(body + FAST + QUIET_COLLECTORS)
        base = float(int(time.time()) - 600)
        mixed = [
            {"kind": "log", "id": f"l{i}", "ts": base + 2 * i, "level": "info", "message": "x"}
            for i in range(10)
        ] + [
            {"kind": "metric", "id": f"p{i}", "ts": base + 2 * i + 1, "name": "m", "value": i}
            for i in range(10)
        ]
        assert sidecar.post(mixed).status == 200
        sidecar.wait_for(lambda: len(discord.all_events(ids["performance"])) >= 10)
        sidecar.wait_for(lambda: len(discord.all_events(ids["logs"])) >= 10)
        assert sidecar.stop() == 0
        config_path = write_config(tmp_path / "export.toml", 1, body)
        exported, _ = export(config_path, "--channel", "all", "--kind", "log", "--kind", "metric")
        assert [e["id"] for e in exported] == [f"{c}{i}" for i in range(10) for c in ("l", "p")]
        since = datetime.fromtimestamp(base + 4, UTC).isoformat().replace("+00:00", "Z")
        until = datetime.fromtimestamp(base + 10, UTC).isoformat()
        window, _ = export(
            config_path,
            "--channel",
            "all",
            "--kind",
            "log",
            "--kind",
            "metric",
            "--since",
            since,
            "--until",
            until,
        )
        assert [e["ts"] for e in window] == [base + s for s in range(4, 10)]


def test_export_and_report_need_the_bot_token_and_channel_ids(tmp_path: Path) -> None:
    """With webhook URLs only, export and report exit 2 with one line naming what is missing."""
    with FakeDiscord() as discord:
        hook = discord.create_webhook(42)
        config = write_config(
            tmp_path / "hooks.toml",
            1,
            f'[discord]\napi_base = "{discord.api_base}"\n'
            f'[channels.logs]\nwebhook = "{hook.url}"\n',
        )
        for command in (["export", "--channel", "logs"], ["report"]):
            done = run_cli(command[0], "--config", str(config), *command[1:])
            assert done.returncode == 2, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "discord.token" in lines[0], lines
            assert "channels.logs.id" in lines[0] and hook.token not in lines[0]
        bad = run_cli("export", "--config", str(config), "--channel", "logs", "--since", "soon")
        assert bad.returncode == 2 and "discord.token" in bad.stderr


def test_export_orders_several_runs_by_posting_and_shows_progress_on_a_terminal(
    launch: Launch, tmp_path: Path
) -> None:
    """Events of two runs (each numbering from 1 again) come out in posting order, and a
    terminal's stderr gets a progress line naming messages, events and the rate."""
    with FakeDiscord(bucket_limit=50) as discord:
        body, ids = readable_channels(discord)
        events = bot_events("r", 40)
        for half in (events[:20], events[20:]):
            sidecar = launch(body + FAST + QUIET_COLLECTORS)
            post_in_batches(sidecar, half, discord, ids["logs"], 10)
            assert sidecar.stop() == 0
        runs = {
            re.sub(r"-\d+-\d+\.jsonl\.gz$", "", n)
            for m in discord.messages(ids["logs"])
            for n, _ in m.files
        }
        assert len(runs) == 2
        config_path = write_config(tmp_path / "export.toml", 1, body)
        controller, terminal = pty.openpty()
        done = subprocess.run(
            [
                *ASTRA,
                "export",
                "--config",
                str(config_path),
                "--channel",
                "logs",
                "--source",
                "bot",
            ],
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=60,
        )
        os.close(terminal)
        shown = b""
        while select.select([controller], [], [], 0.5)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        os.close(controller)
        assert done.returncode == 0
        exported = [json.loads(line) for line in done.stdout.splitlines()]
        assert [e["id"] for e in exported] == [e["id"] for e in events]
        assert re.search(rb"\d+ messages \xc2\xb7 40 events \xc2\xb7 .* events/s", shown), shown


def test_export_reads_attachments_of_several_megabytes_whole(
    launch: Launch, tmp_path: Path
) -> None:
    """An attachment over a MiB (hardly compressible text) is downloaded and read whole."""
    with FakeDiscord(bucket_limit=50) as discord:
        body, ids = readable_channels(discord)
        sidecar = launch(body + FAST + QUIET_COLLECTORS)
        events = bot_events("big", 10_000)
        for event in events:
            event["message"] = os.urandom(120).hex()
        assert sidecar.post(events).status == 200
        sidecar.wait_for(lambda: len(discord.all_events(ids["logs"])) >= len(events))
        assert sidecar.stop() == 0
        sizes = [len(data) for m in discord.messages(ids["logs"]) for _, data in m.files]
        assert max(sizes) > 1024 * 1024
        config_path = write_config(tmp_path / "export.toml", 1, body)
        exported, stderr = export(config_path, "--channel", "logs", "--source", "bot")
        assert [e["id"] for e in exported] == [e["id"] for e in events]
        assert exported[-1]["message"] == events[-1]["message"]
        assert stderr == ""


@pytest.mark.parametrize("intent", [True, False], ids=["intent", "no-intent"])
def test_export_reads_a_channel_that_posts_into_a_thread(
    launch: Launch, tmp_path: Path, intent: bool
) -> None:
    """A channel configured with ``thread_id`` is read back from that thread, with or
    without the Message Content intent (the webhook fetch names the thread)."""
    with FakeDiscord(bucket_limit=50, message_content_intent=intent) as discord:
        body, ids = readable_channels(discord)
        thread = discord.add_thread(ids["logs"], "astra logs")
        body = body.replace(
            f"[channels.logs]\nid = {ids['logs']}\n",
            f"[channels.logs]\nid = {ids['logs']}\nthread_id = {thread}\n",
        )
        sidecar = launch(body + FAST + QUIET_COLLECTORS)
        events = bot_events("t", 20)
        post_in_batches(sidecar, events, discord, thread, 10)
        assert sidecar.stop() == 0
        assert discord.messages(ids["logs"]) == []
        config_path = write_config(tmp_path / "export.toml", 1, body)
        exported, _ = export(config_path, "--channel", "logs", "--source", "bot")
        assert [e["id"] for e in exported] == [e["id"] for e in events]
        discord.assert_no_violations()
