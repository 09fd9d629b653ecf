"""``[fleet]`` in config.toml: ``astra check`` accepts it or says what is wrong in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_config import assert_one_line_error, check


def test_a_valid_fleet_table_checks_ok_and_never_prints_the_password(tmp_path: Path) -> None:
    """A fleet with a password in an environment variable is fine and the password unseen."""
    text = '[fleet]\nredis = "redis://:${REDIS_PASSWORD}@redis.internal:6379/0"\nname = "h1"\n'
    code, output = check(tmp_path, text, env={"REDIS_PASSWORD": "hunter2-but-longer"})
    assert code == 0, output
    assert "hunter2-but-longer" not in output


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('[fleet]\nname = "a"\n', ["fleet.redis: not set"]),
        ('[fleet]\nredis = "http://h:6379"\n', ["fleet.redis", "redis:// or rediss://"]),
        ('[fleet]\nredis = "redis://:pw-secret-1234@/0"\n', ["fleet.redis: no host"]),
        ('[fleet]\nredis = "redis://h:99999/0"\n', ["fleet.redis: not a valid URL"]),
        ('[fleet]\nredis = "redis://h/x"\n', ["fleet.redis", "database number"]),
        ('[fleet]\nredis = "redis://h"\nlease = 0\n', ["fleet.lease", "> 0"]),
        ('[fleet]\nredis = "redis://h"\nsilent_after = -1\n', ["fleet.silent_after"]),
        ('[fleet]\nredis = "redis://h"\nfallback_after = "soon"\n', ["fleet.fallback_after"]),
        ('[fleet]\nredis = "redis://h"\nmax_stream_len = 5\n', ["fleet.max_stream_len"]),
        ('[fleet]\nredis = "redis://h"\nname = "a\\u0007b"\n', ["fleet.name"]),
        ('[fleet]\nredis = "redis://h"\nleases = 3\n', ["fleet.leases: unknown key"]),
    ],
)
def test_fleet_config_errors_are_one_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    """Each mistake in ``[fleet]`` is one line naming the key, exit status 2."""
    code, output = check(tmp_path, text)
    assert_one_line_error(code, output, *needles)
    assert "pw-secret-1234" not in output


def test_a_sidecar_without_fleet_never_loads_redis() -> None:
    """redis-py stays out of memory unless ``[fleet]`` is configured."""
    probe = "import sys, astra.app, astra.cli; print('redis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
