"""Secret redaction for everything astra posts or logs.

Two layers: the configured secrets verbatim (bot token, webhook URLs and tokens, whatever
host they point at) and secret-shaped text (Discord tokens, webhook URLs, bearer tokens,
``password=``-style pairs). Events are redacted once, when they enter the bus, so every
sink downstream (posts, attachments, the terminal preview) only ever sees clean text.

Redaction runs on the event loop for every event, on strings of up to 64 KiB that anyone
who can reach the ingest port chooses. Every pattern here therefore runs in time linear in
its input: each either starts on a literal or only at the start of a run, and nothing
rescans text already rejected (possessive quantifiers, no lazy scan from every offset).
Case-insensitive matching is ASCII-only, so the byte-level pre-check (``suspect``), which
folds case byte by byte, sees every word the patterns can match.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from astra.events import Event, encode

REDACTED = "[redacted]"

_NAMES = r"password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret"
# Case is ignored for ASCII letters only, (?ai:...) or on the text's fold: the pre-check
# folds case byte by byte, and Unicode folding would let "K" (Kelvin sign) or "ſ" stand in
# for k and s unseen.
# What never belongs to a URL written in free text: where a webhook URL starts and ends.
_OUTSIDE_URL = r"\s\"'<>"
# A path separator as written raw, JSON-escaped (\/, \\/, \u002f) or percent-encoded (once
# or twice).
_SLASH = r"(?:\\*+(?:/|u002[Ff])|%(?:25)?2[Ff])"
# The token ends where another webhook path starts: "…/webhooks/1/abcwebhooks/2/xyz" is
# two URLs, and the second token must not hide inside the first.
_WEBHOOK_TAIL = (
    rf"(?ai:webhooks){_SLASH}[0-9]++{_SLASH}"
    r"(?:(?!(?ai:webhooks)[\\%/])[A-Za-z0-9._-])++"
)

# Webhook URLs on any host, with or without a scheme: .../webhooks/<id>/<token>. A match
# starts only where a URL-ish run starts (so no offset inside a long run is retried) and
# covers the run up to the last webhook token in it.
_WEBHOOK = re.compile(
    rf"(?<![^{_OUTSIDE_URL}])[^{_OUTSIDE_URL}]*?{_WEBHOOK_TAIL}"
    rf"(?:[^{_OUTSIDE_URL}]*?{_WEBHOOK_TAIL})*+"
)
# Discord tokens: base64 id (23-28) . timestamp (6-7) . hmac (27-40). Searching from the
# first "." lets the engine skip ahead to dots; the id is then checked backwards. No word
# boundaries: a token glued to letters or underscores is still a token.
_TOKEN_REST = re.compile(r"\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,40}")
_TOKEN_ID = re.compile(r"[A-Za-z0-9_-]{23,28}\Z")
_TOKEN_ID_MAX = 28
# The next two run on the case-folded copy of the text (``_fold``), led by literals the
# engine skips ahead to: many times faster than case-insensitive matching at every offset.
# "Bot" only as a word of its own: "robot" or "chatbot" before a long word is no header.
# The value is matched apart from the word, so a value ending in "bearer" cannot hide the
# header after it ("bearer xxxxxxxxxxxbearer <token>").
_BEARER = re.compile(r"b(?:earer|ot(?<![a-z]bot))[ \t\r\n]++")
_BEARER_VALUE = re.compile(r"[A-Za-z0-9._~+/=-]{16,}+")
# name=value, name: value, "name": "value" (also JSON-escaped), name%3Dvalue. The name may
# be the tail of a longer identifier (DB_PASSWORD, bot_token, accessToken).
_NAME_SEP = re.compile(rf"(?:{_NAMES})(?:\\*+[\"'])?\s*+(?:[=:]|%3[ad])\s*+")
# A quoted value ends at its closing quote or, cut short, at the end of its line.
_QUOTED_VALUE = re.compile(r"\\*+(?:\"(?:[^\"]*+\"|[^\"\n]*+)|'(?:[^']*+'|[^'\n]*+))")
_VALUE = re.compile(rf"{_QUOTED_VALUE.pattern}|[^\s,;&\"'}}]++")
_SECRET_KEY = re.compile(rf"(?ai:{_NAMES})\Z")

# The pre-check, on the bytes of raw JSON or of the encoded event. A JSON string can spell
# whitespace as \t, \n or \r; nothing else in the words below can be escaped except as
# \u escapes (four hex digits), which callers check for first. To scan at memchr speed,
# ``_FOLD`` lower-cases ASCII and turns b, c, k and w (every word has one) into NUL, so one
# search led by a literal NUL finds every word: at each NUL the rest of a word is checked
# around it. The gate is deliberately loose (access_key is found as "ss_key"): a false yes
# only costs the full redaction.
_FOLD = bytes(range(256)).lower().replace(b"\x00", b"\x01")
_FOLD = _FOLD.translate(bytes.maketrans(b"bckw", bytes(4)))
_GATE_WORDS = (
    rb"e(?:\x00hoo\x00s"  # webhooks
    rb"|arer"  # bearer
    rb"|n(?<=to\x00en)"  # token
    rb"|y(?<=api\x00ey|pi[_-]\x00ey|ess\x00ey|ss[_-]\x00ey))"  # api key, access key
    rb"|ot(?:[ \t\r\n]|\\[tnr])"  # "bot " before a token
    rb"|d(?<=p\x00d)"  # pwd
    rb"|ret(?<=se\x00ret)"  # secret, client secret
    rb"|(?<=pass\x00)"  # password, passwd
)
# A configured secret is looked for as a slice of its folded form that starts at a NUL.
_GATE_SLICE = 12
# An int: membership of one byte value is a plain memchr, ten times cheaper than b"\\".
_BACKSLASH = ord("\\")
_SUSPECT_TOKEN = re.compile(rb"\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27}")
# The same words, for the cheap gates in ``text`` (on the text's fold).
_GATE_NAMES = ("passw", "pwd", "secret", "token", "apikey", "api_key", "api-key", "access")


class Redactor:
    """Removes configured secrets and secret-shaped text from strings and events."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: list[str] = []
        self._gate = re.compile(rb"\x00(?:" + _GATE_WORDS + rb")")
        self._slices: list[bytes] = []
        # Secrets the gate cannot hold (no b, c, k or w early enough): looked for whole.
        self._needles: list[bytes] = []
        # Whether some secret has a character JSON may escape more than one way.
        self._escapable = False
        for secret in secrets or []:
            self.add_secret(secret)

    def add_secret(self, secret: str) -> None:
        """Treat ``secret`` as confidential from now on (e.g. a freshly provisioned token)."""
        # Very short strings would redact ordinary words; real tokens are long.
        if len(secret) < 8 or secret in self._secrets:
            return
        self._secrets.append(secret)
        # As the secret appears inside a JSON string (the encoder's one form of each char).
        encoded = msgspec.json.encode(secret)[1:-1]
        if encoded != secret.encode() or "/" in secret:
            self._escapable = True
        folded = encoded.translate(_FOLD)
        anchor = folded.find(b"\x00")
        tail = folded[anchor + 1 : anchor + 1 + _GATE_SLICE] if anchor >= 0 else b""
        if len(tail) < _GATE_SLICE // 2:
            self._needles.append(encoded)
            return
        self._slices.append(re.escape(tail))
        self._gate = re.compile(rb"\x00(?:" + b"|".join((_GATE_WORDS, *self._slices)) + rb")")

    # --- strings -----------------------------------------------------------------------

    def text(self, value: str) -> str:
        """Return ``value`` with every secret replaced by ``[redacted]``."""
        # Every pattern looks at the original text and what they find is replaced at once:
        # replacing pattern by pattern would let one match eat the context of another
        # ("webhooks/1/token=x" losing "token" to the URL and leaving x).
        spans: list[tuple[int, int]] = []
        for secret in self._secrets:
            # Every occurrence, overlapping ones too: secrets may share characters.
            start = value.find(secret)
            while start >= 0:
                spans.append((start, start + len(secret)))
                start = value.find(secret, start + 1)
        folded = _fold(value)
        if "webhooks" in folded:
            spans += [m.span() for m in _WEBHOOK.finditer(value)]
        if "." in value:
            spans += _token_spans(value)
        if "bearer" in folded or "bot" in folded:
            spans += _bearer_spans(value, folded)
        if any(name in folded for name in _GATE_NAMES):
            spans += _pair_spans(value, folded)
        if not spans:
            return value
        spans.sort()
        parts: list[str] = []
        done = 0  # everything before this offset is settled
        for start, end in spans:
            if start > done or not parts:
                parts += (value[done:start], REDACTED)
            # Overlapping or touching spans share one marker.
            done = max(done, end)
        parts.append(value[done:])
        return "".join(parts)

    # --- events ------------------------------------------------------------------------

    def suspect(self, raw: bytes) -> bool:
        """Whether the JSON text ``raw`` may hold something to redact (never a false no).

        Cheap enough to run on every request body or event. A ``\\u`` escape (four hex
        digits) can spell
        any character, so raw JSON holding one is always suspect here; ``event`` with
        ``raw`` looks at the decoded event instead in that case.
        """
        if _BACKSLASH in raw and (b"\\u" in raw or self._escapable):
            return True
        return self._suspect_bytes(raw)

    def event(self, event: Event, raw: bytes | None = None) -> Event:
        """Return the event itself when clean, else a copy with every string redacted.

        Every string counts: fields, keys and values of mappings, items of lists, nested
        structures. ``raw``, the JSON the event was decoded from, makes the check cheaper:
        it is searched instead of encoding the event again.
        """
        if raw is None or (_BACKSLASH in raw and (b"\\u" in raw or self._escapable)):
            # The encoder writes no \u escapes for the words checked and one fixed form for
            # every character, so the encoded event is safe to search byte by byte.
            raw = encode(event)
        if not self._suspect_bytes(raw):
            return event
        data = msgspec.to_builtins(event)
        try:
            return msgspec.convert(self._walk(data, False), type(event))
        except msgspec.ValidationError:
            # "[redacted]" is longer than a short secret, and a string may hold many of
            # them: cut each string to its original length so the event stays in the schema.
            return msgspec.convert(self._walk(data, True), type(event))

    def _suspect_bytes(self, data: bytes) -> bool:
        if self._gate.search(data.translate(_FOLD)) is not None:
            return True
        if _SUSPECT_TOKEN.search(data) is not None:
            return True
        # Rarely any: only secrets with no b, c, k or w early enough land here.
        return bool(self._needles) and any(needle in data for needle in self._needles)

    def _walk(self, value: Any, cap: bool, key: str = "") -> Any:
        if isinstance(value, str):
            clean = REDACTED if _SECRET_KEY.search(key) else self.text(value)
            return clean[: len(value)] if cap else clean
        if isinstance(value, dict):
            return {self._walk(str(k), cap): self._walk(v, cap, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, cap) for v in value]
        return value


