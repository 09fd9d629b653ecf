"""End to end: three real sidecars, one real Redis and the fake Discord make one fleet."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from astra.sinks.status_board import is_board
from tests.conftest import Launch, webhook_channels
from tests.e2e.test_delivery import EXPECTED_CHANNEL, mixed_events, send_http_batches
from tests.e2e.test_introspection import samples, scrape
from tests.e2e.test_zero_storage import files_open_for_writing
from tests.fake_discord import FakeDiscord
from tests.fleet.conftest import RedisServer
from tests.sidecar import Sidecar, free_port, run_cli, write_config

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


def fleet_body(
    channels: str,
    url: str,
    name: str,
    extra: str = "",
    interval: float = 1,
    quiet: str = QUIET,
    lease: float = 2,
) -> str:
    """A member's config: the shared channels, fast windows, and a short lease."""
    return (
        f"{channels}\n[flush]\ninterval = {interval}\ncritical_delay = 0.2\n{quiet}\n"
        f'[fleet]\nredis = "{url}"\nname = "{name}"\nlease = {lease:g}\nsilent_after = 3\n'
        f"fallback_after = 2\n{extra}"
    )


def start_fleet(
    discord: FakeDiscord,
    launch: Launch,
    server: RedisServer,
    count: int = 3,
    interval: float = 1,
    quiet: str = QUIET,
) -> tuple[list[Sidecar], dict[str, int]]:
    """``count`` members sharing the fake's four channels and one Redis."""
    channels, ids = webhook_channels(discord)
    members = [
        launch(fleet_body(channels, server.url, f"member-{i}", interval=interval, quiet=quiet))
        for i in range(count)
    ]
    return members, ids


def ids_by_channel(discord: FakeDiscord, ids: dict[str, int]) -> dict[str, Counter[str]]:
    """How often each event id was posted, per channel name."""
    return {
        name: Counter(str(e["id"]) for e in discord.all_events(cid)) for name, cid in ids.items()
    }


def wait_all_posted(
    sidecar: Sidecar,
    discord: FakeDiscord,
    ids: dict[str, int],
    sent: list[dict[str, Any]],
    fleet: list[Sidecar] = (),  # type: ignore[assignment]
) -> dict[str, Counter[str]]:
    """Wait until every sent event is posted; what was posted, per channel.

    On a timeout the failure shows every member's fleet figures and stderr as well."""
    want = {e["id"] for e in sent}

    def done() -> bool:
        posted = ids_by_channel(discord, ids)
        return want <= {i for c in posted.values() for i in c}

    try:
        sidecar.wait_for(done, timeout=60, interval=0.5)
    except AssertionError as exc:
        missing = want - {i for c in ids_by_channel(discord, ids).values() for i in c}
        report = [f"{len(missing)} missing, e.g. {sorted(missing)[:5]}"]
        for member in fleet:
            if member.process is not None and member.process.poll() is None:
                report.append(json.dumps(member.health()["statistics"]["fleet"]))
                member.stop()
            report.append(member.stderr)
        raise AssertionError("\n".join([str(exc), *report])) from None
    return ids_by_channel(discord, ids)


