"""The collector, alert and watch sections: defaults, and one-line errors naming the key."""

from __future__ import annotations

import tomllib
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest

from astra.config import ConfigError, parse

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_system_zones() -> Iterator[None]:
    """zoneinfo as on a host without /usr/share/zoneinfo: only the tzdata package is left."""
    saved = zoneinfo.TZPATH
    zoneinfo.reset_tzpath(to=[])
    try:
        yield
    finally:
        zoneinfo.reset_tzpath(to=saved)


def test_default_time_zone_resolves_without_a_system_zone_database(
    no_system_zones: None,
) -> None:
    """tzdata is a dependency: Europe/Berlin (the report's default) resolves anywhere."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = [d.split(">")[0].split("=")[0].strip() for d in dependencies["project"]["dependencies"]]
    assert "tzdata" in names
    assert zoneinfo.ZoneInfo.no_cache("Europe/Berlin").key == "Europe/Berlin"
    zoneinfo.ZoneInfo.clear_cache(only_keys=["Europe/Berlin"])
    assert parse("", "config.toml", {}).collectors.report.timezone == "Europe/Berlin"


def test_defaults_are_the_documented_ones() -> None:
    """Every collector is on with the issue's intervals and thresholds."""
    config = parse("", "config.toml", {})
    on = config.collectors
    assert [on.system.interval, on.process.interval, on.files.interval] == [120, 60, 300]
    assert [on.performance.interval, on.errors.interval, on.health.interval] == [60, 90, 180]
    assert (on.report.time, on.report.timezone) == ("23:00", "Europe/Berlin")
    assert all(
        c.enabled
        for c in (on.system, on.process, on.files, on.performance, on.errors, on.health, on.report)
    )
    alerts = config.alerts
    assert (alerts.cooldown, alerts.cpu_percent, alerts.memory_percent) == (300, 90, 90)
    assert (alerts.disk_percent, alerts.gateway_latency_ms, alerts.command_p95_ms) == (
        90,
        1000,
        2000,
    )
    assert alerts.command_error_rate_percent == 1
    assert config.routes["file"] == "performance" and config.routes["performance"] == "performance"


def test_watch_sections_parse() -> None:
    """Processes by pid, pid file or pattern, and files with optional limits."""
    config = parse(
        """
[[watch.process]]
name = "bot"
pid_file = "/run/bot.pid"
rss_limit_mib = 512
[[watch.process]]
name = "worker"
pattern = "python .*worker\\\\.py"
[[watch.file]]
path = "/srv/bot/games.db"
growth_limit_mib_per_day = 100
""",
        "config.toml",
        {},
    )
    assert [p.name for p in config.watch.process] == ["bot", "worker"]
    assert config.watch.process[0].rss_limit_mib == 512
    assert config.watch.file[0].path == "/srv/bot/games.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[collectors.report]\ntime = "25:00"\n',
            "config.toml: collectors.report.time: expected a local time as HH:MM, got '25:00'",
        ),
        (
            '[collectors.report]\ntimezone = "Mars/Olympus"\n',
            "config.toml: collectors.report.timezone: unknown time zone 'Mars/Olympus' "
            "(an IANA name like Europe/Berlin)",
        ),
        (
            '[[watch.process]]\nname = "bot"\n',
            "config.toml: watch.process[0]: give exactly one of pid, pid_file or pattern",
        ),
        (
            '[[watch.process]]\nname = "bot"\npid = 3\npattern = "x"\n',
            "config.toml: watch.process[0]: give exactly one of pid, pid_file or pattern",
        ),
        ('[[watch.process]]\nname = "bot"\npattern = "("\n', "watch.process[0].pattern: not a"),
        (
            '[[watch.process]]\nname = "astra"\npid = 3\n',
            "config.toml: watch.process[0].name: 'astra' is already used",
        ),
        ("[collectors.system]\nintervall = 5\n", "collectors.system.intervall: unknown key"),
        ("[alerts]\ncpu_percent = 150\n", "alerts.cpu_percent"),
    ],
)
def test_mistakes_are_one_line_errors(text: str, message: str) -> None:
    """Each mistake names its key in one line."""
    with pytest.raises(ConfigError) as caught:
        parse(text, "config.toml", {})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
