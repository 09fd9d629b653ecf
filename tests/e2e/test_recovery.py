"""A restarted sidecar reads the day back from the channels: the report and alerts go on."""

from __future__ import annotations

import math
import signal
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Launch
from tests.e2e.test_export import readable_channels
from tests.fake_discord import FakeDiscord
from tests.sidecar import Sidecar, run_cli, write_config

LIVELY = """
[flush]
interval = 0.3
critical_delay = 0.1
[collectors.system]
interval = 0.3
[collectors.errors]
interval = 0.3
[collectors.process]
enabled = false
[collectors.health]
enabled = false
[collectors.performance]
enabled = false
"""
# What the bot did: the same in every scenario, so the reports must agree on it.
BOT_KINDS = ("command.ok", "command.failed", "message", "error")


def report_due(seconds_ahead: float) -> tuple[str, float]:
    """A ``[collectors.report]`` table due at the first whole UTC minute that far ahead, and
    that moment (unix s)."""
    due = math.ceil((time.time() + seconds_ahead) / 60) * 60
    clock = datetime.fromtimestamp(due, UTC).strftime("%H:%M")
    return f'[collectors.report]\ntime = "{clock}"\ntimezone = "UTC"\n', due


def report_at(seconds_ahead: float) -> str:
    """A ``[collectors.report]`` table due at the first whole UTC minute that far ahead."""
    return report_due(seconds_ahead)[0]


def bot_day(phase: int) -> list[dict[str, Any]]:
    """A phase of the bot's day: commands (some failed), messages and errors, in guilds."""
    now = time.time()
    events: list[dict[str, Any]] = []
    for i in range(12):
        events.append(
            {
                "kind": "command",
                "id": f"c{phase}-{i}",
                "ts": now - 30 + i,
                "name": ("vote", "help", "ban")[i % 3],
                "ok": i % 4 != 0,
                "error": None if i % 4 else "KeyError: 'user 42'",
                "error_type": None if i % 4 else "KeyError",
                "guild_id": 1000 + i % 2 + phase,
            }
        )
        events.append(
            {"kind": "message", "id": f"m{phase}-{i}", "ts": now - 30 + i, "guild_id": 1000 + i % 3}
        )
    events.append(
        {
            "kind": "error",
            "id": f"x{phase}",
            "ts": now - 5,
            "type": "TimeoutError",
            "message": f"gateway timeout {phase}",
        }
    )
    return events


def posted(discord: FakeDiscord, ids: dict[str, int], wanted: set[str]) -> bool:
    """Whether every id in ``wanted`` is stored in some channel."""
    seen = {str(e.get("id")) for channel in ids.values() for e in discord.all_events(channel)}
    return wanted <= seen


def alerts(discord: FakeDiscord, ids: dict[str, int], state: str) -> list[dict[str, Any]]:
    """The cpu alert events of ``state`` stored in #logs."""
    return [
        e
        for e in discord.all_events(ids["logs"])
        if e["kind"] == "alert" and e["rule"] == "cpu" and e["state"] == state
    ]


def reports(discord: FakeDiscord, ids: dict[str, int]) -> list[dict[str, Any]]:
    """The daily reports stored in #diagnostics."""
    return [e for e in discord.all_events(ids["diagnostics"]) if e["kind"] == "report"]


def essence(report: dict[str, Any]) -> dict[str, Any]:
    """What a report says about the bot's day and its alerts (not the host's own figures)."""
    return {
        "events": {k: v for k, v in report["events"].items() if k in BOT_KINDS},
        "top_commands": report["top_commands"],
        "top_guilds": report["top_guilds"],
        "problems": [
            (p["label"], p["count"], round(p["first"], 3), round(p["last"], 3))
            for p in report["problems"]
            if not p["label"].startswith("alert")
        ],
        "alerts_fired": report["alerts_fired"],
    }


class Scenario:
    """One sidecar history against its own fake Discord: with a restart or without."""

    def __init__(self, launch: Launch, restart: signal.Signals | None, config: str) -> None:
        self.discord = FakeDiscord(bucket_limit=50).start()
        body, self.ids = readable_channels(self.discord)
        self.text = body + LIVELY + config
        self.restart = restart
        self.launch = launch
        self.sidecar: Sidecar = launch(self.text)
        self.first_run: Sidecar | None = None

    def first_phase(self, events: list[dict[str, Any]]) -> None:
        """Phase one of the day, posted, with the cpu alert firing and posted."""
        assert self.sidecar.post(events).status == 200
        wanted = {e["id"] for e in events}
        self.sidecar.wait_for(lambda: posted(self.discord, self.ids, wanted))
        self.sidecar.wait_for(lambda: alerts(self.discord, self.ids, "firing"))

    def second_phase(self, events: list[dict[str, Any]]) -> None:
        """Restart if the scenario says so, then phase two of the day, posted."""
        if self.restart is not None:
            self.first_run = self.sidecar
            self.sidecar.stop(self.restart)
            self.sidecar = self.launch(self.text)
        assert self.sidecar.post(events).status == 200
        wanted = {e["id"] for e in events}
        self.sidecar.wait_for(lambda: posted(self.discord, self.ids, wanted))


