"""When the pipeline counts as healthy for the heartbeat."""

from __future__ import annotations

from astra.sinks.heartbeat import pipeline_trouble
from astra.statistics import (
    ChannelStatistics,
    DeliveryStatistics,
    SidecarStatistics,
    StreamStatistics,
)

NOW = 10_000.0


def snapshot(*, pending: int, last_post: float | None, problem: str = "") -> SidecarStatistics:
    """A sidecar snapshot with one channel in the given state, started an hour ago."""
    channel = ChannelStatistics(
        stream=StreamStatistics(pending=pending),
        delivery=DeliveryStatistics(mode="discord", last_post=last_post, problem=problem),
    )
    return SidecarStatistics(version="0", at=NOW, started=NOW - 3600, channels={"logs": channel})


def test_a_channel_posting_or_idle_is_healthy() -> None:
    """Events waiting with a recent post, or nothing waiting, is healthy."""
    assert pipeline_trouble(snapshot(pending=50, last_post=NOW - 60), 300) == ""
    assert pipeline_trouble(snapshot(pending=0, last_post=None), 300) == ""


def test_events_waiting_without_a_post_for_long_is_trouble() -> None:
    """Events waiting and no post for longer than the limit (or since start) is trouble."""
    assert (
        pipeline_trouble(snapshot(pending=14, last_post=NOW - 400), 300)
        == "#logs: no post for 6 min, 14 events waiting"
    )
    assert pipeline_trouble(snapshot(pending=1, last_post=None), 300).startswith(
        "#logs: no post for 1 h"
    )


def test_a_configuration_problem_is_trouble() -> None:
    """A channel that needs a configuration fix is trouble even when nothing waits."""
    trouble = pipeline_trouble(
        snapshot(pending=0, last_post=NOW, problem="forum channel: set forum = true"), 300
    )
    assert trouble == "#logs: forum channel: set forum = true"
