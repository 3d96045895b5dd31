"""``Pose2MetDataModule``: clips of a Pose2Met HDF5 file (or the generated SynthMet) for Lightning."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Subset

from pose2met.data.clips import ClipTable, centered_clips, cover_clips, evenly_spaced, train_clips
from pose2met.data.datasets import ClipDataset
from pose2met.data.h5format import SPLITS, SchemaError
from pose2met.data.interrupts import leave_stop_signals_to_the_main_process
from pose2met.data.reader import Pose2MetFile
from pose2met.data.resumable import ResumableDataLoader


def synthmet_path(cache_dir: str | Path, preset: str, seed: int) -> Path:
    """The generated SynthMet file: ``{cache_dir}/synthmet-{preset}-seed{seed}.h5``."""
    return Path(cache_dir) / f"synthmet-{preset}-seed{seed}.h5"


class Pose2MetDataModule(L.LightningDataModule):
    """Train / val / test clips of one Pose2Met file; batches follow ``docs/architecture.md``.

    Args:
        path: the Pose2Met ``.h5`` file (``FileNotFoundError`` at construction if it does not
            exist); ``None`` uses SynthMet, generated into ``cache_dir`` by :meth:`prepare_data`
            the first time.
        synthmet_preset: SynthMet preset when ``path`` is None (``tiny``, ``default``, ...).
        synthmet_seed: SynthMet generator seed when ``path`` is None.
        cache_dir: folder of generated SynthMet files.
        num_frames: clip length T.
        train_stride: frames between training clips (default ``T // 3``).
        batch_size: training batch size.
        eval_batch_size: validation/test batch size (default ``batch_size``).
        num_workers: DataLoader worker processes (each opens the file itself).
        persistent_workers: keep workers alive between epochs (only with ``num_workers > 0``).
        pin_memory: pin batches in page-locked memory; ``None`` (default): when the trainer's device is
            a CUDA GPU.
        input_2d: ``detected`` (``joints_2d`` + ``confidence``) or ``ground_truth`` (``joints_2d_gt``,
            confidence 1; the file must have it).
        target_space: ``camera`` (root-relative metres) or ``image25d`` (MotionBERT 2.5D).
        flip_augment: mirror training clips (input and target) with probability 0.5.
        require_3d: fail in ``setup`` if the file has no ``/frames/joints_3d``.
        require_kcal: fail in ``setup`` if the file has no ``/sequences/kcal``.
        eval_windows: ``cover`` (every frame, stride T) or ``centered`` (one window centred on each
            frame of ``/frames/valid``, MPI-INF-3DHP).
        val_split: split used for validation (``train``, ``val`` or ``test``).
        test_split: split used for test and predict.
        max_train_clips: draw this many training clips per epoch (a fresh random subset each
            epoch, deterministic under ``seed``); ``None`` uses all.
        max_val_clips: validate on this many clips spread evenly over the validation split (the
            same clips every epoch, every action represented); ``None`` uses all. Unlike the
            trainer's ``limit_val_batches``, which keeps the first batches (the first sequences,
            often a single action), the subset stays representative.
        max_test_clips: the same for the test (and predict) split; ``None`` (default) tests on
            every clip, which is what a protocol's reported numbers need.
        seed: seed of the training order and subsets (epoch ``e`` uses ``seed + e``).
    """

    def __init__(
        self,
        path: str | None = None,
        synthmet_preset: str = "default",
        synthmet_seed: int = 0,
        cache_dir: str = "data",
        num_frames: int = 243,
        train_stride: int | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        persistent_workers: bool = False,
        pin_memory: bool | None = None,
        input_2d: Literal["detected", "ground_truth"] = "detected",
        target_space: Literal["camera", "image25d"] = "camera",
        flip_augment: bool = True,
        require_3d: bool = False,
        require_kcal: bool = False,
        eval_windows: Literal["cover", "centered"] = "cover",
        val_split: str = "val",
        test_split: str = "test",
        max_train_clips: int | None = None,
        max_val_clips: int | None = None,
        max_test_clips: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value, allowed in (
            ("input_2d", input_2d, ("detected", "ground_truth")),
            ("target_space", target_space, ("camera", "image25d")),
            ("eval_windows", eval_windows, ("cover", "centered")),
            ("val_split", val_split, SPLITS),
            ("test_split", test_split, SPLITS),
        ):
            if value not in allowed:
                raise ValueError(f"Pose2MetDataModule: {name}={value!r}, expected one of {allowed}")
        for name, value in (("num_frames", num_frames), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"Pose2MetDataModule: {name} must be >= 1, got {value}")
        for name, value in (
            ("train_stride", train_stride),
            ("eval_batch_size", eval_batch_size),
            ("max_train_clips", max_train_clips),
            ("max_val_clips", max_val_clips),
            ("max_test_clips", max_test_clips),
        ):
            if value is not None and value < 1:
                raise ValueError(f"Pose2MetDataModule: {name} must be >= 1 or None, got {value}")
        if num_workers < 0:
            raise ValueError(f"Pose2MetDataModule: num_workers must be >= 0, got {num_workers}")
        if path is not None and Path(path).is_dir():
            raise ValueError(f"{path}: is a folder; expected a Pose2Met .h5 file (data.path)")
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(
                f"{path}: no such Pose2Met file (convert a public dataset with data_prep/*.py, "
                "see docs/datasets.md)"
            )
        self.save_hyperparameters()
        self.synthmet = path is None
        self.file_path = (
            Path(path) if path is not None else synthmet_path(cache_dir, synthmet_preset, synthmet_seed)
        )
        self.num_frames = num_frames
        self.target_space = target_space
        self._file: Pose2MetFile | None = None
        self.datasets: dict[str, ClipDataset] = {}

    # ------------------------------------------------------------ file info
    @property
    def path(self) -> str:
        """The data file (the SynthMet cache file when ``path`` was None)."""
        return str(self.file_path)

    @property
    def file(self) -> Pose2MetFile:
        """The validated index of the data file (opened on first use; frames stay on disk)."""
        if self._file is None:
            if self.synthmet and not self.file_path.exists():
                raise FileNotFoundError(
                    f"{self.file_path}: SynthMet not generated yet; call prepare_data() "
                    "(the trainer does) or `make data-synthmet`"
                )
            self._file = Pose2MetFile(self.file_path)
        return self._file

    @property
    def num_joints(self) -> int:
        return self.file.num_joints

    @property
    def fps(self) -> float:
        return self.file.fps

    @property
    def has_3d(self) -> bool:
        return self.file.has_3d

    @property
    def has_kcal(self) -> bool:
        return self.file.has_kcal

    def _eval_labels(self, key: str, splits: Iterable[str] | None = None) -> list[str]:
        seqs = self.file.sequences
        splits = {self.hparams.val_split, self.hparams.test_split} if splits is None else set(splits)
        idx = np.concatenate([self.file.split_indices(s) for s in sorted(splits)])
        return sorted({str(v) for v in seqs[key][idx]})

    def split_actions(self, split: str) -> list[str]:
        """Sorted action names present in ``split`` (the per-action rows of a pose protocol)."""
        return self._eval_labels("action", [split])

    @property
    def actions(self) -> list[str]:
        """Sorted action names of the evaluation splits (``val_split`` and ``test_split``)."""
        return self._eval_labels("action")

    @property
    def activities(self) -> list[str]:
        """Sorted activity names (the ``action`` labels) of the evaluation splits, for energy metrics."""
        return self._eval_labels("action")

    def sequence_names(self, split: str) -> list[str]:
        """Sorted distinct subjects of ``split``: the per-sequence rows of MPI-INF-3DHP (TS1..TS6)."""
        idx = self.file.split_indices(split)
        return sorted({str(v) for v in self.file.sequences["subject"][idx]})

    def source_names(self, split: str) -> list[str]:
        """The source names (``/sequences/name``) of ``split``'s sequences; empty without them."""
        if "name" not in self.file.sequences:
            return []
        return [str(v) for v in self.file.sequences["name"][self.file.split_indices(split)]]

    # ------------------------------------------------------------- lifecycle
    def prepare_data(self) -> None:
        """Generate SynthMet into ``cache_dir`` when ``path`` is None and the file is missing."""
        if not self.synthmet or self.file_path.exists():
            return
        from pose2met.data.synthmet import generate_to_file

        generate_to_file(
            self.file_path,
            preset=self.hparams.synthmet_preset,
            seed=self.hparams.synthmet_seed,
            overwrite=False,
        )

    def _check_requirements(self) -> None:
        f, hp = self.file, self.hparams
        if hp.require_3d and not f.has_3d:
            raise SchemaError(f.path, "/frames/joints_3d", "require_3d=True but the file has no 3D joints")
        if hp.require_kcal and not f.has_kcal:
            raise SchemaError(f.path, "/sequences/kcal", "require_kcal=True but the file has no kcal labels")
        if hp.eval_windows == "centered" and not f.has("valid"):
            raise SchemaError(
                f.path, "/frames/valid", "eval_windows='centered' needs the per-frame valid mask"
            )

    def _clips(self, split: str, train: bool) -> ClipTable:
        f, hp = self.file, self.hparams
        idx = f.split_indices(split)
        if len(idx) == 0:
            counts = {s: len(f.split_indices(s)) for s in SPLITS}
            raise SchemaError(
                f.path, "/sequences/split", f"no sequences in split '{split}' (sequences per split: {counts})"
            )
        lengths, starts = f.sequences["length"][idx], f.sequences["start"][idx]
        if train:
            return train_clips(idx, lengths, hp.num_frames, hp.train_stride)
        if hp.eval_windows == "centered":
            valid = f.read_whole("valid").astype(bool)
            clips = centered_clips(idx, starts, lengths, valid, hp.num_frames)
            if len(clips) == 0:  # else the split would be scored on nothing, silently
                raise SchemaError(
                    f.path, "/frames/valid", f"eval_windows='centered': no frame of split '{split}' is valid"
                )
            return clips
        return cover_clips(idx, lengths, hp.num_frames)

    def _dataset(self, split: str, train: bool) -> ClipDataset:
        hp = self.hparams
        return ClipDataset(
            self.file,
            self._clips(split, train),
            input_2d=hp.input_2d,
            target_space=hp.target_space,
            flip_prob=0.5 if (train and hp.flip_augment) else 0.0,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of ``stage``: fit -> train + val, validate -> val, test/predict -> test."""
        self._check_requirements()
        hp = self.hparams
        wanted = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
            None: ("train", "val", "test"),
        }[stage]
        splits = {"train": "train", "val": hp.val_split, "test": hp.test_split}
        for role in wanted:
            if role not in self.datasets:
                self.datasets[role] = self._dataset(splits[role], train=role == "train")

    # ----------------------------------------------------------- dataloaders
    def _loader_kwargs(self) -> dict:
        hp = self.hparams
        pin = hp.pin_memory
        if pin is None:  # auto: page-locked batches copy to a CUDA device asynchronously
            pin = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return {
            "num_workers": hp.num_workers,
            "persistent_workers": hp.persistent_workers and hp.num_workers > 0,
            "pin_memory": pin,
            "worker_init_fn": leave_stop_signals_to_the_main_process if hp.num_workers > 0 else None,
        }

    def _require(self, role: str) -> ClipDataset:
        if role not in self.datasets:
            raise RuntimeError(f"Pose2MetDataModule: call setup() before asking for the {role} dataloader")
        return self.datasets[role]

    def train_dataloader(self) -> DataLoader:
        """Seeded random order (fresh per epoch, resumable mid-epoch); under DDP each rank takes its share."""
        hp = self.hparams
        trainer = self.trainer
        return ResumableDataLoader(
            self._require("train"),
            seed=hp.seed,
            shuffle=True,
            num_samples=hp.max_train_clips,
            num_replicas=trainer.world_size if trainer is not None else 1,
            rank=trainer.global_rank if trainer is not None else 0,
            item_seeds=True,  # flips independent of workers and resumes
            batch_size=hp.batch_size,
            **self._loader_kwargs(),
        )

    def _check_eval_share(self, role: str, clips: int, limit: int | None, processes: int) -> None:
        """Every process needs an evaluation clip: one without a batch would skip the loop while the
        others wait for it in the metric sync."""
        if clips >= processes:
            return
        split = self.hparams.val_split if role == "val" else self.hparams.test_split
        fix = f"raise --data.max_{role}_clips" if clips == limit else "use fewer devices"
        raise ValueError(
            f"{self.path}: the {role} set (split '{split}') has {clips} clip(s) for {processes} "
            f"processes; every process needs at least one ({fix})"
        )

    def _eval_loader(self, role: str) -> DataLoader:
        """Evaluation clips in order; under DDP each rank gets its own share, none repeated.

        Lightning's default distributed sampler pads ranks by repeating clips, which would count
        some clips twice in the energy metrics; the unrepeated sampler keeps every clip once.
        """
        hp = self.hparams
        dataset: Dataset = self._require(role)
        limit = hp.max_val_clips if role == "val" else hp.max_test_clips
        if limit is not None and limit < len(dataset):
            dataset = Subset(dataset, evenly_spaced(len(dataset), limit))
        trainer = self.trainer
        sampler = None
        if trainer is not None and trainer.world_size > 1:
            self._check_eval_share(role, len(dataset), limit, trainer.world_size)
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        return DataLoader(
            dataset,
            batch_size=hp.eval_batch_size or hp.batch_size,
            shuffle=False,
            sampler=sampler,
            **self._loader_kwargs(),
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
