"""Pose2MetDataModule and ClipDataset: batch contract, options, workers, pickling, errors."""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from data_tiny_files import LEFT_RIGHT, frame_values, write_tiny

from pose2met.data.datamodule import Pose2MetDataModule
from pose2met.data.h5format import SchemaError
from pose2met.data.transforms import flip_pose, target_to_mm

SPLITS4 = ("train", "train", "val", "test")


def _dm(path: Path, **kwargs: object) -> Pose2MetDataModule:
    defaults: dict[str, object] = {"num_frames": 9, "batch_size": 4, "flip_augment": False}
    dm = Pose2MetDataModule(path=str(path), **{**defaults, **kwargs})  # type: ignore[arg-type]
    return dm


def test_batch_contract(tiny_file: Callable[..., Path]) -> None:
    dm = _dm(tiny_file(splits=SPLITS4))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    b, t, j = 4, 9, 17
    shapes = {
        "input_2d": ((b, t, j, 3), torch.float32),
        "target_3d": ((b, t, j, 3), torch.float32),
        "factor_2_5d": ((b, t), torch.float32),
        "image_size": ((b, 2), torch.float32),
        "frame_index": ((b, t), torch.int64),
        "valid": ((b, t), torch.bool),
        "sequence_index": ((b,), torch.int64),
        "kcal": ((b,), torch.float32),
        "known": ((b,), torch.bool),
    }
    for key, (shape, dtype) in shapes.items():
        assert tuple(batch[key].shape) == shape and batch[key].dtype == dtype, key
    for key in ("subject", "action", "camera"):
        assert (
            isinstance(batch[key], list)
            and len(batch[key]) == b
            and all(isinstance(v, str) for v in batch[key])
        )
    # labels follow the sequence index: kcal = 100 + 10 s, known for even s, camera c0 for even s
    s = batch["sequence_index"].numpy()
    np.testing.assert_allclose(batch["kcal"].numpy(), 100 + 10 * s)
    np.testing.assert_array_equal(batch["known"].numpy(), s % 2 == 0)
    assert batch["camera"] == ["c0" if v % 2 == 0 else "c1" for v in s]
    assert (dm.num_joints, dm.num_frames, dm.fps, dm.has_3d, dm.has_kcal) == (17, 9, 50.0, True, True)
    assert dm.actions == ["act0", "act1"] and dm.activities == ["act0", "act1"]


