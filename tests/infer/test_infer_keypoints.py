"""COCO-17 -> h36m17 mapping, JSON layouts and missing-joint handling, against hand computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pose2met.infer.keypoints import KeypointError, clean_keypoints, coco_to_h36m, load_keypoints


def coco_frame() -> np.ndarray:
    """COCO joint i at (10 i, 100 + i) with score 0.5 + i / 40."""
    i = np.arange(17, dtype=float)
    return np.stack([10 * i, 100 + i, 0.5 + i / 40], -1)


def test_coco_to_h36m_hand_values() -> None:
    out = coco_to_h36m(coco_frame()[None])[0]
    # pelvis = mid-hips (11, 12): x (110 + 120) / 2, y (111 + 112) / 2, score min
    np.testing.assert_allclose(out[0], [115.0, 111.5, 0.5 + 11 / 40])
    np.testing.assert_allclose(out[8], [55.0, 105.5, 0.5 + 5 / 40])  # thorax = mid-shoulders (5, 6)
    np.testing.assert_allclose(out[7], [85.0, 108.5, 0.5 + 5 / 40])  # spine = mid(pelvis, thorax)
    np.testing.assert_allclose(out[9], [0.0, 100.0, 0.5])  # neck/nose = nose
    np.testing.assert_allclose(out[10], [15.0, 101.5, 0.5 + 1 / 40])  # head = mid-eyes
    singles = {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8, 16: 10}
    for h36m, coco in singles.items():
        np.testing.assert_allclose(out[h36m], coco_frame()[coco])


def test_json_layouts_give_the_same_array(tmp_path: Path) -> None:
    frame = coco_frame()
    expected = coco_to_h36m(np.stack([frame, frame + [1, 0, 0]]))
    layouts = {
        "flat": [{"keypoints": frame.reshape(-1).tolist()}, {"keypoints": (frame + [1, 0, 0]).tolist()}],
        "mmpose": [
            {
                "frame_id": k,
                "instances": [
                    {"keypoints": (frame[:, :2] + [k, 0]).tolist(), "keypoint_scores": frame[:, 2].tolist()}
                ],
            }
            for k in range(2)
        ],  # fmt: skip
        "results": {
            "annotations": [
                {"image_id": 7, "keypoints": frame.reshape(-1).tolist(), "score": 0.9},
                {"image_id": 8, "keypoints": (frame + [1, 0, 0]).reshape(-1).tolist(), "score": 0.8},
                {"image_id": 8, "keypoints": (frame + [50, 0, 0]).reshape(-1).tolist(), "score": 0.1},
            ]
        },  # fmt: skip
    }
    for name, content in layouts.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        np.testing.assert_allclose(load_keypoints(path), expected, err_msg=name)


def test_coco_results_gap_is_a_missing_frame(tmp_path: Path) -> None:
    dets = [{"image_id": i, "keypoints": coco_frame().reshape(-1).tolist()} for i in (3, 5)]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(dets))
    raw = load_keypoints(path)
    assert raw.shape == (3, 17, 3) and np.isnan(raw[1]).all() and np.isfinite(raw[[0, 2]]).all()


def test_malformed_json_names_the_file_and_frame(tmp_path: Path) -> None:
    flat = coco_frame().reshape(-1).tolist()
    xy = coco_frame()[:, :2].tolist()
    cases = {
        "far ids": ([{"image_id": 0, "keypoints": flat}, {"image_id": 10**12, "keypoints": flat}], "span"),
        "instances": ([{"instances": 5}], "frame 0: 'instances' must be a list of persons, got int"),
        "few scores": ([{"keypoints": xy, "keypoint_scores": [0.9] * 5}], "'keypoint_scores' must be 17"),
        "text scores": ([{"keypoints": xy, "keypoint_scores": ["x"] * 17}], "'keypoint_scores' must be 17"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.json"
        path.write_text(json.dumps(content))
        with pytest.raises(KeypointError, match=rf"^{path}: .*{words}") as info:
            load_keypoints(path)
        assert "\n" not in str(info.value), name
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(KeypointError, match=rf"^{deep}: not a readable JSON file"):
        load_keypoints(deep)


def test_clean_interpolates_low_confidence_and_missing() -> None:
    t = np.arange(6, dtype=float)
    raw = np.zeros((6, 17, 3))
    raw[..., 0] = 10 * t[:, None]  # x = 10 t for every joint
    raw[..., 1] = 5.0
    raw[..., 2] = 0.9
    raw[2, 3] = [999, 999, 0.01]  # low confidence joint 3 at frame 2
    raw[4] = np.nan  # person missing in frame 4
    raw[:, 9, 2] = 0.0  # joint 9 never usable
    kp = clean_keypoints(raw, min_score=0.05)
    assert kp.missing_frames.tolist() == [False, False, False, False, True, False]
    assert kp.xy[2, 3, 0] == pytest.approx(20.0) and kp.xy[4, 0, 0] == pytest.approx(40.0)
    assert kp.score[2, 3] == 0 and (kp.score[4] == 0).all() and kp.score[0, 0] == pytest.approx(0.9)
    # a never-usable joint sits at the mean of the frame's other joints
    assert kp.xy[1, 9, 0] == pytest.approx(10.0) and (kp.score[:, 9] == 0).all()
    assert np.isfinite(kp.xy).all()


def test_clean_all_missing_is_an_error() -> None:
    with pytest.raises(KeypointError, match="no frame has a usable keypoint"):
        clean_keypoints(np.full((4, 17, 3), np.nan), source="x.npy")
