"""A torch ``Dataset`` of pose clips read from a Pose2Met file.

Each item is a dict; the default collate turns a list of them into the batch of
``docs/architecture.md`` (tensors stacked, strings into ``list[str]``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pose2met.data.clips import ClipTable, clip_positions, interpolate_frames, resample_positions
from pose2met.data.h5format import SchemaError
from pose2met.data.reader import Pose2MetFile
from pose2met.data.resumable import ItemKey
from pose2met.data.transforms import TARGET_SPACES, camera_target, flip_pose, image25d_target, normalize_2d

Input2D = Literal["detected", "ground_truth"]


class ClipDataset(Dataset):
    """Clips of ``T`` frames with normalized 2D input and root-relative 3D targets.

    Args:
        file: the Pose2Met file (opened lazily in each worker).
        clips: the clip table of one split (:mod:`pose2met.data.clips`).
        input_2d: ``"detected"`` (``joints_2d`` + ``confidence``) or ``"ground_truth"``
            (``joints_2d_gt`` with confidence 1).
        target_space: ``"camera"`` or ``"image25d"`` (see :mod:`pose2met.data.transforms`).
        flip_prob: probability of mirroring a clip (input and target together); training only.
            An :class:`~pose2met.data.resumable.ItemKey` index draws the flip from its own seed
            (the same in any worker and after a resume); a bare index draws from torch's RNG.

    Item keys (``T`` frames, ``J`` joints): ``input_2d`` float32 ``(T, J, 3)``; ``target_3d`` float32
    ``(T, J, 3)`` if the file has 3D; ``factor_2_5d`` float32 ``(T,)`` (1 if absent); ``image_size``
    float32 ``(2,)``; ``frame_index`` int64 ``(T,)`` (-1 on padding); ``valid`` bool ``(T,)``;
    ``sequence_index`` int64 ``()``; ``kcal`` float32 ``()`` and ``known`` bool ``()`` if present;
    ``subject``, ``action``, ``camera`` str.
    """

    def __init__(
        self,
        file: Pose2MetFile,
        clips: ClipTable,
        *,
        input_2d: Input2D = "detected",
        target_space: str = "camera",
        flip_prob: float = 0.0,
    ) -> None:
        if input_2d not in ("detected", "ground_truth"):
            raise ValueError(f"input_2d must be 'detected' or 'ground_truth', got {input_2d!r}")
        if target_space not in TARGET_SPACES:
            raise ValueError(f"target_space must be one of {TARGET_SPACES}, got {target_space!r}")
        if input_2d == "ground_truth" and not file.has("joints_2d_gt"):
            raise SchemaError(file.path, "/frames/joints_2d_gt", "input_2d='ground_truth' needs this array")
        if target_space == "image25d" and file.has_3d and not file.has("factor_2_5d"):
            raise SchemaError(file.path, "/frames/factor_2_5d", "target_space='image25d' needs this array")
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.file, self.clips = file, clips
        self.input_2d, self.target_space, self.flip_prob = input_2d, target_space, flip_prob
        self.num_frames = clips.num_frames
        self._image_size = file.image_sizes().astype(np.float32)
        self._keys = self._frame_keys()

    def _frame_keys(self) -> tuple[str, ...]:
        f = self.file
        keys = ["joints_2d_gt"] if self.input_2d == "ground_truth" else ["joints_2d", "confidence"]
        if f.has_3d:
            keys.append("joints_3d")
            if self.target_space == "image25d":
                keys.append("joints_2d_gt" if f.has("joints_2d_gt") else "joints_2d")
        keys += [k for k in ("factor_2_5d", "valid") if f.has(k)]
        return tuple(dict.fromkeys(keys))

    def __len__(self) -> int:
        return len(self.clips)

    def _read(self, seq: int, start: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Arrays ``(T, ...)`` of one clip, its file frame index ``(T,)`` and ``real`` mask ``(T,)``."""
        length = int(self.file.sequences["length"][seq])
        offset = int(self.file.sequences["start"][seq])
        t = self.num_frames
        if self.clips.mode == "train" and length < t:
            pos = resample_positions(length, t)
            raw = self.file.read_sequence(seq, 0, length, self._keys)
            arrays = {
                k: (v[np.rint(pos).astype(np.int64)] if v.dtype == np.bool_ else interpolate_frames(v, pos))
                for k, v in raw.items()
            }
            return arrays, offset + np.rint(pos).astype(np.int64), np.ones(t, dtype=bool)
        pos, real = clip_positions(length, start, t)
        lo, hi = int(pos[0]), int(pos[-1]) + 1  # positions are sorted: one contiguous read
        raw = self.file.read_sequence(seq, lo, hi, self._keys)
        arrays = {k: v[pos - lo] for k, v in raw.items()}
        return arrays, np.where(real, offset + pos, -1), real

    def _flip(self, key: int | ItemKey) -> bool:
        if self.flip_prob == 0:
            return False
        if isinstance(key, ItemKey):
            return bool(np.random.default_rng(key.seed).random() < self.flip_prob)
        return bool(torch.rand(()) < self.flip_prob)

    def __getitem__(self, key: int | ItemKey) -> dict[str, Tensor | str]:
        index = key.index if isinstance(key, ItemKey) else key
        if not -len(self) <= index < len(self):
            raise IndexError(f"clip {index} out of range for {len(self)} clips")
        seq = int(self.clips.sequence[index])
        arrays, frame_index, real = self._read(seq, int(self.clips.start[index]))
        width, height = (float(v) for v in self._image_size[seq])
        t = self.num_frames

        if self.input_2d == "ground_truth":
            xy, conf = arrays["joints_2d_gt"], np.ones(arrays["joints_2d_gt"].shape[:-1], dtype=np.float32)
        else:
            xy, conf = arrays["joints_2d"], arrays["confidence"]
        input_2d = np.concatenate([normalize_2d(xy, width, height), conf[..., None]], axis=-1)
        factor = arrays.get("factor_2_5d", np.ones(t, dtype=np.float32))

        valid = real.copy()
        if "valid" in arrays:
            valid &= arrays["valid"]
        if self.clips.mode == "centered":
            centre = np.zeros(t, dtype=bool)
            centre[t // 2] = True
            valid &= centre

        item: dict[str, Tensor | str] = {"input_2d": torch.from_numpy(input_2d.astype(np.float32))}
        if self.file.has_3d:
            item["target_3d"] = torch.from_numpy(self._target(arrays, factor, width).astype(np.float32))
        if self._flip(key):
            item["input_2d"] = flip_pose(item["input_2d"])
            if "target_3d" in item:
                item["target_3d"] = flip_pose(item["target_3d"])

        seqs = self.file.sequences
        item.update(
            factor_2_5d=torch.from_numpy(np.asarray(factor, dtype=np.float32)),
            image_size=torch.tensor([width, height], dtype=torch.float32),
            frame_index=torch.from_numpy(frame_index.astype(np.int64)),
            valid=torch.from_numpy(valid),
            sequence_index=torch.tensor(seq, dtype=torch.int64),
        )
        if "kcal" in seqs:
            item["kcal"] = torch.tensor(float(seqs["kcal"][seq]), dtype=torch.float32)
        if "activity_set" in seqs:
            item["known"] = torch.tensor(seqs["activity_set"][seq] == "known")
        item.update(
            subject=str(seqs["subject"][seq]),
            action=str(seqs["action"][seq]),
            camera=str(seqs["camera"][seq]),
            sequence=str(seqs["name"][seq]) if "name" in seqs else f"{seq:06d}",
        )
        return item

    def _target(self, arrays: dict[str, np.ndarray], factor: np.ndarray, width: float) -> np.ndarray:
        joints_3d = arrays["joints_3d"]
        if self.target_space == "camera":
            return camera_target(joints_3d)
        xy = arrays["joints_2d_gt"] if "joints_2d_gt" in arrays else arrays["joints_2d"]
        return image25d_target(xy, joints_3d, factor, width)
