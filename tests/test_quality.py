"""The code stays ruff- and mypy-clean: checked as part of the suite, so CI enforces it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    """The tool installed beside this Python (or on PATH); fails the test when missing."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def test_ruff_is_clean() -> None:
    """ruff finds nothing in the package, the tests, the benchmarks and the examples."""
    result = subprocess.run(
        [_tool("ruff"), "check", "astra", "tests", "bench", "examples"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    """mypy strict finds nothing in the package, the tests, the benchmarks and the examples."""
    scope = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert scope["strict"] and {"astra", "tests"} <= set(scope["files"]), scope
    result = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
