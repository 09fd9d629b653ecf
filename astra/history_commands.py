"""``astra export`` and ``astra report``: the channels read back, as data and as the report."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import anyio

from astra.collectors.report import DailyReportCollector, next_report_time
from astra.config import CHANNELS, Config
from astra.errors import ConfigError, DiscordApiError
from astra.events import run_id
from astra.readback.export import UNTIL_GRACE_S, Progress, Selection, export, progress_stream
from astra.readback.reading import Batches, ReadTotals
from astra.readback.recovery import SpanReader
from astra.readback.source import channel_histories, require_history
from astra.readback.when import WhenError, local_day_bounds, parse_when, snowflake_at
from astra.redaction import Redactor
from astra.sinks.attachments import build_attachments
from astra.sinks.delivery import backoff
from astra.sinks.discord_http import Delivered, DiscordHttp, RetryLater
from astra.sinks.discord_read import DiscordReader
from astra.sinks.messages import OutgoingMessage, pack_messages
from astra.sinks.preview import Preview
from astra.sinks.ratelimit import RateLimiter
from astra.sinks.render.report import render_report

EXIT_FAILED = 1
EXIT_USAGE = 2
# Transient failures of the report post before giving up.
MAX_POST_ATTEMPTS = 8


def run_export(
    config: Config,
    channel: str,
    *,
    since: str | None,
    until: str | None,
    kinds: list[str],
    sources: list[str],
    quiet: bool,
) -> int:
    """``astra export``: print the channel's events as NDJSON; the exit status."""
    channels = list(CHANNELS) if channel == "all" else [channel]
    tz = ZoneInfo(config.collectors.report.timezone)
    try:
        require_history(config, channels, "astra export")
        selection = Selection(
            since=parse_when(since, tz) if since else None,
            until=parse_when(until, tz) if until else None,
            kinds=frozenset(kinds),
            sources=frozenset(sources),
        )
    except (ConfigError, WhenError) as exc:
        return _fail(f"{exc}", EXIT_USAGE)
    progress = Progress(progress_stream(quiet))
    redactor = Redactor(config.secrets())

    def notice(line: str) -> None:
        print(f"astra export: {redactor.text(line)}", file=sys.stderr)

    async def work(reader: DiscordReader, _: DiscordHttp) -> ReadTotals:
        histories = await channel_histories(config, reader, channels, notice=notice)
        batches = Batches(reader, notice=notice)
        return await export(histories, batches, selection, sys.stdout.buffer, progress)

    try:
        totals = anyio.run(_with_discord, config, work)
    except DiscordApiError as exc:
        return _fail(f"astra export: {redactor.text(str(exc))}", EXIT_FAILED)
    except BrokenPipeError:
        return 0  # the reader (head, a closed pager) has what it wanted
    if totals.corrupt_files or totals.gaps or totals.invalid_lines:
        notice(
            f"{totals.corrupt_files} corrupt files, {totals.invalid_lines} invalid lines, "
            f"{totals.gaps} missing ranges (see above)"
        )
    return 0


