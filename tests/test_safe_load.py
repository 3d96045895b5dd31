"""Weights-only loading: every kind of unreadable file gives one line naming the file and the reason."""

from __future__ import annotations

import argparse
import pickle
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from pose2met.compat import OfficialWeightsError, load_official_stapformer
from pose2met.lit.checkpoint import CheckpointError, describe_mismatch, read_checkpoint
from pose2met.models import CalorieHead
from pose2met.safe_load import check_checkpoint_path, load_torch_file

TINY_OFFICIAL_CONFIG = {"depth": 1, "dim_feat": 16, "dim_rep": 16, "num_heads": 2, "num_frames": 9}


def _write_bad_files(root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words the error must contain)."""
    good = root / "good.pt"
    torch.save({"w": torch.ones(3)}, good)
    foreign = root / "foreign.pt"
    torch.save({"args": argparse.Namespace(lr=1.0), "w": torch.ones(3)}, foreign)
    files = {
        "empty": (b"", "empty, truncated or not written by torch.save"),
        "text": (b"hello world\n", "empty, truncated or not written by torch.save"),  # KeyError in torch
        "binary": (bytes(range(5, 205)), "empty, truncated or not written by torch.save"),
        "plain pickle": (pickle.dumps({"a": 1}, protocol=4), "not written by torch.save"),
        "truncated zip": (good.read_bytes()[:300], "truncated or corrupted zip archive"),
    }
    cases = {}
    for name, (content, words) in files.items():
        path = root / f"{name.replace(' ', '_')}.pt"
        path.write_bytes(content)
        cases[name] = (path, words)
    cases["foreign object"] = (foreign, "argparse.Namespace")
    return cases


def test_valid_file_loads(tmp_path: Path) -> None:
    torch.save({"w": torch.arange(3.0)}, tmp_path / "ok.pt")
    loaded = load_torch_file(tmp_path / "ok.pt", ValueError)
    assert torch.equal(loaded["w"], torch.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("loader", ["checkpoint", "official"])
def test_unreadable_files_give_one_line_errors(loader: str, tmp_path: Path) -> None:
    for name, (path, words) in _write_bad_files(tmp_path).items():
        with pytest.raises((CheckpointError, OfficialWeightsError)) as info:
            if loader == "checkpoint":
                read_checkpoint(path)
            else:
                load_official_stapformer(path, TINY_OFFICIAL_CONFIG)
        message = str(info.value)
        assert message.startswith(f"{path}: not a readable PyTorch checkpoint"), (name, message)
        assert words in message, (name, message)
        assert "\n" not in message and "\x1b" not in message, (name, message)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nope\.ckpt: checkpoint file not found"):
        read_checkpoint(tmp_path / "nope.ckpt")


def _net(width: int, extra: bool = False) -> torch.nn.Module:
    layers = [torch.nn.Linear(4, width), torch.nn.BatchNorm1d(width)] + (
        [torch.nn.Linear(width, 2)] if extra else []
    )
    return torch.nn.Sequential(*layers)


def _head(kcal_max: float, bf16_centres: bool = False) -> torch.nn.Module:
    head = CalorieHead(4, num_bins=300, kcal_max=kcal_max, hidden=2)
    if bf16_centres:  # a checkpoint of a bf16 model stores rounded centres
        head.bin_centers = head.bin_centers.bfloat16().float()
    return head


@pytest.mark.parametrize(
    ("source", "target"),
    [(_net(8), _net(8)), (_net(8), _net(6)), (_net(8, extra=True), _net(8)), (_net(8), _net(8, extra=True)),
     (_head(1000.0), _head(800.0)), (_head(1000.0, bf16_centres=True), _head(1000.0))],
    ids=["same", "widths", "unexpected", "missing", "kcal-range", "bf16-rounded-bins"],
)  # fmt: skip
def test_describe_mismatch_agrees_with_strict_loading(
    source: torch.nn.Module, target: torch.nn.Module
) -> None:
    """The one-line summary is given exactly when torch's strict load refuses, with torch's key counts."""
    state = source.state_dict()
    problem = describe_mismatch(target.state_dict(), state)
    try:
        target.load_state_dict(state)
        refused = None
    except RuntimeError as err:
        refused = str(err)
    assert (problem is None) == (refused is None), (problem, refused)
    if refused is not None:
        assert "\n" not in problem
        own = set(target.state_dict())
        for count, what in ((len(own - set(state)), "missing"), (len(set(state) - own), "unexpected")):
            assert (f"{count} {what} key(s)" in problem) == (count > 0), problem
        assert ("size mismatch" in refused) == ("shape difference" in problem), problem
        assert ("stored bins differ" in refused) == ("energy bin difference" in problem), problem


def test_checkpoint_urls_are_read_like_lightning_reads_them(tmp_path: Path, monkeypatch) -> None:
    """``--ckpt_path`` URLs are fetched before training starts: content back, or one line naming the URL."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # http downloads go to torch's hub cache
    for proxy in ("no_proxy", "NO_PROXY"):  # a proxy would answer for 127.0.0.1 with its own error
        monkeypatch.setenv(proxy, "*")
    torch.save({"state_dict": {"w": torch.arange(2.0)}}, tmp_path / "run.ckpt")
    loaded = check_checkpoint_path(f"file://{tmp_path / 'run.ckpt'}", CheckpointError)
    assert torch.equal(loaded["state_dict"]["w"], torch.tensor([0.0, 1.0]))
    missing = f"file://{tmp_path / 'absent.ckpt'}"
    with pytest.raises(CheckpointError, match=rf"^{missing}: could not read the checkpoint \(FileNotFound"):
        check_checkpoint_path(missing, CheckpointError)
    with socket.socket() as sock:  # a local port nobody listens on: the connection is refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/run.ckpt"
    with pytest.raises(CheckpointError) as info:
        check_checkpoint_path(url, CheckpointError)
    message = str(info.value)
    assert message.startswith(f"{url}: could not read the checkpoint (URLError: ") and "\n" not in message
    for alias in ("last", "best", "registry:team/model:v1", None):
        assert check_checkpoint_path(alias, CheckpointError) is None