@pytest.mark.slow(seconds=135)  # the report comes 45-135 s after the start
def test_a_report_after_a_restart_equals_the_report_without_one(launch: Launch) -> None:
    """Restarted mid-day by SIGTERM or SIGKILL, astra sends the same daily report (counts,
    tops, problem groups, alerts) as a sidecar that never stopped, and fires no alert twice."""
    config = report_at(45) + "[alerts]\ncpu_percent = 0.01\n"
    scenarios = [
        Scenario(launch, restart, config) for restart in (None, signal.SIGTERM, signal.SIGKILL)
    ]
    try:
        day = bot_day(1), bot_day(2)
        for scenario in scenarios:
            scenario.first_phase(day[0])
        for scenario in scenarios:
            scenario.second_phase(day[1])
        # Due 45 to 105 s after report_at, and asked for every 30 s (CHECK_INTERVAL_S): the
        # report comes up to 135 s after the test began, later on a loaded machine.
        for scenario in scenarios:
            scenario.sidecar.wait_for(partial(reports, scenario.discord, scenario.ids), timeout=240)
        baseline, *restarted = [essence(reports(s.discord, s.ids)[0]) for s in scenarios]
        assert baseline["events"] == {
            "command.ok": 18,
            "command.failed": 6,
            "message": 24,
            "error": 2,
        }
        assert baseline["alerts_fired"] == 1
        for scenario, report in zip(scenarios[1:], restarted, strict=True):
            assert report == baseline, scenario.restart
            assert (
                len(
                    [
                        a
                        for a in alerts(scenario.discord, scenario.ids, "firing")
                        if a["repeat"] == 0
                    ]
                )
                == 1
            )
            stderr = scenario.sidecar.stop()
            assert stderr == 0
            assert "recovery: read" in scenario.sidecar.stderr
    finally:
        for scenario in scenarios:
            scenario.discord.stop()


@pytest.mark.parametrize("intent", [True, False], ids=["intent", "no-intent"])
def test_a_restored_alert_resolves_when_its_condition_clears(launch: Launch, intent: bool) -> None:
    """An alert firing before a restart is not fired again after it, and its resolution comes
    when the condition clears (read back with or without the Message Content intent)."""
    with FakeDiscord(bucket_limit=50, message_content_intent=intent) as discord:
        body, ids = readable_channels(discord)
        first = launch(body + LIVELY + "[alerts]\ncpu_percent = 0.01\n")
        first.wait_for(lambda: alerts(discord, ids, "firing"))
        assert first.stop() == 0
        second = launch(body + LIVELY + "[alerts]\ncpu_percent = 100\n")
        second.wait_for(lambda: alerts(discord, ids, "resolved"))
        assert second.stop() == 0
        assert len(alerts(discord, ids, "firing")) == 1
        (resolved,) = alerts(discord, ids, "resolved")
        assert resolved["since"] == alerts(discord, ids, "firing")[0]["since"]
        fetched = "fetched through the webhook" in second.stderr
        assert fetched is not intent
        discord.assert_no_violations()


def test_without_a_bot_token_the_report_starts_now_and_says_so_once(launch: Launch) -> None:
    """With webhook URLs only, astra runs as before and says once, on stderr and in
    #diagnostics, that the day's report starts now."""
    with FakeDiscord() as discord:
        lines = [f'[discord]\napi_base = "{discord.api_base}"\n']
        for index, name in enumerate(("analytics", "diagnostics", "logs", "performance")):
            hook = discord.create_webhook(5000 + index)
            lines.append(f'[channels.{name}]\nwebhook = "{hook.url}"\n')
        sidecar = launch("\n".join(lines) + "[flush]\ninterval = 0.3\n")
        diagnostics = 5001

        def said() -> list[dict[str, Any]]:
            return [
                e
                for e in discord.all_events(diagnostics)
                if e["kind"] == "lifecycle" and e["action"] == "report_starts_now"
            ]

        sidecar.wait_for(said)
        assert sidecar.stop() == 0
        assert sidecar.stderr.count("report starts now") == 1
        assert "discord.token" in said()[0]["detail"]
        assert len(said()) == 1


def test_astra_report_rebuilds_the_day_and_says_when_bounds_cut_it(
    launch: Launch, tmp_path: Path
) -> None:
    """``astra report`` shows today's report rebuilt from the channels, ``--post`` posts it,
    and a recovery bound that cuts the day short is said in the report."""
    with FakeDiscord(bucket_limit=50) as discord:
        body, ids = readable_channels(discord)
        sidecar = launch(body + LIVELY)
        for phase in (1, 2):
            events = bot_day(phase)
            assert sidecar.post(events).status == 200
            wanted = {e["id"] for e in events}
            sidecar.wait_for(partial(posted, discord, ids, wanted))
        assert sidecar.stop() == 0
        config = write_config(tmp_path / "report.toml", 1, body)
        done = run_cli("report", "--config", str(config), "--post")
        assert done.returncode == 0, done.stderr
        assert "daily report" in done.stdout and "vote" in done.stdout
        (report,) = reports(discord, ids)
        assert essence(report)["events"] == {
            "command.ok": 18,
            "command.failed": 6,
            "message": 24,
            "error": 2,
        }
        assert report["coverage"] == ""
        bounded = write_config(
            tmp_path / "bounded.toml", 1, body + "[recovery]\nmax_messages = 1\n"
        )
        cut = run_cli("report", "--config", str(bounded))
        assert cut.returncode == 0, cut.stderr
        assert "earlier history not read" in cut.stdout
        assert discord.bot_token not in done.stdout + done.stderr + cut.stdout + cut.stderr
        discord.assert_no_violations()
