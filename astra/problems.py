"""Problems: what makes two errors "the same", how bad each is, and the fold that groups them.

A base module beside the event schema, with no I/O. The logs channel groups a window's
problems and the daily report a day's, by the same fingerprint (type + normalised message
+ top frame) and the same severity ranking; neither may import the other, so both import
this.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import msgspec

from astra.events import Command, Error, Event, Log, LogLevel, ProblemGroup

_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\b\d+(?:\.\d+)?\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_FRAME = re.compile(r'File "[^"]*", line \d+, in (\S+)')
_LEVEL_RANK: dict[str, int] = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
# A group names this many sources, the alphabetically first: bounded whatever arrives.
SOURCES_KEPT = 3

Fingerprint = tuple[str, str, str]


def normalise_message(message: str) -> str:
    """A message with its variable parts (numbers, ids, quoted values) folded, for grouping."""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return _QUOTED.sub("…", _NUMBERS.sub("#", first_line))[:200]


def top_frame(traceback: str | None) -> str:
    """The innermost function named in a Python traceback, or ''."""
    if not traceback:
        return ""
    frames = _FRAME.findall(traceback)
    return str(frames[-1]) if frames else ""


def level_rank(level: str) -> int:
    """debug 0 … critical 4 (an unknown level ranks as info)."""
    return _LEVEL_RANK.get(level, 1)


class Problem(NamedTuple):
    """An error-like event reduced to what groups it."""

    type: str  # exception class, log level or "<command> failed"
    message: str  # the original message (a sample for display)
    where: str  # top traceback frame, or the logger's name
    level: LogLevel

    @property
    def fingerprint(self) -> Fingerprint:
        """type + normalised message + top frame."""
        return (self.type, normalise_message(self.message), self.where)

    @property
    def label(self) -> str:
        """``KeyError in handle_vote``."""
        return f"{self.type} in {self.where}" if self.where else self.type


def problem_of(event: Event) -> Problem | None:
    """The problem an event reports: errors, warning-and-above logs, failed commands."""
    if isinstance(event, Error):
        return Problem(
            event.type or "Error", event.message, top_frame(event.traceback), event.severity
        )
    if isinstance(event, Log) and level_rank(event.level) >= 2:
        return Problem(event.level.upper(), event.message, event.logger, event.level)
    if isinstance(event, Command) and not event.ok:
        type_ = (
            f"/{event.name} failed" if event.command_type != "prefix" else f"{event.name} failed"
        )
        return Problem(
            type_, event.error or event.error_type or "", top_frame(event.traceback), "error"
        )
    return None


class Group(msgspec.Struct, kw_only=True):
    """Problems sharing a fingerprint, folded so far (``ProblemGroup`` is how it is reported)."""

    label: str
    sample: str  # the first problem's message
    level: LogLevel  # the worst level seen
    first: float
    last: float
    count: int = 1
    sources: list[str] = msgspec.field(default_factory=list)  # sorted, SOURCES_KEPT at most

    @property
    def rank(self) -> int:
        """The worst level's rank: debug 0 … critical 4."""
        return level_rank(self.level)

    def add(self, level: LogLevel, ts: float, source: str) -> None:
        """Count one more problem of this group."""
        self.count += 1
        self.first, self.last = min(self.first, ts), max(self.last, ts)
        if level_rank(level) > self.rank:
            self.level = level
        self.add_source(source)

    def add_source(self, source: str) -> None:
        """Remember ``source`` if it is among the alphabetically first few."""
        if source and source not in self.sources:
            self.sources = sorted([*self.sources, source])[:SOURCES_KEPT]

    def reported(self) -> ProblemGroup:
        """The group as the daily report carries it."""
        return ProblemGroup(
            label=self.label,
            sample=self.sample,
            severity=self.level,
            count=self.count,
            first=self.first,
            last=self.last,
        )


class ProblemFold:
    """Groups the problems among events by fingerprint; ``ranked()`` lists them worst first.

    ``max_groups`` bounds the groups kept (later fingerprints are counted in ``total`` only)
    and ``sample_chars`` the sample kept of each, for a fold that lasts a day.
    """

    def __init__(self, *, max_groups: int | None = None, sample_chars: int | None = None) -> None:
        self.total = 0  # every problem folded, in a kept group or not
        self._max_groups = max_groups
        self._sample_chars = sample_chars
        self._groups: dict[Fingerprint, Group] = {}

    def add(self, event: Event) -> bool:
        """Fold ``event`` in if it reports a problem; whether it did."""
        problem = problem_of(event)
        if problem is None:
            return False
        self.total += 1
        group = self._groups.get(problem.fingerprint)
        if group is not None:
            group.add(problem.level, event.time, event.source)
        elif self._max_groups is None or len(self._groups) < self._max_groups:
            group = self._groups[problem.fingerprint] = Group(
                label=problem.label,
                sample=problem.message[: self._sample_chars],
                level=problem.level,
                first=event.time,
                last=event.time,
            )
            group.add_source(event.source)
        return True

    def ranked(self) -> list[Group]:
        """The groups, worst level first, then the most frequent, then the earliest."""
        return sorted(self._groups.values(), key=lambda g: (-g.rank, -g.count, g.first))