@pytest.mark.slow
def test_every_event_of_every_member_arrives_once_in_its_channel(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Three members' events all reach their channel exactly once, through one poster, and
    the fleet has one status board (health runs on every member; only the poster edits)."""
    with_health = QUIET.replace(
        "[collectors.health]\nenabled = false", "[collectors.health]\ninterval = 0.5"
    )
    members, ids = start_fleet(discord, launch, redis_server, quiet=with_health)
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
    # The poster's figures count the fleet's posts; members posted nothing themselves.
    posted_events = {
        m.health()["role"]: sum(
            c["delivery"]["posted_events"] for c in m.health()["statistics"]["channels"].values()
        )
        for m in members
    }
    assert posted_events["poster"] >= len(sent) and posted_events["member"] == 0
    holder = {m.health()["fleet"]["lease_holder"] for m in members}
    assert len(holder) == 1 and holder <= {f"member-{i}" for i in range(3)}
    # One status board for the fleet, kept by the poster: members never post or edit one.
    members[0].wait_for(
        lambda: any(is_board({"embeds": m.embeds}) for m in discord.messages(ids["diagnostics"]))
    )
    boards = [m for m in discord.messages(ids["diagnostics"]) if is_board({"embeds": m.embeds})]
    assert len(boards) == 1
    discord.assert_no_violations()
    for member in members:
        assert member.stop() == 0, member.stderr


def poster_of(members: list[Sidecar]) -> Sidecar:
    """The member that holds the lease now (waits until one does)."""
    found: list[Sidecar] = []

    def one() -> bool:
        found[:] = [m for m in members if m.health()["role"] == "poster"]
        return len(found) == 1

    members[0].wait_for(one, timeout=30)
    return found[0]


@pytest.mark.slow
def test_posts_per_channel_stay_within_one_sidecars_budget(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Three busy members make one poster's cadence of posts (1 s windows), not three."""
    members, ids = start_fleet(discord, launch, redis_server)
    for round_ in range(24):
        for index, member in enumerate(members):
            member.post({"kind": "log", "level": "info", "message": f"r{round_} m{index}"})
        time.sleep(0.5)
    for name, channel_id in ids.items():
        stamps = [datetime.fromisoformat(m.timestamp) for m in discord.messages(channel_id)]
        for i, start in enumerate(stamps):
            within = [t for t in stamps[i:] if (t - start).total_seconds() < 10.0]
            # One window a second, plus a webhook or lifecycle post at most: three members
            # posting on their own would make about thirty.
            assert len(within) <= 12, (name, len(within))
    assert discord.channel_429s == 0
    discord.assert_no_violations()


def test_sigkill_of_the_poster_mid_burst_loses_nothing(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """The poster dies mid-burst: another member takes the lease and posts every event."""
    members, ids = start_fleet(discord, launch, redis_server)
    poster = poster_of(members)
    others = [m for m in members if m is not poster]
    sent: list[dict[str, Any]] = []
    for index, member in enumerate(others):
        events = mixed_events(f"k{index}", 10_000)
        send_http_batches(member, events, size=2000)
        sent += events
    poster.stop(signal.SIGKILL)
    successor = poster_of(others)
    posted = wait_all_posted(successor, discord, ids, sent)
    for i, event in enumerate(sent):
        channel = EXPECTED_CHANNEL[(i % 10_000) % 5]
        assert posted[channel][event["id"]] >= 1, (event["id"], channel)
    fleet = successor.health()["statistics"]["fleet"]
    assert fleet["leases"] == 1 and fleet["token"] >= 2
    discord.assert_no_violations()


def test_a_stopped_member_raises_the_silent_alert_and_its_return_resolves_it(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """SIGSTOP a member: #logs gets a critical member_silent alert; SIGCONT resolves it."""
    members, ids = start_fleet(discord, launch, redis_server)
    poster = poster_of(members)
    quiet = next(m for m in members if m is not poster)
    name = quiet.health()["fleet"]["member"]

    def alerts(state: str) -> list[dict[str, Any]]:
        return [
            e
            for e in discord.all_events(ids["logs"])
            if e["kind"] == "alert"
            and e["rule"] == "member_silent"
            and e["subject"] == f"member:{name}"
            and e["state"] == state
        ]

    quiet.send_signal(signal.SIGSTOP)
    try:
        poster.wait_for(lambda: alerts("firing"), timeout=30)
    finally:
        quiet.send_signal(signal.SIGCONT)
    firing = alerts("firing")[0]
    assert firing["severity"] == "critical" and "silent since" in firing["message"]
    poster.wait_for(lambda: alerts("resolved"), timeout=30)
    assert len(alerts("firing")) == 1


def test_redis_killed_and_restarted_loses_nothing_sent_meanwhile(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Events sent while Redis is down wait in the members' memory and are all posted after."""
    members, ids = start_fleet(discord, launch, redis_server)
    before = mixed_events("before", 500)
    send_http_batches(members[0], before)
    wait_all_posted(members[0], discord, ids, before)
    redis_server.kill()
    members[0].wait_for(lambda: all(m.health()["fleet"]["redis"] == "unreachable" for m in members))
    sent: list[dict[str, Any]] = []
    for index, member in enumerate(members):
        events = mixed_events(f"down{index}", 1000)
        send_http_batches(member, events, size=500)
        sent += events
    assert all(m.health()["fleet"]["awaiting_redis"] >= 1000 for m in members)
    redis_server.start()
    posted = wait_all_posted(members[0], discord, ids, sent, members)
    for event in sent:
        assert sum(c[event["id"]] for c in posted.values()) >= 1, event["id"]
    assert [m.health()["role"] for m in members].count("poster") == 1
    assert sum(m.health()["statistics"]["fleet"]["trimmed"] for m in members) == 0
    for member in members:
        member.stop()
        assert "astra: fleet: Redis unreachable" in member.stderr


def test_a_wrong_redis_password_is_a_one_line_error(
    launch: Launch, redis_with_password: RedisServer, tmp_path: Path
) -> None:
    """A member whose password Redis refuses exits 2 with one line that does not quote it."""
    wrong = redis_with_password.url.replace(redis_with_password.password, "not-the-password-42")
    config = write_config(tmp_path / "fleet.toml", free_port(), fleet_body("", wrong, "m"))
    result = run_cli("run", "--config", str(config), timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("astra: fleet.redis: Redis refused the credentials"), lines
    assert "not-the-password-42" not in result.stderr
    assert "Traceback" not in result.stderr


def test_the_right_password_joins_and_is_never_printed(
    discord: FakeDiscord, launch: Launch, redis_with_password: RedisServer
) -> None:
    """With the right password the member posts; the password appears in no output."""
    channels, ids = webhook_channels(discord)
    member = launch(fleet_body(channels, redis_with_password.url, "solo"))
    sent = mixed_events("pw", 200)
    send_http_batches(member, sent)
    wait_all_posted(member, discord, ids, sent)
    health = json.dumps(member.health())
    member.stop()
    password = redis_with_password.password
    assert password not in member.stderr + member.stdout + health
    assert all(password not in json.dumps(m.payload) for m in discord.all_messages())


def test_unreachable_redis_falls_back_to_direct_posts_then_rejoins(
    discord: FakeDiscord, launch: Launch, tmp_path: Path
) -> None:
    """No Redis: the member says so, posts directly (degraded) after fallback_after, and
    rejoins the fleet when Redis comes up."""
    server = RedisServer(tmp_path)  # not started yet: its port refuses connections
    channels, ids = webhook_channels(discord)
    member = launch(fleet_body(channels, server.url, "lonely"))
    assert member.health()["fleet"]["redis"] == "unreachable"
    sent = mixed_events("fb", 300)
    send_http_batches(member, sent)
    wait_all_posted(member, discord, ids, sent)
    assert member.health()["role"] == "fallback"
    notes = [
        f["value"]
        for m in discord.all_messages()
        for e in m.embeds
        for f in e.get("fields", [])
        if f["name"] == "⚠️ Degraded"
    ]
    assert notes and "Redis unreachable: lonely posts by itself" in notes[0]
    server.start()
    try:
        member.wait_for(lambda: member.health()["role"] == "poster", timeout=30)
        later = mixed_events("back", 100)
        send_http_batches(member, later)
        wait_all_posted(member, discord, ids, later)
        assert member.health()["statistics"]["fleet"]["published_events"] >= 100
    finally:
        member.stop()
        server.kill()
    assert "astra: fleet: Redis unreachable" in member.stderr
    assert "posts directly to Discord (degraded)" in member.stderr


def test_a_paused_former_poster_never_posts_after_losing_the_lease(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """SIGSTOP the poster past its lease: another member posts; resumed, the old one posts
    nothing more (its fencing check fails) and is a plain member again."""
    members, ids = start_fleet(discord, launch, redis_server)
    poster = poster_of(members)
    others = [m for m in members if m is not poster]
    warmup = mixed_events("warm", 200)
    send_http_batches(poster, warmup)
    wait_all_posted(poster, discord, ids, warmup)
    posts_before = poster.health()["statistics"]["fleet"]["posts"]
    # Events already read by the poster's windows when it is paused.
    pending = mixed_events("paused", 2000)
    send_http_batches(others[0], pending)
    poster.send_signal(signal.SIGSTOP)
    try:
        successor = poster_of(others)
    finally:
        poster.send_signal(signal.SIGCONT)
    wait_all_posted(successor, discord, ids, pending)
    poster.wait_for(lambda: poster.health()["role"] == "member", timeout=30)
    after = poster.health()["statistics"]["fleet"]
    assert after["posts"] == posts_before
    assert after["holder"] == successor.health()["fleet"]["member"]


@pytest.mark.slow
def test_redis_crashing_with_unposted_entries_loses_none_the_members_still_hold(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Redis dies (persisting nothing) while its entries wait for the poster's window: the
    members notice the new server and append again what was never acknowledged."""
    members, ids = start_fleet(discord, launch, redis_server, interval=6)
    poster_of(members)
    sent: list[dict[str, Any]] = []
    for index, member in enumerate(members):
        events = mixed_events(f"crash{index}", 1000)
        send_http_batches(member, events, size=500)
        sent += events

    def appended_not_acknowledged() -> bool:
        fleets = [m.health()["statistics"]["fleet"] for m in members]
        return all(f["awaiting_redis"] == 0 and f["unconfirmed"] >= 1000 for f in fleets)

    members[0].wait_for(appended_not_acknowledged, timeout=30)
    redis_server.kill()
    redis_server.start()
    posted = wait_all_posted(members[0], discord, ids, sent, members)
    for event in sent:
        assert sum(c[event["id"]] for c in posted.values()) >= 1, event["id"]
    fleets = [m.health()["statistics"]["fleet"] for m in members]
    assert all(f["republished"] >= 1000 for f in fleets), fleets
    # Nothing was trimmed: no gap in any member's running total is reported.
    assert sum(f["trimmed"] for f in fleets) == 0, fleets
    members[0].wait_for(
        lambda: all(m.health()["statistics"]["fleet"]["unconfirmed"] == 0 for m in members)
    )


def test_a_fleet_member_writes_no_file_in_any_role(
    launch: Launch, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Poster, member, fallback: no file is written or held open for writing."""
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {"TMPDIR": str(workdir), "HOME": str(workdir)}
    member = launch(fleet_body("", redis_server.url, "solo"), env=env, cwd=str(workdir))
    assert member.process is not None
    member.wait_for(lambda: member.health()["role"] == "poster")
    assert member.post(mixed_events("z", 2000)).status == 200
    member.wait_for(lambda: member.health()["statistics"]["fleet"]["acked"] >= 1)
    redis_server.kill()
    member.wait_for(lambda: member.health()["role"] == "fallback")
    assert member.post(mixed_events("y", 200)).status == 200
    member.wait_for(lambda: member.health()["statistics"]["fleet"]["fallback_posts"] >= 1)
    assert files_open_for_writing(member.process.pid) == []
    assert member.stop(signal.SIGTERM) == 0
    assert list(workdir.iterdir()) == []


@pytest.mark.slow
def test_malformed_entries_are_counted_and_skipped_and_a_trimmed_gap_is_reported(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Garbage written into the stream costs only itself; a gap in a member's running total
    (entries the stream bound trimmed) becomes a warning on #logs with the count."""
    channels, ids = webhook_channels(discord)
    member = launch(fleet_body(channels, redis_server.url, "solo"))
    member.wait_for(lambda: member.health()["role"] == "poster")
    client = redis_server.client()
    good = json.dumps([{"kind": "log", "level": "info", "message": "kept", "id": "ghost-1"}])
    bad = '[{"kind": "log", "level": "loud", "message": "x"}, {"kind": "nope"}]'
    entries: list[dict[str, str]] = [
        {"m": "ghost", "r": "r1", "t": "1", "n": "1", "e": good, "c": "logs", "d": "0"},
        {"m": "ghost", "r": "r1", "t": "3", "n": "2", "e": bad, "c": "logs", "d": "0"},
        {"garbage": "yes"},
        {"m": "ghost", "r": "r1", "t": "40", "n": "1", "e": good.replace("ghost-1", "ghost-40")},
    ]
    for fields in entries:
        client.xadd("astra:events", fields)  # type: ignore[arg-type, unused-ignore]
    sent = [{"id": "ghost-1"}, {"id": "ghost-40"}]
    wait_all_posted(member, discord, ids, sent)

    def warned() -> list[dict[str, Any]]:
        return [
            e
            for e in discord.all_events(ids["logs"])
            if e["kind"] == "log" and "were trimmed" in e["message"]
        ]

    member.wait_for(warned)
    assert warned()[0]["message"].startswith("36 events of ghost were trimmed")
    fleet = member.health()["statistics"]["fleet"]
    assert fleet["malformed"] == 3 and fleet["trimmed"] == 36
    member.wait_for(lambda: member.health()["statistics"]["fleet"]["acked"] >= len(entries))
    assert member.stop() == 0
    assert "skipped malformed events from the stream" in member.stderr


def test_metrics_show_the_fleet_figures(launch: Launch, redis_server: RedisServer) -> None:
    """/metrics of a fleet member agrees with /healthz on role, Redis and published events."""
    member = launch(fleet_body("", redis_server.url, "solo"))
    assert member.post(mixed_events("x", 100)).status == 200
    member.wait_for(lambda: member.health()["statistics"]["fleet"]["read_events"] >= 100)
    found = samples(scrape(member)[0])
    fleet = member.health()["statistics"]["fleet"]
    assert found[("astra_fleet_role", (("role", "poster"),))] == 1
    assert found[("astra_fleet_role", (("role", "member"),))] == 0
    assert found[("astra_fleet_redis_up", ())] == 1
    assert found[("astra_fleet_published_events_total", ())] >= 100
    assert found[("astra_fleet_leases_total", ())] == fleet["leases"] == 1


def board_hosts(discord: FakeDiscord, channel_id: int) -> str:
    """The status board's Hosts field as plain text (markdown escapes removed), or ""."""
    for message in discord.messages(channel_id):
        if is_board({"embeds": message.embeds}):
            fields = message.embeds[0].get("fields", [])
            hosts = next((f["value"] for f in fields if f["name"] == "Hosts"), "")
            return hosts.replace("\\", "")
    return ""


def fleet_health_rows(discord: FakeDiscord, channel_id: int) -> list[str]:
    """The member rows of each fleet health posted on #diagnostics (escapes removed)."""
    return [
        "\n".join(f["value"] for f in embed.get("fields", [])).replace("\\", "")
        for message in discord.messages(channel_id)
        for embed in message.embeds
        if embed.get("title", "").startswith("🩺 fleet health")
    ]


@pytest.mark.slow
def test_the_fleet_board_and_diagnostics_health_cover_every_member(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """The fleet's one board lists every member with its latest score (and drops one that
    left cleanly, without calling the fleet stopped when the poster leaves), and
    #diagnostics shows one fleet health with a row per member."""
    with_health = QUIET.replace(
        "[collectors.health]\nenabled = false", "[collectors.health]\ninterval = 0.5"
    )
    members, ids = start_fleet(discord, launch, redis_server, quiet=with_health)
    channel = ids["diagnostics"]
    names = [f"member-{i}" for i in range(3)]

    def scored(text: str, who: list[str]) -> bool:
        return all(re.search(rf"^\S+ {name} · \d+/100$", text, re.M) for name in who)

    members[0].wait_for(lambda: scored(board_hosts(discord, channel), names), interval=0.2)
    members[0].wait_for(
        lambda: any(
            all(re.search(rf"\*\*{name}\*\* \d+/100 · checked", rows) for name in names)
            for rows in fleet_health_rows(discord, channel)
        ),
        interval=0.2,
    )
    # A member that stops cleanly leaves the fleet: the board no longer lists it.
    leaver = next(m for m in members if m.health()["role"] == "member")
    gone = leaver.health()["fleet"]["member"]
    assert leaver.stop() == 0, leaver.stderr
    staying = [n for n in names if n != gone]
    poster = next(m for m in members if m is not leaver and m.health()["role"] == "poster")
    poster.wait_for(
        lambda: (
            gone not in board_hosts(discord, channel)
            and scored(board_hosts(discord, channel), staying)
        ),
        interval=0.2,
    )
    boards = [m for m in discord.messages(channel) if is_board({"embeds": m.embeds})]
    assert len(boards) == 1
    # The poster leaving is not the fleet stopping: its last edit does not say "stopped".
    assert poster.stop() == 0, poster.stderr
    titles = [
        m.embeds[0]["title"] for m in discord.messages(channel) if is_board({"embeds": m.embeds})
    ]
    assert titles and not any("stopped" in t for t in titles), titles
    discord.assert_no_violations()


def test_two_fleets_with_their_own_key_prefix_share_one_redis_without_mixing(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Two fleets on one Redis, told apart by ``key_prefix`` alone: each has its own poster,
    members and stream, and each fleet's channels get only its own events."""
    channels_a, ids_a = webhook_channels(discord)
    channels_b, ids_b = webhook_channels(discord, first_id=1419858425424263000)
    # One fleet on the default prefix ("astra"), the other on its own.
    alpha = launch(fleet_body(channels_a, redis_server.url, "alpha-1"))
    beta = launch(fleet_body(channels_b, redis_server.url, "beta-1", 'key_prefix = "beta"\n'))
    poster_of([alpha]), poster_of([beta])
    sent_a, sent_b = mixed_events("alpha", 500), mixed_events("beta", 500)
    send_http_batches(alpha, sent_a)
    send_http_batches(beta, sent_b)
    fleets = ((alpha, ids_a, sent_a, "beta"), (beta, ids_b, sent_b, "alpha"))
    for member, ids, sent, other in fleets:
        posted = wait_all_posted(member, discord, ids, sent, [alpha, beta])
        theirs = {i for c in posted.values() for i in c if i.startswith(f"{other}-")}
        assert theirs == set(), sorted(theirs)[:5]
        # Nor does the other fleet's member show up in a post (per-member rows, alerts).
        messages = [m for cid in ids.values() for m in discord.messages(cid)]
        assert not [m for m in messages if f"{other}-1" in json.dumps(m.payload)]
    client = redis_server.client()
    for prefix, name in (("astra", "alpha-1"), ("beta", "beta-1")):
        assert client.hkeys(f"{prefix}:members") == [name.encode()]
        lease: Any = client.get(f"{prefix}:lease")
        assert lease.endswith(f"|{name}".encode())
        entries: Any = client.xrange(f"{prefix}:events")
        assert entries and {fields[b"m"] for _id, fields in entries} == {name.encode()}
    for member, name in ((alpha, "alpha-1"), (beta, "beta-1")):
        fleet = member.health()["fleet"]
        assert fleet["lease_holder"] == name and fleet["silent_members"] == []
    discord.assert_no_violations()


def test_a_poster_whose_memory_bound_is_below_one_entry_still_posts(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """With ``buffer.max_events`` below a stream entry's 2,000 events, the poster still reads
    (one entry at a time when it holds nothing) and posts every event."""
    channels, ids = webhook_channels(discord)
    member = launch("[buffer]\nmax_events = 1000\n" + fleet_body(channels, redis_server.url, "m"))
    poster_of([member])
    sent = [
        {"kind": "log", "level": "info", "message": f"small {i}", "id": f"small-{i}"}
        for i in range(300)
    ]
    send_http_batches(member, sent, size=100)
    wait_all_posted(member, discord, ids, sent, [member])
    assert member.health()["statistics"]["fleet"]["read_events"] >= 300


def test_a_stream_really_trimmed_by_maxlen_is_counted_and_warned_about_on_logs(
    discord: FakeDiscord, launch: Launch, redis_server: RedisServer
) -> None:
    """Discord down, so the poster stops reading at its memory bound while its member keeps
    appending: Redis's ``MAXLEN ~`` really trims unread entries, and once Discord is back
    #logs warns how many events were trimmed, ``trimmed`` counts exactly those, and every
    other event is posted."""
    channels, ids = webhook_channels(discord)
    body = fleet_body(channels, redis_server.url, "solo", "max_stream_len = 100\n", lease=1)
    member = launch("[buffer]\nmax_events = 2500\n" + body)
    poster_of([member])
    client = redis_server.client()
    discord.outage(120)

    def fleet() -> dict[str, Any]:
        figures: dict[str, Any] = member.health()["statistics"]["fleet"]
        return figures

    # The poster reads these and holds them while Discord refuses: past 500 of them its
    # bound (2,500) has no room left for a 2,000-event entry, so it reads no more meanwhile.
    sent = mixed_events("held", 1000)
    send_http_batches(member, sent)
    member.wait_for(lambda: fleet()["read_events"] > 500)

    def appended_since(entries: int) -> Callable[[], bool]:
        return lambda: int(fleet()["published_entries"]) > entries

    def trimmed_unread() -> int:
        """At least this many entries were neither read by the poster nor are in Redis."""
        figures = fleet()
        in_redis = client.xlen("astra:events")
        return int(figures["published_entries"] - figures["read_entries"] - in_redis)

    # Small batches, one for each channel, so each publishing round appends four small
    # entries; until Redis trims some the poster never read.
    for round_ in range(1000):
        if trimmed_unread() > 0:
            break
        entries = fleet()["published_entries"]
        events = mixed_events(f"r{round_}", 4)
        send_http_batches(member, events)
        sent += events
        member.wait_for(appended_since(entries), timeout=30, interval=0.01)
    assert trimmed_unread() > 0, fleet()
    discord.outage(0)

    def warnings() -> list[str]:
        return [
            e["message"]
            for e in discord.all_events(ids["logs"])
            if e["kind"] == "log" and "were trimmed from the Redis stream" in e["message"]
        ]

    def settled() -> bool:
        figures = fleet()
        accounted = figures["read_events"] + figures["trimmed"] == figures["published_events"]
        return accounted and bool(warnings())

    # Every appended event is read or counted as trimmed, and #logs said so.
    member.wait_for(settled, timeout=60)
    figures = fleet()
    lost = sum(int(m.split(" events of ")[0].replace(",", "")) for m in warnings())
    assert lost == figures["trimmed"] > 0, (warnings(), figures)
    assert warnings()[0].endswith("before the poster read them (raise fleet.max_stream_len)")
    # Every sent event that was not trimmed is posted.
    want = {e["id"] for e in sent}

    def missing() -> int:
        return len(want - {i for c in ids_by_channel(discord, ids).values() for i in c})

    member.wait_for(lambda: missing() == figures["trimmed"])
    found = samples(scrape(member)[0])
    assert found[("astra_fleet_trimmed_events_total", ())] == figures["trimmed"]