def _token_spans(value: str) -> list[tuple[int, int]]:
    """Where Discord-token-shaped runs are in ``value``."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while (rest := _TOKEN_REST.search(value, pos)) is not None:
        dot = rest.start()
        # The id may overlap the token just found ("id.ts.id.ts.hmac"): spans merge later.
        ident = _TOKEN_ID.search(value, max(0, dot - _TOKEN_ID_MAX), dot)
        if ident is None:
            # Not a token here, but one may start at a later dot inside this match.
            pos = dot + 1
            continue
        spans.append((ident.start(), rest.end()))
        pos = rest.end()
    return spans


def _fold(value: str) -> str:
    """``value`` with its ASCII letters lower-cased, every other character kept in place.

    ``str.lower()`` does that but for two characters: "İ" becomes two characters (shifting
    every offset after it) and the Kelvin sign an ASCII "k". Both stand in as "ı" first.
    """
    if not value.isascii():
        value = value.replace("\u0130", "\u0131").replace("\u212a", "\u0131")
    return value.lower()


def _bearer_spans(value: str, folded: str) -> list[tuple[int, int]]:
    """Where the tokens after ``Bearer`` and ``Bot`` are in ``value`` (``folded``: its fold)."""
    spans: list[tuple[int, int]] = []
    for word in _BEARER.finditer(folded):
        if found := _BEARER_VALUE.match(value, word.end()):
            spans.append(found.span())
    return spans


def _pair_spans(value: str, folded: str) -> list[tuple[int, int]]:
    """Where the values of ``name=value``-style pairs are in ``value`` (``folded``: its fold).

    A value may hold another pair (token="password": "x"); its value is found too, but only
    when quoted: an unquoted value inside another one ends where that one ends, and
    scanning it again from every such pair would be quadratic.
    """
    spans: list[tuple[int, int]] = []
    covered = 0
    for pair in _NAME_SEP.finditer(folded):
        start = pair.end()
        found = (_QUOTED_VALUE if start < covered else _VALUE).match(value, start)
        if found is not None:
            spans.append(found.span())
            covered = max(covered, found.end())
    return spans
