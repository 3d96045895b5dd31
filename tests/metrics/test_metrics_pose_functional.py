"""Functional pose metrics against NumPy/SciPy references and hand-computed cases."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from metrics_reference import umeyama_aligned
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from pose2met.metrics import functional as MF
from pose2met.skeleton import PCK_JOINTS

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _poses(n: int = 6, t: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n, 17, 3) if t is None else (n, t, 17, 3)
    target = rng.normal(0.0, 200.0, shape)
    pred = target + rng.normal(0.0, 40.0, shape)
    return pred, target


def _np_root(x: np.ndarray) -> np.ndarray:
    return x - x[..., :1, :]


def _t(x: np.ndarray, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(x, dtype=dtype, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_mpjpe_matches_numpy(device: str) -> None:
    pred, target = _poses()
    ref = np.linalg.norm(_np_root(pred) - _np_root(target), axis=-1).mean()
    ref_raw = np.linalg.norm(pred - target, axis=-1).mean()
    assert MF.mpjpe(_t(pred, device), _t(target, device)).item() == pytest.approx(ref, rel=1e-5)
    assert MF.mpjpe(_t(pred, device), _t(target, device), root_align=False).item() == pytest.approx(
        ref_raw, rel=1e-5
    )
    per_frame = MF.mpjpe_per_frame(_t(pred, device), _t(target, device))
    np.testing.assert_allclose(
        per_frame.cpu().numpy(),
        np.linalg.norm(_np_root(pred) - _np_root(target), axis=-1).mean(-1),
        rtol=1e-5,
    )


def test_root_alignment_removes_a_global_shift() -> None:
    _, target = _poses()
    shifted = target + np.array([100.0, -50.0, 3000.0])
    assert MF.mpjpe(_t(shifted), _t(target)).item() == pytest.approx(0.0, abs=1e-3)
    assert MF.mpjpe(_t(shifted), _t(target), root_align=False).item() == pytest.approx(
        np.linalg.norm([100, -50, 3000])
    )


@pytest.mark.parametrize("device", DEVICES)
def test_p_mpjpe_matches_numpy_umeyama(device: str) -> None:
    pred, target = _poses(n=8)
    pred[3] = pred[3] * np.array(
        [1.0, 1.0, -1.0]
    )  # a mirrored frame: its best orthogonal map is a reflection
    aligned_ref = umeyama_aligned(pred, target)
    ref = np.linalg.norm(aligned_ref - target, axis=-1).mean(-1)
    got = MF.p_mpjpe_per_frame(_t(pred, device), _t(target, device)).cpu().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    aligned = MF.procrustes_align(_t(pred, device), _t(target, device)).cpu().numpy()
    np.testing.assert_allclose(aligned, aligned_ref, atol=1e-3)
    assert MF.p_mpjpe(_t(pred, device), _t(target, device)).item() == pytest.approx(ref.mean(), rel=1e-5)


def test_p_mpjpe_rotation_matches_scipy_orthogonal_procrustes() -> None:
    """On frames whose best orthogonal map is a proper rotation, SciPy's solution agrees."""
    pred, target = _poses(n=4, seed=3)
    for p, x, err in zip(pred, target, MF.p_mpjpe_per_frame(_t(pred), _t(target)).numpy(), strict=True):
        pc, xc = p - p.mean(0), x - x.mean(0)
        rot, sv_sum = orthogonal_procrustes(pc, xc)
        assert np.linalg.det(rot) > 0
        scale = sv_sum / (pc**2).sum()
        ref = np.linalg.norm(scale * pc @ rot + x.mean(0) - x, axis=-1).mean()
        assert err == pytest.approx(ref, rel=1e-5)


def test_similarity_copy_has_zero_p_mpjpe_and_reflection_does_not() -> None:
    _, target = _poses(n=5)
    rot = Rotation.from_euler("xyz", [30, -70, 110], degrees=True).as_matrix()
    copy = 1.7 * target @ rot.T + np.array([300.0, -20.0, 4000.0])
    assert MF.p_mpjpe(_t(copy), _t(target)).item() == pytest.approx(0.0, abs=1e-3)
    assert MF.mpjpe(_t(copy), _t(target)).item() > 100.0
    mirrored = target * np.array([-1.0, 1.0, 1.0])
    # an improper orthogonal map (reflection) would align it exactly; a rotation cannot
    x = target[0] - target[0].mean(0)
    r, _ = orthogonal_procrustes(mirrored[0] - mirrored[0].mean(0), x)
    assert np.linalg.det(r) < 0
    assert MF.p_mpjpe(_t(mirrored), _t(target)).item() > 10.0


