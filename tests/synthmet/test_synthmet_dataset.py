"""Dataset-level rules: splits, labels, determinism, energy ordering and spread, the CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pose2met.data.h5format import SPLITS
from pose2met.data.synthmet import KNOWN, PRESETS, UNKNOWN, Preset, generate, generate_to_file, main

#: More subjects and repeats than ``tiny`` (still ~2 s to generate) for label statistics.
STATS = Preset("stats", (6, 0, 2), known_repeats=2, unknown_repeats=3, duration_s=(3.0, 3.0), num_cameras=1)


@pytest.fixture(scope="module")
def tiny():
    return generate("tiny", seed=0)


@pytest.fixture(scope="module")
def stats():
    return generate(STATS, seed=0)


def test_presets_have_the_documented_sizes() -> None:
    assert set(PRESETS) == {"tiny", "default", "h36m-scale"}
    assert len(KNOWN) >= 12 and len(UNKNOWN) >= 4
    default = PRESETS["default"]
    assert 10 <= sum(default.subjects) <= 12 and default.duration_s == (3.0, 8.0)


def test_splits_are_by_subject_and_unknown_activities_only_in_test(tiny) -> None:
    seq = tiny.sequences
    subject_split = {}
    for subject, split in zip(seq["subject"], seq["split"], strict=True):
        assert subject_split.setdefault(subject, split) == split  # one split per subject
    assert set(subject_split.values()) == set(SPLITS)
    for action, split, aset in zip(seq["action"], seq["split"], seq["activity_set"], strict=True):
        assert aset == ("unknown" if action in UNKNOWN else "known")
        if aset == "unknown":
            assert split == "test"
    test_actions = {a for a, s in zip(seq["action"], seq["split"], strict=True) if s == "test"}
    assert set(UNKNOWN) <= test_actions and set(KNOWN) <= test_actions


def test_every_camera_of_an_instance_shares_its_label(tiny) -> None:
    n_cam = len(tiny.cameras)
    kcal = np.asarray(tiny.sequences["kcal"]).reshape(-1, n_cam)
    np.testing.assert_array_equal(kcal, kcal[:, :1].repeat(n_cam, axis=1))
    cams = np.asarray(tiny.sequences["camera"]).reshape(-1, n_cam)
    assert (cams == cams[0]).all() and len(set(cams[0])) == n_cam
    np.testing.assert_allclose(kcal[:, 0], tiny.instances["kcal"], rtol=1e-6)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = generate("tiny", seed=7), generate("tiny", seed=7), generate("tiny", seed=8)
    for key in a.frames:
        np.testing.assert_array_equal(a.frames[key], b.frames[key])
    np.testing.assert_array_equal(a.sequences["kcal"], b.sequences["kcal"])
    assert not np.allclose(a.frames["joints_3d"][:100], c.frames["joints_3d"][:100])
    assert not np.allclose(a.sequences["kcal"], c.sequences["kcal"])


def _per_activity(bundle) -> dict[str, np.ndarray]:
    kcal, action = bundle.instances["kcal"], bundle.instances["action"]
    return {a: kcal[action == a] for a in dict.fromkeys(action)}


def test_energy_ordering_and_ranges(stats) -> None:
    labels = _per_activity(stats)
    mean = {a: v.mean() for a, v in labels.items()}
    assert mean["standing_idle"] < mean["walking"] < mean["jogging"]
    assert mean["jogging"] > 4 * mean["standing_idle"]
    all_labels = stats.instances["kcal"]
    assert 40 < all_labels.min() and all_labels.max() < 1500  # documented plausible band
    # standing idle costs about the resting rate: 1 kcal per kg per hour times the subject factor
    idle = stats.instances["action"] == "standing_idle"
    s = stats.instances["subject"][idle]
    per_kg = all_labels[idle] / (stats.subjects.mass_kg[s] * stats.subjects.metabolic_factor[s])
    assert ((per_kg > 1.0) & (per_kg < 1.3)).all()


def test_heavier_subjects_burn_more_at_the_same_activity(stats) -> None:
    idle = stats.instances["action"] == "standing_idle"
    mass = stats.subjects.mass_kg[stats.instances["subject"][idle]]
    assert np.corrcoef(mass, stats.instances["kcal"][idle])[0, 1] > 0.8


def test_labels_spread_within_every_activity(stats) -> None:
    for activity, values in _per_activity(stats).items():
        assert len(values) >= 6, activity
        assert values.std() >= 0.10 * values.mean(), f"{activity}: cv {values.std() / values.mean():.3f}"


def test_cli_writes_a_valid_file_and_refuses_to_overwrite(tmp_path, capsys) -> None:
    out = tmp_path / "synthmet-tiny.h5"
    assert main(["--preset", "tiny", "--seed", "2", "--output", str(out)]) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == "pose2met" and f.attrs["dataset"] == "synthmet"
        assert f.attrs["preset"] == "tiny" and int(f.attrs["seed"]) == 2
        assert (f.attrs["source_format"], f.attrs["joints_3d_space"]) == ("synthmet", "camera_mm")
        n = f["frames/joints_2d"].shape[0]
        assert f["frames/joints_3d"].shape == (n, 17, 3) and f["frames/joints_2d_gt"].shape == (n, 17, 2)
        assert set(f["cameras"]) and all("R" in f["cameras"][c].attrs for c in f["cameras"])
        starts, lengths = f["sequences/start"][:], f["sequences/length"][:]
        assert starts[-1] + lengths[-1] == n
    before = out.stat().st_mtime_ns
    assert main(["--preset", "tiny", "--seed", "3", "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before
    with pytest.raises(FileExistsError):
        generate_to_file(out, preset="tiny")
    assert main(["--preset", "tiny", "--seed", "3", "--output", str(out), "--overwrite"]) == 0
    with h5py.File(out, "r") as f:
        assert int(f.attrs["seed"]) == 3


def test_unknown_preset_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="unknown SynthMet preset 'huge'"):
        generate("huge")
