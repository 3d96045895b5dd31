"""Reading users' 2D keypoints (COCO-17 JSON / arrays, h36m17 arrays) and cleaning them for the model.

Supported inputs (one person; see ``docs/inference.md``):

* **JSON**, COCO-17 ``[x, y, score] x 17`` per frame, in any of these layouts:

  * a list of frames, each a person dict with ``keypoints`` (flat 51 values or ``17 x 3``), or
    ``null`` / ``{}`` / ``{"keypoints": []}`` when no person was detected;
  * a list of frames, each a list of person dicts (or a dict with ``instances``, the MMPose
    layout: ``keypoints`` ``17 x 2`` plus ``keypoint_scores``): the person with the highest
    ``score`` (else the highest mean keypoint score) is taken, ties go to the first;
  * the COCO results layout: a flat list of detections carrying ``image_id``; detections are grouped
    per image, integer ids are frames ``min..max`` (ids with no detection are missing frames);
  * any of the above under a top-level ``{"frames": [...]}`` or ``{"annotations": [...]}``.
* **NumPy** ``.npy`` / ``.npz`` (key ``keypoints``, or the only array) of shape ``(T, 17, 3)``
  (x, y, score) or ``(T, 17, 2)`` (score 1), in COCO-17 (default) or h36m17 order; NaN marks
  missing values.

COCO-17 -> h36m17 (:func:`coco_to_h36m`): pelvis = mid-hips, thorax = mid-shoulders,
spine = midpoint of pelvis and thorax, neck/nose = nose, head = mid-eyes; limbs map one to one.
A derived joint's score is the smallest score of the joints it is made from.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pose2met.skeleton import NUM_JOINTS

Layout = Literal["coco", "h36m"]
LAYOUTS: tuple[str, ...] = ("coco", "h36m")
COCO_JOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_COCO = len(COCO_JOINT_NAMES)
#: h36m17 joint -> the COCO joints averaged to make it (one joint: copied). Spine (7) is made from
#: pelvis and thorax after them, see :func:`coco_to_h36m`.
COCO_SOURCES: dict[int, tuple[int, ...]] = {
    0: (11, 12), 1: (12,), 2: (14,), 3: (16,), 4: (11,), 5: (13,), 6: (15,), 8: (5, 6), 9: (0,),
    10: (1, 2), 11: (5,), 12: (7,), 13: (9,), 14: (6,), 15: (8,), 16: (10,),
}  # fmt: skip
SPINE, PELVIS, THORAX = 7, 0, 8
DEFAULT_MIN_SCORE = 0.05


class KeypointError(ValueError):
    """Keypoint input that cannot be used (names the file and what was expected)."""


@dataclass
class Keypoints2D:
    """Cleaned h36m17 keypoints of one person.

    Attributes:
        xy: ``(T, 17, 2)`` pixel coordinates, finite (gaps interpolated over time).
        score: ``(T, 17)`` confidences in ``[0, 1]``; 0 where a joint was missing or below threshold.
        missing_frames: ``(T,)`` bool, frames where no joint of the person was usable.
        filled_joints: ``(T, 17)`` bool, joints whose position was interpolated or filled.
    """

    xy: np.ndarray
    score: np.ndarray
    missing_frames: np.ndarray
    filled_joints: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.xy.shape[0])


def coco_to_h36m(coco: np.ndarray) -> np.ndarray:
    """COCO-17 ``(..., 17, 3)`` (x, y, score) -> h36m17 ``(..., 17, 3)``.

    Averaged joints take the mean position and the minimum score of their sources; NaN in a
    source propagates (the joint is then treated as missing).
    """
    coco = np.asarray(coco, dtype=np.float64)
    if coco.ndim < 2 or coco.shape[-2:] != (NUM_COCO, 3):
        raise KeypointError(f"coco_to_h36m: expected (..., {NUM_COCO}, 3), got {coco.shape}")
    out = np.empty(coco.shape, dtype=np.float64)
    for joint, sources in COCO_SOURCES.items():
        picked = coco[..., sources, :]
        out[..., joint, :2] = picked[..., :2].mean(axis=-2)
        out[..., joint, 2] = picked[..., 2].min(axis=-1)
    out[..., SPINE, :2] = 0.5 * (out[..., PELVIS, :2] + out[..., THORAX, :2])
    out[..., SPINE, 2] = np.minimum(out[..., PELVIS, 2], out[..., THORAX, 2])
    return out


# ------------------------------------------------------------------------------------------- JSON
def _person_array(person: Any, where: str) -> np.ndarray | None:
    """One person entry -> ``(17, 3)`` or ``None`` when it holds no keypoints."""
    if person is None:
        return None
    if not isinstance(person, dict):
        raise KeypointError(f"{where}: expected a person dict with 'keypoints', got {type(person).__name__}")
    if "keypoints" not in person:
        if not person:
            return None
        raise KeypointError(f"{where}: person entry has no 'keypoints' key (keys: {sorted(person)})")
    raw = person["keypoints"]
    if raw is None or (isinstance(raw, list) and len(raw) == 0):
        return None
    try:
        kp = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise KeypointError(f"{where}: 'keypoints' is not a numeric array ({err})") from err
    scores = person.get("keypoint_scores", person.get("scores"))
    if kp.size == NUM_COCO * 2 and scores is not None:
        try:
            score = np.asarray(scores, np.float64).reshape(NUM_COCO, 1)
        except (TypeError, ValueError):
            raise KeypointError(f"{where}: 'keypoint_scores' must be {NUM_COCO} numbers") from None
        kp = np.concatenate([kp.reshape(NUM_COCO, 2), score], 1)
    if kp.size != NUM_COCO * 3:
        raise KeypointError(
            f"{where}: expected {NUM_COCO} COCO keypoints as [x, y, score] (51 values or 17 x 3, or "
            f"17 x 2 with 'keypoint_scores'), got {kp.size} values of shape {kp.shape}"
        )
    return kp.reshape(NUM_COCO, 3)


def _person_rank(person: dict, kp: np.ndarray) -> float:
    score = person.get("score")
    if isinstance(score, (int, float)) and np.isfinite(score):
        return float(score)
    return float(np.nanmean(kp[:, 2])) if np.isfinite(kp[:, 2]).any() else -np.inf


def _best_person(persons: Sequence[Any], where: str) -> np.ndarray | None:
    best, best_rank = None, -np.inf
    for i, person in enumerate(persons):
        kp = _person_array(person, f"{where}, person {i}")
        if kp is None:
            continue
        rank = _person_rank(person, kp)
        if best is None or rank > best_rank:
            best, best_rank = kp, rank
    return best


def _frame_array(frame: Any, where: str) -> np.ndarray | None:
    if isinstance(frame, list):
        return _best_person(frame, where)
    if isinstance(frame, dict) and "instances" in frame:
        instances = frame["instances"] or []
        if not isinstance(instances, list):
            raise KeypointError(
                f"{where}: 'instances' must be a list of persons, got {type(instances).__name__}"
            )
        return _best_person(instances, where)
    return _person_array(frame, where)


#: Integer ``image_id`` values are frame numbers, missing frames filled by interpolation; a range over
#: this many times more frames than there are images is not one video.
MAX_FRAME_SPAN_PER_DETECTION = 100


def _coco_results(detections: list[dict], where: str) -> np.ndarray:
    """COCO results layout (detections with ``image_id``) -> ``(T, 17, 3)`` with NaN for missing frames."""
    groups: dict[Any, list[dict]] = {}
    for det in detections:
        groups.setdefault(det.get("image_id"), []).append(det)
    ids = list(groups)
    if all(isinstance(i, int) for i in ids):
        span = max(ids) - min(ids) + 1
        if span > MAX_FRAME_SPAN_PER_DETECTION * len(ids):  # ids are frame numbers, with gaps filled
            raise KeypointError(
                f"{where}: image_id values {min(ids)}..{max(ids)} span {span} frames for {len(ids)} "
                "images; expected consecutive frame numbers (renumber the images of one video)"
            )
        frames = list(range(min(ids), max(ids) + 1))
    else:
        frames = sorted(ids, key=str)
    out = np.full((len(frames), NUM_COCO, 3), np.nan)
    for t, image_id in enumerate(frames):
        kp = _best_person(groups.get(image_id, []), f"{where}: image_id {image_id!r}")
        if kp is not None:
            out[t] = kp
    return out


def read_json(path: Path) -> np.ndarray:
    """A COCO-17 JSON file (layouts in the module docstring) -> ``(T, 17, 3)``, NaN for missing frames."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise KeypointError(f"{path}: not a readable JSON file ({err})") from err
    if isinstance(data, dict):
        key = next((k for k in ("frames", "annotations", "predictions") if k in data), None)
        if key is None:
            raise KeypointError(
                f"{path}: expected a list of frames or a dict with 'frames'/'annotations', "
                f"got keys {sorted(data)}"
            )
        data = data[key]
    if not isinstance(data, list) or len(data) == 0:
        raise KeypointError(f"{path}: expected a non-empty list of per-frame detections")
    if all(isinstance(d, dict) and "image_id" in d for d in data):
        return _coco_results(data, str(path))
    out = np.full((len(data), NUM_COCO, 3), np.nan)
    for t, frame in enumerate(data):
        kp = _frame_array(frame, f"{path}: frame {t}")
        if kp is not None:
            out[t] = kp
    return out


