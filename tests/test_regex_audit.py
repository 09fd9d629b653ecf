"""Every regular expression in astra runs in time linear in its input, whatever the input.

Text from the network (events of up to 64 KiB) reaches most of these patterns, on the event
loop: one pattern that retries a long scan from every offset stalls ingest for seconds. Each
pattern is run, the way astra runs it, on adversarial input of n and 4n characters: long
unbroken runs of what it consumes and its own prefixes repeated. Linear work grows about
four times; quadratic work sixteen times. ``test_every_pattern_in_astra_is_audited`` fails
when a pattern is added without a case here.
"""

from __future__ import annotations

import ast
import gc
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import thread_time
from types import ModuleType
from typing import TypeVar

import pytest

from astra import config, redaction
from astra.readback import when
from astra.sinks import attachments, messages, preview

try:
    problems: ModuleType = importlib.import_module("astra.problems")
except ImportError:  # before the problem fingerprints moved out of the event schema
    problems = importlib.import_module("astra.events")

# Input sizes: n and 4n characters, 4n being the largest string an event field may hold.
N = 16 * 1024
# Linear work grows ~4x from n to 4n, quadratic ~16x: the limit sits between, with room
# for a noisy machine.
LIMIT = 12.0
_T = TypeVar("_T")
ASTRA = Path(__file__).resolve().parent.parent / "astra"


