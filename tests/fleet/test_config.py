"""``[fleet]`` in config.toml: ``astra check`` accepts it or says what is wrong in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_config import assert_one_line_error, check
from tests.tls import self_signed


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
        ('[fleet]\nredis = "rediss://h/0?ssl_cert_reqs=none"\n', ["fleet.redis", "no ?options"]),
        (
            '[fleet]\nredis = "redis://h/0?password=pw-secret-1234"\n',
            ["fleet.redis", "fleet.tls_ca"],
        ),
    ],
)
def test_fleet_config_errors_are_one_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    """Each mistake in ``[fleet]`` is one line naming the key, exit status 2."""
    code, output = check(tmp_path, text)
    assert_one_line_error(code, output, *needles)
    assert "pw-secret-1234" not in output


def test_tls_ca_with_a_rediss_url_checks_ok(tmp_path: Path) -> None:
    """``fleet.tls_ca`` naming a PEM CA certificate is accepted with a rediss:// URL."""
    cert, _ = self_signed(tmp_path)
    text = f'[fleet]\nredis = "rediss://redis.internal:6380/0"\ntls_ca = "{cert}"\n'
    code, output = check(tmp_path, text)
    assert code == 0, output


@pytest.mark.parametrize(
    ("url", "ca", "needles"),
    [
        ("rediss://h/0", "{dir}/missing.pem", ["fleet.tls_ca", "cannot read", "missing.pem"]),
        ("rediss://h/0", "{dir}", ["fleet.tls_ca", "cannot read"]),
        ("rediss://h/0", "{key}", ["fleet.tls_ca", "no PEM certificate"]),
        ("rediss://h/0", "{broken}", ["fleet.tls_ca", "not a valid PEM certificate"]),
        ("redis://h/0", "{cert}", ["fleet.tls_ca", "only with a rediss:// (TLS) URL"]),
    ],
)
def test_tls_ca_mistakes_are_one_line(
    tmp_path: Path, url: str, ca: str, needles: list[str]
) -> None:
    """A CA file that is missing, unreadable or no certificate, or a CA without TLS: one
    line naming ``fleet.tls_ca``, exit status 2."""
    cert, key = self_signed(tmp_path)
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    path = ca.format(dir=tmp_path, cert=cert, key=key, broken=broken)
    code, output = check(tmp_path, f'[fleet]\nredis = "{url}"\ntls_ca = "{path}"\n')
    assert_one_line_error(code, output, *needles)


def test_a_sidecar_without_fleet_never_loads_redis() -> None:
    """redis-py stays out of memory unless ``[fleet]`` is configured."""
    probe = "import sys, astra.app, astra.cli; print('redis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
