"""Config errors a user can make: one line naming the key, exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sidecar import run_cli

REPO = Path(__file__).resolve().parents[2]


def check(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``astra check`` on a config of ``text``: the exit status and all the output."""
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    result = run_cli("check", "--config", str(path), env=env)
    return result.returncode, result.stderr + result.stdout


def assert_one_line_error(code: int, output: str, *needles: str) -> None:
    """Exit status 2 and one line of output, no traceback, holding every needle."""
    assert code == 2, output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_shipped_config_is_valid_and_previews_every_channel() -> None:
    """``astra check`` accepts the shipped config.toml and shows every channel as previewed."""
    result = run_cli("check", "--config", str(REPO / "config.toml"))
    assert result.returncode == 0, result.stderr
    for name in ("analytics", "diagnostics", "logs", "performance"):
        assert f"{name}=preview" in result.stdout


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[flush]\nintervall = 30\n", ["flush.intervall", "unknown key"]),
        ("[nope]\nx = 1\n", ["nope", "unknown key"]),
        ('[flush]\ninterval = "soon"\n', ["flush.interval", "expected `float`"]),
        ("[flush]\ninterval = 0\n", ["flush.interval", ">= 0.1"]),
        (
            "[channels.analytics]\nid = 12345\n",
            ["channels.analytics.id", "not a Discord channel id"],
        ),
        ('[channels.logs]\nid = "abc"\n', ["channels.logs.id", "not a Discord channel id"]),
        ("[channels.chat]\nid = 1419858425424253039\n", ["channels.chat", "unknown key"]),
        (
            '[channels.logs]\nwebhook = "https://example.com/x"\n',
            ["channels.logs.webhook", "not a webhook URL"],
        ),
        ("[flush\ninterval = 30\n", ["TOML syntax error"]),
        ('[routes]\nmessage = "chat"\n', ["routes.message", "unknown channel"]),
        ('[routes]\nmesage = "logs"\n', ["routes.mesage", "unknown event kind"]),
        ('[discord]\napi_base = "https://discord.com/api"\n', ["discord.api_base", "version"]),
        (
            '[discord]\napi_base = "https://discord.com/api/v6"\n',
            ["discord.api_base", "8 or later"],
        ),
        ('[discord]\nwebhook_name = "discord-logs"\n', ["discord.webhook_name", "'discord'"]),
        ('[discord]\nusername = "   "\n', ["discord.username", "blank"]),
        ('[discord]\nusername = "ops@home"\n', ["discord.username", "@"]),
        ('[ingest]\nhttp = "localhost"\n', ["ingest.http", "host:port"]),
        (
            '[discord]\ntoken = "${ASTRA_TEST_UNSET_TOKEN}"\n',
            ["discord.token", "ASTRA_TEST_UNSET_TOKEN", "not set"],
        ),
    ],
)
def test_config_errors_are_one_clear_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    """Each config mistake is one line naming the key and the problem, with exit status 2."""
    code, output = check(tmp_path, text)
    assert_one_line_error(code, output, *needles)


def test_bad_webhook_url_is_not_echoed(tmp_path: Path) -> None:
    """A malformed webhook URL is named by its key but never echoed (it may hold a token)."""
    secret = "https://example.com/hooks/sekrit-token-value"
    code, output = check(tmp_path, f'[channels.logs]\nwebhook = "{secret}"\n')
    assert_one_line_error(code, output, "channels.logs.webhook")
    assert "sekrit" not in output


def test_environment_interpolation_and_defaults(tmp_path: Path) -> None:
    """``${VAR}`` takes the environment's value, and ``${VAR:-default}`` its default when unset."""
    text = (
        '[channels.logs]\nid = "${ASTRA_TEST_ID}"\n'
        'webhook = "${ASTRA_TEST_HOOK:-https://discord.com/api/webhooks/141985842542425303/tok-en_123}"\n'
    )
    code, output = check(tmp_path, text, env={"ASTRA_TEST_ID": "1419858425424253039"})
    assert code == 0, output
    assert "logs=webhook" in output


def test_config_path_from_environment(tmp_path: Path) -> None:
    """Without --config, ASTRA_CONFIG names the config file."""
    path = tmp_path / "elsewhere.toml"
    path.write_text("[flush]\ninterval = 5\n", encoding="utf-8")
    result = run_cli("check", env={"ASTRA_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert str(path) in result.stdout


def test_missing_file(tmp_path: Path) -> None:
    """A config file that does not exist is a one-line error."""
    result = run_cli("check", "--config", str(tmp_path / "absent.toml"))
    assert_one_line_error(result.returncode, result.stderr + result.stdout, "file not found")


def test_run_refuses_to_start_with_the_same_message(tmp_path: Path) -> None:
    """``astra run`` refuses a bad config with exit status 2 and the message ``check`` gives."""
    path = tmp_path / "config.toml"
    path.write_text("[flush]\nintervall = 30\n", encoding="utf-8")
    checked = run_cli("check", "--config", str(path))
    ran = run_cli("run", "--config", str(path))
    assert ran.returncode == 2
    assert ran.stderr == checked.stderr
    assert ran.stdout == ""
