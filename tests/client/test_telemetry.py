"""astra.client.Telemetry: events reach a real socket in the sidecar's ingest format."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from astra import events
from astra.client import DROPPED_METRIC, ENV_TOKEN, MAX_UDP_DATAGRAM, Telemetry, parse_address
from astra.client._transport import RERESOLVE_AFTER_S, UdpTransport
from astra.client.discordpy import Options
from astra.client.testing import HttpReceiver, UdpReceiver

REPO = Path(__file__).resolve().parents[2]
TOKEN = "s3cr3t-ingest-token-0123456789abcdef"
# One entry of socket.getaddrinfo()'s answer.
AddressInfo = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
]


@pytest.fixture
def telemetry(receiver: UdpReceiver) -> Iterator[Telemetry]:
    """A client sending to the test receiver."""
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
    """Over max_datagram: its own datagram; over the UDP limit with no text to cut: oversize."""
    telemetry.send(events.Log(level="info", message="x" * 20_000))
    # 64 tags of 100 + 1000 characters: ~70 KB, and nothing the client may cut.
    tags: dict[str, events.TagValue] = {f"{n:03d}" + "k" * 97: "v" * 1000 for n in range(64)}
    telemetry.send(events.Metric(name="fat", value=1, tags=tags))
    telemetry.metric("after", 1)

    received = receiver.wait_for(lambda e: True, count=2)
    assert telemetry.flush()

    assert [type(e) for e in received] == [events.Log, events.Metric]
    assert isinstance(received[0], events.Log)
    assert len(received[0].message) == 20_000
    assert isinstance(received[1], events.Metric)
    assert received[1].name == "after"
    assert telemetry.stats.dropped_oversize == 1
    assert telemetry.stats.dropped == 1


def test_a_huge_error_report_is_cut_to_fit_a_datagram_keeping_the_traceback_tail(
    telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """16,000 emoji are 64 KB: the text is cut (bytes, not characters) and the event arrives."""
    traceback = "Traceback (most recent call last):\n" + "😀" * 16_000 + "\nKeyError: 'the end'"
    telemetry.error("😀" * 16_000, type="KeyError", traceback=traceback)
    telemetry.send(events.Log(level="error", message="\x00" * 16_000))  # six bytes escaped
    telemetry.send(events.Log(level="info", message="y" * 70_000))  # over LongText too

    error, control, long = receiver.wait_for(lambda e: True, count=3)
    assert telemetry.flush()

    assert isinstance(error, events.Error)
    assert error.traceback is not None
    assert error.traceback.endswith("\nKeyError: 'the end'")
    assert "characters cut" in error.traceback
    assert error.type == "KeyError"
    assert len(events.encode(error)) <= MAX_UDP_DATAGRAM
    assert isinstance(control, events.Log)
    assert 1000 < len(control.message) < 16_000
    assert isinstance(long, events.Log)
    assert 1000 < len(long.message) <= 65_536
    assert long.message.endswith("…")
    stats = telemetry.stats
    assert (stats.sent, stats.dropped, stats.internal_errors) == (3, 0, 0)
    assert receiver.invalid == []


def test_an_event_larger_than_a_body_is_cut_to_fit_it_over_http() -> None:
    """Over HTTP the limit is max_body_bytes: a long log message is cut to fit one body."""
    with HttpReceiver() as rx:
        client = Telemetry(rx.address, source="http-big", max_body_bytes=4096)
        client.log("z" * 10_000)
        assert client.flush()
        client.close()
        [log] = rx.events

    assert isinstance(log, events.Log)
    assert 2000 < len(log.message) < 4096
    assert (client.stats.sent, client.stats.dropped) == (1, 0)


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


# --- what the sidecar would refuse is never sent ------------------------------------------


def test_events_the_sidecar_would_refuse_are_counted_as_rejected_not_sent(
    telemetry: Telemetry, receiver: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """send() checks each event with the sidecar's own decoder and refuses reserved kinds."""
    invalid: list[events.Event] = [
        events.Metric(name="x", value=1, tags={f"t{n}": n for n in range(65)}),
        events.Metric(name="x", value=1, tags={"k" * 101: 1}),
        events.Metric(name="x", value=1, tags={"k": "v" * 1001}),
        events.Metric(name="x", value=1, tags={"k": None}),  # type: ignore[dict-item]
        events.Metric(name="x", value=math.nan),
        events.Metric(name="x", value=math.inf),
        events.Metric(name="", value=1),
        events.Metric(name="x", value=1, ts=-5),
        events.Metric(name="x", value=1, ts=2.0**42),
        events.Log(level="warn", message="not a level"),  # type: ignore[arg-type]
        events.ConfigLoaded(path="/etc/astra.toml", flush_interval=1, channels={}, routes={}),
        events.Health(score=100),
        events.Alert(rule="cpu", subject="host", state="firing"),
        events.System(interval_s=1, cpu_percent=1),
    ]
    with caplog.at_level(logging.WARNING, logger="astra.client"):
        for event in invalid:
            telemetry.send(event)
    telemetry.metric("valid", 1)

    [valid] = receiver.wait_for(lambda e: True)
    assert telemetry.flush()

    assert isinstance(valid, events.Metric)
    assert valid.name == "valid"
    stats = telemetry.stats
    assert (stats.sent, stats.rejected, stats.dropped) == (1, len(invalid), len(invalid))
    assert (stats.internal_errors, stats.dropped_send_error) == (0, 0)
    assert receiver.events == [valid]
    assert receiver.invalid == []
    [warning] = [r.getMessage() for r in caplog.records if r.name == "astra.client"]
    assert warning.startswith("astra.client: dropped an invalid Metric event: tags")


