"""Human3.6M from the VideoPose3D ``.npz`` pair plus a cameras JSON file.

* ``data_3d_h36m.npz``: ``positions_3d`` = ``{subject: {action: (N, 32, 3)}}``, world coordinates in
  metres (32-joint mocap skeleton; the 17 moving joints are kept).
* ``data_2d_h36m_<detector>.npz``: ``positions_2d`` = ``{subject: {action: [4 x (N, 17, 2|3)]}}``
  in pixels, one array per camera in the order 54138969, 55011271, 58860488, 60457274 (a third
  channel is taken as confidence), and ``metadata`` (``num_joints``, ``keypoints_symmetry``,
  optionally ``layout_name``) which must describe the Human3.6M 17-joint layout.
* cameras JSON: ``{subject: {camera_id: {fx, fy, cx, cy, width, height, R, t}}}`` with ``R`` the
  3x3 world-to-camera rotation and ``t`` the camera centre in world coordinates (mm), so that
  ``X_cam = R (X_world - t)``.

Like VideoPose3D, a 2D track longer than its 3D track (some videos have extra frames) is cut to
the 3D length; a shorter one is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose2met.data.prep import h36m_meta as meta
from pose2met.data.prep.common import (
    Converted,
    PrepError,
    SequenceBuilder,
    camera_entry,
    float_array,
    get_key,
    keypoints_2d,
    load_npz,
    natural_sorted,
    npz_object,
)
from pose2met.skeleton import LEFT_JOINTS, RIGHT_JOINTS

_INTRINSICS = ("fx", "fy", "cx", "cy", "width", "height")
_ORTHO_TOL = 1e-3


@dataclass(frozen=True)
class CameraPose:
    """Intrinsics (pixels) and extrinsics of one camera for one subject."""

    intrinsics: dict[str, float]
    rotation: np.ndarray  # (3, 3) world -> camera
    centre: np.ndarray  # (3,) camera centre in world coordinates, mm

    def world_to_camera(self, points_mm: np.ndarray) -> np.ndarray:
        """``(..., 3)`` world mm -> camera mm: ``R (X - t)``."""
        return (points_mm - self.centre) @ self.rotation.T


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _joint_groups(sym: object) -> list[list[int]] | None:
    """``keypoints_symmetry`` as sorted lists of joint indices (``None`` if it is not that)."""
    try:
        return [sorted(int(j) for j in group) for group in sym]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None


def load_cameras_json(path: str | Path) -> dict[str, dict[str, CameraPose]]:
    """Read and validate the cameras JSON (schema in the module docstring and ``docs/datasets.md``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PrepError(f"{path}: file not found (expected the cameras JSON)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PrepError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise PrepError(f"{path}: expected an object {{subject: {{camera_id: {{...}}}}}}")
    out: dict[str, dict[str, CameraPose]] = {}
    for subject, cams in data.items():
        if not isinstance(cams, dict):
            raise PrepError(f"{path}: ['{subject}'] should map camera ids to parameters")
        out[subject] = {
            cam: _camera_pose(params, f"{path}: ['{subject}']['{cam}']") for cam, params in cams.items()
        }
    return out


def _camera_pose(params: object, where: str) -> CameraPose:
    intr = {}
    for k in _INTRINSICS:
        v = float_array(get_key(params, k, where), f"{where}['{k}']", ())
        if k in ("fx", "fy", "width", "height") and v <= 0:
            raise PrepError(f"{where}['{k}']: expected a positive number, got {float(v)}")
        intr[k] = float(v)
    rot = float_array(get_key(params, "R", where), f"{where}['R']", (3, 3))
    if np.abs(rot @ rot.T - np.eye(3)).max() > _ORTHO_TOL or np.linalg.det(rot) < 0:
        raise PrepError(f"{where}['R']: expected a rotation matrix (orthonormal, determinant +1)")
    centre = float_array(get_key(params, "t", where), f"{where}['t']", (3,))
    return CameraPose(intr, rot, centre)


def _check_metadata(npz: dict, path: Path) -> None:
    """The 2D file must use the Human3.6M 17-joint layout (not e.g. COCO)."""
    if "metadata" not in npz:
        return
    md = npz_object(npz, "metadata", path)
    layout = md.get("layout_name")
    if layout is not None and layout != "h36m":
        raise PrepError(
            f"{path}: ['metadata']['layout_name'] is '{layout}', expected 'h36m' (17-joint order)"
        )
    if "num_joints" in md and _as_int(md["num_joints"]) != 17:
        raise PrepError(f"{path}: ['metadata']['num_joints'] is {md['num_joints']!r}, expected 17")
    sym = md.get("keypoints_symmetry")
    if sym is not None and _joint_groups(sym) != [list(LEFT_JOINTS), list(RIGHT_JOINTS)]:
        raise PrepError(
            f"{path}: ['metadata']['keypoints_symmetry'] is {sym}, expected the h36m17 "
            f"left/right joints {list(LEFT_JOINTS)} / {list(RIGHT_JOINTS)}"
        )


def _intrinsics(poses: dict[str, dict[str, CameraPose]], cam: str, subjects: list[str], path: Path) -> dict:
    """Intrinsics of ``cam``; they must agree across subjects (Human3.6M intrinsics do not change)."""
    found = [get_key(get_key(poses, s, str(path)), cam, f"{path}: ['{s}']").intrinsics for s in subjects]
    ref = found[0]
    for s, other in zip(subjects[1:], found[1:], strict=True):
        if any(abs(other[k] - ref[k]) > 1e-3 for k in _INTRINSICS):
            raise PrepError(f"{path}: intrinsics of camera '{cam}' differ between {subjects[0]} and {s}")
    return camera_entry(ref["width"], ref["height"], ref["fx"], ref["fy"], ref["cx"], ref["cy"])


def convert_videopose3d(path_3d: str | Path, path_2d: str | Path, path_cameras: str | Path) -> Converted:
    """Convert the VideoPose3D files; 3D becomes camera coordinates in mm (train S1, S5-S8; test S9, S11)."""
    path_3d, path_2d, path_cameras = Path(path_3d), Path(path_2d), Path(path_cameras)
    pos3d = npz_object(load_npz(path_3d, "data_3d_h36m.npz"), "positions_3d", path_3d)
    npz2d = load_npz(path_2d, "data_2d_h36m_<detector>.npz")
    pos2d = npz_object(npz2d, "positions_2d", path_2d)
    _check_metadata(npz2d, path_2d)
    poses = load_cameras_json(path_cameras)
    builder = SequenceBuilder()
    notes: list[str] = []
    trimmed = 0
    used: list[str] = []
    for subject in natural_sorted(pos3d):
        split = meta.subject_split(subject)
        if split is None:
            notes.append(f"skipped subject {subject} of {path_3d.name} (not in the train/test protocol)")
            continue
        actions = get_key(pos3d, subject, f"{path_3d}: ['positions_3d']")
        if not isinstance(actions, Mapping):
            raise PrepError(
                f"{path_3d}: ['positions_3d']['{subject}']: expected a dict of actions, "
                f"got {type(actions).__name__}"
            )
        views_by_action = get_key(pos2d, subject, f"{path_2d}: ['positions_2d']")
        cams = get_key(poses, subject, str(path_cameras))
        used.append(subject)
        for action in sorted(actions):
            canonical = meta.normalize_action(action)
            where3 = f"{path_3d}: ['positions_3d']['{subject}']['{action}']"
            if canonical is None:
                raise PrepError(
                    f"{where3}: unknown action; expected one of {list(meta.ACTIONS)} (plus a take number)"
                )
            world = float_array(actions[action], where3, (None, 32, 3))[:, meta.JOINTS_32_TO_17] * 1000.0
            where2 = f"{path_2d}: ['positions_2d']['{subject}']['{action}']"
            views = get_key(views_by_action, action, f"{path_2d}: ['positions_2d']['{subject}']")
            if not isinstance(views, list | tuple) or len(views) != len(meta.CAMERA_IDS):
                raise PrepError(f"{where2}: expected a list of {len(meta.CAMERA_IDS)} per-camera arrays")
            for i, cam in enumerate(meta.CAMERA_IDS):
                xy, conf = keypoints_2d(views[i], f"{where2}[{i}]")
                if xy.shape[1] != 17:
                    raise PrepError(f"{where2}[{i}]: expected 17 joints, got {xy.shape[1]}")
                if len(xy) < len(world):
                    raise PrepError(
                        f"{where2}[{i}]: {len(xy)} frames of 2D for {len(world)} frames of 3D; "
                        "expected at least as many"
                    )
                trimmed += len(xy) - len(world)
                pose = get_key(cams, cam, f"{path_cameras}: ['{subject}']")
                builder.add(
                    {
                        "joints_2d": xy[: len(world)],
                        "confidence": conf[: len(world)],
                        "joints_3d": pose.world_to_camera(world),
                    },
                    name=f"{subject} {action}.{cam}",
                    subject=subject,
                    action=canonical,
                    camera=cam,
                    split=split,
                )
    ignored = sorted(set(pos2d) - set(pos3d), key=str)
    if ignored:
        notes.append(f"ignored 2D-only subjects {ignored} of {path_2d.name} (no 3D)")
    if trimmed:
        notes.append(f"cut {trimmed} extra 2D frames at sequence ends to the 3D length (as VideoPose3D does)")
    frames, seqs = builder.build(notes)
    cameras = {c: _intrinsics(poses, c, used, path_cameras) for c in meta.CAMERA_IDS}
    return Converted(
        frames=frames,
        sequences=seqs,
        cameras=cameras,
        dataset="h36m",
        fps=meta.FPS,
        attrs={"source_format": "videopose3d_npz", "joints_3d_space": "camera_mm"},
        notes=notes,
    )
