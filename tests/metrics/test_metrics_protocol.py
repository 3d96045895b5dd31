"""Protocol aggregators: per-action/per-sequence means, de-duplication, exclusions, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from metrics_reference import auc_frames, mpjpe_frames, offset_pose, p_mpjpe_frames, pck_frames

from pose2met.metrics import MOTIONBERT_H36M_EXCLUDE, H36MProtocol, MPI3DHPProtocol

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ACTIONS = ["Walking", "Eating", "Sitting"]


def _clip(errors: list[float], frames: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One clip (1, T, 17, 3) whose frame t has MPJPE ``errors[t]``; ``frames[t] = -1`` is padding."""
    rng = np.random.default_rng(seed)
    target = rng.normal(0, 200, (1, len(errors), 17, 3))
    pred = np.stack([offset_pose(target[0, t], e) for t, e in enumerate(errors)])[None]
    return pred, target, np.array([frames])


def _batch(*clips: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[torch.Tensor, ...]:
    pred = torch.tensor(np.concatenate([c[0] for c in clips]), dtype=torch.float32)
    target = torch.tensor(np.concatenate([c[1] for c in clips]), dtype=torch.float32)
    frames = torch.tensor(np.concatenate([c[2] for c in clips]))
    return pred, target, frames, frames >= 0


def test_h36m_mean_of_action_means_differs_from_pooled_mean() -> None:
    metric = H36MProtocol(ACTIONS)
    walking = _clip([10.0, 10.0, 10.0], [0, 1, 2])
    eating = _clip([40.0, 0.0, 0.0], [10, -1, -1], seed=1)
    metric.update(*_batch(walking, eating), ["Walking", "Eating"])
    with pytest.warns(UserWarning, match="no frames of \\['Sitting'\\]"):
        out = metric.compute()
    # by hand: Walking 10, Eating 40 -> protocol (10 + 40) / 2 = 25; pooled (3 * 10 + 40) / 4 = 17.5
    assert out["mpjpe"].item() == pytest.approx(25.0, rel=1e-5)
    assert out["mpjpe_pooled"].item() == pytest.approx(17.5, rel=1e-5)
    assert out["mpjpe/Walking"].item() == pytest.approx(10.0, rel=1e-5)
    assert out["mpjpe/Eating"].item() == pytest.approx(40.0, rel=1e-5)
    assert "mpjpe/Sitting" not in out
    # P2 against the NumPy Umeyama reference, aggregated the same way
    p2 = {
        a: p_mpjpe_frames(c[0][0, :n], c[1][0, :n]).mean()
        for a, c, n in (("Walking", walking, 3), ("Eating", eating, 1))
    }
    assert out["p_mpjpe/Walking"].item() == pytest.approx(p2["Walking"], rel=1e-5)
    assert out["p_mpjpe"].item() == pytest.approx((p2["Walking"] + p2["Eating"]) / 2, rel=1e-5)
    assert out["p_mpjpe"].item() < out["mpjpe"].item()


def test_h36m_frames_seen_twice_count_once_with_their_mean_error() -> None:
    metric = H36MProtocol(ACTIONS)
    # clips overlap on frames 2 and 3: first seen with errors 10, 10, then 30, 50
    metric.update(*_batch(_clip([10.0, 10.0, 10.0, 10.0], [0, 1, 2, 3])), ["Walking"])
    metric.update(*_batch(_clip([30.0, 50.0, 20.0], [2, 3, 4], seed=2)), ["Walking"])
    metric.update(*_batch(_clip([60.0], [7], seed=3)), ["Eating"])
    metric.update(*_batch(_clip([60.0], [7], seed=3)), ["Eating"])  # an exact duplicate clip
    with pytest.warns(UserWarning):
        out = metric.compute()
    walking = np.mean([10.0, 10.0, (10.0 + 30.0) / 2, (10.0 + 50.0) / 2, 20.0])  # five unique frames
    assert out["mpjpe/Walking"].item() == pytest.approx(walking, rel=1e-5)
    assert out["mpjpe/Eating"].item() == pytest.approx(60.0, rel=1e-5)
    assert out["mpjpe_pooled"].item() == pytest.approx((walking * 5 + 60.0) / 6, rel=1e-5)


def test_h36m_exclusions_by_name_and_by_subject_pair() -> None:
    clips = [_clip([10.0], [0]), _clip([30.0], [1], seed=1), _clip([50.0], [2], seed=2)]
    actions = ["Walking"] * 3
    sequences = ["act_05_subact_02", "act_05_subact_02", "act_14_subact_01"]
    subjects = ["S9", "S11", "S9"]
    by_pair = H36MProtocol(ACTIONS, exclude=MOTIONBERT_H36M_EXCLUDE)
    by_pair.update(*_batch(*clips), actions, sequence=sequences, subject=subjects)
    with pytest.warns(UserWarning):
        assert by_pair.compute()["mpjpe_pooled"].item() == pytest.approx(
            40.0, rel=1e-5
        )  # S11 and act_14 kept
    by_name = H36MProtocol(ACTIONS, exclude=["act_05_subact_02"])
    by_name.update(*_batch(*clips), actions, sequence=sequences)
    with pytest.warns(UserWarning):
        assert by_name.compute()["mpjpe_pooled"].item() == pytest.approx(50.0, rel=1e-5)
    with pytest.raises(ValueError, match="`sequence`"):
        by_name.update(*_batch(*clips), actions)
    with pytest.raises(ValueError, match="`subject` is needed"):
        by_pair.update(*_batch(*clips), actions, sequence=sequences)
    with pytest.raises(ValueError, match="`exclude` entry"):
        H36MProtocol(ACTIONS, exclude=[("S9", "a", "b")])


def test_h36m_bad_inputs() -> None:
    metric = H36MProtocol(ACTIONS)
    pred, target, frames, valid = _batch(_clip([1.0, 2.0], [0, 1]), _clip([3.0, 4.0], [2, 3], seed=1))
    with pytest.raises(ValueError, match="unknown action 'Running'.*Walking, Eating, Sitting"):
        metric.update(pred, target, frames, valid, ["Walking", "Running"])
    with pytest.raises(ValueError, match="`action` has 1 entries but the batch has 2"):
        metric.update(pred, target, frames, valid, ["Walking"])
    with pytest.raises(ValueError, match=r"`frame_index` must have shape \(2, 2\)"):
        metric.update(pred, target, frames[:, :1], valid, ["Walking", "Eating"])
    with pytest.raises(ValueError, match=r"`pred` must have shape \(B, T, J, 3\)"):
        metric.update(pred[0], target[0], frames, valid, ["Walking", "Eating"])
    bad_valid = valid.clone()
    frames_pad = frames.clone()
    frames_pad[0, 1] = -1
    with pytest.raises(ValueError, match="frame_index -1"):
        metric.update(pred, target, frames_pad, bad_valid, ["Walking", "Eating"])
    metric.update(pred, target, frames, valid, ["Walking", "Eating"])
    metric.update(pred, target, frames, valid, ["Eating", "Eating"])  # frames 0, 1 now also "Eating"
    with pytest.raises(ValueError, match="frame_index 0 was given with two different actions"):
        metric.compute()
    with pytest.raises(ValueError, match="distinct names"):
        H36MProtocol(["Walking", "Walking"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_protocols_reject_non_finite_scored_frames(bad: float) -> None:
    pred, target, frames, valid = _batch(_clip([1.0, 2.0], [0, 1]), _clip([3.0, 4.0], [2, 3], seed=1))
    pred[1, 0, 5, 1] = bad
    with pytest.raises(ValueError, match="H36MProtocol.update: `pred` contain NaN or inf"):
        H36MProtocol(ACTIONS).update(pred, target, frames, valid, ["Walking", "Eating"])
    with pytest.raises(ValueError, match="MPI3DHPProtocol.update: `pred` contain NaN or inf"):
        MPI3DHPProtocol(["TS1", "TS2"]).update(pred, target, frames, valid, ["TS1", "TS2"])
    # a non-finite value in a frame that is not scored (padding) is ignored
    valid[1, 0] = False
    frames[1, 0] = -1
    metric = MPI3DHPProtocol(["TS1", "TS2"])
    metric.update(pred, target, frames, valid, ["TS1", "TS2"])
    assert float(metric.compute()["mpjpe"]) == pytest.approx(np.mean([1.0, 2.0, 4.0]), rel=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_3dhp_rows_match_numpy(device: str) -> None:
    rng = np.random.default_rng(4)
    sequences = ["TS1", "TS2", "TS3"]
    metric = MPI3DHPProtocol(sequences).to(device)
    target = rng.normal(0, 200, (6, 3, 17, 3))
    pred = target + rng.normal(0, 70, target.shape)
    valid = np.zeros((6, 3), dtype=bool)
    valid[:, 1] = True  # centre frame scored
    frames = np.arange(6)[:, None] * 10 + np.array([-1, 0, 1])[None]
    seq = ["TS1", "TS1", "TS2", "TS2", "TS2", "TS1"]
    pt = torch.tensor(pred, dtype=torch.float32, device=device)
    tt = torch.tensor(target, dtype=torch.float32, device=device)
    metric.update(pt[:4], tt[:4], torch.tensor(frames[:4]), torch.tensor(valid[:4]), seq[:4])
    metric.update(
        pt[3:], tt[3:], torch.tensor(frames[3:]), torch.tensor(valid[3:]), seq[3:]
    )  # window 3 twice
    out = metric.compute()
    p, t = pred[:, 1], target[:, 1]
    ref = {"pck": pck_frames(p, t), "auc": auc_frames(p, t), "mpjpe": mpjpe_frames(p, t)}
    seq_arr = np.array(seq)
    for name, values in ref.items():
        assert out[name].item() == pytest.approx(values.mean(), rel=1e-5)
        for s in ("TS1", "TS2"):
            assert out[f"{name}/{s}"].item() == pytest.approx(values[seq_arr == s].mean(), rel=1e-5)
    assert "pck/TS3" not in out
    with pytest.raises(ValueError, match="unknown sequence 'TS9'"):
        metric.update(pt[:1], tt[:1], torch.tensor(frames[:1]), torch.tensor(valid[:1]), ["TS9"])
    with pytest.raises(ValueError, match="`sequence` is required"):
        metric.update(pt[:1], tt[:1], torch.tensor(frames[:1]), torch.tensor(valid[:1]), None)  # type: ignore[arg-type]


def test_protocols_pickle_and_empty_compute() -> None:
    metric = H36MProtocol(ACTIONS)
    metric.update(*_batch(_clip([5.0, 7.0], [0, 1])), ["Sitting"])
    clone = pickle.loads(pickle.dumps(metric))
    with pytest.warns(UserWarning):
        assert clone.compute()["mpjpe/Sitting"].item() == pytest.approx(6.0, rel=1e-5)
    empty = MPI3DHPProtocol(["TS1"])
    with (
        pytest.warns(UserWarning, match="before the ``update``"),
        pytest.raises(ValueError, match="no frames"),
    ):
        empty.compute()


def test_bf16_predictions_are_scored_in_float32() -> None:
    metric = H36MProtocol(["Walking"])
    pred, target, frames, valid = _batch(_clip([12.0, 24.0], [0, 1]))
    metric.update(pred.bfloat16(), target.bfloat16(), frames, valid, ["Walking"])
    rounded = mpjpe_frames(pred.bfloat16().double().numpy(), target.bfloat16().double().numpy()).mean()
    assert metric.compute()["mpjpe"].item() == pytest.approx(rounded, rel=1e-4)