def test_the_metric_helper_fits_tags_and_values_to_the_schema(
    telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """65 tags, long keys and values, None and nan tags, nan/inf values, an empty name."""
    tags: dict[str, events.TagValue] = {
        "none": None,  # type: ignore[dict-item]
        "nan": math.nan,
        "object": object(),  # type: ignore[dict-item]
        "k" * 150: "v" * 1500,
        "flag": True,
        "ratio": 0.5,
        **{f"t{n:02d}": n for n in range(70)},
    }
    telemetry.metric("tagged", 1, tags=tags)
    telemetry.metric("skipped", math.nan)
    telemetry.increment("skipped", math.inf)
    telemetry.metric("", 1)
    telemetry.metric("n" * 300, 2)

    tagged, long_name = receiver.wait_for(lambda e: True, count=2)
    assert telemetry.flush()

    assert isinstance(tagged, events.Metric)
    assert len(tagged.tags) == 64
    assert tagged.tags["k" * 99 + "…"] == "v" * 999 + "…"
    assert (tagged.tags["flag"], tagged.tags["ratio"]) == (True, 0.5)
    assert not {"none", "nan", "object"} & set(tagged.tags)
    assert [k for k in tagged.tags if k.startswith("t")] == [f"t{n:02d}" for n in range(61)]
    assert isinstance(long_name, events.Metric)
    assert len(long_name.name) == 200
    stats = telemetry.stats
    assert (stats.sent, stats.rejected, stats.internal_errors) == (2, 1, 0)  # the empty name
    assert receiver.invalid == []


def test_log_and_error_helpers_accept_common_level_spellings(
    telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """ "warn", "fatal" and upper case are mapped; an unknown level is rejected, not sent."""
    telemetry.log("a", level="warn")  # type: ignore[arg-type]
    telemetry.log("b", level="ERROR")  # type: ignore[arg-type]
    telemetry.log("c", level="loud")  # type: ignore[arg-type]
    telemetry.error("d", severity="fatal")  # type: ignore[arg-type]

    received = receiver.wait_for(lambda e: True, count=3)
    assert telemetry.flush()

    assert [(e.level, e.message) for e in received if isinstance(e, events.Log)] == [
        ("warning", "a"),
        ("error", "b"),
    ]
    assert [e.severity for e in received if isinstance(e, events.Error)] == ["critical"]
    assert telemetry.stats.rejected == 1


@pytest.mark.parametrize("kind", ["udp", "http"])
def test_the_test_receivers_refuse_reserved_kinds_like_the_sidecar(kind: str) -> None:
    """A reserved kind sent around the client lands in ``invalid``, not in ``events``."""
    body = events.encode_lines(
        [events.Health(score=50), events.Metric(name="fine", value=1, source="raw")]
    )
    receiver: UdpReceiver | HttpReceiver
    if kind == "udp":
        receiver = UdpReceiver()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(body, ("127.0.0.1", receiver.port))
    else:
        receiver = HttpReceiver()
        request = urllib.request.Request(f"{receiver.address}/v1/events", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["accepted"] == 1
        assert answer["rejected"] == [
            {"index": 0, "error": "kind: 'health' is reserved for astra itself"}
        ]
    with receiver:
        [metric] = receiver.wait_for(lambda e: True)
        [(line, why)] = receiver.invalid

    assert isinstance(metric, events.Metric)
    assert line.startswith(b'{"kind":"health"')
    assert "reserved" in why


# --- transport failures are counted ------------------------------------------------------


@contextlib.contextmanager
def garbled_http_server(answer: bytes) -> Iterator[str]:
    """An HTTP "server" that reads one request and answers ``answer`` (then hangs up)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                conn.settimeout(10)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                head, _, body = request.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        thread.join(10)
        server.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        b"garbage\r\n\r\n",
    ],
    ids=["IncompleteRead", "BadStatusLine"],
)
def test_a_garbled_http_answer_is_a_counted_drop(answer: bytes) -> None:
    """http.client's own exceptions (not OSError) lose the batch: counted, not escaped."""
    with garbled_http_server(answer) as address:
        client = Telemetry(address, source="garbled", http_timeout_s=5)
        client.metric("lost", 1)
        client.metric("lost too", 2)
        assert client.flush(timeout_s=10)
        client.close()

    stats = client.stats
    assert (stats.dropped_send_error, stats.dropped, stats.sent) == (2, 2, 0)
    assert stats.internal_errors == 0


class FakeSocket:
    """Stands in for the UDP socket: answers each send from a script of errno values."""

    def __init__(self, script: list[int]) -> None:
        self.script = script
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        """Raise the next scripted errno, or keep the datagram."""
        code = self.script.pop(0) if self.script else 0
        if code:
            raise OSError(code, os.strerror(code))
        self.sent.append(data)
        return len(data)

    def close(self) -> None:
        """Nothing to release."""


def test_a_refused_send_also_counts_the_datagram_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ECONNREFUSED answers the previous datagram: it is lost too, even from an earlier batch."""
    transport = UdpTransport("127.0.0.1", 9, 512)
    fake = FakeSocket([0, errno.ECONNREFUSED, 0, 0, errno.ECONNREFUSED])
    monkeypatch.setattr(transport, "_connect", lambda: fake)

    first = transport.deliver([b"a"])
    second = transport.deliver([b"b"])
    third = transport.deliver([b"c" * 400, b"d" * 400, b"e" * 400])  # three datagrams

    assert (first.sent, first.failed, first.retracted) == (1, 0, 0)
    assert (second.sent, second.failed, second.retracted) == (0, 1, 1)
    assert (third.sent, third.failed, third.retracted) == (2, 1, 1)
    assert fake.sent == [b"a", b"c" * 400, b"d" * 400]


def test_with_the_sidecar_down_sent_and_dropped_add_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every event is either sent or dropped; retracted datagrams move from one to the other."""
    client = Telemetry(f"udp://127.0.0.1:{closed_port()}", source="down")
    try:
        attempts = 0
        while client.stats.dropped_send_error < 4 and attempts < 200:
            client.metric("lost", attempts)
            attempts += 1
            assert client.flush()
        stats = client.stats
    finally:
        client.close()

    assert stats.dropped_send_error >= 4
    assert stats.sent + stats.dropped_send_error == attempts
    assert stats.sent < stats.dropped_send_error


def test_udp_prefers_ipv4_when_a_name_resolves_to_both(
    receiver: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "localhost" as ::1 first and 127.0.0.1 second: the IPv4 sidecar gets the events."""
    real = socket.getaddrinfo

    def both(host: str, port: int, *args: object, **kwargs: object) -> list[AddressInfo]:
        assert host == "localhost"
        v6 = (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", port, 0, 0))
        return [v6, *real("127.0.0.1", port, socket.AF_INET, socket.SOCK_DGRAM)]

    monkeypatch.setattr(socket, "getaddrinfo", both)
    with Telemetry(f"udp://localhost:{receiver.port}", source="v4") as client:
        client.metric("v4", 1)

    [metric] = receiver.wait_for(lambda e: True)
    assert isinstance(metric, events.Metric)
    assert client.stats.sent == 1


def test_a_failed_lookup_fails_the_batch_with_one_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS down: every datagram of the batch fails, but the name is looked up once."""
    lookups: list[str] = []

    def failing(host: str, *args: object, **kwargs: object) -> list[AddressInfo]:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    transport = UdpTransport("sidecar.invalid", 8787, 512)

    result = transport.deliver([bytes([65 + n]) * 400 for n in range(10)])  # ten datagrams

    assert lookups == ["sidecar.invalid"]
    assert (result.sent, result.failed) == (0, 10)
    assert result.error is not None
    assert "gaierror" in result.error


def test_the_address_is_looked_up_again_after_30_s_of_refusals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sidecar refusing for RERESOLVE_AFTER_S may have moved: a fresh lookup and socket."""
    now = [1000.0]
    transport = UdpTransport("127.0.0.1", 9, 512, clock=lambda: now[0])
    connects: list[FakeSocket] = []

    def connect() -> FakeSocket:
        connects.append(FakeSocket([errno.ECONNREFUSED] * 100))
        return connects[-1]

    monkeypatch.setattr(transport, "_connect", connect)
    for at in (0.0, 10.0, 20.0, 29.0):
        now[0] = 1000.0 + at
        transport.deliver([b"x"])
    assert len(connects) == 1
    now[0] = 1000.0 + RERESOLVE_AFTER_S
    transport.deliver([b"x"])  # refused for 30 s: this socket is dropped
    transport.deliver([b"x"])
    assert len(connects) == 2

    # A refusal after a long quiet spell starts a new run instead of continuing the old one.
    now[0] += 10 * RERESOLVE_AFTER_S
    transport.deliver([b"x"])
    transport.deliver([b"x"])
    assert len(connects) == 2


# --- process life: fork, garbage collection ----------------------------------------------


def test_a_forked_child_gets_its_own_flusher(receiver: UdpReceiver) -> None:
    """After fork the child sends its own events; the parent's queued ones are sent once."""
    script = (
        "import os\n"
        "from astra.client import Telemetry\n"
        f"t = Telemetry({receiver.address!r}, source='forking', flush_interval_s=30)\n"
        "t.metric('before.fork', 1)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    t.metric('from.child', 1)\n"
        "    ok = t.flush(10)\n"
        "    t.close()\n"
        "    os._exit(0 if ok and t.stats.sent == 1 else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "t.metric('from.parent', 1)\n"
        "t.close()\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, timeout=60, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr

    received = receiver.wait_for(lambda e: True, count=3)
    assert sorted(e.name for e in received if isinstance(e, events.Metric)) == [
        "before.fork",
        "from.child",
        "from.parent",
    ]


def test_a_collected_client_does_not_wait_for_its_flusher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Garbage collection (maybe on the event loop) only signals the thread, which then
    sends what is queued and ends on its own."""
    with HttpReceiver() as rx:
        client = Telemetry(rx.address, source="collected", http_timeout_s=30)
        thread = client._flusher.thread
        join = thread.join
        joins: list[float | None] = []
        monkeypatch.setattr(thread, "join", lambda timeout=None: joins.append(timeout))
        rx.hold()
        client.metric("first", 1)
        assert rx.wait_for_requests(1)  # the flusher now waits for the held answer
        client.metric("last", 2)
        del client
        gc.collect()

        assert joins == []
        assert thread.is_alive()
        rx.release()
        join(10)
        assert not thread.is_alive()
        received = rx.wait_for(lambda e: True, count=2)

    assert [e.name for e in received if isinstance(e, events.Metric)] == ["first", "last"]


def test_a_client_token_is_checked_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token with spaces is refused without being quoted; repr() never shows a token."""
    with pytest.raises(ValueError) as refused:
        Telemetry("udp://127.0.0.1:9", token="not a valid token")
    assert "not a valid token" not in str(refused.value)
    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    with Telemetry("udp://127.0.0.1:9") as client:
        assert TOKEN not in repr(client)
    assert TOKEN not in repr(Options(token=TOKEN))
