"""The recipes in conf/experiment/ are what tools/compose_experiments.py makes of conf/model + conf/data."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "compose_experiments", ROOT / "tools" / "compose_experiments.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_recipes_are_up_to_date() -> None:
    assert load_tool().main(["--check"]) == 0


def test_check_reports_an_edited_recipe_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = load_tool()
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    monkeypatch.setattr(tool, "CONF", conf)
    recipe = conf / "experiment" / "stapformer-s_synthmet-27f_cpu-hpe.yaml"
    edited = recipe.read_text().replace("max_epochs: 10", "max_epochs: 11")
    assert edited != recipe.read_text()
    recipe.write_text(edited)
    assert tool.main(["--check"]) == 1
    assert f"stale: {recipe}" in capsys.readouterr().err
    assert recipe.read_text() == edited
    assert tool.main([]) == 0 and "max_epochs: 10" in recipe.read_text()
