"""W&B sweep files: every grid point gives a command line that ``pose2met fit`` accepts."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
import yaml

from pose2met.cli import cli_main

REPO = Path(__file__).resolve().parents[2]
SWEEPS = sorted((REPO / "conf" / "sweeps").glob("*.yaml"))


def grid(parameters: dict) -> list[dict]:
    """All combinations of a W&B grid (``values`` lists and fixed ``value``s)."""
    keys = list(parameters)
    options = [p["values"] if "values" in p else [p["value"]] for p in parameters.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*options)]


def wandb_args(point: dict) -> list[str]:
    """``${args}`` as W&B writes it: ``--key=value`` with Python's ``str`` of the value."""
    return [f"--{k}={v}" for k, v in point.items()]


def test_sweep_files_exist() -> None:
    names = {p.stem.split("_")[0] for p in SWEEPS}
    assert {"t4-frames", "t6-stap-kernel-stride", "t7-mixer-stap", "t3-t8-energy-settings"} <= names


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.stem)
def test_sweep_commands_parse(sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    spec = yaml.safe_load(sweep.read_text())
    assert spec["method"] == "grid" and spec["program"] == "pose2met"
    command = spec["command"]
    assert command[:3] == ["${env}", "${program}", "fit"] and command[-1] == "${args}"
    points = grid(spec["parameters"])
    assert len(points) >= 6
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["pose2met"])
    for point in (points[0], points[-1]):
        args = [*command[2:-1], *wandb_args(point), "--print_config"]
        with pytest.raises(SystemExit) as stop:
            cli_main(args)
        assert stop.value.code in (0, None)
        config = yaml.safe_load(capsys.readouterr().out)
        for key, value in point.items():
            node = config
            for part in key.split("."):
                node = node[part]
            expected = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
            assert node == expected, f"{sweep.name}: {key} = {node!r}, expected {expected!r}"
