"""End to end: three real sidecars, one real Redis and the fake Discord make one fleet."""

from __future__ import annotations

import signal
from collections import Counter
from typing import Any

from tests.conftest import Launch, webhook_channels
from tests.e2e.test_delivery import EXPECTED_CHANNEL, mixed_events, send_http_batches
from tests.fake_discord import FakeDiscord
from tests.fleet.conftest import RedisServer
from tests.sidecar import Sidecar

QUIET = """
[collectors.system]
enabled = false
[collectors.process]
enabled = false
[collectors.performance]
enabled = false
[collectors.health]
enabled = false
[collectors.errors]
enabled = false
[collectors.files]
enabled = false
"""


def fleet_body(channels: str, url: str, name: str, extra: str = "") -> str:
    """A member's config: the shared channels, fast windows, and a short lease."""
    return (
        f"{channels}\n[flush]\ninterval = 1\ncritical_delay = 0.2\n{QUIET}\n"
        f'[fleet]\nredis = "{url}"\nname = "{name}"\nlease = 2\nsilent_after = 3\n'
        f"fallback_after = 2\n{extra}"
    )


def start_fleet(
    discord: FakeDiscord, launch: Launch, server: RedisServer, count: int = 3
) -> tuple[list[Sidecar], dict[str, int]]:
    """``count`` members sharing the fake's four channels and one Redis."""
    channels, ids = webhook_channels(discord)
    members = [launch(fleet_body(channels, server.url, f"member-{i}")) for i in range(count)]
    return members, ids


def ids_by_channel(discord: FakeDiscord, ids: dict[str, int]) -> dict[str, Counter[str]]:
    """How often each event id was posted, per channel name."""
    return {name: Counter(str(e["id"]) for e in discord.all_events(cid)) for name, cid in ids.items()}


def wait_all_posted(
    sidecar: Sidecar, discord: FakeDiscord, ids: dict[str, int], sent: list[dict[str, Any]]
) -> dict[str, Counter[str]]:
    """Wait until every sent event is posted; what was posted, per channel."""
    want = {e["id"] for e in sent}

    def done() -> bool:
        posted = ids_by_channel(discord, ids)
        return want <= {i for c in posted.values() for i in c}

    sidecar.wait_for(done, timeout=60, interval=0.5)
    return ids_by_channel(discord, ids)


def test_every_event_of_every_member_arrives_once_in_its_channel(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Three members' events all reach their channel exactly once, through one poster."""
    members, ids = start_fleet(discord, launch, redis_server)
    sent: list[dict[str, Any]] = []
    for index, member in enumerate(members):
        events = mixed_events(f"m{index}", 3000)
        send_http_batches(member, events, size=500)
        sent += events
    posted = wait_all_posted(members[0], discord, ids, sent)
    for i, event in enumerate(sent):
        channel = EXPECTED_CHANNEL[(i % 3000) % 5]
        assert posted[channel][event["id"]] == 1, (event["id"], channel)
    roles = Counter(m.health()["role"] for m in members)
    assert roles == {"poster": 1, "member": 2}
    holder = {m.health()["fleet"]["lease_holder"] for m in members}
    assert len(holder) == 1 and holder <= {f"member-{i}" for i in range(3)}
    discord.assert_no_violations()
    for member in members:
        assert member.stop() == 0, member.stderr
