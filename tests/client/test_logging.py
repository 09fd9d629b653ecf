"""astra.client.logging.TelemetryHandler: log records as log and error events."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from astra import events
from astra.client import Telemetry
from astra.client.logging import TelemetryHandler
from astra.client.testing import UdpReceiver


@pytest.fixture
def telemetry(receiver: UdpReceiver) -> Iterator[Telemetry]:
    """A client sending to the test receiver."""
    client = Telemetry(receiver.address, source="log-test")
    yield client
    client.close()


@pytest.fixture
def handler(telemetry: Telemetry) -> Iterator[TelemetryHandler]:
    """The handler attached to the root logger, as a bot would attach it."""
    root = logging.getLogger()
    handler = TelemetryHandler(telemetry)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


def closed_port() -> int:
    """A UDP port on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_warnings_and_above_become_log_events(
    handler: TelemetryHandler, telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """Warning, error and critical records arrive as log events; info and debug do not."""
    logger = logging.getLogger("bot.music")
    logger.debug("debug %s", "hidden")
    logger.info("info %s", "hidden")
    logger.warning("queue at %d%%", 90)
    logger.error("player stalled")
    logger.critical("voice gone")
    assert telemetry.flush()

    received = receiver.events
    assert [(e.level, e.message, e.logger) for e in received if isinstance(e, events.Log)] == [
        ("warning", "queue at 90%", "bot.music"),
        ("error", "player stalled", "bot.music"),
        ("critical", "voice gone", "bot.music"),
    ]
    assert len(received) == 3
    assert {e.source for e in received} == {"log-test"}


def test_a_lower_level_is_honoured(telemetry: Telemetry, receiver: UdpReceiver) -> None:
    """A handler built with level=INFO forwards info records too."""
    logger = logging.getLogger("bot.level")
    handler = TelemetryHandler(telemetry, level=logging.INFO)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("not this")
        logger.info("this")
    finally:
        logger.removeHandler(handler)
    assert telemetry.flush()

    [log] = receiver.events
    assert isinstance(log, events.Log)
    assert (log.level, log.message) == ("info", "this")


def test_exception_info_becomes_an_error_event_with_the_traceback(
    handler: TelemetryHandler, telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """logger.exception() gives one error event (not also a log event) with the traceback."""
    logger = logging.getLogger("bot.db")
    users: dict[str, int] = {}
    try:
        users["user"]
    except KeyError:
        logger.exception("query for %s failed", "alice")
    try:
        raise TimeoutError("db slow")
    except TimeoutError as exc:
        logger.warning("retrying", exc_info=exc)
    assert telemetry.flush()

    received = receiver.events
    assert all(isinstance(e, events.Error) for e in received)
    first, second = received
    assert isinstance(first, events.Error)
    assert (first.message, first.type, first.severity) == (
        "query for alice failed: 'user'",
        "KeyError",
        "error",
    )
    assert first.traceback is not None
    assert 'users["user"]' in first.traceback
    assert first.traceback.rstrip().endswith("KeyError: 'user'")
    assert isinstance(second, events.Error)
    assert (second.type, second.severity) == ("TimeoutError", "warning")


def test_an_exception_already_reported_is_not_reported_again(
    handler: TelemetryHandler, telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """After error_from_exception, logging the same exception adds nothing."""
    try:
        raise RuntimeError("once")
    except RuntimeError as exc:
        telemetry.error_from_exception(exc)
        logging.getLogger("bot").exception("and logged too")
    assert telemetry.flush()

    [error] = receiver.events
    assert isinstance(error, events.Error)
    assert error.message == "once"


def test_the_clients_own_logging_is_not_forwarded(
    handler: TelemetryHandler,
    telemetry: Telemetry,
    receiver: UdpReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client's warnings (here: the sidecar is down) stay local and do not loop."""
    down = Telemetry(f"udp://127.0.0.1:{closed_port()}", source="down")
    try:
        with caplog.at_level(logging.WARNING, logger="astra.client"):
            for attempt in range(200):
                down.metric("lost", attempt)
                assert down.flush()
                if any(r.name == "astra.client" for r in caplog.records):
                    break
    finally:
        down.close()
    logging.getLogger("bot").warning("after")
    assert telemetry.flush()

    assert any("being dropped" in r.getMessage() for r in caplog.records)
    assert [e.message for e in receiver.events if isinstance(e, events.Log)] == ["after"]


def test_logging_from_inside_send_does_not_recurse(receiver: UdpReceiver) -> None:
    """A record logged while the handler is emitting (same thread) is skipped, not re-entered."""

    class Chatty(Telemetry):
        def send(self, event: events.Event) -> None:
            logging.getLogger("bot.chatty").warning("sending %s", type(event).__name__)
            super().send(event)

    client = Chatty(receiver.address, source="chatty")
    root = logging.getLogger()
    handler = TelemetryHandler(client)
    root.addHandler(handler)
    try:
        logging.getLogger("bot").warning("outer")
    finally:
        root.removeHandler(handler)
        client.close()

    [log] = receiver.events
    assert isinstance(log, events.Log)
    assert log.message == "outer"


def test_a_broken_format_string_still_sends_the_template(
    handler: TelemetryHandler, telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """A record whose arguments do not fit its format is sent as its template."""
    record = logging.LogRecord("bot", logging.WARNING, __file__, 1, "%d items", ("many",), None)
    handler.handle(record)  # directly: pytest's own capture handler would raise on it
    assert telemetry.flush()

    [log] = receiver.events
    assert isinstance(log, events.Log)
    assert log.message == "%d items"


def test_a_handler_without_a_client_uses_the_environment_and_closes_its_own(
    receiver: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TelemetryHandler() builds its client from ASTRA_ADDRESS and closes it on close()."""
    monkeypatch.setenv("ASTRA_ADDRESS", receiver.address)
    monkeypatch.setenv("ASTRA_SOURCE", "env-handler")
    handler = TelemetryHandler()
    logger = logging.getLogger("bot.env")
    logger.addHandler(handler)
    try:
        logger.error("from env")
    finally:
        logger.removeHandler(handler)
        handler.close()

    assert handler.telemetry.closed
    [log] = receiver.wait_for(lambda e: isinstance(e, events.Log))
    assert log.source == "env-handler"


def test_a_second_handler_to_the_same_sidecar_does_not_duplicate_records(
    handler: TelemetryHandler, telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """The extension's handler and one the operator added: each record is sent once."""
    second = TelemetryHandler(Telemetry(receiver.address, source="operator"))
    bot_logger = logging.getLogger("bot.twice")
    bot_logger.addHandler(second)  # below the root: it sees the record first
    try:
        bot_logger.warning("once")
        logging.getLogger("bot.other").warning("also once")
    finally:
        bot_logger.removeHandler(second)
        second.telemetry.close()
    assert telemetry.flush()

    received = receiver.events
    assert sorted((e.message, e.source) for e in received if isinstance(e, events.Log)) == [
        ("also once", "log-test"),
        ("once", "operator"),
    ]


def test_handlers_to_different_sidecars_each_get_the_record(
    handler: TelemetryHandler, telemetry: Telemetry, receiver: UdpReceiver
) -> None:
    """Only the same address counts as a duplicate: a second sidecar still gets its copy."""
    with UdpReceiver() as other_receiver:
        other = TelemetryHandler(Telemetry(other_receiver.address, source="other"))
        logging.getLogger().addHandler(other)
        try:
            logging.getLogger("bot").warning("to both")
        finally:
            logging.getLogger().removeHandler(other)
            other.telemetry.close()
        [copy] = other_receiver.wait_for(lambda e: True)
    [log] = receiver.wait_for(lambda e: True)

    assert isinstance(copy, events.Log)
    assert isinstance(log, events.Log)
    assert copy.message == log.message == "to both"
