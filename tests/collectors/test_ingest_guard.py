"""The ingest guard: the connection cap below the fd limit, and accept errors logged per burst."""

from __future__ import annotations

import asyncio
import logging

import pytest

from astra.collectors.ingest_guard import ERROR_LOG_EVERY_S, BurstLog, connection_cap


def test_the_cap_leaves_room_below_the_file_descriptor_limit() -> None:
    """The cap is kept below RLIMIT_NOFILE with a reserve, and is untouched without a limit."""
    assert connection_cap(256, None) == 256
    assert connection_cap(256, 20_000) == 256
    assert connection_cap(1000, 256) == 192
    assert connection_cap(1000, 64) == 32
    assert connection_cap(5, 3) == 1


def test_resource_errors_on_the_loop_are_logged_once_per_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A thousand EMFILE reports from the event loop make one log line and a counter."""
    errors = BurstLog()

    async def burst() -> None:
        loop = asyncio.get_running_loop()
        errors.install(loop)
        try:
            for _ in range(1000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
        finally:
            errors.close()

    with caplog.at_level(logging.WARNING, logger="astra.ingest.http"):
        asyncio.run(burst())
    lines = [r.getMessage() for r in caplog.records if r.name == "astra.ingest.http"]
    assert errors.count == 1000
    # The first at once, then what was counted meanwhile when the burst is reported.
    assert len(lines) == 2, lines
    assert "out of system resource" in lines[0] and f"every {ERROR_LOG_EVERY_S:g} s" in lines[0]
    assert "999 more accept failures" in lines[1]
