"""Pose Metric classes: accumulation over batches with masks, against NumPy references; pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torchmetrics import Metric

from pose2met.metrics import AUC3DHP, MPJPE, MPJVE, NMPJPE, PCK3DHP, PMPJPE
from pose2met.skeleton import PCK_JOINTS


def _np_root(x: np.ndarray) -> np.ndarray:
    return x - x[..., :1, :]


def _f32(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


def _batches(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Three batches (B, T, 17, 3) of different sizes with random valid masks (B, T)."""
    rng = np.random.default_rng(seed)
    out = []
    for b in (2, 3, 1):
        target = rng.normal(0, 200, (b, 6, 17, 3))
        pred = target + rng.normal(0, 60, target.shape)
        valid = rng.random((b, 6)) > 0.3
        out.append((pred, target, valid))
    return out


def _np_frame_errors(name: str, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Independent per-frame references (B, T) or (B, T-1)."""
    p, x = _np_root(pred), _np_root(target)
    err = np.linalg.norm(p - x, axis=-1)
    if name == "MPJPE":
        return err.mean(-1)
    if name == "NMPJPE":
        s = (p * x).sum((-2, -1), keepdims=True) / (p * p).sum((-2, -1), keepdims=True)
        return np.linalg.norm(s * p - x, axis=-1).mean(-1)
    if name == "MPJVE":
        return np.linalg.norm(np.diff(p, axis=1) - np.diff(x, axis=1), axis=-1).mean(-1)
    if name == "PCK3DHP":
        return (err[..., list(PCK_JOINTS)] < 150).mean(-1) * 100
    if name == "AUC3DHP":
        return np.mean([(err[..., list(PCK_JOINTS)] < t).mean(-1) for t in range(0, 151, 5)], axis=0) * 100
    raise KeyError(name)


@pytest.mark.parametrize("cls", [MPJPE, NMPJPE, MPJVE, PCK3DHP, AUC3DHP], ids=lambda c: c.__name__)
def test_class_accumulates_masked_frames(cls: type[Metric]) -> None:
    metric = cls()
    errs, masks = [], []
    for pred, target, valid in _batches():
        metric.update(_f32(pred), _f32(target), torch.tensor(valid))
        e = _np_frame_errors(cls.__name__, pred, target)
        m = valid[:, 1:] & valid[:, :-1] if cls is MPJVE else valid
        errs.append(e[m])
        masks.append(m)
    ref = np.concatenate(errs).mean()
    assert metric.compute().item() == pytest.approx(ref, rel=1e-5)
    metric.reset()
    with (
        pytest.warns(UserWarning, match="before the ``update``"),
        pytest.raises(ValueError, match="no frames"),
    ):
        metric.compute()


def test_pmpjpe_class_equals_mean_of_batches_without_mask() -> None:
    metric = PMPJPE()
    frames = []
    rng = np.random.default_rng(1)
    for n in (4, 9):
        target = rng.normal(0, 200, (n, 17, 3))
        pred = target @ np.diag([1.0, -1.0, -1.0]) * 1.3 + 77.0  # rotation by pi about x, scale, shift
        metric.update(torch.tensor(pred), torch.tensor(target))
        frames.append(n)
    assert metric.compute().item() == pytest.approx(0.0, abs=1e-6)
    assert int(metric.count) == sum(frames)
    assert metric.total.dtype == torch.float64


def test_valid_mask_shape_is_checked() -> None:
    metric = MPJPE()
    x = torch.zeros(2, 5, 17, 3)
    with pytest.raises(ValueError, match=r"`valid` must have shape \(2, 5\)"):
        metric.update(x, x, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="`valid` must be a bool tensor"):
        metric.update(x, x, torch.ones(2, 5))


def test_metadata_and_pickle_roundtrip() -> None:
    assert MPJPE.higher_is_better is False and PCK3DHP.higher_is_better is True
    assert MPJPE.is_differentiable and not PMPJPE.is_differentiable
    for cls in (MPJPE, PMPJPE, NMPJPE, MPJVE, PCK3DHP, AUC3DHP):
        assert cls.full_state_update is False
        metric = cls()
        metric.update(torch.zeros(1, 3, 17, 3), torch.ones(1, 3, 17, 3))
        clone = pickle.loads(pickle.dumps(metric))
        assert torch.equal(clone.compute(), metric.compute())


def test_forward_returns_batch_value_and_keeps_the_running_value() -> None:
    metric = MPJPE()
    a, b = torch.zeros(1, 17, 3), torch.zeros(1, 17, 3)
    b[0, 1:, 0] = 17.0  # 16 joints off by 17 mm: 16 mm
    c = torch.zeros(1, 17, 3)
    c[0, 1:, 0] = 34.0  # 32 mm
    assert metric(b, a).item() == pytest.approx(16.0)
    assert metric(c, a).item() == pytest.approx(32.0)
    assert metric.compute().item() == pytest.approx(24.0)
