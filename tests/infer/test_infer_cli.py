"""`pose2met infer` end to end on a tiny trained checkpoint: every input format, outputs, plots, bad input."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pose2met.infer.cli import infer_main, viz_main
from pose2met.skeleton import JOINT_NAMES

W, H = 1000.0, 800.0
T = 23  # several overlapping windows of the 9-frame model


def coco_sequence(t: int = T, seed: int = 0) -> np.ndarray:
    """A plausible moving COCO-17 person ``(t, 17, 3)`` in pixels with scores."""
    rng = np.random.default_rng(seed)
    base = np.array(
        [[500, 200], [490, 190], [510, 190], [480, 195], [520, 195], [460, 260], [540, 260], [450, 330],
         [550, 330], [445, 400], [555, 400], [475, 420], [525, 420], [470, 520], [530, 520], [468, 620],
         [532, 620]], dtype=float,
    )  # fmt: skip
    phase = np.linspace(0, 2 * np.pi, t)[:, None]
    xy = base[None] + np.stack([20 * np.sin(phase), 5 * np.cos(phase)], -1)  # (t, 1, 2) sway
    xy += rng.normal(0, 1.0, xy.shape)
    score = rng.uniform(0.6, 1.0, (t, 17, 1))
    return np.concatenate([xy, score], -1)


def run_infer(ckpt: Path, inp: Path, out: Path, *extra: str) -> int:
    args = ["--checkpoint", str(ckpt), "--input", str(inp), "--image-size", str(W), str(H)]
    return infer_main([*args, "--output", str(out), "--device", "cpu", *extra])


def check_record(rec: dict, t: int) -> None:
    assert rec["joints_3d_mm"].shape == (t, 17, 3)
    assert np.isfinite(rec["joints_3d_mm"]).all()
    np.testing.assert_allclose(rec["joints_3d_mm"][:, 0], 0.0, atol=1e-6)  # root-relative
    assert list(rec["joint_names"]) == list(JOINT_NAMES)
    n = len(rec["window_start"])
    assert rec["window_kcal_per_hour"].shape == rec["window_kcal_per_hour_std"].shape == (n,)
    assert 0.0 <= float(rec["kcal_per_hour"]) <= 1000.0 and float(rec["kcal_per_hour_std"]) > 0
    assert "millimetres" in str(rec["units"])


def test_json_flat51_end_to_end(unified_checkpoint: Path, tmp_path: Path) -> None:
    seq = coco_sequence()
    frames = [{"keypoints": kp.reshape(-1).tolist(), "score": 0.9} for kp in seq]
    frames[5] = {"keypoints": []}  # no person in frame 5
    inp = tmp_path / "kp.json"
    inp.write_text(json.dumps(frames))
    out = tmp_path / "out.npz"
    assert run_infer(unified_checkpoint, inp, out, "--fps", "25") == 0
    rec = dict(np.load(out))
    check_record(rec, T)
    assert rec["missing_frames"].tolist() == [i == 5 for i in range(T)]
    # windows of 9 with stride 4 over 23 frames: 0, 4, 8, 12 and one ending at the last frame
    assert rec["window_start"].tolist() == [0, 4, 8, 12, 14]
    # total kcal = rate x duration: 23 frames at 25 fps
    assert float(rec["total_kcal"]) == pytest.approx(float(rec["kcal_per_hour"]) * T / 25 / 3600, rel=1e-6)
    # the missing frame's 2D keypoints were interpolated between frames 4 and 6 (pelvis = mid-hips)
    hips = 0.5 * (seq[:, 11, :2] + seq[:, 12, :2])
    np.testing.assert_allclose(rec["keypoints_2d"][5, 0, :2], 0.5 * (hips[4] + hips[6]), atol=1e-3)
    assert rec["keypoints_2d"][5, :, 2].max() == 0.0


def test_json_person_lists_and_json_output(unified_checkpoint: Path, tmp_path: Path) -> None:
    seq = coco_sequence(12)
    other = coco_sequence(12, seed=1)
    other[..., 0] += 300
    frames = [
        [{"keypoints": o.tolist(), "score": 0.3}, {"keypoints": kp.tolist(), "score": 0.95}]
        for kp, o in zip(seq, other, strict=True)
    ]
    inp = tmp_path / "persons.json"
    inp.write_text(json.dumps(frames))
    out = tmp_path / "out.json"
    assert run_infer(unified_checkpoint, inp, out, "--no-flip") == 0
    rec = json.loads(out.read_text())
    assert np.asarray(rec["joints_3d_mm"]).shape == (12, 17, 3)
    assert rec["fps"] is None and "total_kcal" not in rec
    # the higher-scoring person was taken: the h36m right wrist is COCO right wrist (10)
    np.testing.assert_allclose(np.asarray(rec["keypoints_2d"])[:, 16, :2], seq[:, 10, :2], atol=1e-3)


def test_npy_coco_matches_json(unified_checkpoint: Path, tmp_path: Path) -> None:
    seq = coco_sequence()
    np.save(tmp_path / "kp.npy", seq)
    (tmp_path / "kp.json").write_text(json.dumps([{"keypoints": kp.tolist()} for kp in seq]))
    assert run_infer(unified_checkpoint, tmp_path / "kp.npy", tmp_path / "a.npz") == 0
    assert run_infer(unified_checkpoint, tmp_path / "kp.json", tmp_path / "b.npz") == 0
    a, b = dict(np.load(tmp_path / "a.npz")), dict(np.load(tmp_path / "b.npz"))
    check_record(a, T)
    np.testing.assert_allclose(a["joints_3d_mm"], b["joints_3d_mm"], atol=1e-4)
    assert float(a["kcal_per_hour"]) == pytest.approx(float(b["kcal_per_hour"]), abs=1e-4)


def test_npz_h36m_xy_only_short_sequence(unified_checkpoint: Path, tmp_path: Path) -> None:
    xy = np.random.default_rng(3).uniform(300, 700, (5, 17, 2))  # shorter than the 9-frame window
    np.savez(tmp_path / "kp.npz", keypoints=xy)
    out = tmp_path / "out.npz"
    assert run_infer(unified_checkpoint, tmp_path / "kp.npz", out, "--layout", "h36m") == 0
    rec = dict(np.load(out))
    check_record(rec, 5)
    assert rec["window_start"].tolist() == [0] and rec["window_frames"].tolist() == [5]
    np.testing.assert_allclose(rec["keypoints_2d"][..., :2], xy, atol=1e-3)  # h36m order kept
    np.testing.assert_array_equal(rec["keypoints_2d"][..., 2], 1.0)  # (T, 17, 2) -> score 1


def png_ok(path: Path, size: tuple[int, int]) -> None:
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[1::-1] == size
    assert image.std() > 0 and len(np.unique(image.reshape(-1, 3), axis=0)) > 2


def test_plots_and_gif(unified_checkpoint: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "kp.npy", coco_sequence())
    plots = tmp_path / "plots"
    assert run_infer(unified_checkpoint, tmp_path / "kp.npy", tmp_path / "o.npz", "--fps", "25",
                     "--plot", str(plots), "--gif") == 0  # fmt: skip
    png_ok(plots / "skeletons.png", (4 * 260, 2 * 260 + 40))  # 8 panels of 2.6 in + 0.4 in title, 100 dpi
    png_ok(plots / "kcal_timeline.png", (640, 320))
    gif = Image.open(plots / "skeleton.gif")
    assert gif.n_frames == T


def test_mp4_with_the_bundled_ffmpeg(
    unified_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imageio_ffmpeg

    monkeypatch.setenv("PATH", "")  # no system ffmpeg: the one of the imageio-ffmpeg wheel is used
    np.save(tmp_path / "kp.npy", coco_sequence())
    plots = tmp_path / "plots"
    assert run_infer(unified_checkpoint, tmp_path / "kp.npy", tmp_path / "o.npz", "--fps", "25",
                     "--plot", str(plots), "--mp4") == 0  # fmt: skip
    video = plots / "skeleton.mp4"
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))  # ffmpeg decodes the whole file
    assert frames == T and seconds == pytest.approx(T / 25, abs=0.05)
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    assert tuple(meta["size"]) == (320, 320)  # 4 in at 80 dpi
    first = np.frombuffer(next(reader), dtype=np.uint8)
    assert first.size == 320 * 320 * 3 and first.std() > 0
    reader.close()


def test_mp4_without_any_ffmpeg_fails_before_work(
    unified_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import pose2met.viz.animation as animation

    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # the [video] extra not installed
    assert animation.find_ffmpeg() is None
    np.save(tmp_path / "kp.npy", coco_sequence())
    args = ("--plot", str(tmp_path / "plots"), "--mp4")
    assert run_infer(unified_checkpoint, tmp_path / "kp.npy", tmp_path / "o.npz", *args) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'error: --mp4 needs ffmpeg, none found: pip install "pose2met[video]" or use --gif'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kp.npy"]
    with pytest.raises(animation.AnimationError, match=r"clip\.mp4: MP4 needs ffmpeg, none found"):
        animation.save_skeleton_animation(np.zeros((3, 17, 3)), tmp_path / "clip.mp4")


def test_viz_compare_and_attention(unified_checkpoint: Path, synthmet_tiny: Path, tmp_path: Path) -> None:
    base = ["--checkpoint", str(unified_checkpoint), "--device", "cpu"]
    out = tmp_path / "compare.png"
    assert viz_main(["compare", *base, "--data", str(synthmet_tiny), "--num", "3", "--output", str(out)]) == 0
    png_ok(out, (3 * 320, 340))
    att = tmp_path / "attention.png"
    assert viz_main(["attention", *base, "--data", str(synthmet_tiny), "--output", str(att)]) == 0
    png_ok(att, (3 * 440, 440))
    np.save(tmp_path / "kp.npy", coco_sequence())
    att2 = tmp_path / "attention2.png"
    args = ["attention", *base, "--input", str(tmp_path / "kp.npy"), "--image-size", "1000", "800"]
    assert viz_main([*args, "--output", str(att2)]) == 0
    png_ok(att2, (3 * 440, 440))


def test_viz_attention_of_an_image25d_model_on_data_without_factor(
    unified_checkpoint: Path, synthmet_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """attention reads only the 2D input, so a file without factor_2_5d serves an image25d model;
    compare builds image25d targets and names the missing array; --num is bounded."""
    import shutil

    import h5py
    import torch

    from pose2met.lit import TrainingStage
    from pose2met.lit.checkpoint import CHECKPOINT_META_KEY

    with torch.serialization.safe_globals([TrainingStage]):
        ckpt = torch.load(unified_checkpoint, map_location="cpu", weights_only=True)
    ckpt[CHECKPOINT_META_KEY]["target_space"] = "image25d"
    torch.save(ckpt, tmp_path / "image25d.ckpt")
    data = tmp_path / "no_factor.h5"
    shutil.copy(synthmet_tiny, data)
    with h5py.File(data, "a") as f:
        del f["frames/factor_2_5d"]
    base = ["--checkpoint", str(tmp_path / "image25d.ckpt"), "--device", "cpu", "--data", str(data)]
    assert viz_main(["attention", *base, "--output", str(tmp_path / "att.png")]) == 0
    png_ok(tmp_path / "att.png", (3 * 440, 440))
    capsys.readouterr()
    assert viz_main(["compare", *base, "--output", str(tmp_path / "cmp.png")]) == 2
    assert "/frames/factor_2_5d" in one_line_error(capsys)
    for num in ("0", "17"):
        assert viz_main(["compare", *base, "--num", num, "--output", str(tmp_path / "cmp.png")]) == 2
        err = one_line_error(capsys)
        assert err == f"error: --num must be in [1, 16] (one row of panels, 320 px each), got {num}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["att.png", "image25d.ckpt", "no_factor.h5"]


BAD_INPUTS = {
    "empty file": ("kp.json", b""),
    "wrong keypoint count": ("kp.json", json.dumps([{"keypoints": [1.0, 2.0, 0.9] * 16}]).encode()),
    "all NaN": ("kp.npy", None),
    "wrong array shape": ("kp.npy", "shape"),
    "not json": ("kp.json", b"{not json"),
    "truncated npz": ("kp.npz", "truncated"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_exit_nonzero_without_output(
    case: str, unified_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    name, content = BAD_INPUTS[case]
    inp = tmp_path / name
    if content is None:
        np.save(inp, np.full((10, 17, 3), np.nan))
    elif content == "shape":
        np.save(inp, np.zeros((10, 16, 3)))
    elif content == "truncated":
        np.savez(inp, keypoints=coco_sequence())
        inp.write_bytes(inp.read_bytes()[:300])
    else:
        inp.write_bytes(content)
    out = tmp_path / "out.npz"
    assert run_infer(unified_checkpoint, inp, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert str(inp) in err
    assert list(tmp_path.iterdir()) == [inp]  # no output, no temporary file


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("kp.npy", "not a NumPy .npy/.npz file (no NumPy or zip header"),  # a CSV renamed .npy
        ("kp.npz", "not a NumPy .npy/.npz file (no NumPy or zip header"),
        ("folder.npy", "is a folder; expected a .json, .npy or .npz keypoints file"),
    ],
)
def test_input_that_is_not_a_numpy_file_is_named_as_such(
    name: str, words: str, unified_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    inp = tmp_path / name
    if name.startswith("folder"):
        inp.mkdir()
    else:
        inp.write_text("x,y,score\n1,2,0.9\n")
    assert run_infer(unified_checkpoint, inp, tmp_path / "out.npz") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {inp}: {words}") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--image-size", "inf", "800"], "--image-size: width and height must be positive finite"),
        (["--fps", "inf"], "--fps must be a positive finite number"),
        (["--fps", "1e-320"], "total_kcal is not finite"),
        (["--min-score", "nan"], "--min-score must be a confidence in [0, 1]"),
        (["--min-score", "2"], "--min-score must be a confidence in [0, 1]"),
        (["--device", "meta"], "--device meta: expected cpu, cuda"),
        (["huge coordinates"], "exceed float32"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_flag_values_are_one_line_without_output(
    flags: list[str], words: str, unified_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    keypoints = coco_sequence()
    if flags == ["huge coordinates"]:
        keypoints[..., :2], flags = 1e300, []
    np.save(tmp_path / "kp.npy", keypoints)
    args = ["--checkpoint", str(unified_checkpoint), "--input", str(tmp_path / "kp.npy"), "--device", "cpu"]
    if "--image-size" not in flags:
        args += ["--image-size", str(W), str(H)]
    assert infer_main([*args, *flags, "--output", str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and words in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kp.npy"]


def test_unwritable_folders_fail_before_any_work(
    unified_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    np.save(tmp_path / "kp.npy", coco_sequence())
    (tmp_path / "ro").mkdir()
    figures = tmp_path / "figs"
    writable = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p).name != "ro" and writable(p, mode))
    for output, plot in (
        (tmp_path / "ro" / "out.npz", figures),
        (tmp_path / "out.npz", tmp_path / "ro" / "f"),
    ):
        assert run_infer(unified_checkpoint, tmp_path / "kp.npy", output, "--plot", str(plot)) == 2
        err = capsys.readouterr().err.strip()
        assert "ro is not writable" in err and err.count("\n") == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kp.npy", "ro"]  # no figures were drawn first


def test_bad_checkpoints(unified_checkpoint: Path, checkpoint_3d_input: Path, tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "kp.npy", coco_sequence())
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(unified_checkpoint.read_bytes()[:1000])
    for ckpt, words in ((corrupt, "not a readable"), (checkpoint_3d_input, "3d input")):
        out = tmp_path / "out.npz"
        assert run_infer(ckpt, tmp_path / "kp.npy", out) == 2
        err = capsys.readouterr().err
        assert words in err and str(ckpt) in err and err.count("\n") == 1
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.ckpt", "kp.npy"]


def test_pose2met_command_dispatches_infer(unified_checkpoint: Path, tmp_path: Path) -> None:
    """`pose2met infer ...` (the console script's main) reaches the same entry point."""
    from pose2met.cli import main

    inp = tmp_path / "kp.npy"
    np.save(inp, coco_sequence())
    out = tmp_path / "out.json"
    args = [
        "infer",
        "--checkpoint",
        str(unified_checkpoint),
        "--input",
        str(inp),
        "--image-size",
        str(W),
        str(H),
    ]
    assert main([*args, "--output", str(out), "--fps", "25"]) == 0
    rec = json.loads(out.read_text())
    assert np.asarray(rec["joints_3d_mm"]).shape == (T, 17, 3)
    missing = tmp_path / "missing.ckpt"
    bad = ["infer", "--checkpoint", str(missing), "--input", str(inp), "--image-size", str(W), str(H)]
    assert main([*bad, "--output", str(tmp_path / "bad.npz")]) == 2
    assert not (tmp_path / "bad.npz").exists()


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_existing_output_needs_overwrite(unified_checkpoint: Path, tmp_path: Path, capsys) -> None:
    inp = tmp_path / "kp.npy"
    np.save(inp, coco_sequence())
    out = tmp_path / "out.json"
    out.write_text("old")
    assert run_infer(unified_checkpoint, inp, out) == 2
    assert one_line_error(capsys) == f"error: {out} exists; pass --overwrite to replace it"
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["kp.npy", "out.json"]
    assert run_infer(unified_checkpoint, inp, out, "--overwrite") == 0
    assert np.asarray(json.loads(out.read_text())["joints_3d_mm"]).shape == (T, 17, 3)


def test_output_is_never_an_input_file(unified_checkpoint: Path, tmp_path: Path, capsys) -> None:
    inp = tmp_path / "kp.npz"
    np.savez(inp, keypoints=coco_sequence())
    before = inp.read_bytes()
    for out in (inp, tmp_path / "sub" / ".." / "kp.npz"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        assert run_infer(unified_checkpoint, inp, out, "--overwrite") == 2
        err = one_line_error(capsys)
        assert str(out) in err and "--input" in err
    assert inp.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["kp.npz", "sub"]


def test_output_folder_is_a_clear_error(unified_checkpoint: Path, tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "kp.npy", coco_sequence())
    folder = tmp_path / "out.npz"
    folder.mkdir()
    assert run_infer(unified_checkpoint, tmp_path / "kp.npy", folder, "--overwrite") == 2
    assert (
        one_line_error(capsys)
        == f"error: {folder}: is a folder; expected a file name ending in .npz or .json"
    )
    assert not any(folder.iterdir())


def test_existing_figures_need_overwrite(unified_checkpoint: Path, tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "kp.npy", coco_sequence())
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "kcal_timeline.png").write_bytes(b"old")
    args = ("--plot", str(plots))
    assert run_infer(unified_checkpoint, tmp_path / "kp.npy", tmp_path / "o.npz", *args) == 2
    err = one_line_error(capsys)
    assert err == f"error: {plots / 'kcal_timeline.png'} exists; pass --overwrite to replace it"
    assert [p.name for p in plots.iterdir()] == ["kcal_timeline.png"] and not (tmp_path / "o.npz").exists()
    assert (plots / "kcal_timeline.png").read_bytes() == b"old"
    assert run_infer(unified_checkpoint, tmp_path / "kp.npy", tmp_path / "o.npz", *args, "--overwrite") == 0
    png_ok(plots / "kcal_timeline.png", (640, 320))
    not_a_folder = tmp_path / "kp.npy"
    assert run_infer(unified_checkpoint, not_a_folder, tmp_path / "p.npz", "--plot", str(not_a_folder)) == 2
    assert one_line_error(capsys) == f"error: --plot {not_a_folder}: exists and is not a folder"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o027], ids=oct)
