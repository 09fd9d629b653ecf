"""The files collector: a watched file's size and growth per day, and a missing file."""

from __future__ import annotations

from pathlib import Path

from astra.collectors.files import FilesCollector
from astra.config import WatchFile
from astra.events import File
from tests.conftest import Clock


def test_files_collector_reports_size_and_growth_per_day(tmp_path: Path) -> None:
    """A file growing 1 MiB per hour reads as +24 MiB/day; a missing file is reported as such."""
    db = tmp_path / "games.db"
    db.write_bytes(b"\0" * 2**20)
    clock = Clock()
    collector = FilesCollector(
        [WatchFile(path=str(db)), WatchFile(path=str(tmp_path / "nope"), name="gone")], clock
    )
    first, missing = collector.collect()
    assert isinstance(first, File) and first.size_bytes == 2**20 and first.name == "games.db"
    assert isinstance(missing, File) and not missing.exists and missing.name == "gone"
    with db.open("ab") as handle:
        handle.write(b"\0" * 2**20)
    clock.now += 3600
    grown, _ = collector.collect()
    assert isinstance(grown, File)
    assert grown.growth_bytes_per_day == 24 * 2**20 and grown.growth_span_s == 3600