def test_p_mpjpe_degenerate_prediction_is_finite() -> None:
    _, target = _poses(n=2)
    pred = np.zeros_like(target)
    ref = np.linalg.norm(target - target.mean(-2, keepdims=True), axis=-1).mean()
    assert MF.p_mpjpe(_t(pred), _t(target)).item() == pytest.approx(ref, rel=1e-5)


def test_n_mpjpe_matches_numpy() -> None:
    pred, target = _poses()
    p, x = _np_root(pred), _np_root(target)
    scale = (p * x).sum((-2, -1), keepdims=True) / (p * p).sum((-2, -1), keepdims=True)
    ref = np.linalg.norm(scale * p - x, axis=-1).mean()
    assert MF.n_mpjpe(_t(pred), _t(target)).item() == pytest.approx(ref, rel=1e-5)
    assert MF.n_mpjpe(_t(0.3 * target), _t(target)).item() == pytest.approx(0.0, abs=1e-3)


def test_mpjve_matches_numpy_and_needs_a_time_axis() -> None:
    pred, target = _poses(n=3, t=7)
    vp, vt = np.diff(_np_root(pred), axis=-3), np.diff(_np_root(target), axis=-3)
    ref = np.linalg.norm(vp - vt, axis=-1).mean(-1)
    np.testing.assert_allclose(MF.mpjve_per_frame(_t(pred), _t(target)).numpy(), ref, rtol=1e-5)
    assert MF.mpjve(_t(pred), _t(target)).item() == pytest.approx(ref.mean(), rel=1e-5)
    # a constant offset over time has no velocity error
    assert MF.mpjve(_t(target + 25.0), _t(target), root_align=False).item() == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="at least 2 frames"):
        MF.mpjve(_t(pred[:, :1]), _t(target[:, :1]))
    with pytest.raises(ValueError, match=r"\(\.\.\., T, J, 3\)"):
        MF.mpjve(_t(pred[0, 0]), _t(target[0, 0]))