def run_report(config: Config, day: str | None, *, post: bool) -> int:
    """``astra report``: rebuild a day's report from the channels, show it (and post it)."""
    report_config = config.collectors.report
    tz = ZoneInfo(report_config.timezone)
    now = time.time()
    try:
        require_history(config, list(CHANNELS), "astra report")
        if post and config.channels["diagnostics"].mode == "preview":
            raise ConfigError(
                f"{config.path}: astra report --post needs channels.diagnostics.webhook "
                "or channels.diagnostics.id"
            )
        if day:
            try:
                wanted = date.fromisoformat(day)
            except ValueError:
                raise WhenError(f"--date {day!r}: expected YYYY-MM-DD") from None
            start, due = local_day_bounds(wanted, report_config.time, tz)
            end = min(due, now)
        else:
            due = next_report_time(now, report_config.time, tz)
            start, _ = local_day_bounds(
                datetime.fromtimestamp(due, tz).date(), report_config.time, tz
            )
            end = now
        if start > now:
            raise WhenError(f"--date {day}: that day's report has not begun yet")
    except (ConfigError, WhenError) as exc:
        return _fail(f"astra: {exc}", EXIT_USAGE)
    redactor = Redactor(config.secrets())

    def notice(line: str) -> None:
        print(f"astra report: {redactor.text(line)}", file=sys.stderr)

    collector = DailyReportCollector(report_config.time, report_config.timezone, lambda: end)
    collector.due = due

    async def work(reader: DiscordReader, http: DiscordHttp) -> int:
        histories = await channel_histories(config, reader, list(CHANNELS), notice=notice)
        span = SpanReader(
            reader,
            histories,
            start=start,
            end=end,
            # The window posted just after the report time still holds the day's events.
            before=snowflake_at(min(end + UNTIL_GRACE_S, time.time())),
            max_messages=config.recovery.max_messages,
            max_bytes=config.recovery.max_bytes,
            notice=notice,
        )
        async for events in span.events():
            collector.fold(events)
        coverage = ""
        if not span.coverage.complete:
            when = datetime.fromtimestamp(span.coverage.counted_from, tz).strftime("%H:%M")
            coverage = (
                f"counted from {when}; earlier history not read "
                "(recovery.max_messages / recovery.max_bytes)"
            )
        collector.recovered(span.coverage.counted_from, coverage)
        report = collector.build(end)
        messages = pack_messages(
            render_report(report),
            build_attachments("diagnostics", [report], first=1, run=run_id()),
        )
        preview = Preview()
        for message in messages:
            preview.show("diagnostics", message)
        if post:
            return await _post(config, http, messages)
        return 0

    try:
        status: int = anyio.run(_with_discord, config, work)
    except DiscordApiError as exc:
        return _fail(f"astra report: {redactor.text(str(exc))}", EXIT_FAILED)
    return status


async def _post(config: Config, http: DiscordHttp, messages: list[OutgoingMessage]) -> int:
    """Post the report's messages to #diagnostics, as the scheduled report goes out."""
    channel = config.channels["diagnostics"]
    webhook = channel.webhook
    if webhook is None:
        assert channel.channel_id is not None
        webhook, _ = await http.find_or_create_webhook(
            channel.channel_id, config.discord.webhook_name
        )
    for message in messages:
        attempt = 0
        while True:
            outcome = await http.execute(webhook, message, "diagnostics")
            if isinstance(outcome, Delivered):
                break
            if isinstance(outcome, RetryLater) and attempt < MAX_POST_ATTEMPTS:
                await anyio.sleep(outcome.after if outcome.rate_limited else backoff(attempt))
                attempt += 1
                continue
            return _fail(f"astra report: not posted: {outcome.reason}", EXIT_FAILED)
    print("astra report: posted to #diagnostics", file=sys.stderr)
    return 0


async def _with_discord(
    config: Config,
    work: Callable[[DiscordReader, DiscordHttp], Coroutine[Any, Any, Any]],
) -> Any:
    """Run ``work`` with a reader and a poster on one session, within Discord's limits."""
    seconds = config.discord.timeout
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
    limiter = RateLimiter(
        time.monotonic,
        channel_per_minute=config.discord.channel_posts_per_minute,
        global_per_second=config.discord.global_requests_per_second,
    )
    async with aiohttp.ClientSession(timeout=timeout) as session:
        reader = DiscordReader(
            session, config.discord.api_base, limiter, bot_token=config.discord.token
        )
        http = DiscordHttp(
            session,
            config.discord.api_base,
            limiter,
            bot_token=config.discord.token,
            username=config.discord.username,
        )
        return await work(reader, http)


def _fail(line: str, status: int) -> int:
    print(line, file=sys.stderr)
    return status
