"""Secrets never leave astra: configured ones verbatim, and anything shaped like one."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astra.events import Component, Event, Health, Log, Message, Metric, decode_one, encode
from astra.redaction import Redactor
from tests.test_regex_audit import LIMIT, growth

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
    """Each kind of secret-shaped text is replaced, whatever its host or quoting."""
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
    """Configured secrets, and ones added later, are replaced wherever they appear."""
    redactor = Redactor(["plain-looking-secret-42"])
    assert redactor.text("x plain-looking-secret-42 y") == "x [redacted] y"
    redactor.add_secret("later-provisioned-token")
    assert "later" not in redactor.text("token later-provisioned-token")


def test_ordinary_text_is_untouched() -> None:
    """Text without secrets comes back unchanged; too-short secrets are ignored."""
    redactor = Redactor(["short"])  # too short to be a real secret: ignored
    text = "user 123 ran /play with 3.5 ms latency; short answer; the token bucket is full"
    assert redactor.text(text) == text


def test_events_are_copied_only_when_dirty() -> None:
    """A clean event is returned as is; a dirty one is copied with its id kept."""
    redactor = Redactor()
    clean = Log(level="info", message="all good")
    assert redactor.event(clean) is clean
    dirty = Metric(name="x", value=1, tags={"api_key": "abc", "region": "eu"})
    fixed = redactor.event(dirty)
    assert isinstance(fixed, Metric)
    assert fixed.tags == {"api_key": "[redacted]", "region": "eu"} and fixed.id == dirty.id


def test_keys_nested_values_and_schemeless_urls_are_redacted() -> None:
    """Mapping keys and values are redacted, schemeless webhook URLs included."""
    redactor = Redactor()
    hook = "discord.com/api/webhooks/1419858425424253039/AbC-def_123456789ghijkLMNOP"
    event = Metric(name="x", value=1, tags={hook: "v", "note": f"see {hook}"}, seq=7)
    fixed = redactor.event(event)
    assert isinstance(fixed, Metric)
    assert "AbC-def" not in str(fixed.tags)
    assert (fixed.id, fixed.ts, fixed.seq) == (event.id, event.ts, event.seq)


# --- secrets glued to text, escaped, nested -----------------------------------------------

TOKEN_ID = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ"  # made up: 26 characters of base64
TOKEN_TS = "Gq1w2E"
TOKEN_HMAC = "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa-Q"
TOKEN = f"{TOKEN_ID}.{TOKEN_TS}.{TOKEN_HMAC}"
HOOK_TOKEN = "Hk7-pQ2_rS9tUvWxYz0aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdefGHIJ-_xy"
HOOK_URL = f"https://discord.com/api/webhooks/1419858425424253039/{HOOK_TOKEN}"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"ASTRA_TOKEN_VALUE_{TOKEN}", "ASTRA_TOKEN_VAL"),
        (f"{TOKEN}_and_more", "more"),
        (f"x{TOKEN}y", ""),
        (f"({TOKEN}) and", ") and"),
        (f'"token":"{TOKEN}"', '"token":'),
        (f"{TOKEN}{TOKEN}", ""),
        (f"{'a' * 23}.abcdef.{TOKEN}", ""),
        (f"Bot {TOKEN}", "Bot "),
    ],
)
def test_discord_tokens_glued_to_anything_are_redacted(text: str, kept: str) -> None:
    """A token touching letters, digits, underscores or punctuation is still found."""
    clean = Redactor().text(text)
    assert TOKEN_HMAC not in clean and TOKEN_ID not in clean and TOKEN_TS not in clean
    assert "[redacted]" in clean and kept in clean


@pytest.mark.parametrize(
    "hook",
    [
        HOOK_URL,
        HOOK_URL.replace("://", "%3A%2F%2F").replace("/", "%2F"),
        HOOK_URL.replace("://", "%3a%2f%2f").replace("/", "%2f"),
        HOOK_URL.replace("/", "%252F"),
        HOOK_URL.replace("/", "\\/"),
        HOOK_URL.replace("/", "\\\\/"),
        HOOK_URL.replace("/", "\\u002f"),
        HOOK_URL.replace("webhooks", "WEBHOOKS"),
        HOOK_URL.removeprefix("https://"),
        '{"url": "' + HOOK_URL.replace("/", "\\/") + '"}',
        f"<{HOOK_URL}>",
    ],
)
def test_escaped_webhook_urls_lose_their_token(hook: str) -> None:
    """Percent-encoded, JSON-escaped and split-by-backslash webhook URLs are found too."""
    clean = Redactor().text(f"before {hook} after")
    assert HOOK_TOKEN not in clean
    assert clean.startswith("before ") and clean.endswith(" after") and "[redacted]" in clean


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ('{"password": "hunter2", "user": "bob"}', "hunter2", '"user": "bob"'),
        ("{'password': 'hunter2'}", "hunter2", "{'password'"),
        ('{\\"token\\": \\"abc def\\"} next', "abc def", "next"),
        ("DB_PASSWORD=hunter2 next", "hunter2", "DB_PASSWORD="),
        ("accessToken: abc123xyz next", "abc123xyz", "accessToken:"),
        ("GET /x?bot_token=abc123xyz&page=2", "abc123xyz", "&page=2"),
        ("GET /x?token%3Dabc123xyz", "abc123xyz", "/x?token%3D"),
        ("CLIENT_SECRET = 'zzzz-top-zzzz' next", "zzzz-top-zzzz", "next"),
        ("AUTH_Bearer abcdefghijklmnop1234 next", "abcdefghijklmnop1234", "next"),
        ("Authorization:\tBot abcdefghijklmnop1234", "abcdefghijklmnop1234", "Bot "),
    ],
)
def test_secret_pairs_in_any_notation_are_redacted(text: str, secret: str, kept: str) -> None:
    """name=value pairs are found in JSON, escaped JSON, identifiers and query strings."""
    clean = Redactor().text(text)
    assert secret not in clean and kept in clean and "[redacted]" in clean


@pytest.mark.parametrize("around", ["", "é ", "İ ", "日本 ", "\u212a "])
def test_secrets_next_to_any_unicode_are_redacted(around: str) -> None:
    """Non-ASCII text anywhere in a string changes nothing about what is found."""
    text = f"{around}token:\u00a0hunter2 {around}Bearer abcdefghijklmnop1234 {around}{TOKEN}"
    clean = Redactor().text(text)
    assert "hunter2" not in clean and "abcdefghijklmnop1234" not in clean
    assert TOKEN_HMAC not in clean and clean.startswith(around)


def test_a_kelvin_sign_does_not_spell_a_secret_name() -> None:
    """Only ASCII letters make a name: "toKen" with a Kelvin sign is not "token"."""
    text = "to\u212aen=abc"
    redactor = Redactor()
    assert redactor.text(text) == text and not redactor.suspect(text.encode())


def test_words_that_only_contain_a_trigger_are_untouched() -> None:
    """A robot, a tokenizer or a token count is no secret."""
    text = "robot abcdefghijklmnopqrstu; tokenizer=bert; tokens: 5; max_tokens 12; the bot is up"
    assert Redactor().text(text) == text


def test_keys_ending_in_a_secret_name_hide_their_values() -> None:
    """A tag named like a credential (bot_token, DB_PASSWORD) has its value redacted."""
    event = Metric(name="x", value=1, tags={"bot_token": "v1", "DB_PASSWORD": "v2", "n": "v3"})
    fixed = Redactor().event(event)
    assert isinstance(fixed, Metric)
    assert fixed.tags == {"bot_token": "[redacted]", "DB_PASSWORD": "[redacted]", "n": "v3"}


def test_nested_structures_and_lists_are_redacted() -> None:
    """Strings inside lists and nested structs are redacted like top-level fields."""
    event = Health(
        score=50,
        reasons=[f"leaked {TOKEN}"],
        components=[Component(name="ingest", status="error", detail=f"posting to {HOOK_URL}")],
    )
    fixed = Redactor().event(event, encode(event))
    assert isinstance(fixed, Health)
    text = encode(fixed).decode()
    assert TOKEN_HMAC not in text and HOOK_TOKEN not in text
    assert fixed.reasons == ["leaked [redacted]"]
    assert fixed.components[0].detail == "posting to [redacted]"


def test_redaction_keeps_events_within_the_schema() -> None:
    """Many short secrets make "[redacted]" longer than the text: the event stays valid."""
    redactor = Redactor()
    message = ("pwd=1; " * 10_000)[:65_536]
    events: list[Event] = [
        Metric(name="x", value=1, tags={"a": "pwd=1;" * 166}),
        Log(level="info", message=message),
    ]
    for event in events:
        fixed = redactor.event(event)
        assert decode_one(encode(fixed)) == fixed
        assert "pwd=1" not in encode(fixed).decode()


# --- the pre-check on raw JSON --------------------------------------------------------------


def test_clean_events_are_returned_as_they_are_with_or_without_raw() -> None:
    """The common case costs one check: no copy, whether raw bytes are given or not."""
    redactor = Redactor(["configured-secret-0123456789", HOOK_TOKEN])
    events = [
        Log(level="info", message="user 123 ran /play with 3.5 ms latency", logger="bot.music"),
        Message(guild_id=1, channel_id=2, author_id=3, bot=True, length=5),
        Metric(name="latency", value=1.5, tags={"shard": "0", "cog": "basketball"}),
    ]
    for event in events:
        raw = encode(event)
        assert not redactor.suspect(raw)
        assert redactor.event(event) is event and redactor.event(event, raw) is event


@pytest.mark.parametrize(
    "raw",
    [
        b'{"kind":"log","level":"info","message":"\\u0074oken=hunter2"}',
        b'{"kind":"log","level":"info","message":"pass\\u0077ord=hunter2"}',
        b'{"kind":"log","level":"info","message":"https:\\/\\/x\\/api\\/webhooks\\/1\\/hunter2"}',
        b'{"kind":"log","level":"info","message":"Bot\\tabcdefghijklmnop1234hunter2"}',
        b'{"kind":"log","level":"info","message":"Bot\\nabcdefghijklmnop1234hunter2"}',
        b'{"kind":"log","level":"info","message":"BEARER abcdefghijklmnop1234hunter2"}',
        b'{"kind":"log","level":"info","message":"x\\u0020y Api-Key: hunter2"}',
        b'{"kind":"log","level":"info","message":"see MY-SECRET\\/hunter2"}',
        b'{"kind":"log","level":"info","message":"see my-secret\\u002fhunter2"}',
        b'{"kind":"log","level":"info","message":"plain xyzzy-1234-hunter2"}',
        b'{"kind":"metric","name":"x","value":1,"tags":{"ACCESS_KEY":"hunter2"}}',
        b'{"kind":"metric","name":"x","value":1,"tags":{"\\u0074oken":"hunter2"}}',
    ],
)
def test_the_raw_check_sees_through_json_escapes(raw: bytes) -> None:
    """Whatever JSON escapes hide in the raw bytes, the decoded event is still redacted."""
    redactor = Redactor(["MY-SECRET/hunter2", "my-secret/hunter2", "xyzzy-1234-hunter2"])
    event = decode_one(raw)
    assert "hunter2" in encode(event).decode()
    assert redactor.suspect(raw)
    assert "hunter2" not in encode(redactor.event(event, raw)).decode()
    assert "hunter2" not in encode(redactor.event(event)).decode()


# --- properties: adversarial text, nesting, every JSON spelling ----------------------------

# Prefixes of every pattern, and the characters they consume, as building blocks.
UNITS = [
    *("a", "-", "_", ".", "/", "\\", "%", " ", "\t", "\n", '"', "'", "é", "日本", "\u00a0"),
    # Lower-cased, "İ" grows to two characters and "K" (Kelvin) becomes an ASCII k.
    *("İ", "\u212a"),
    *("0", "=", ":", "&", "}", "<", ">", "\x00"),
    *("webhooks/", "webhooks/1/", "webhooks/1", "WEBHOOKS%2F", "webhooks\\/", "https://"),
    *("http://x/", "%2F", "%252F", "\\/", "\\u002f", "token=", 'token="', "token='"),
    *("token:", 'token=\\"', "password", "api_key=", "secret ", "bearer ", "Bearer ", "bot "),
    *("BOT\t", "a" * 23 + ".abcdef.", ".abcdefg.", "." + "b" * 27, TOKEN_ID, TOKEN_ID + "."),
]
units = st.one_of(
    st.sampled_from(UNITS),
    st.lists(st.sampled_from(UNITS), min_size=2, max_size=4).map("".join),
    st.text(min_size=1, max_size=6),
)
GLUE = ["", " ", "_", "x", '"', "(", "\n", "/", "=", ".", "-", "é", "\\"]
CONFIGURED = "configured-Secret-7f3a9c1e5b"
# A secret as it may be written, and the part of it that must never survive. The parts
# are aperiodic and longer than any repeated unit, so adversarial text cannot spell them.
PLANTED = [
    (TOKEN, TOKEN_HMAC),
    (HOOK_URL, HOOK_TOKEN),
    (HOOK_URL.replace("/", "%2F"), HOOK_TOKEN),
    (HOOK_URL.replace("/", "\\/"), HOOK_TOKEN),
    (HOOK_URL.removeprefix("https://"), HOOK_TOKEN),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
    ("BEARER tk_9f8e7d6c5b4a3f2e1d0c", "tk_9f8e7d6c5b4a3f2e1d0c"),
    ("password=Hunter2-Xq9-Zt8", "Hunter2-Xq9-Zt8"),
    ('"Password": "Hunter2 Xq9 Zt8"', "Hunter2 Xq9 Zt8"),
    ("DB_PASSWORD=Hunter2-Xq9-Zt8", "Hunter2-Xq9-Zt8"),
    ("Api-Key: Hunter2-Xq9-Zt8", "Hunter2-Xq9-Zt8"),
    (CONFIGURED, CONFIGURED),
]


@st.composite
def planted_text(draw: st.DrawFn, max_run: int = 3000) -> tuple[str, str]:
    """Adversarial runs around a planted secret: (text, what must not survive)."""
    written, hidden = draw(st.sampled_from(PLANTED))
    left = repeat(draw(units), draw(st.integers(0, max_run)))
    right = repeat(draw(units), draw(st.integers(0, max_run)))
    glue = st.sampled_from(GLUE)
    return left + draw(glue) + written + draw(glue) + right, hidden


def repeat(unit: str, length: int) -> str:
    """``unit`` over and over, ``length`` characters long."""
    return (unit * (length // len(unit) + 1))[:length]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(planted_text())
def test_planted_secrets_never_survive_adversarial_text(sample: tuple[str, str]) -> None:
    """Whatever runs and prefixes surround a secret, it is gone after redaction."""
    text, hidden = sample
    assert hidden not in Redactor([CONFIGURED]).text(text)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(planted_text(max_run=400), min_size=1, max_size=6), st.data())
def test_planted_secrets_never_survive_in_nested_values(
    samples: list[tuple[str, str]], data: st.DataObject
) -> None:
    """Secrets in tag keys and values, lists and nested structs are all redacted."""
    texts = [text[:1000] if len(text) > 1000 else text for text, _ in samples]
    hidden = [h for (text, h), cut in zip(samples, texts, strict=True) if h in cut]
    events: list[Event] = [
        Metric(name="x", value=1, tags={t[:100]: t for t in texts}),
        Health(
            score=1,
            reasons=texts,
            components=[Component(name=t, status="ok", detail=t) for t in texts],
        ),
    ]
    redactor = Redactor([CONFIGURED])
    for event in events:
        raw = data.draw(st.sampled_from(ENCODERS))(msgspec.to_builtins(event))
        for fixed in (redactor.event(event), redactor.event(event, raw)):
            posted = encode(fixed).decode()
            assert not [h for h in hidden if h in posted]


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(units, min_size=1, max_size=3))
def test_redaction_cost_grows_linearly_on_adversarial_text(pieces: list[str]) -> None:
    """Redacting 64 KiB of the worst text costs about four times 16 KiB's, not sixteen."""
    redactor = Redactor([CONFIGURED])

    def make(n: int) -> str:
        # Each piece gets a third of the text: a long run of it, then the next.
        return "".join(repeat(piece, n // len(pieces)) for piece in pieces)

    assert growth(redactor.text, make) < LIMIT


def test_event_redaction_cost_grows_linearly_with_the_number_of_tags() -> None:
    """60 tags of 1,000 adversarial characters cost about four times 15 tags."""
    redactor = Redactor([CONFIGURED])
    rng = random.Random(7)
    alphabet = "abc/._-=%:" + TOKEN_ID

    def make(count: int) -> Metric:
        tags = {f"token{i}": "".join(rng.choices(alphabet, k=1000)) for i in range(count)}
        tags.update({f"t{i}": "webhooks/" * 111 for i in range(count)})
        return Metric(name="x", value=1, tags=dict(list(tags.items())[:64]))

    assert growth(redactor.event, make, 15) < LIMIT


# --- the raw check never misses what the decoded event holds -------------------------------


def _escape_all(value: Any) -> str:
    """JSON with every character of every string spelled as a \\uXXXX escape."""
    if isinstance(value, str):
        units16 = value.encode("utf-16-be")
        codes = [units16[i : i + 2].hex() for i in range(0, len(units16), 2)]
        return '"' + "".join(f"\\u{c}" for c in codes) + '"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{_escape_all(k)}:{_escape_all(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_escape_all(v) for v in value) + "]"
    return json.dumps(value)


# Ways a client may spell the same event in JSON.
ENCODERS: list[Callable[[Any], bytes]] = [
    msgspec.json.encode,
    lambda v: json.dumps(v).encode(),  # every non-ASCII character as \uXXXX
    lambda v: json.dumps(v, ensure_ascii=False).replace("/", "\\/").encode(),
    lambda v: _escape_all(v).encode(),
]
fragments = st.one_of(
    st.sampled_from([*UNITS, *(w for w, _ in PLANTED), "xyzzy-1234-Hunter", "A/B-secret-77"]),
    st.text(max_size=8),
)
strings = st.lists(fragments, max_size=5).map("".join)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.builds(
            lambda m, lg: {"kind": "log", "level": "info", "message": m, "logger": lg},
            strings,
            strings.map(lambda s: s[:200]),
        ),
        st.builds(
            lambda tags: {"kind": "metric", "name": "x", "value": 1, "tags": tags},
            st.dictionaries(strings.map(lambda s: s[:100]), strings, max_size=4),
        ),
    ),
    st.sampled_from(ENCODERS),
)
def test_the_raw_check_agrees_with_redacting_everything(
    fields: dict[str, Any], encoder: Callable[[Any], bytes]
) -> None:
    """Checking the raw bytes instead of the event never lets a secret through."""
    redactor = Redactor([CONFIGURED, "xyzzy-1234-Hunter", "A/B-secret-77"])
    raw = encoder(fields)
    event = decode_one(raw)
    # Raw bytes holding a trigger word force the full rewrite: the reference result.
    everything = redactor.event(event, b"token")
    assert redactor.event(event, raw) == everything
    assert redactor.event(event) == everything