# ------------------------------------------------------------------------------------------ arrays
#: First bytes of a ``.npy`` file and of a ``.npz`` (zip) archive.
NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def read_array(path: Path) -> np.ndarray:
    """``.npy`` / ``.npz`` -> float ``(T, 17, 3)`` (a ``(T, 17, 2)`` array gets score 1)."""
    with path.open("rb") as f:
        head = f.read(len(NPY_MAGIC))
    if not head.startswith((NPY_MAGIC, ZIP_MAGIC)):  # NumPy would try it as a pickle and say so
        raise KeypointError(
            f"{path}: not a NumPy .npy/.npz file (no NumPy or zip header; write arrays with numpy.save "
            "or numpy.savez)"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                keys = list(loaded.files)
                if "keypoints" in keys:
                    key = "keypoints"
                elif len(keys) == 1:
                    key = keys[0]
                else:
                    raise KeypointError(
                        f"{path}: expected a 'keypoints' array or a single array, got keys {keys}"
                    )
                arr, where = loaded[key], f"{path}['{key}']"
        else:
            arr, where = loaded, str(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # truncated, damaged
        if isinstance(err, KeypointError):
            raise
        raise KeypointError(f"{path}: not a readable NumPy file ({err})") from err
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise KeypointError(f"{where}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[1] != NUM_JOINTS or arr.shape[2] not in (2, 3):
        raise KeypointError(f"{where}: expected shape (T, 17, 3) or (T, 17, 2), got {arr.shape}")
    if arr.shape[0] == 0:
        raise KeypointError(f"{where}: the array has no frames")
    arr = arr.astype(np.float64)
    if arr.shape[2] == 2:
        score = np.where(np.isfinite(arr).all(-1, keepdims=True), 1.0, np.nan)
        arr = np.concatenate([arr, score], axis=-1)
    return arr


def load_keypoints(path: str | os.PathLike, layout: Layout = "coco") -> np.ndarray:
    """Read an input file -> h36m17 ``(T, 17, 3)`` (x px, y px, score), NaN where values are missing.

    JSON input is always COCO-17; ``layout`` tells the joint order of NumPy arrays.
    """
    path = Path(path)
    if layout not in LAYOUTS:
        raise KeypointError(f"--layout must be one of {LAYOUTS}, got {layout!r}")
    if path.is_dir():
        raise KeypointError(f"{path}: is a folder; expected a .json, .npy or .npz keypoints file")
    if not path.is_file():
        raise KeypointError(f"{path}: input file not found")
    if path.stat().st_size == 0:
        raise KeypointError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return coco_to_h36m(read_json(path))
    if suffix in (".npy", ".npz"):
        arr = read_array(path)
        return coco_to_h36m(arr) if layout == "coco" else arr
    raise KeypointError(f"{path}: unknown input type '{suffix}'; expected .json, .npy or .npz")


# -------------------------------------------------------------------------------------- cleaning
def _fill_over_time(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames of ``values (T,)`` from the ``good`` frames (edge-held)."""
    t = np.arange(len(values))
    return np.interp(t, t[good], values[good])


def clean_keypoints(
    raw: np.ndarray, min_score: float = DEFAULT_MIN_SCORE, source: str = "input"
) -> Keypoints2D:
    """Handle missing and low-confidence joints of h36m17 ``raw (T, 17, 3)``.

    A joint is usable where x, y and score are finite and ``score >= min_score``. Unusable joints are
    interpolated linearly over time from the same joint's usable frames (held constant before the
    first / after the last) and get score 0. A joint never usable in any frame is placed, per frame,
    at the mean of that frame's joints (score 0). Frames with no usable joint are ``missing_frames``.

    Raises:
        KeypointError: no frame has a usable joint (no person anywhere in ``source``).
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 3 or raw.shape[1:] != (NUM_JOINTS, 3):
        raise KeypointError(f"{source}: expected h36m17 keypoints (T, 17, 3), got {raw.shape}")
    score = np.clip(np.nan_to_num(raw[..., 2], nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)
    usable = np.isfinite(raw).all(-1) & (raw[..., 2] >= min_score)
    missing_frames = ~usable.any(axis=1)
    if missing_frames.all():
        raise KeypointError(
            f"{source}: no frame has a usable keypoint (all missing, NaN or with score < {min_score}); "
            "is there a person in this input?"
        )
    xy = raw[..., :2].copy()
    never = ~usable.any(axis=0)
    for j in np.flatnonzero(~never):
        if usable[:, j].all():
            continue
        for c in range(2):
            xy[:, j, c] = _fill_over_time(xy[:, j, c], usable[:, j])
    if never.any():
        known = ~never
        centre = xy[:, known].mean(axis=1)  # (T, 2), finite: known joints are filled over time
        xy[:, never] = centre[:, None, :]
    score = np.where(usable, score, 0.0)
    return Keypoints2D(
        xy=xy.astype(np.float32),
        score=score.astype(np.float32),
        missing_frames=missing_frames,
        filled_joints=~usable,
    )