def seconds_per_call(fn: Callable[[], object], repeat: int = 5, budget: float = 0.01) -> float:
    """The best time per call over ``repeat`` samples, each of enough calls to fill ``budget``.

    Time is this thread's CPU time, the work itself: a wall clock would also count the time
    other processes hold the cores (the suite runs tests in parallel on few cores), and the
    growth from n to 4n would show the machine's load, not the pattern's. The best of several
    samples is the least disturbed by what remains (caches, interrupts).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = thread_time()
        fn()
        best = thread_time() - start
        number = max(1, int(budget / max(best, 1e-6)))
        for _ in range(repeat):
            start = thread_time()
            for _ in range(number):
                fn()
            best = min(best, (thread_time() - start) / number)
        return best
    finally:
        if enabled:
            gc.enable()


def growth(run: Callable[[_T], object], make: Callable[[int], _T], n: int = N) -> float:
    """How much longer ``run(make(4 * n))`` takes than ``run(make(n))``."""
    small, large = make(n), make(4 * n)
    base = seconds_per_call(lambda: run(small))
    # Superlinear work shows at once (seconds at 4n): two slow calls are evidence enough,
    # no need to sit through the full repeats.
    slow = LIMIT * base * 2
    first = seconds_per_call(lambda: run(large), repeat=1, budget=0)
    if first > slow:
        return min(first, seconds_per_call(lambda: run(large), repeat=1, budget=0)) / base
    return seconds_per_call(lambda: run(large)) / base


def repeated(unit: str) -> Callable[[int], str]:
    """Input of a given length: ``unit`` over and over (a run when ``unit`` is one char)."""
    return lambda n: (unit * (n // len(unit) + 1))[:n]


def then(unit: str, tail: str) -> Callable[[int], str]:
    """``unit`` repeated, then ``tail``: a long run that fails only at its very end."""
    return lambda n: repeated(unit)(n - len(tail)) + tail


@dataclass(frozen=True)
class Case:
    """One pattern, how astra runs it, and inputs built to make it work hardest."""

    name: str
    sources: tuple[str, ...]  # the patterns' text, to check every pattern in astra has a case
    run: Callable[[str], object]
    inputs: tuple[tuple[str, Callable[[int], str]], ...]
    quadratic: str = ""  # why it is known to be superlinear (an expected failure)
    # Known superlinear cases run smaller: at 64 KiB one call would take seconds.
    n: int = N


def inputs(
    *units: str, tails: tuple[tuple[str, str], ...] = ()
) -> tuple[tuple[str, Callable[[int], str]], ...]:
    """Each unit repeated, and each (unit, tail) as a run failing at its end; labelled."""
    runs = [(repr(u), repeated(u)) for u in units]
    return (*runs, *((f"{u!r}...{t!r}", then(u, t)) for u, t in tails))


def _compiled(
    name: str,
    pattern: re.Pattern[str],
    use: str,
    *units: str,
    tails: tuple[tuple[str, str], ...] = (),
) -> Case:
    """An audit case for a compiled pattern, run through its ``use`` method."""
    method = getattr(pattern, use)
    run = (lambda s: method("#", s)) if use == "sub" else method
    return Case(name, (pattern.pattern,), run, inputs(*units, tails=tails))


_REDACTOR = redaction.Redactor(["configured-secret-0123456789", "a" * 40 + "Z"])
_TOKEN_LIKE = "MTQxOTg1ODQyNTQyNDI1MzAzOQ.GhJkLm.abcdefghijklmnopqrstuvwxyz0123456789AB"
_SSL_REASON = r"(?<!\s)\s*\(_ssl\.c:\d+\)"


def _on_fold(spans: Callable[[str, str], object]) -> Callable[[str], object]:
    """Run ``spans`` as Redactor.text does: on the text and its case-folded copy."""
    return lambda s: spans(s, redaction._fold(s))


CASES: list[Case] = [
    # --- astra/redaction.py: every event's strings, on the event loop ----------------------
    _compiled(
        "redaction._WEBHOOK",
        redaction._WEBHOOK,
        "sub",
        *("a", "webhooks/", "webhooks/1/", "webhooks/1", "webhooks/1/a ", "https://", "%2F"),
        *("%252F", "\\/", "\\", "webhooks\\\\\\", "webhooks%2F1%2F", "/webhooks"),
        *("webhooks/1/a'x", "webhooks/1/awebhooks"),
        tails=(("a", "webhooks/1/abc"), ("webhooks/", "1/abc"), ("\\", "/")),
    ),
    Case(
        "redaction._TOKEN_REST/_TOKEN_ID",
        (redaction._TOKEN_REST.pattern, redaction._TOKEN_ID.pattern),
        redaction._token_spans,
        inputs(
            *("a", ".", "a.", ".abcdef", ".abcdefg.", "." + "a" * 6 + "." + "b" * 27),
            *("a" * 22 + ".abcdef." + "b" * 27, "a" * 30 + ".abcdef." + "b" * 40),
            *(_TOKEN_LIKE + "x", _TOKEN_LIKE + " ", _TOKEN_LIKE),
        ),
    ),
    Case(
        "redaction._BEARER/_BEARER_VALUE",
        (redaction._BEARER.pattern, redaction._BEARER_VALUE.pattern),
        _on_fold(redaction._bearer_spans),
        inputs(
            *("bearer ", "bot ", "Bearer\t", "bot     ", "bearer a", "a", " ", "bearerbearer "),
            *("BOT ", "İ", "\u212a"),
            tails=((" ", "x"), ("a", "bot " + "a" * 15), ("bearer ", "a" * 15)),
        ),
    ),
    Case(
        "redaction._NAME_SEP/_VALUE/_QUOTED_VALUE",
        (redaction._NAME_SEP.pattern, redaction._VALUE.pattern, redaction._QUOTED_VALUE.pattern),
        _on_fold(redaction._pair_spans),
        inputs(
            *("token=", 'token="', "token='", 'token=\\"', "token\\", "password", "pwd"),
            *("token:  ", "api_key%3D", "secret ", "token", '"', "\\", "token=password="),
            *('token="password": "', "token='password=\"", "TOKEN=", "a", "İtoken="),
            tails=(("token", '\\\\\\"'), (" ", "x"), ('token="', "x"), ("token=\\", '"')),
        ),
    ),
    _compiled("redaction._SECRET_KEY", redaction._SECRET_KEY, "search", "password", "toke", "a"),
    Case(
        "redaction gate (Redactor.suspect)",
        (redaction._SUSPECT_TOKEN.pattern.decode(),),
        lambda s: _REDACTOR.suspect(s.encode()),
        inputs("a", ".abcdef.", "pass", "bot", "to", "bbbb", "\x00", "webhook", "aaaaa"),
    ),
    Case(
        "Redactor.text (every pattern together, configured secrets too)",
        (),
        _REDACTOR.text,
        inputs(
            *("a", "token=", "webhooks/", "https://", "bearer ", "a" * 23 + ".abcdef."),
            *("configured-secret-012345678", "é", "日本", " "),
        ),
    ),
    # --- astra/problems.py: the first line of every error-like message --------------------
    _compiled(
        "problems._NUMBERS",
        problems._NUMBERS,
        "sub",
        *("1", "1.", "0x", "1.1", "a1", "0x1g"),
        tails=(("1", "x"), ("1", ".1x")),
    ),
    _compiled("problems._QUOTED", problems._QUOTED, "sub", "'", '"', "'\"", "a", "\"'a"),
    _compiled(
        "problems._FRAME",
        problems._FRAME,
        "findall",
        *('File "', 'File "x", line ', 'File "x", line 1, in ', '"'),
        tails=(('File "x", line 1, in ', "x"),),
    ),
    # --- astra/sinks: every posted text --------------------------------------------------
    _compiled("messages._MARKDOWN", messages._MARKDOWN, "sub", "*", "a", "\\"),
    _compiled("messages._MENTION", messages._MENTION, "sub", "@", "<", "@ ", "<@", "<<"),
    _compiled("messages._BACKTICK_RUN", messages._BACKTICK_RUN, "sub", "`", "`a"),
    _compiled(
        "preview._TIMESTAMP",
        preview._TIMESTAMP,
        "sub",
        *("<t:", "<t:1", "<t:1:", "1"),
        tails=(("1", ":R>"),),
    ),
    _compiled("preview._ESCAPE", preview._ESCAPE, "sub", "\\", "\\*", "a"),
    # --- astra/readback/when.py: --since / --until as typed -------------------------------
    _compiled("when._SPAN", when._SPAN, "fullmatch", "1", "1m", "m", tails=(("1", "x"),)),
    # --- astra/sinks/attachments.py: file names read back from Discord --------------------
    _compiled(
        "attachments._NAME",
        attachments._NAME,
        "fullmatch",
        *("events-", "events-logs-", "events-logs-ab12-", "events-logs-ab12-1-", "1", "a"),
        tails=(("events-logs-ab12-1-", "1.jsonl.gz"), ("1", ".jsonl.gz")),
    ),
    _compiled(
        "attachments._LEGACY_NAME",
        attachments._LEGACY_NAME,
        "fullmatch",
        *("events-", "events-logs-", "events-logs-1-", "1", "a"),
        tails=(("events-logs-1-", "1.jsonl.gz"), ("1", ".jsonl.gz")),
    ),
    # --- astra/config.py: the operator's config file --------------------------------------
    _compiled("config._ENV_REF", config._ENV_REF, "sub", "${", "${a", "$", "a"),
    Case(
        "config._ENV_REF (defaults)",
        (config._ENV_REF.pattern,),
        lambda s: config._ENV_REF.sub("#", s),
        inputs("${a:-", "${a:-x"),
    ),
    _compiled(
        "config._WEBHOOK_PATH",
        config._WEBHOOK_PATH,
        "search",
        *("/webhooks/", "/webhooks/123456789012345678/", "/webhooks/123456789012345678/abcdefgh"),
        "1",
        tails=(("/webhooks/123456789012345678/", "a" * 300), ("a", "/x")),
    ),
    _compiled("config._TOKEN", config._TOKEN, "fullmatch", "a", " ", "a" * 15 + " "),
    _compiled("config._CLOCK_TIME", config._CLOCK_TIME, "fullmatch", "1", "12:", "23:59"),
    _compiled("config routes index", re.compile(r"\[\d+\]"), "sub", "[", "[1", "1"),
    Case(
        "config unknown field",
        (r"Object contains unknown field `(.+)`",),
        lambda s: re.match(r"Object contains unknown field `(.+)`", s),
        inputs(tails=(("Object contains unknown field `", "`"),)),
    ),
    _compiled("config api version", re.compile(r"/api/v(\d+)$"), "search", "/api/v", "/api/v1"),
    _compiled("config display name", re.compile(r"(?i)clyde|discord"), "search", "clyd", "discor"),
    _compiled("config display name", re.compile(r"[@#:]|```"), "search", "``a"),
    _compiled("config ssl reason", re.compile(_SSL_REASON), "sub", "(_ssl.c:", "(_ssl.c:1"),
    Case(
        "config ssl reason (whitespace)",
        (_SSL_REASON,),
        lambda s: re.sub(_SSL_REASON, "", s),
        inputs(" ", " \t"),
    ),
]

# Patterns built at run time, with why they need no case here.
DYNAMIC = {
    ("astra/redaction.py", r"b'\\x00(?:' + _GATE_WORDS + b')'"): (
        "the pre-check gate, audited through Redactor.suspect"
    ),
    ("astra/redaction.py", r"b'\\x00(?:' + b'|'.join((_GATE_WORDS, *self._slices)) + b')'"): (
        "the pre-check gate with secrets, audited through Redactor.suspect"
    ),
    ("astra/config.py", "proc.pattern"): "compiled only to validate the operator's pattern",
    ("astra/collectors/process.py", "spec.pattern"): (
        "the operator's own pattern over local command lines, never network input"
    ),
}

_RE_FUNCTIONS = {"compile", "search", "match", "fullmatch", "sub", "subn", "split", "findall"}
_RE_FUNCTIONS |= {"finditer"}


def _params() -> list[pytest.ParameterSet]:
    """One parameter set per case and input, xfail where the case is known quadratic."""
    params = []
    for case in CASES:
        for label, make in case.inputs:
            marks = (
                [pytest.mark.xfail(strict=True, reason=case.quadratic)] if case.quadratic else []
            )
            params.append(pytest.param(case, make, id=f"{case.name}-{label}", marks=marks))
    return params


@pytest.mark.parametrize(("case", "make"), _params())
def test_pattern_runs_in_linear_time(case: Case, make: Callable[[int], str]) -> None:
    """Running the pattern on 4n characters of its worst input costs about 4x n's, not 16x."""
    ratio = growth(case.run, make, case.n)
    assert ratio < LIMIT, f"{case.name}: {ratio:.1f}x slower on 4x the input"


def _patterns_in_astra() -> tuple[set[str], set[tuple[str, str]]]:
    """Every pattern text in astra/**/*.py, and the patterns built at run time."""
    found: set[str] = set()
    dynamic: set[tuple[str, str]] = set()
    for path in sorted(ASTRA.rglob("*.py")):
        where = path.relative_to(ASTRA.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = ".".join(path.relative_to(ASTRA.parent).with_suffix("").parts)
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.func.attr in _RE_FUNCTIONS
                and node.args
            ):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str | bytes):
                found.add(arg.value if isinstance(arg.value, str) else arg.value.decode())
                continue
            compiled = _module_level_name(tree, node)
            if compiled is not None:
                pattern = getattr(importlib.import_module(module), compiled).pattern
                found.add(pattern if isinstance(pattern, str) else pattern.decode())
                continue
            dynamic.add((where, ast.unparse(arg)))
    return found, dynamic


def _module_level_name(tree: ast.Module, call: ast.Call) -> str | None:
    """The name a module-level ``NAME = re.compile(...)`` binds, if ``call`` is one."""
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and statement.value is call:
            target = statement.targets[0]
            return target.id if isinstance(target, ast.Name) else None
    return None


def test_every_pattern_in_astra_is_audited() -> None:
    """A regular expression added anywhere in astra needs a linear-time case above."""
    found, dynamic = _patterns_in_astra()
    audited = {source for case in CASES for source in case.sources}
    assert found - audited == set(), "patterns with no linear-time case in this file"
    assert dynamic - set(DYNAMIC) == set(), "patterns built at run time, not yet reviewed"
