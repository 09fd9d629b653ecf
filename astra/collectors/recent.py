"""The problems of the last hour, grouped: what ``/astra errors`` answers.

A projection of the bus like the daily report's problem fold, over a sliding hour instead of
a day. Only what grouping needs is kept of each problem (type, a sample of the message, top
frame, level, time, source), and at most ``MAX_KEPT`` of them: a flood of errors cannot grow
memory, and the oldest fall out first.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import cast

from astra.events import Command, Error, Event, Log, ProblemGroup
from astra.problems import Group, Problem, problem_of

WINDOW_S = 3600.0
MAX_KEPT = 20_000
SAMPLE_CHARS = 300
_PROBLEM_LEVELS = frozenset({"warning", "error", "critical"})


class RecentProblems:
    """Problems seen on the bus within the last ``window_s``, grouped by fingerprint."""

    # The event types that can be problems.
    kinds = (Error, Log, Command)

    def __init__(
        self, window_s: float = WINDOW_S, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.window_s = window_s
        self._clock = wall_clock
        self._kept: deque[tuple[float, str, Problem]] = deque(maxlen=MAX_KEPT)

    def observe_many(self, events: Sequence[Event]) -> None:
        """Bus listener: keep the problems among ``events`` (a batch of one type)."""
        first = events[0] if events else None
        # Most commands succeed and most logs are info: skip those without a call each.
        if isinstance(first, Command):
            events = [e for e in cast(Sequence[Command], events) if not e.ok]
        elif isinstance(first, Log):
            levels = _PROBLEM_LEVELS
            events = [e for e in cast(Sequence[Log], events) if e.level in levels]
        for event in events:
            problem = problem_of(event)
            if problem is not None:
                sample = problem._replace(message=problem.message[:SAMPLE_CHARS])
                self._kept.append((event.time, event.source[:100], sample))

    def groups(self) -> tuple[list[ProblemGroup], int]:
        """The groups of the last window, worst first, and how many problems they hold."""
        since = self._clock() - self.window_s
        while self._kept and self._kept[0][0] < since:
            self._kept.popleft()
        groups: dict[tuple[str, str, str], Group] = {}
        total = 0
        for ts, source, problem in self._kept:
            if ts < since:
                continue  # a client's clock may run behind: its events arrive out of order
            total += 1
            group = groups.get(problem.fingerprint)
            if group is None:
                groups[problem.fingerprint] = Group(
                    label=problem.label,
                    sample=problem.message,
                    level=problem.level,
                    first=ts,
                    last=ts,
                    sources=[source] if source else [],
                )
            else:
                group.add(problem.level, ts, source)
        ranked = sorted(groups.values(), key=lambda g: (-g.rank, -g.count, g.first))
        return [g.reported() for g in ranked], total
