"""Stream entries: what members write, what the poster accepts."""

from __future__ import annotations

import msgspec

from astra.events import Alert, Command, Log, Metric
from astra.fleet.codec import decode_entry, encode_entry


def test_an_entry_round_trips_every_kind_with_its_member_and_totals() -> None:
    """Events of any kind, astra's own included, come back equal with the entry's figures."""
    events = [
        Command(name="ping", host="a"),
        Alert(rule="cpu", subject="host", state="firing", host="a"),
        Metric(name="q", value=1.5, host="a"),
    ]
    fields = {k.encode(): v for k, v in encode_entry("a", "run1", 10, events).items()}
    entry = decode_entry(fields)
    assert (entry.member, entry.run, entry.total, entry.count) == ("a", "run1", 10, 3)
    assert entry.events == events and entry.malformed == 0 and not entry.problem


def test_a_malformed_event_is_counted_and_skipped_and_the_others_kept() -> None:
    """One invalid event in an entry costs only itself."""
    good = msgspec.json.encode(Log(level="info", message="ok"))
    body = b"[" + good + b',{"kind":"log","level":"loud","message":"x"},{"kind":"nope"}]'
    entry = decode_entry({b"m": b"a", b"r": b"r", b"t": b"3", b"n": b"3", b"e": body})
    assert [type(e) for e in entry.events] == [Log]
    assert entry.malformed == 2 and "level" in entry.problem


def test_an_entry_missing_fields_or_not_json_yields_no_events_and_never_raises() -> None:
    """Garbage in the stream is a problem to report, not a crash."""
    assert decode_entry({b"e": b"[]"}).problem.startswith("bad entry")
    entry = decode_entry({b"m": b"a", b"r": b"r", b"t": b"1", b"n": b"1", b"e": b"{nope"})
    assert entry.events == [] and entry.malformed == 1 and entry.problem
