"""Attachments: a window's events as gzipped JSON lines, split into files within the size limit."""

from __future__ import annotations

import itertools

from astra.events import Metric
from astra.sinks.attachments import BatchName, build_attachments, parse_attachment_name


def test_a_window_too_large_for_one_file_is_split_into_several() -> None:
    """A window too large for one file is split into files within the limit, numbered on."""
    events = [Metric(name=f"metric-{i}", value=i, seq=i + 1, id=f"{i:032x}") for i in range(4000)]
    files = build_attachments("performance", list(events), max_bytes=20_000, first=101, run="ab12")
    assert len(files) > 1
    assert all(len(f.data) <= 20_000 for f in files)
    assert sum(len(f.events) for f in files) == 4000
    names = [parse_attachment_name(f.filename) for f in files]
    assert names[0] == BatchName("performance", "ab12", 101, 100 + len(files[0].events))
    assert all(n is not None and n.first == f.first for n, f in zip(names, files, strict=True))
    assert all(
        a is not None and b is not None and b.first == a.last + 1
        for a, b in itertools.pairwise(names)
    )
    assert names[-1] is not None and names[-1].last == 4100


def test_only_astra_attachment_names_parse() -> None:
    """Names of other files, or with a reversed or zero range, are not astra's batches; the
    older names without a run still are."""
    assert parse_attachment_name("events-logs-0a1b2c3d4e-1-20.jsonl.gz") == BatchName(
        "logs", "0a1b2c3d4e", 1, 20
    )
    assert parse_attachment_name("events-logs-1-20.jsonl.gz") == BatchName("logs", "", 1, 20)
    for other in (
        "events-logs-20-1.jsonl.gz",
        "events-logs-ab-20-1.jsonl.gz",
        "events-logs-ab-0-1.jsonl.gz",
        "events-logs-ab-1-2.jsonl",
        "chart.png",
    ):
        assert parse_attachment_name(other) is None, other