def test_written_files_get_the_mode_of_a_new_file(
    umask: int, unified_checkpoint: Path, synthmet_tiny: Path, tmp_path: Path
) -> None:
    np.save(tmp_path / "kp.npy", coco_sequence())
    old = os.umask(umask)
    try:
        assert (
            run_infer(unified_checkpoint, tmp_path / "kp.npy", tmp_path / "o.npz", "--plot", str(tmp_path))
            == 0
        )
        png = tmp_path / "compare.png"
        base = ["--checkpoint", str(unified_checkpoint), "--device", "cpu", "--data", str(synthmet_tiny)]
        assert viz_main(["compare", *base, "--num", "1", "--output", str(png)]) == 0
    finally:
        os.umask(old)
    for name in ("o.npz", "skeletons.png", "kcal_timeline.png", "compare.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_viz_existing_output_needs_overwrite(
    unified_checkpoint: Path, synthmet_tiny: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "attention.png"
    out.write_bytes(b"old")
    base = ["--checkpoint", str(unified_checkpoint), "--device", "cpu", "--data", str(synthmet_tiny)]
    for figure in ("compare", "attention"):
        assert viz_main([figure, *base, "--output", str(out)]) == 2
        assert one_line_error(capsys) == f"error: {out} exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]
    assert viz_main(["attention", *base, "--output", str(out), "--overwrite"]) == 0
    png_ok(out, (3 * 440, 440))
