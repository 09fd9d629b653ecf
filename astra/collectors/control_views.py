"""What the control endpoint answers: the sidecar's state, read from the collectors.

Each view is a plain dict for JSON: ``health`` (the score now, what lowered it, the alerts
firing and the mutes in force), ``errors`` (the problem groups of the last hour) and
``report`` (today's report so far, without its charts; not sent anywhere).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from astra.collectors.report import DailyReportCollector
from astra.collectors.suite import Collectors
from astra.statistics import SidecarStatistics

GROUPS_ANSWERED = 10


class ControlViews:
    """The control endpoint's answers, built from the collectors and the sidecar's figures."""

    def __init__(
        self,
        collectors: Collectors,
        snapshot: Callable[[], SidecarStatistics],
        wall_clock: Callable[[], float] = time.time,
        daily_report: Callable[[], DailyReportCollector | str] | None = None,
    ) -> None:
        """``daily_report``: the report to answer from, or why there is none (default: the
        collectors' own)."""
        self._collectors = collectors
        self._daily_report = daily_report or self._own_report
        self._snapshot = snapshot
        self._clock = wall_clock

    def health(self) -> dict[str, Any]:
        """``/astra health``: the score now, what lowered it, firing alerts and mutes."""
        collectors = self._collectors
        health = collectors.health.assess() if collectors.health is not None else None
        snapshot = self._snapshot()
        return {
            "score": health.score if health is not None else None,
            "reasons": health.reasons if health is not None else [],
            "components": msgspec.to_builtins(health.components) if health is not None else [],
            "uptime_s": round(snapshot.uptime_s, 1),
            "published": snapshot.bus.published,
            "pending": snapshot.bus.held,
            "firing": [
                {
                    "alert": f"{a.rule}:{a.subject}",
                    "severity": a.severity,
                    "message": a.message,
                    "muted": collectors.mutes.is_muted(a.rule, a.subject),
                }
                for a in collectors.alerts.firing.values()
            ],
            "muted": [msgspec.to_builtins(m) for m in collectors.mutes.active()],
        }

    def errors(self) -> dict[str, Any]:
        """``/astra errors``: the problem groups of the last hour, worst first."""
        recent = self._collectors.recent
        groups, total = recent.groups()
        return {
            "window_s": recent.window_s,
            "total": total,
            "groups": msgspec.to_builtins(groups[:GROUPS_ANSWERED]),
        }

    def _own_report(self) -> DailyReportCollector | str:
        return (
            self._collectors.report
            or "the daily report is off ([collectors.report] enabled = false)"
        )

    def report(self) -> dict[str, Any]:
        """``/astra report``: today's report so far."""
        report = self._daily_report()
        if isinstance(report, str):
            return {"error": report}
        built = report.build(self._clock())
        return {"report": msgspec.to_builtins(msgspec.structs.replace(built, charts=[]))}
