"""Human3.6M from the MotionBERT / LCN pickle ``h36m_sh_conf_cam_source_final.pkl``.

The pickle is ``{"train": part, "test": part}``; each part holds per-frame arrays of equal length N:

=====================  ============  ==================================================================
key                    shape         meaning
=====================  ============  ==================================================================
``joint_2d``           (N, 17, 2)    detected 2D keypoints (stacked hourglass), pixels
``confidence``         (N, 17, 1)    detector confidence (``(N, 17)`` accepted; ones if absent)
``joint3d_image``      (N, 17, 3)    ground truth in image space: x, y = projection in pixels,
                                     z = root-relative depth in the same pixel scale
``joints_2.5d_image``  (N, 17, 3)    ``joint3d_image * 2.5d_factor``: the space MotionBERT scores, mm
``2.5d_factor``        (N,)          mm per pixel at the root depth
``camera_name``        (N,)          camera id string, e.g. ``'54138969'``
``action``             (N,)          action (optional, only cross-checked)
``source``             (N,)          ``s_01_act_02_subact_01_ca_01``: subject, action id, take, camera
=====================  ============  ==================================================================

Sequences are the contiguous runs of one ``source``. ``joints_3d`` is filled with
``joints_2.5d_image`` (mm, root-relative equal to camera-space up to the 2.5D approximation; the
pickle has no true camera coordinates), ``factor_2_5d`` with ``2.5d_factor`` and ``joints_2d_gt``
with the x, y of ``joint3d_image``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pose2met.data.prep import h36m_meta as meta
from pose2met.data.prep.common import (
    Converted,
    PrepError,
    any_array,
    float_array,
    get_key,
    load_pickle,
    runs,
    str_array,
)

_SOURCE = re.compile(r"^s_(\d+)_act_(\d+)_subact_(\d+)_ca_(\d+)$")
#: Largest allowed deviation (mm) between root-relative ``joints_2.5d_image`` and ``joint3d_image * factor``.
FACTOR_TOLERANCE_MM = 1.0
_CHUNK = 65536
_F32 = np.float32


def _part_arrays(part: object, path: Path, split: str) -> dict[str, np.ndarray]:
    """Read and validate the per-frame arrays of one split of the pickle."""
    where = f"{path}: ['{split}']"
    j2d = any_array(get_key(part, "joint_2d", where), f"{where}['joint_2d']")
    if j2d.ndim != 3 or j2d.shape[1:] not in ((17, 2), (17, 3)):
        raise PrepError(f"{where}['joint_2d']: expected shape (N, 17, 2), got {j2d.shape}")
    n = len(j2d)
    out = {"joints_2d": float_array(j2d[..., :2], f"{where}['joint_2d']", (n, 17, 2), _F32)}
    if isinstance(part, dict) and "confidence" in part:
        conf = any_array(part["confidence"], f"{where}['confidence']")
        if conf.ndim == 3 and conf.shape[2] == 1:
            conf = conf[..., 0]
        # detector scores, clipped to 0..1 like the other converters' 2D confidences
        out["confidence"] = np.clip(float_array(conf, f"{where}['confidence']", (n, 17), _F32), 0.0, 1.0)
    else:
        out["confidence"] = np.ones((n, 17), dtype=_F32)
    img3d = float_array(get_key(part, "joint3d_image", where), f"{where}['joint3d_image']", (n, 17, 3), _F32)
    out["joints_2d_gt"] = img3d[..., :2]
    out["joints_3d"] = float_array(
        get_key(part, "joints_2.5d_image", where), f"{where}['joints_2.5d_image']", (n, 17, 3), _F32
    )
    out["factor_2_5d"] = float_array(
        get_key(part, "2.5d_factor", where), f"{where}['2.5d_factor']", (n,), _F32
    )
    if (out["factor_2_5d"] <= 0).any():
        i = int(np.argmax(out["factor_2_5d"] <= 0))
        raise PrepError(
            f"{where}['2.5d_factor']: expected positive values (mm per pixel), got {out['factor_2_5d'][i]} "
            f"at frame {i}"
        )
    _check_factor(img3d, out["joints_3d"], out["factor_2_5d"], where)
    out["camera_name"] = str_array(get_key(part, "camera_name", where), f"{where}['camera_name']", n)
    out["source"] = str_array(get_key(part, "source", where), f"{where}['source']", n)
    if isinstance(part, dict) and "action" in part:
        out["action"] = str_array(part["action"], f"{where}['action']", n)
    return out


def _check_factor(img3d: np.ndarray, j25: np.ndarray, factor: np.ndarray, where: str) -> None:
    """``joints_2.5d_image`` must equal ``joint3d_image * 2.5d_factor`` up to a root translation."""
    for lo in range(0, len(j25), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        lifted = img3d[sl].astype(np.float64) * factor[sl, None, None]
        dev = np.abs((lifted - lifted[:, :1]) - (j25[sl] - j25[sl, :1])).max(axis=(1, 2))
        if dev.max() > FACTOR_TOLERANCE_MM:
            i = int(dev.argmax())
            raise PrepError(
                f"{where}: 'joints_2.5d_image' is not 'joint3d_image' * '2.5d_factor' "
                f"(root-relative deviation {dev[i]:.2f} mm at frame {lo + i})"
            )


def _sequence_labels(
    source: str, cameras: np.ndarray, actions: np.ndarray | None, where: str
) -> dict[str, str]:
    """Subject, canonical action and camera id of one run, cross-checked against the per-frame fields."""
    m = _SOURCE.match(source)
    if m is None:
        raise PrepError(f"{where}['source']: '{source}' does not look like 's_01_act_02_subact_01_ca_01'")
    subj, act, _sub, cam = (int(g) for g in m.groups())
    if act not in meta.ACTIONS_BY_ID:
        raise PrepError(f"{where}['source']: '{source}' has action id {act}, expected 2..16")
    if not 1 <= cam <= len(meta.CAMERA_IDS):
        raise PrepError(f"{where}['source']: '{source}' has camera index {cam}, expected 1..4")
    camera = meta.CAMERA_IDS[cam - 1]
    names = set(cameras)
    if names != {camera}:
        raise PrepError(
            f"{where}['camera_name']: frames of '{source}' have cameras {sorted(names)}, "
            f"expected '{camera}' (ca_{cam:02d})"
        )
    action = meta.ACTIONS_BY_ID[act]
    for given in set(actions if actions is not None else ()):
        if given.strip().isdigit():  # numeric action codes carry no name to compare
            continue
        if meta.normalize_action(given) != action:
            raise PrepError(
                f"{where}['action']: frames of '{source}' say '{given}', but act_{act:02d} is '{action}'"
            )
    return {"subject": f"S{subj}", "action": action, "camera": camera}


def convert_motionbert(pkl: str | Path) -> Converted:
    """Convert the MotionBERT pickle into Pose2Met arrays (train: S1, S5-S8; test: S9, S11)."""
    path = Path(pkl)
    data = load_pickle(path, "the MotionBERT pickle, a dict with 'train' and 'test'")
    frames: dict[str, list[np.ndarray]] = {}
    seqs: dict[str, list] = {
        k: [] for k in ("start", "length", "name", "subject", "action", "camera", "split")
    }
    offset = 0
    for split in ("train", "test"):
        arrays = _part_arrays(get_key(data, split, str(path)), path, split)
        where = f"{path}: ['{split}']"
        seen: set[str] = set()
        for start, length in runs(arrays["source"]):
            source = arrays["source"][start]
            if source in seen:
                raise PrepError(
                    f"{where}['source']: '{source}' appears in two separate runs of frames; "
                    "expected each source to be contiguous"
                )
            seen.add(source)
            sl = slice(start, start + length)
            acts = arrays["action"][sl] if "action" in arrays else None
            labels = _sequence_labels(source, arrays["camera_name"][sl], acts, where)
            expected = meta.subject_split(labels["subject"])
            if expected != split:
                raise PrepError(
                    f"{where}: subject {labels['subject']} found in '{split}', "
                    f"but the protocol puts it in {expected or 'neither split'}"
                )
            for k, v in {
                **labels,
                "name": source,
                "split": split,
                "start": offset + start,
                "length": length,
            }.items():
                seqs[k].append(v)
        for k in ("joints_2d", "confidence", "joints_3d", "factor_2_5d", "joints_2d_gt"):
            frames.setdefault(k, []).append(arrays[k])
        offset += len(arrays["source"])
    cameras = {c: meta.CAMERAS[c] for c in sorted(set(seqs["camera"]))}
    return Converted(
        frames={k: np.concatenate(v) for k, v in frames.items()},
        sequences=seqs,
        cameras=cameras,
        dataset="h36m",
        fps=meta.FPS,
        attrs={"source_format": "motionbert_pkl", "joints_3d_space": "image_2.5d_mm"},
    )