def test_init_from_keeps_the_new_tasks_energy_bins(tmp_path: Path) -> None:
    """``init_from`` copies matching weights; bin centres follow the new task's kcal_range, not the file."""
    from pose2met.lit.checkpoint import load_weights_into
    from pose2met.models import Pose2MetModel, STAPFormer

    def model(kcal_max: float) -> Pose2MetModel:
        encoder = STAPFormer(num_frames=9, dim_feat=16, dim_rep=8, depth=1, num_heads=2)
        return Pose2MetModel(encoder, calorie_head=CalorieHead(8, num_bins=50, kcal_max=kcal_max, hidden=4))

    source = model(1000.0)
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "a.ckpt")
    target = model(500.0)
    loaded = load_weights_into(target, tmp_path / "a.ckpt")
    assert "encoder.embed.weight" in loaded and "calorie_head.bin_centers" not in loaded
    assert torch.equal(target.encoder.embed.weight, source.encoder.embed.weight)
    np.testing.assert_allclose(target.calorie_head.bin_centers.numpy(), np.arange(50) * 10.0 + 5.0)


def test_corrupted_member_is_caught_by_its_checksum(tmp_path: Path) -> None:
    import zipfile

    weights = torch.arange(4096, dtype=torch.float32)
    torch.save({"w": weights}, tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as archive:  # where the tensor's bytes lie in the file
        info = max(archive.infolist(), key=lambda i: i.file_size)
        with archive.open(info) as member:
            start = member._fileobj.tell()  # type: ignore[attr-defined]
    data = bytearray((tmp_path / "ok.pt").read_bytes())
    data[start + 100 : start + 200] = bytes(100)  # flipped bits inside the tensor, the zip layout intact
    (tmp_path / "bad.pt").write_bytes(data)
    loaded = torch.load(tmp_path / "bad.pt", weights_only=True)  # torch itself does not notice ...
    assert not torch.equal(loaded["w"], weights)
    with pytest.raises(
        ValueError, match=rf"bad.pt: corrupted checkpoint \(checksum mismatch in .*{info.filename}"
    ):
        load_torch_file(tmp_path / "bad.pt", ValueError)  # ... the archive's CRC-32 does
    assert torch.equal(load_torch_file(tmp_path / "ok.pt", ValueError)["w"], weights)


def test_checkpoints_saved_without_checksums_still_load(tmp_path: Path) -> None:
    from torch.utils.serialization import config

    weights = torch.arange(64, dtype=torch.float32)
    config.save.compute_crc32 = False
    try:
        torch.save({"w": weights}, tmp_path / "nocrc.pt")
    finally:
        config.save.compute_crc32 = True
    assert torch.equal(load_torch_file(tmp_path / "nocrc.pt", ValueError)["w"], weights)
