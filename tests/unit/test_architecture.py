"""The architecture holds by checks, not by good intentions: the import layers of
docs/architecture.md (lint-imports), and every module and function of a readable size."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SRC = ROOT / "src" / "jobgate"
LINT = Path(sys.executable).with_name("lint-imports")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60  # STYLE.md says ~50: a little slack for signatures and docstrings


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")
def test_the_layers_hold_and_an_upward_import_breaks_them(tmp_path: Path) -> None:
    assert _lint(ROOT).returncode == 0, _lint(ROOT).stdout
    copy = tmp_path / "repo"
    shutil.copytree(SRC, copy / "src" / "jobgate", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    engine = copy / "src" / "jobgate" / "engine" / "callbacks.py"
    engine.write_text(engine.read_text() + "\nimport jobgate.api  # an engine reaching a door\n")
    broken = _lint(copy)
    assert broken.returncode != 0
    assert "jobgate.engine.callbacks -> jobgate.api" in broken.stdout


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split it"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.name}: {node.name} is {length} lines"
