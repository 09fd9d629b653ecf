"""The folder tells the architecture: imports run one way, from the wiring down to the base."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "astra"
# What each layer may not import. The base modules (the schemas and pure helpers) import
# no layer; collectors and sinks are siblings that meet only at the bus and the schemas.
LAYERS = ("streams", "collectors", "sinks", "client", "readback", "fleet")
FORBIDDEN: dict[str, set[str]] = {
    "base": {
        "astra.streams",
        "astra.collectors",
        "astra.sinks",
        "astra.client",
        "astra.app",
        "astra.readback",
    },
    "streams": {
        "astra.collectors",
        "astra.sinks",
        "astra.client",
        "astra.app",
        "astra.cli",
        "astra.readback",
    },
    "collectors": {
        "astra.streams",
        "astra.sinks",
        "astra.client",
        "astra.app",
        "astra.cli",
        "astra.readback",
    },
    "sinks": {"astra.collectors", "astra.client", "astra.app", "astra.cli", "astra.readback"},
    "client": {
        "astra.streams",
        "astra.collectors",
        "astra.sinks",
        "astra.app",
        "astra.cli",
        "astra.readback",
    },
    # Reading Discord back uses the Discord transport; the projections it feeds sit above.
    "readback": {"astra.streams", "astra.collectors", "astra.client", "astra.app", "astra.cli"},
    # Fleet mode sits between the wiring and the pipeline it runs (streams, sinks): it
    # never reaches up into the wiring, nor into collectors, the bot's client or read-back.
    "fleet": {"astra.collectors", "astra.client", "astra.app", "astra.cli", "astra.readback"},
}
# Wiring and the command line sit on top and may import anything.
TOP = {
    "app.py",
    "cli.py",
    "__main__.py",
    "top.py",
    "metrics.py",
    "history_commands.py",
    "day_readback.py",
    "fleet_report.py",
}


def layer_of(path: Path) -> str | None:
    """The layer a module belongs to, or None for the wiring on top."""
    relative = path.relative_to(PACKAGE)
    if relative.parts[0] in LAYERS:
        return relative.parts[0]
    return None if relative.name in TOP else "base"


def imported(path: Path) -> set[str]:
    """Every ``astra.*`` module a file imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("astra")}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if layer_of(p) is not None)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above_or_beside_it(path: Path) -> None:
    """A module imports nothing its layer may not depend on."""
    layer = layer_of(path)
    assert layer is not None
    wrong = {
        name
        for name in imported(path)
        for banned in FORBIDDEN[layer]
        if name == banned or name.startswith(banned + ".")
    }
    assert not wrong, f"{path.relative_to(PACKAGE)} ({layer}) imports {sorted(wrong)}"


def test_the_sidecar_has_no_shared_mutable_counter_object() -> None:
    """Figures flow out of each stage's ``statistics()``: no PipelineStats is left."""
    assert not (PACKAGE / "stats.py").exists()
    for path in PACKAGE.rglob("*.py"):
        assert "PipelineStats" not in path.read_text(encoding="utf-8"), path


def test_the_pipeline_does_not_import_fleet_mode() -> None:
    """Only the wiring loads astra.fleet (and redis-py with it), and only with [fleet]."""
    for path in PACKAGE.rglob("*.py"):
        layer = layer_of(path)
        if layer in (None, "fleet"):
            continue
        assert not any(n.startswith("astra.fleet") for n in imported(path)), path
        assert "import redis" not in path.read_text(encoding="utf-8"), path