def _np_pck_errors(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.linalg.norm(_np_root(pred) - _np_root(target), axis=-1)[..., list(PCK_JOINTS)]


def test_pck_and_auc_match_numpy() -> None:
    pred, target = _poses(n=50)
    pred = target + (pred - target) * 3.0  # errors spread over the 0..150 mm range
    err = _np_pck_errors(pred, target)
    assert err.shape[-1] == 14
    pck_ref = (err < 150.0).mean() * 100
    auc_ref = np.mean([(err < thr).mean() for thr in np.linspace(0, 150, 31)]) * 100
    assert 5.0 < pck_ref < 95.0
    assert MF.pck_3dhp(_t(pred), _t(target)).item() == pytest.approx(pck_ref, rel=1e-5)
    assert MF.auc_3dhp(_t(pred), _t(target)).item() == pytest.approx(auc_ref, rel=1e-5)
    assert MF.pck_3dhp(_t(pred), _t(target), threshold=50.0).item() == pytest.approx((err < 50).mean() * 100)


def test_pck_threshold_is_strict_and_unscored_joints_are_ignored() -> None:
    target = np.zeros((1, 17, 3))
    pred = target.copy()
    pred[0, 1:, 2] = 150.0  # exactly the threshold: not counted
    assert MF.pck_3dhp(_t(pred), _t(target)).item() == 0.0
    pred[0, 1:, 2] = 149.99
    assert MF.pck_3dhp(_t(pred), _t(target)).item() == pytest.approx(100.0)
    pred[0, [7, 9], 2] = 1000.0  # spine and neck are not among the 14 scored joints
    assert MF.pck_3dhp(_t(pred), _t(target)).item() == pytest.approx(100.0)
    # error 0 passes every threshold but 0 (strict): 30 of 31
    assert MF.auc_3dhp(_t(target), _t(target)).item() == pytest.approx(3000.0 / 31)


@pytest.mark.parametrize(
    "fn", [MF.mpjpe, MF.p_mpjpe, MF.n_mpjpe, MF.mpjve, MF.pck_3dhp, MF.auc_3dhp], ids=lambda f: f.__name__
)
def test_bf16_inputs_match_reference_on_rounded_values(fn: Callable[..., torch.Tensor]) -> None:
    pred, target = _poses(n=4, t=5)
    pred_bf, target_bf = _t(pred, dtype=torch.bfloat16), _t(target, dtype=torch.bfloat16)
    got = fn(pred_bf, target_bf)
    assert got.dtype == torch.float32
    ref = fn(pred_bf.double(), target_bf.double())
    assert got.item() == pytest.approx(ref.item(), rel=1e-4, abs=1e-3)


def test_bad_inputs_raise_clear_errors() -> None:
    pred, target = _poses(n=2)
    with pytest.raises(ValueError, match=r"`pred` must have shape \(\.\.\., J, 3\)"):
        MF.mpjpe(_t(pred[..., :2]), _t(target[..., :2]))
    with pytest.raises(ValueError, match="same shape"):
        MF.p_mpjpe(_t(pred), _t(target[:1]))
    with pytest.raises(TypeError, match="`target` must be a floating-point tensor"):
        MF.mpjpe(_t(pred), torch.zeros(2, 17, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="`pred` must be a torch.Tensor"):
        MF.mpjpe(pred, _t(target))
    with pytest.raises(ValueError, match="no frames"):
        MF.mpjpe(torch.zeros(0, 17, 3), torch.zeros(0, 17, 3))
    with pytest.raises(ValueError, match="`joints`"):
        MF.pck_3dhp(_t(pred[:, :10]), _t(target[:, :10]))
    bad = _t(pred)
    bad[1, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="`pred` contain NaN"):
        MF.mpjpe(bad, _t(target))


@pytest.mark.parametrize("name", ["mpjpe", "n_mpjpe", "p_mpjpe", "pck_3dhp", "auc_3dhp", "procrustes_align"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("which", ["pred", "target"])
def test_non_finite_inputs_raise_for_every_metric(name: str, bad: float, which: str) -> None:
    # PCK/AUC would count a NaN joint as a miss and the SVD of P-MPJPE would fail inside torch
    pred, target = _t(_poses(n=3)[0]), _t(_poses(n=3)[1])
    (pred if which == "pred" else target)[1, 4, 2] = bad
    with pytest.raises(ValueError, match=f"`{which}` contain NaN or inf"):
        getattr(MF, name)(pred, target)


@pytest.mark.parametrize("name", ["mpjpe", "n_mpjpe", "pck_3dhp"])
def test_float32_overflow_is_an_error_and_float64_matches_numpy(name: str) -> None:
    pred, target = _poses(n=2)
    pred, target = pred * 1e18, target * 1e18  # finite, but squared norms exceed float32
    with pytest.raises(ValueError, match="overflowed torch.float32.*float64"):
        getattr(MF, name)(_t(pred), _t(target))
    if name == "mpjpe":
        ref = np.linalg.norm(_np_root(pred) - _np_root(target), axis=-1).mean()
        wide = MF.mpjpe(_t(pred, dtype=torch.float64), _t(target, dtype=torch.float64))
        assert float(wide) == pytest.approx(ref, rel=1e-12)


def test_mpjpe_gradient_matches_the_analytic_gradient() -> None:
    pred, target = _poses(n=3)
    p = torch.tensor(pred, requires_grad=True)
    MF.mpjpe(p, torch.tensor(target), root_align=False).backward()
    diff = pred - target
    expected = diff / np.linalg.norm(diff, axis=-1, keepdims=True) / (3 * 17)
    np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-10)
    q = torch.tensor(pred, requires_grad=True)
    (MF.n_mpjpe(q, torch.tensor(target)) + MF.mpjve(q[None], torch.tensor(target)[None])).backward()
    assert q.grad is not None and bool(torch.isfinite(q.grad).all()) and q.grad.abs().sum() > 0
