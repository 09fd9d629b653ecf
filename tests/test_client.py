"""astra.client.Telemetry: events reach a real socket in the sidecar's ingest format."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from astra import events
from astra.client import DROPPED_METRIC, MAX_UDP_DATAGRAM, Telemetry, parse_address
from astra.client.testing import HttpReceiver, UdpReceiver

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def receiver() -> Iterator[UdpReceiver]:
    with UdpReceiver() as rx:
        yield rx


@pytest.fixture
def telemetry(receiver: UdpReceiver) -> Iterator[Telemetry]:
    client = Telemetry(receiver.address, source="test-bot")
    yield client
    client.close()


def closed_port() -> int:
    """A UDP port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_helpers_arrive_as_typed_events_with_their_fields(
    telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """Each helper produces the event kind the sidecar decodes, with source and fields set."""
    telemetry.metric("queue.depth", 12.5, unit="jobs", tags={"shard": 1})
    telemetry.increment("jobs.done")
    telemetry.log("cache warm", level="warning", logger="bot.cache")
    telemetry.latency(41.5, of="database", shard_id=2)
    try:
        raise KeyError("missing")
    except KeyError as exc:
        telemetry.error_from_exception(exc, message="lookup failed")
    telemetry.error("quota low", type="Quota", severity="warning")

    received = receiver.wait_for(lambda e: True, count=6)

    gauge, counter, log, latency, error, plain = received
    assert isinstance(gauge, events.Metric)
    assert (gauge.name, gauge.value, gauge.type) == ("queue.depth", 12.5, "gauge")
    assert gauge.unit == "jobs"
    assert gauge.tags == {"shard": 1}
    assert isinstance(counter, events.Metric)
    assert (counter.name, counter.value, counter.type) == ("jobs.done", 1, "counter")
    assert isinstance(log, events.Log)
    assert (log.level, log.message, log.logger) == ("warning", "cache warm", "bot.cache")
    assert isinstance(latency, events.Latency)
    assert (latency.ms, latency.of, latency.shard_id) == (41.5, "database", 2)
    assert isinstance(error, events.Error)
    assert error.message == "lookup failed: 'missing'"
    assert error.type == "KeyError"
    assert error.traceback is not None
    assert 'raise KeyError("missing")' in error.traceback
    assert isinstance(plain, events.Error)
    assert (plain.message, plain.type, plain.severity) == ("quota low", "Quota", "warning")
    assert {e.source for e in received} == {"test-bot"}
    assert receiver.invalid == []


def test_send_stamps_the_source_and_keeps_the_event_id(
    telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """An event built without a source gets the client's; its id is kept end to end."""
    event = events.Guild(action="join", guild_id=42, name="Guild", member_count=3)

    telemetry.send(event)

    [guild] = receiver.wait_for(lambda e: isinstance(e, events.Guild))
    assert guild.source == "test-bot"
    assert guild.id == event.id
    assert guild == events.Guild(
        action="join",
        guild_id=42,
        name="Guild",
        member_count=3,
        id=event.id,
        ts=event.ts,
        source="test-bot",
    )


def test_events_are_packed_several_to_a_datagram_within_max_datagram() -> None:
    """Many small events share datagrams, none of which exceeds max_datagram."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.settimeout(5)
        port = sock.getsockname()[1]
        client = Telemetry(f"udp://127.0.0.1:{port}", source="pack", max_datagram=2048)
        for i in range(500):
            client.metric("packed", i)
        client.close()
        sizes: list[int] = []
        values: list[float] = []
        while len(values) < 500:
            datagram = sock.recv(MAX_UDP_DATAGRAM)
            sizes.append(len(datagram))
            for line in datagram.split(b"\n"):
                event = events.decode_one(line)
                assert isinstance(event, events.Metric)
                values.append(event.value)

    assert values == [float(i) for i in range(500)]
    assert max(sizes) <= 2048
    assert len(sizes) < 500 / 10  # at least ten events a datagram on average
    assert client.stats.sent == 500
    assert client.stats.datagrams == len(sizes)


def test_an_event_larger_than_max_datagram_travels_alone_and_a_huge_one_is_counted(
    telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """Over max_datagram: its own datagram; over the UDP limit: dropped as oversize."""
    telemetry.send(events.Log(level="info", message="x" * 20_000))
    telemetry.send(events.Log(level="info", message="y" * 70_000))
    telemetry.metric("after", 1)

    received = receiver.wait_for(lambda e: True, count=2)
    assert telemetry.flush()

    assert [type(e) for e in received] == [events.Log, events.Metric]
    assert isinstance(received[0], events.Log)
    assert len(received[0].message) == 20_000
    assert telemetry.stats.dropped_oversize == 1
    assert telemetry.stats.dropped == 1


def test_send_never_raises_and_counts_what_it_could_not_send(telemetry: Telemetry) -> None:
    """Garbage and sends after close() are counted, never raised."""
    telemetry.send("not an event")  # type: ignore[arg-type]
    telemetry.metric("bad", object())  # type: ignore[arg-type]
    telemetry.close()
    telemetry.metric("late", 1)
    telemetry.close()

    stats = telemetry.stats
    assert stats.internal_errors == 2
    assert stats.dropped_closed == 1
    assert stats.sent == 0


def test_a_down_sidecar_costs_drops_not_exceptions() -> None:
    """With nothing listening, sends keep succeeding for the caller and drops are counted."""
    client = Telemetry(f"udp://127.0.0.1:{closed_port()}", source="down")
    try:
        for attempt in range(200):
            client.metric("lost", attempt)
            assert client.flush()
            if client.stats.dropped_send_error:
                break
        assert client.stats.dropped_send_error >= 1
        assert client.stats.queued == 0
    finally:
        client.close()


def test_a_full_queue_drops_new_events_with_a_count_and_reports_it_later() -> None:
    """When the flusher is stuck, the queue stays at max_queue; the drop count is sent after."""
    with HttpReceiver() as rx:
        client = Telemetry(
            rx.address,
            source="q",
            max_queue=10,
            http_timeout_s=10,
            drop_report_interval_s=0.001,
        )
        try:
            rx.hold()
            client.metric("first", 0)
            assert rx.wait_for_requests(1)  # the flusher now waits for the held answer
            for i in range(13):
                client.metric("burst", i)
            assert client.stats.dropped_queue_full == 3
            assert client.stats.queued == 10
            rx.release()

            [report] = rx.wait_for(
                lambda e: isinstance(e, events.Metric) and e.name == DROPPED_METRIC
            )
            burst = rx.wait_for(
                lambda e: isinstance(e, events.Metric) and e.name == "burst", count=10
            )
        finally:
            client.close()

    assert isinstance(report, events.Metric)
    assert (report.value, report.type, report.unit) == (3, "counter", "events")
    assert [e.value for e in burst if isinstance(e, events.Metric)] == list(range(10))


def test_http_mode_posts_ndjson_and_counts_rejected_events() -> None:
    """Over HTTP the sidecar's per-event rejections are counted, the rest accepted."""
    with HttpReceiver() as rx:
        client = Telemetry(rx.address, source="http-bot")
        client.metric("ok", 1)
        client.send(events.Metric(name="", value=2))  # the schema wants a non-empty name
        client.log("fine")
        assert client.flush()
        client.close()

        received = rx.events

    assert [type(e) for e in received] == [events.Metric, events.Log]
    assert client.stats.sent == 2
    assert client.stats.rejected == 1
    assert client.stats.datagrams == 1
    assert client.address == f"{rx.address}/v1/events"


def test_http_mode_with_the_sidecar_down_drops_and_counts() -> None:
    """A refused HTTP connection is a counted drop, not an exception."""
    client = Telemetry(f"http://127.0.0.1:{closed_port()}", source="down", http_timeout_s=1)
    client.metric("lost", 1)
    assert client.flush(timeout_s=5)
    client.close()

    assert client.stats.dropped_send_error == 1
    assert client.stats.sent == 0


def test_sends_from_threads_and_coroutines_all_arrive(
    telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """The same client works from several threads and from async code at once."""

    def from_thread(n: int) -> None:
        for i in range(250):
            telemetry.metric(f"thread.{n}", i)

    async def from_loop() -> None:
        for i in range(250):
            telemetry.metric("loop", i)
            if i % 50 == 0:
                await asyncio.sleep(0)

    threads = [threading.Thread(target=from_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    asyncio.run(from_loop())
    for thread in threads:
        thread.join()

    received = receiver.wait_for(lambda e: isinstance(e, events.Metric), count=1250)
    assert len(received) == 1250
    assert telemetry.stats.dropped == 0


def test_address_and_source_come_from_the_environment(
    receiver: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ASTRA_ADDRESS and ASTRA_SOURCE are the defaults."""
    monkeypatch.setenv("ASTRA_ADDRESS", receiver.address)
    monkeypatch.setenv("ASTRA_SOURCE", "from-env")
    with Telemetry() as client:
        client.metric("env", 1)

    [metric] = receiver.wait_for(lambda e: isinstance(e, events.Metric))
    assert metric.source == "from-env"
    assert client.address == receiver.address


def test_addresses_are_parsed_or_refused_with_the_expected_forms() -> None:
    """udp://, http://, https:// and bare host:port are accepted; anything else says why."""
    assert str(parse_address("udp://127.0.0.1:8787")) == "udp://127.0.0.1:8787"
    assert str(parse_address("10.0.0.5:9000")) == "udp://10.0.0.5:9000"
    assert str(parse_address("http://sidecar:8787")) == "http://sidecar:8787/v1/events"
    assert str(parse_address("https://h:443/ingest")) == "https://h:443/ingest"
    assert parse_address("udp://[::1]:8787").host == "::1"
    with pytest.raises(ValueError, match="expected udp://HOST:PORT"):
        parse_address("tcp://127.0.0.1:8787")
    with pytest.raises(ValueError, match="invalid astra address 'localhost'"):
        parse_address("localhost")
    with pytest.raises(ValueError, match="max_datagram=100000"):
        Telemetry("udp://127.0.0.1:1", max_datagram=100_000)


def test_events_queued_at_interpreter_exit_are_still_sent(receiver: UdpReceiver) -> None:
    """A script that never calls close() still delivers what it queued."""
    script = (
        "from astra.client import Telemetry\n"
        f"t = Telemetry({receiver.address!r}, source='exiting', flush_interval_s=30)\n"
        "t.metric('last.words', 1)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)

    [metric] = receiver.wait_for(lambda e: isinstance(e, events.Metric))
    assert isinstance(metric, events.Metric)
    assert (metric.name, metric.source) == ("last.words", "exiting")
