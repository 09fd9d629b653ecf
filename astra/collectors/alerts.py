"""Alert state: when a breach becomes an ``alert`` event, when it repeats, when it resolves.

The book is told, for each (rule, subject), whether the condition holds right now. It
answers with the event to emit, if any:

- a new breach fires at once;
- a breach that goes on is repeated no sooner than ``cooldown_s`` after the last notice,
  unless its severity rose (that is news, so it goes out at once);
- a breach that clears is followed by one ``resolved`` event;
- a breach that comes back within the cooldown of the last notice (flapping) is held back
  until the cooldown has passed; if it clears before then, nothing is sent at all.

Whoever asks decides when a condition can no longer be checked: the errors collector resolves
a firing alert whose input stopped, with a "no data" message (``astra.collectors.errors``).

Pure state on an injected clock: no I/O, testable without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import msgspec

from astra.events import Alert, Severity
from astra.problems import level_rank


class Firing(msgspec.Struct, kw_only=True):
    """An alert whose condition holds."""

    rule: str
    subject: str
    severity: Severity
    message: str
    since: float
    value: float | None = None
    threshold: float | None = None
    unit: str = ""
    last_sent: float | None = None
    repeat: int = 0


class AlertBook:
    """Which alerts are firing, and which changes are worth an event."""

    def __init__(self, cooldown_s: float, clock: Callable[[], float] = time.time) -> None:
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.firing: dict[tuple[str, str], Firing] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self.fired_total = 0

    def now(self) -> float:
        """The book's clock: what ``since`` and the cooldown are measured on."""
        return self._clock()

    def update(
        self,
        rule: str,
        subject: str,
        breached: bool,
        *,
        severity: Severity = "warning",
        message: str = "",
        value: float | None = None,
        threshold: float | None = None,
        unit: str = "",
    ) -> Alert | None:
        """Record whether the condition holds now; the alert event to emit, or None."""
        now = self._clock()
        key = (rule, subject)
        state = self.firing.get(key)
        if not breached:
            if state is None:
                return None
            del self.firing[key]
            if state.last_sent is None:
                return None  # it never went out: its resolution is no news either
            self._last_sent[key] = now
            text = message or f"{state.message}: back to normal"
            return self._event(state, "resolved", now, text, value)
        if state is None:
            state = self.firing[key] = Firing(
                rule=rule, subject=subject, severity=severity, message=message, since=now
            )
            escalated = False
        else:
            escalated = level_rank(severity) > level_rank(state.severity)
        state.severity, state.message = severity, message
        state.value, state.threshold, state.unit = value, threshold, unit
        last = self._last_sent.get(key)
        if not escalated and last is not None and now - last < self.cooldown_s:
            return None
        if state.last_sent is not None:
            state.repeat += 1
        else:
            self.fired_total += 1
        state.last_sent = now
        self._last_sent[key] = now
        return self._event(state, "firing", now, message, value)

    def restore(self, alerts: Sequence[Alert]) -> None:
        """Take in alert events read back from the channels, oldest first: what was firing
        is firing again (not repeated before its cooldown, resolved when it clears)."""
        for alert in alerts:
            key = (alert.rule, alert.subject)
            self._last_sent[key] = max(self._last_sent.get(key, 0.0), alert.time)
            if alert.state == "resolved":
                self.firing.pop(key, None)
                continue
            self.firing[key] = Firing(
                rule=alert.rule,
                subject=alert.subject,
                severity=alert.severity,
                message=alert.message,
                since=alert.since or alert.time,
                value=alert.value,
                threshold=alert.threshold,
                unit=alert.unit,
                last_sent=alert.time,
                repeat=alert.repeat,
            )

    def _event(
        self, state: Firing, kind: str, now: float, message: str, value: float | None
    ) -> Alert:
        return Alert(
            source="astra",
            ts=now,
            rule=state.rule,
            subject=state.subject,
            state="firing" if kind == "firing" else "resolved",
            severity=state.severity,
            message=message[:4000],
            value=value,
            threshold=state.threshold,
            unit=state.unit,
            since=state.since,
            repeat=state.repeat if kind == "firing" else 0,
        )
