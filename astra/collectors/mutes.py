"""Muted alerts: which alerts someone said they know about, and until when.

A mute names a rule (``cpu``: every subject of it) or one alert (``disk:disk:/``, that is
``rule:subject``). While it lasts, the alert book marks that alert's events ``muted``: they
are still recorded in #logs, but do not ping or notify. State lives in memory only; a
restart forgets every mute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from astra.units import parse_duration

# Longer than a week is not a mute but a rule that should be changed in config.toml.
MAX_MUTE_S = 7 * 86400.0
# Mutes held at most: a flood of control calls cannot grow memory.
MAX_MUTES = 200


class MuteError(ValueError):
    """A mute request that cannot be honoured (bad alert name or duration)."""


class Mute(msgspec.Struct, frozen=True, kw_only=True):
    """One active mute."""

    alert: str
    until: float
    seconds: float
    by: str = ""


def alert_key(rule: str, subject: str) -> str:
    """The name that mutes exactly one alert: ``rule:subject``."""
    return f"{rule}:{subject}"


class Mutes:
    """Active mutes on an injected wall clock; expired ones are forgotten when read."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._until: dict[str, Mute] = {}

    def mute(self, alert: str, duration: str, *, by: str = "") -> Mute:
        """Mute ``alert`` (a rule, or ``rule:subject``) for ``duration``; raises ``MuteError``."""
        name = alert.strip()
        if not name or len(name) > 200 or not name.isprintable():
            raise MuteError("alert: name a rule (cpu) or one alert (rule:subject)")
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise MuteError(f"duration: {exc}") from None
        if seconds > MAX_MUTE_S:
            raise MuteError("duration: at most 7d (change the rule in config.toml instead)")
        self._expire()
        if name not in self._until and len(self._until) >= MAX_MUTES:
            raise MuteError(f"too many mutes ({MAX_MUTES}): unmute some first")
        mute = Mute(alert=name, until=self._clock() + seconds, seconds=seconds, by=by[:100])
        self._until[name] = mute
        return mute

    def unmute(self, alert: str) -> bool:
        """End the mute of ``alert``; False when it was not muted."""
        self._expire()
        return self._until.pop(alert.strip(), None) is not None

    def is_muted(self, rule: str, subject: str) -> bool:
        """Whether the alert ``rule``/``subject`` is muted now (by its rule or by itself)."""
        if not self._until:
            return False
        self._expire()
        return rule in self._until or alert_key(rule, subject) in self._until

    def active(self) -> list[Mute]:
        """The mutes in force now, soonest to end first."""
        self._expire()
        return sorted(self._until.values(), key=lambda m: m.until)

    def _expire(self) -> None:
        now = self._clock()
        for name in [n for n, m in self._until.items() if m.until <= now]:
            del self._until[name]
