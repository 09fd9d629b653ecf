"""``astra check`` on the status board, ping, thread, forum and heartbeat options."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_config import assert_one_line_error, check

SECRET_URL = "ftp://hb.example/api/push/very-secret-token"


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('[alerts]\nmention_role = "abc"\n', ["alerts.mention_role", "not a Discord role id"]),
        ("[alerts]\nmention_users = [12]\n", ["alerts.mention_users[0]", "not a Discord user id"]),
        ('[alerts]\nmention_users = "1234"\n', ["alerts.mention_users", "expected `array`"]),
        ("[channels.logs]\nthread_id = 99\n", ["channels.logs.thread_id", "not a Discord thread"]),
        (
            "[channels.logs]\nforum = true\nthread_id = 123456789012345678\n",
            ["channels.logs.thread_id", "exclude each other"],
        ),
        ('[channels.logs]\nthread_name = "x"\n', ["channels.logs.thread_name", "forum = true"]),
        (
            '[channels.logs]\nforum = true\nthread_name = "{day} logs"\n',
            ["channels.logs.thread_name", "{date} and {channel}"],
        ),
        (
            '[channels.logs]\nforum = true\nthread_name = "{date"\n',
            ["channels.logs.thread_name", "{date} and {channel}"],
        ),
        (
            f'[channels.logs]\nforum = true\nthread_name = "{"x" * 101}"\n',
            ["channels.logs.thread_name", "1 to 100 characters"],
        ),
        ('[channels.logs]\nnotify = "yes"\n', ["channels.logs.notify", "expected `bool`"]),
        (f'[heartbeat]\nurl = "{SECRET_URL}"\n', ["heartbeat.url", "not an http(s) URL"]),
        ("[heartbeat]\ninterval = 0.5\n", ["heartbeat.interval", ">= 1"]),
        ("[heartbeat]\nevery = 5\n", ["heartbeat.every", "unknown key"]),
        ("[status_board]\nenabled = 1\n", ["status_board.enabled", "expected `bool`"]),
    ],
)
def test_board_options_errors_are_one_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    """Each bad value is one line naming the key; the heartbeat URL is never echoed."""
    code, output = check(tmp_path, text)
    assert_one_line_error(code, output, *needles)
    assert "very-secret-token" not in output


def test_board_options_accepted(tmp_path: Path) -> None:
    """Valid ping, thread, forum, notify and heartbeat options pass the check."""
    text = """
[alerts]
mention_role = "123456789012345678"
mention_users = ["223456789012345678", 323456789012345678]
[channels.logs]
forum = true
thread_name = "{date} {channel}"
[channels.analytics]
thread_id = "423456789012345678"
notify = true
[heartbeat]
url = "https://hb.example/api/push/abc?status=up"
interval = 30
[status_board]
enabled = false
"""
    code, output = check(tmp_path, text)
    assert code == 0, output