def test_pin_memory_follows_the_trainer_device(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file()
    dm = Pose2MetDataModule(path, num_frames=9)
    assert dm._loader_kwargs()["pin_memory"] is False  # no trainer yet
    for device, pinned in (("cpu", False), ("cuda", True)):
        dm.trainer = types.SimpleNamespace(strategy=types.SimpleNamespace(root_device=torch.device(device)))
        assert dm._loader_kwargs()["pin_memory"] is pinned
    assert Pose2MetDataModule(path, num_frames=9, pin_memory=True)._loader_kwargs()["pin_memory"]


def test_info_attributes_before_setup(tiny_file: Callable[..., Path]) -> None:
    dm = _dm(tiny_file(kcal=False, splits=SPLITS4, actions=["walk", "sit", "run", "jump"]))
    assert not dm.has_kcal and dm.has_3d and dm.num_joints == 17
    assert dm.actions == ["jump", "run"]  # actions of the val and test splits, sorted
    assert dm.sequence_names("train") == ["S0", "S1"]


@pytest.mark.parametrize("space", ["camera", "image25d"])
def test_targets_back_to_mm_match_the_file(tiny_file: Callable[..., Path], space: str) -> None:
    dm = _dm(tiny_file(splits=SPLITS4), target_space=space)
    dm.setup("test")
    ref = frame_values(74)
    for batch in dm.test_dataloader():
        mm = target_to_mm(batch["target_3d"].double(), batch, space).numpy()
        fi = batch["frame_index"].numpy()
        valid = batch["valid"].numpy()
        p3 = ref["joints_3d"][fi[valid]].astype(np.float64)
        if space == "camera":
            expected = p3 - p3[:, :1]
        else:  # x, y: ground-truth pixel offsets * factor; z: depth difference
            gt = ref["joints_2d_gt"][fi[valid]].astype(np.float64)
            factor = ref["factor_2_5d"][fi[valid]].astype(np.float64)[:, None, None]
            expected = np.concatenate([(gt - gt[:, :1]) * factor, p3[..., 2:] - p3[:, :1, 2:]], -1)
        np.testing.assert_allclose(mm[valid], expected, rtol=1e-5, atol=1e-3)


def test_ground_truth_input(tiny_file: Callable[..., Path]) -> None:
    dm = _dm(tiny_file(splits=SPLITS4), input_2d="ground_truth")
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert torch.all(batch["input_2d"][..., 2] == 1)
    gt = frame_values(74)["joints_2d_gt"][batch["frame_index"][0, 0].item()]
    w, h = batch["image_size"][0].tolist()
    np.testing.assert_allclose(batch["input_2d"][0, 0, :, 0].numpy(), gt[:, 0] / w * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(batch["input_2d"][0, 0, :, 1].numpy(), gt[:, 1] / w * 2 - h / w, atol=1e-6)
    no_gt = _dm(tiny_file("nogt.h5", splits=SPLITS4, optional=("joints_3d",)), input_2d="ground_truth")
    with pytest.raises(SchemaError, match=r"nogt\.h5: key '/frames/joints_2d_gt': input_2d='ground_truth'"):
        no_gt.setup("fit")


def test_flip_augmentation_is_consistent(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file(splits=SPLITS4)
    plain, flipped = _dm(path), _dm(path, flip_augment=True)
    plain.setup("fit")
    flipped.setup("fit")
    flipped.datasets["train"].flip_prob = 1.0
    a, b = plain.datasets["train"][3], flipped.datasets["train"][3]
    for key in ("input_2d", "target_3d"):
        expected = a[key].numpy().copy()
        for left, right in LEFT_RIGHT:
            expected[:, [left, right]] = expected[:, [right, left]]
        expected[..., 0] *= -1
        np.testing.assert_array_equal(b[key].numpy(), expected)
    np.testing.assert_array_equal(b["frame_index"].numpy(), a["frame_index"].numpy())


def test_requirements_fail_with_the_file_named(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file("nolabels.h5", splits=SPLITS4, kcal=False, optional=())
    with pytest.raises(SchemaError, match=r"nolabels\.h5: key '/sequences/kcal': require_kcal=True"):
        _dm(path, require_kcal=True).setup("fit")
    with pytest.raises(SchemaError, match=r"nolabels\.h5: key '/frames/joints_3d': require_3d=True"):
        _dm(path, require_3d=True).setup("fit")
    with pytest.raises(SchemaError, match=r"key '/frames/valid': eval_windows='centered'"):
        _dm(path, eval_windows="centered").setup("test")
    with pytest.raises(SchemaError, match=r"no sequences in split 'val'"):
        _dm(tiny_file("noval.h5")).setup("fit")
    invalid = tiny_file("invalid.h5", splits=SPLITS4, valid=np.zeros(74, dtype=bool))
    with pytest.raises(SchemaError, match=r"'/frames/valid': eval_windows='centered': no frame of split"):
        _dm(invalid, eval_windows="centered").setup("test")
    with pytest.raises(ValueError, match="val_split='dev'"):
        _dm(path, val_split="dev")
    with pytest.raises(ValueError, match="target_space='pixels'"):
        _dm(path, target_space="pixels")
    # without 3D, batches simply have no target_3d
    dm = _dm(path)
    dm.setup("fit")
    assert "target_3d" not in next(iter(dm.train_dataloader()))


def _epoch_signature(loader: torch.utils.data.DataLoader) -> list[tuple[int, int]]:
    return [
        (int(s), int(f))
        for b in loader
        for s, f in zip(b["sequence_index"], b["frame_index"][:, 0], strict=True)
    ]


def test_max_train_clips_is_a_seeded_subset_per_epoch(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file(splits=SPLITS4)
    first, second = _dm(path, max_train_clips=5, seed=3), _dm(path, max_train_clips=5, seed=3)
    for dm in (first, second):
        dm.setup("fit")
    total = len(first.datasets["train"])  # (30 - 9) / 3 + 1 = 8 clips of sequence 0, 2 of sequence 1
    assert total == 10
    loader_a, loader_b = first.train_dataloader(), second.train_dataloader()
    epoch0 = _epoch_signature(loader_a)
    assert len(epoch0) == 5 and len(set(epoch0)) == 5
    assert epoch0 == _epoch_signature(loader_b)
    loader_a.sampler.set_epoch(1)
    assert _epoch_signature(loader_a) != epoch0


def test_max_val_and_test_clips_spread_over_the_split(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file(splits=SPLITS4)
    full, limited = (
        _dm(path, val_split="train"),
        _dm(path, val_split="train", max_val_clips=3, test_split="train"),
    )
    for dm in (full, limited):
        dm.setup("fit")
        dm.setup("test")
    everything = _epoch_signature(full.val_dataloader())  # clips in order: sequence 0, then 1
    picked = _epoch_signature(limited.val_dataloader())
    assert len(everything) > 3 and len(picked) == 3 and set(picked) <= set(everything)
    assert picked[0] == everything[0] and picked[-1] == everything[-1]  # both sequences represented
    assert picked == _epoch_signature(limited.val_dataloader())  # the same clips every epoch
    assert len(_epoch_signature(limited.test_dataloader())) == len(everything)
    test_limited = _dm(path, test_split="train", max_test_clips=3)
    test_limited.setup("test")
    assert _epoch_signature(test_limited.test_dataloader()) == picked
    more_than_all = _dm(path, val_split="train", max_val_clips=99)
    more_than_all.setup("validate")
    assert _epoch_signature(more_than_all.val_dataloader()) == everything
    with pytest.raises(ValueError, match="max_val_clips"):
        _dm(path, max_val_clips=0)


def test_ddp_eval_needs_a_clip_for_every_process(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file(splits=SPLITS4)

    def on_rank(rank: int, world: int = 2, **kwargs: object) -> Pose2MetDataModule:
        dm = _dm(path, val_split="train", test_split="train", **kwargs)
        dm.trainer = types.SimpleNamespace(  # type: ignore[assignment]
            world_size=world,
            global_rank=rank,
            strategy=types.SimpleNamespace(root_device=torch.device("cpu")),
        )
        dm.setup("fit")
        dm.setup("test")
        return dm

    # two clips over two processes: one each, none repeated, none lost
    shares = [_epoch_signature(on_rank(rank, max_val_clips=2).val_dataloader()) for rank in (0, 1)]
    assert [len(s) for s in shares] == [1, 1] and set(shares[0]) != set(shares[1])
    # one clip over two processes: rank 1 would get no batch and the other rank would wait for it
    for rank in (0, 1):
        for role, kwargs in (("val", {"max_val_clips": 1}), ("test", {"max_test_clips": 1})):
            dm = on_rank(rank, **kwargs)
            loader = dm.val_dataloader if role == "val" else dm.test_dataloader
            with pytest.raises(
                ValueError,
                match=rf"{path.name}.*1 clip\(s\) for 2 processes.*raise --data.max_{role}_clips\)",
            ):
                loader()
    clips = len(_epoch_signature(on_rank(0, world=1).val_dataloader()))
    with pytest.raises(ValueError, match=rf"{clips} clip\(s\) for {clips + 1} processes.*use fewer devices"):
        on_rank(0, world=clips + 1).val_dataloader()


def test_two_persistent_workers_serve_the_same_clips(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file(splits=SPLITS4)
    serial, workers = _dm(path), _dm(path, num_workers=2, persistent_workers=True)
    for dm in (serial, workers):
        dm.setup("fit")
    expected = sorted(_epoch_signature(serial.val_dataloader()))
    workers.datasets["val"][0]  # the parent opens its handle before the workers fork
    loader = workers.val_dataloader()
    assert sorted(_epoch_signature(loader)) == expected
    iterator = loader._iterator
    assert sorted(_epoch_signature(loader)) == expected  # second epoch, same worker processes
    assert loader._iterator is iterator and iterator is not None
    train = workers.train_dataloader()
    assert sorted(_epoch_signature(train)) == sorted(_epoch_signature(serial.train_dataloader()))


def _epoch_inputs(loader: torch.utils.data.DataLoader) -> torch.Tensor:
    return torch.cat([b["input_2d"] for b in loader])


def test_flips_depend_only_on_seed_and_epoch(tiny_file: Callable[..., Path]) -> None:
    path = tiny_file(splits=SPLITS4)
    serial = _dm(path, flip_augment=True, seed=4)
    workers = _dm(path, flip_augment=True, seed=4, num_workers=2)
    for dm in (serial, workers):
        dm.setup("fit")
    plain = _dm(path, seed=4)  # same clips, never flipped
    plain.setup("fit")
    for epoch in (0, 1):
        loaders = [dm.train_dataloader() for dm in (serial, workers)]
        for loader in loaders:
            loader.sampler.set_epoch(epoch)
        torch.manual_seed(epoch)
        got = _epoch_inputs(loaders[0])
        torch.manual_seed(99)  # the global RNG (and the workers' seeds) no longer matter
        assert torch.equal(_epoch_inputs(loaders[1]), got)
        # each clip is mirrored iff its own seed says so: numpy's generator, seeded independently
        keys = list(loaders[0].sampler)
        flips = [np.random.default_rng(k.seed).random() < 0.5 for k in keys]
        assert 0 < sum(flips) < len(flips)
        for row, key, flip in zip(got, keys, flips, strict=True):
            unflipped = plain.datasets["train"][key.index]["input_2d"]
            assert torch.equal(row, flip_pose(unflipped) if flip else unflipped)


def test_dataset_pickles_after_reading(tiny_file: Callable[..., Path]) -> None:
    dm = _dm(tiny_file(splits=SPLITS4))
    dm.setup("fit")
    ds = dm.datasets["train"]
    item = ds[2]  # opens the h5py handle in this process
    assert ds.file._handle is not None
    clone = pickle.loads(pickle.dumps(ds))  # h5py objects refuse to pickle: none may be reachable
    again = clone[2]
    for key in ("input_2d", "target_3d", "frame_index"):
        assert torch.equal(again[key], item[key])
    pickle.dumps(dm)  # the whole DataModule too


def test_prepare_data_generates_synthmet_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, str, int]] = []

    def generate_to_file(path: Path, preset: str = "default", seed: int = 0, overwrite: bool = False) -> Path:
        calls.append((Path(path), preset, seed))
        return write_tiny(Path(path), splits=SPLITS4)

    fake = types.ModuleType("pose2met.data.synthmet")
    fake.generate_to_file = generate_to_file  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pose2met.data.synthmet", fake)
    dm = Pose2MetDataModule(
        path=None, synthmet_preset="tiny", synthmet_seed=7, cache_dir=str(tmp_path), num_frames=9
    )
    with pytest.raises(FileNotFoundError, match="SynthMet not generated yet"):
        _ = dm.has_kcal
    dm.prepare_data()
    dm.prepare_data()  # the file exists now: no second generation
    assert calls == [(tmp_path / "synthmet-tiny-seed7.h5", "tiny", 7)]
    dm.setup("fit")
    assert dm.path == str(tmp_path / "synthmet-tiny-seed7.h5") and len(dm.datasets["train"]) == 10


def test_lightning_trainer_consumes_the_loaders(tiny_file: Callable[..., Path], tmp_path: Path) -> None:
    import lightning as L

    class Lifter(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(3, 3)
            self.seen: dict[str, int] = {"train": 0, "val": 0, "test": 0}

        def _step(self, batch: dict, stage: str) -> torch.Tensor:
            self.seen[stage] += batch["input_2d"].shape[0]
            return torch.nn.functional.mse_loss(self.layer(batch["input_2d"]), batch["target_3d"])

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            return self._step(batch, "train")

        def validation_step(self, batch: dict, batch_idx: int) -> None:
            self._step(batch, "val")

        def test_step(self, batch: dict, batch_idx: int) -> None:
            self._step(batch, "test")

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    dm, model = _dm(tiny_file(splits=SPLITS4), flip_augment=True), Lifter()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)
    # 10 train clips per epoch; val: sequence 2 (25 frames) -> 3 clips; test: sequence 3 (7 frames) -> 1
    assert model.seen == {"train": 20, "val": 3 * 2 + 3, "test": 1}  # + sanity check of 2 val batches


@pytest.mark.parametrize(
    "config", sorted((Path(__file__).resolve().parents[2] / "conf" / "data").glob("*.yaml"))
)
def test_shipped_data_configs_parse(
    config: Path, tiny_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(Pose2MetDataModule, "data")
    parser.add_argument("--config", action="config")
    cfg = parser.parse_args(["--config", str(config)])
    if cfg.data.path is not None:  # a converted public dataset: missing at first, named in a clear error
        made = tiny_file()
        monkeypatch.chdir(made.parent)  # the configs name paths relative to the project folder
        with pytest.raises(
            FileNotFoundError, match=rf"{cfg.data.path}: no such Pose2Met file \(convert .* data_prep/"
        ):
            parser.instantiate_classes(cfg)
        Path(cfg.data.path).parent.mkdir(parents=True, exist_ok=True)
        made.rename(cfg.data.path)
    dm = parser.instantiate_classes(cfg).data
    assert isinstance(dm, Pose2MetDataModule) and dm.num_frames == cfg.data.num_frames
