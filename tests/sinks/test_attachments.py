"""Attachments: a window's events as gzipped JSON lines, split into files within the size limit."""

from __future__ import annotations

from astra.events import Metric
from astra.sinks.attachments import build_attachments


def test_a_window_too_large_for_one_file_is_split_into_several() -> None:
    """A window too large for one file is split into files within the limit, named by their seqs."""
    events = [Metric(name=f"metric-{i}", value=i, seq=i + 1, id=f"{i:032x}") for i in range(4000)]
    files = build_attachments("performance", list(events), max_bytes=20_000)
    assert len(files) > 1
    assert all(len(f.data) <= 20_000 for f in files)
    assert sum(len(f.events) for f in files) == 4000
    assert files[0].filename == f"events-performance-1-{files[0].events[-1].seq}.jsonl.gz"
