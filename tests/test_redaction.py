"""Secrets never leave astra: configured ones verbatim, and anything shaped like one."""

from __future__ import annotations

import pytest

from astra.events import Log, Metric
from astra.redaction import Redactor

BOT_TOKEN = "MTQxOTg1ODQyNTQyNDI1MzAzOQ.GhJkLm.abcdefghijklmnopqrstuvwxyz0123456789AB"


@pytest.mark.parametrize(
    "text",
    [
        f"login failed with {BOT_TOKEN}",
        "POST https://discord.com/api/webhooks/1419858425424253039/AbC-def_123456789ghijkLMNOP",
        "url=http://127.0.0.1:9999/api/v10/webhooks/1419858425424253039/tok-en_12345678 failed",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature",
        "Authorization: Bot someverylongtokenvalue1234567890",
        "dsn postgres://bot:pw@db/x password=hunter2 ok",
        "api_key: 'zzzz-top-zzzz'",
        'secret="quoted value here"',
    ],
)
def test_secret_shaped_text_is_redacted(text: str) -> None:
    redactor = Redactor()
    clean = redactor.text(text)
    assert "[redacted]" in clean
    for fragment in (
        "abcdefghijklmnopqrstuvwxyz0123456789AB",
        "AbC-def_123456789ghijkLMNOP",
        "tok-en_12345678",
        "eyJhbGciOiJIUzI1NiJ9",
        "someverylongtokenvalue",
        "hunter2",
        "zzzz-top-zzzz",
        "quoted value here",
    ):
        assert fragment not in clean


def test_configured_secrets_are_redacted_verbatim() -> None:
    redactor = Redactor(["plain-looking-secret-42"])
    assert redactor.text("x plain-looking-secret-42 y") == "x [redacted] y"
    redactor.add_secret("later-provisioned-token")
    assert "later" not in redactor.text("token later-provisioned-token")


def test_ordinary_text_is_untouched() -> None:
    redactor = Redactor(["short"])  # too short to be a real secret: ignored
    text = "user 123 ran /play with 3.5 ms latency; short answer; the token bucket is full"
    assert redactor.text(text) == text


def test_events_are_copied_only_when_dirty() -> None:
    redactor = Redactor()
    clean = Log(level="info", message="all good")
    assert redactor.event(clean) is clean
    dirty = Metric(name="x", value=1, tags={"api_key": "abc", "region": "eu"})
    fixed = redactor.event(dirty)
    assert isinstance(fixed, Metric)
    assert fixed.tags == {"api_key": "[redacted]", "region": "eu"} and fixed.id == dirty.id


def test_keys_nested_values_and_schemeless_urls_are_redacted() -> None:
    redactor = Redactor()
    hook = "discord.com/api/webhooks/1419858425424253039/AbC-def_123456789ghijkLMNOP"
    event = Metric(name="x", value=1, tags={hook: "v", "note": f"see {hook}"}, seq=7)
    fixed = redactor.event(event)
    assert isinstance(fixed, Metric)
    assert "AbC-def" not in str(fixed.tags)
    assert (fixed.id, fixed.ts, fixed.seq) == (event.id, event.ts, event.seq)
