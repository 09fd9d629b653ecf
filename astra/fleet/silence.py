"""The dead-man switch: a member that stopped reporting raises a critical alert."""

from __future__ import annotations

import time
from collections.abc import Mapping

from astra.events import Alert

RULE = "member_silent"


class SilenceWatcher:
    """Turns members' last-seen times into ``member_silent`` alerts, firing and resolved.

    Times are the Redis server's, so members' clocks never disagree with the poster's.
    """

    def __init__(self, silent_after_s: float) -> None:
        self.silent_after_s = silent_after_s
        self._firing: dict[str, float] = {}
        self._members: list[str] = []

    @property
    def members(self) -> list[str]:
        """The fleet's members at the last observation: every member with a heartbeat,
        silent or not (a member that left cleanly removed its own)."""
        return self._members

    @property
    def silent(self) -> list[str]:
        """Members whose alert is firing now."""
        return sorted(self._firing)

    def observe(self, last_seen: Mapping[str, float], now: float) -> list[Alert]:
        """Alerts for members that fell silent or came back since the last observation."""
        alerts: list[Alert] = []
        self._members = sorted(last_seen)
        for member, seen in last_seen.items():
            quiet = now - seen
            if quiet >= self.silent_after_s and member not in self._firing:
                self._firing[member] = seen
                alerts.append(self._alert(member, "firing", seen, quiet))
            elif quiet < self.silent_after_s and member in self._firing:
                since = self._firing.pop(member)
                alerts.append(self._alert(member, "resolved", since, quiet))
        for member in [m for m in self._firing if m not in last_seen]:
            # It left the fleet on purpose (a clean stop): not silent any more.
            since = self._firing.pop(member)
            alerts.append(self._alert(member, "resolved", since, None, left=True))
        return alerts

    def _alert(
        self, member: str, state: str, since: float, quiet: float | None, *, left: bool = False
    ) -> Alert:
        clock = time.strftime("%H:%M:%S", time.gmtime(since))
        if state == "firing":
            message = f"{member} silent since {clock} UTC"
        elif left:
            message = f"{member} left the fleet (silent since {clock} UTC)"
        else:
            message = f"{member} reports again (silent since {clock} UTC)"
        return Alert(
            rule=RULE,
            subject=f"member:{member}",
            state="firing" if state == "firing" else "resolved",
            severity="critical",
            message=message,
            value=None if quiet is None else round(quiet, 1),
            threshold=self.silent_after_s,
            unit="s",
            since=since,
        )
