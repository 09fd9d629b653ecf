"""Shared fixtures: the strict fake Discord, the real sidecar in a subprocess, a fake clock."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from astra.client.testing import UdpReceiver
from tests.fake_discord import FakeDiscord
from tests.sidecar import Sidecar, free_port, write_config

CHANNEL_NAMES = ("analytics", "diagnostics", "logs", "performance")

Launch = Callable[..., Sidecar]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run first, the longest first, each followed by a quick one.

    pytest-xdist hands each worker two tests to start with, then one at a time
    (--maxschedchunk=1 in pyproject.toml): pairing each slow test with a quick one starts the
    slow ones on different workers at once, so their waits overlap instead of adding up, and
    none is left running alone at the end of the run.
    """

    def seconds(item: pytest.Item) -> float:
        mark = item.get_closest_marker("slow")
        return float(mark.kwargs.get("seconds", 10)) if mark is not None else 0.0

    slow = sorted((item for item in items if seconds(item)), key=seconds, reverse=True)
    quick = [item for item in items if not seconds(item)]
    paired = [item for pair in zip(slow, quick, strict=False) for item in pair]
    items[:] = paired + slow[len(paired) // 2 :] + quick[len(paired) // 2 :]


class Clock:
    """A hand-driven clock: tests move ``now`` forward themselves."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    """A strict fake Discord on a free port; fails the test on any protocol violation."""
    with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[UdpReceiver]:
    """A stand-in for the sidecar's UDP ingest on a real socket (decodes with its schema)."""
    with UdpReceiver() as rx:
        yield rx


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start ``astra run`` on a config made of ``body`` (and ``ingest`` lines)."""
    started: list[Sidecar] = []

    def _launch(
        body: str = "", ingest: str = "", env: dict[str, str] | None = None, cwd: str | None = None
    ) -> Sidecar:
        port = free_port()
        path = write_config(tmp_path / f"config-{len(started)}.toml", port, body, ingest)
        sidecar = Sidecar(path, port, env or {}, cwd)
        started.append(sidecar)
        return sidecar.start()

    yield _launch
    for sidecar in started:
        if sidecar.process is not None and sidecar.process.poll() is None:
            sidecar.stop(signal.SIGKILL)


def webhook_channels(
    fake: FakeDiscord, *, pasted: bool = False, first_id: int = 1419858425424253000
) -> tuple[str, dict[str, int]]:
    """Config lines giving each channel its own channel and webhook on the fake (channel ids
    from ``first_id`` on: a second set of channels needs another)."""
    lines = [f'[discord]\napi_base = "{fake.api_base}"\n']
    ids: dict[str, int] = {}
    for index, name in enumerate(CHANNEL_NAMES):
        channel_id = first_id + index
        fake.add_channel(channel_id)
        hook = fake.create_webhook(channel_id, name=f"ops-{name}")
        url = hook.discord_url if pasted else hook.url
        lines.append(f'[channels.{name}]\nid = {channel_id}\nwebhook = "{url}"\n')
        ids[name] = channel_id
    return "\n".join(lines), ids


def provisioned_channels(fake: FakeDiscord) -> tuple[str, dict[str, int]]:
    """Config lines giving each channel only an id, with the fake's bot token."""
    lines = [f'[discord]\napi_base = "{fake.api_base}"\ntoken = "{fake.bot_token}"\n']
    ids: dict[str, int] = {}
    for index, name in enumerate(CHANNEL_NAMES):
        channel_id = 1419858425424254000 + index
        fake.add_channel(channel_id)
        lines.append(f"[channels.{name}]\nid = {channel_id}\n")
        ids[name] = channel_id
    return "\n".join(lines), ids
