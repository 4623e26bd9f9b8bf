"""The code stays clean: ruff, mypy --strict on src/, and the layer contracts (import-linter).

They run inside the test suite so that `uv run pytest` is the one command that checks everything,
locally and in CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(argv[0], path=str(Path(sys.executable).parent))
    assert tool, f"{argv[0]} is not installed in the project environment"
    return subprocess.run([tool, *argv[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_ruff_is_clean() -> None:
    """ruff finds nothing in src/, tests/ and bench/."""
    result = _run("ruff", "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(600)
def test_mypy_strict_is_clean() -> None:
    """mypy --strict finds nothing in src/."""
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_contracts_hold() -> None:
    """The domain core imports no I/O layer; adapters do not reach up into the job/HTTP layers."""
    result = _run("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr
