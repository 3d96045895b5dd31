"""Functional pose metrics on ``(..., J, 3)`` joint positions in mm, h36m17 joint order.

Every metric has a per-frame form (``*_per_frame``, returns ``(...)``, one value per frame) that
the Metric classes and protocol aggregators accumulate, and a reduced form (the mean over all
frames). Inputs of any float dtype (bf16 included) are computed in at least float32; the
Procrustes alignment runs in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor

from pose2met.metrics._checks import check_finite, check_finite_result, check_mask, check_pose_pair
from pose2met.skeleton import PCK_JOINTS, ROOT

#: MPI-INF-3DHP PCK threshold (strict ``<``), mm.
PCK_THRESHOLD_MM = 150.0
#: MPI-INF-3DHP AUC thresholds 0, 5, ..., 150 mm.
AUC_THRESHOLDS_MM: tuple[float, ...] = tuple(float(t) for t in range(0, 151, 5))


def _working(x: Tensor) -> Tensor:
    """``x`` in float32 at least (bf16/fp16 are promoted, float64 kept)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _root_aligned(x: Tensor, root_align: bool) -> Tensor:
    return x - x[..., ROOT : ROOT + 1, :] if root_align else x


def _norm3(diff: Tensor) -> Tensor:
    """Euclidean norm over the last axis; in place (no extra buffers) when no gradient is needed.

    ``diff`` must be a temporary that the caller owns.
    """
    if diff.requires_grad:
        return torch.linalg.vector_norm(diff, dim=-1)
    return diff.square_().sum(-1).sqrt_()


def _frame_dot(a: Tensor, b: Tensor) -> Tensor:
    """``sum_{j, c} a * b`` per frame of ``(..., J, 3)`` tensors -> ``(...)`` (one batched matmul)."""
    flat = rearrange(a, "... j c -> (...) 1 (j c)") @ rearrange(b, "... j c -> (...) (j c) 1")
    return flat.reshape(a.shape[:-2])


def _det3(m: Tensor) -> Tensor:
    """Determinants of ``(N, 3, 3)`` matrices, ``r0 . (r1 x r2)`` (cheaper than a batched LU)."""
    return torch.linalg.vecdot(m[:, 0], torch.linalg.cross(m[:, 1], m[:, 2]))


def _joint_errors(pred: Tensor, target: Tensor, root_align: bool) -> Tensor:
    """Euclidean error of every joint ``(..., J)``."""
    p, t = _working(pred), _working(target)
    diff = p - t
    if root_align:  # (p - p_root) - (t - t_root) = (p - t) - (p_root - t_root)
        root = p[..., ROOT : ROOT + 1, :] - t[..., ROOT : ROOT + 1, :]
        diff = diff - root if diff.requires_grad else diff.sub_(root)
    return _norm3(diff)


def mpjpe_per_frame(pred: Tensor, target: Tensor, root_align: bool = True) -> Tensor:
    """Mean per-joint position error of each frame: ``mean_j ||pred_j - target_j||``.

    Args:
        pred, target: ``(..., J, 3)`` in mm.
        root_align: subtract the root joint (0) of each pose first (Protocol 1).

    Returns:
        ``(...)`` errors in mm.
    """
    check_pose_pair(pred, target, "mpjpe_per_frame")
    return _joint_errors(pred, target, root_align).mean(-1)


def _check_finite_pair(pred: Tensor, target: Tensor, where: str) -> None:
    check_finite(pred, where, "`pred`")
    check_finite(target, where, "`target`")


@torch.no_grad()
def _procrustes_residual(pred: Tensor, target: Tensor) -> Tensor:
    """``aligned - target`` ``(N, J, 3)`` float64 for ``(N, J, 3)`` inputs (see :func:`procrustes_align`)."""
    p = pred.to(torch.float64, copy=True)
    x = target.to(torch.float64, copy=True)
    p.sub_(p.mean(-2, keepdim=True))
    x.sub_(x.mean(-2, keepdim=True))
    # pred rows are mapped as p @ R; the optimal rotation maximizes trace(R^T p^T x)
    u, s, vh = torch.linalg.svd(p.mT @ x)
    rot = u @ vh
    # reflection fix: if U V^T is improper (det -1), flip the axis of the smallest singular value:
    # U diag(1, 1, -1) V^T = U V^T - 2 u_3 v_3^T, and its trace term loses 2 s_3
    improper = (_det3(rot) < 0).to(torch.float64)
    rot.sub_((2.0 * improper)[:, None, None] * (u[..., :, 2:] @ vh[..., 2:, :]))
    s[..., 2].mul_(1.0 - 2.0 * improper)
    scale = s.sum(-1) / _frame_dot(p, p).clamp_min(torch.finfo(torch.float64).tiny)
    # aligned - target = scale * p R + mean(target) - target = scale * p R - x
    residual = torch.bmm(p, rot)
    return residual.mul_(scale[:, None, None]).sub_(x)


def procrustes_align(pred: Tensor, target: Tensor) -> Tensor:
    """Similarity-align each ``pred`` frame to its ``target`` frame (rotation, scale, translation).

    Solves ``min_{s, R, t} sum_j ||s pred_j R + t - target_j||^2`` per frame with ``R`` a proper
    rotation (``det R = +1``: a reflection is never used), by SVD of the 3x3 cross-covariance in
    float64 (Umeyama / Kabsch with the reflection fix). Not differentiable (no gradient).

    Args:
        pred, target: ``(..., J, 3)``.

    Returns:
        the aligned prediction ``(..., J, 3)`` in float64.
    """
    check_pose_pair(pred, target, "procrustes_align")
    _check_finite_pair(pred, target, "procrustes_align")
    flat = "... j c -> (...) j c"
    residual = _procrustes_residual(rearrange(pred, flat), rearrange(target, flat))
    return residual.reshape(pred.shape) + target.detach().to(torch.float64)


def p_mpjpe_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """MPJPE after per-frame similarity Procrustes alignment (Protocol 2), ``(...)`` in mm.

    The alignment removes translation, so no root alignment is needed. Computed in float64
    without gradient, returned in the working dtype of the inputs (float32 for bf16/fp16/float32).
    """
    check_pose_pair(pred, target, "p_mpjpe_per_frame")
    _check_finite_pair(pred, target, "p_mpjpe_per_frame")  # before the SVD, which fails on NaN/inf
    flat = "... j c -> (...) j c"
    residual = _procrustes_residual(rearrange(pred, flat), rearrange(target, flat))
    err = _norm3(residual).mean(-1).reshape(pred.shape[:-2])
    return err.to(_working(pred).dtype)


def n_mpjpe_per_frame(pred: Tensor, target: Tensor, root_align: bool = True) -> Tensor:
    """MPJPE after scaling each predicted frame by its optimal scale ``<p, t> / <p, p>``, ``(...)`` mm."""
    check_pose_pair(pred, target, "n_mpjpe_per_frame")
    p = _root_aligned(_working(pred), root_align)
    t = _root_aligned(_working(target), root_align)
    num = _frame_dot(p, t)
    den = _frame_dot(p, p).clamp_min(torch.finfo(p.dtype).tiny)
    return _norm3((num / den)[..., None, None] * p - t).mean(-1)


def mpjve_per_frame(pred: Tensor, target: Tensor, root_align: bool = True) -> Tensor:
    """Mean per-joint velocity error: MPJPE of first differences along the time axis.

    Args:
        pred, target: ``(..., T, J, 3)`` in mm, ``T >= 2``.

    Returns:
        ``(..., T - 1)`` errors in mm per frame step.
    """
    check_pose_pair(pred, target, "mpjve_per_frame", min_ndim=3)
    if pred.shape[-3] < 2:
        raise ValueError(
            f"mpjve_per_frame: needs at least 2 frames on axis -3, got shape {tuple(pred.shape)}"
        )
    # velocity error: diff(p - t) over time, root-aligned like the positions
    diff = torch.diff(_working(pred) - _working(target), dim=-3)
    return _norm3(_root_aligned(diff, root_align)).mean(-1)


def _pck_joint_errors(
    pred: Tensor, target: Tensor, root_align: bool, joints: Sequence[int], where: str
) -> Tensor:
    check_pose_pair(pred, target, where)
    num_joints = pred.shape[-2]
    if len(joints) == 0 or min(joints) < 0 or max(joints) >= num_joints:
        raise ValueError(
            f"{where}: `joints` {tuple(joints)} do not index the {num_joints} joints of the input"
        )
    index = torch.as_tensor(list(joints), device=pred.device)
    err = _joint_errors(pred, target, root_align).index_select(-1, index)
    # thresholding would count a NaN error as a miss and return a plausible percentage
    check_finite_result(err, pred, target, where)
    return err


def pck_3dhp_per_frame(
    pred: Tensor,
    target: Tensor,
    threshold: float = PCK_THRESHOLD_MM,
    root_align: bool = True,
    joints: Sequence[int] = PCK_JOINTS,
) -> Tensor:
    """Percentage of the scored ``joints`` (default the 14 of MPI-INF-3DHP) with error ``< threshold``.

    Returns:
        ``(...)`` in percent (0..100).
    """
    err = _pck_joint_errors(pred, target, root_align, joints, "pck_3dhp_per_frame")
    return (err < threshold).to(err.dtype).mean(-1) * 100.0


def auc_3dhp_per_frame(
    pred: Tensor,
    target: Tensor,
    root_align: bool = True,
    joints: Sequence[int] = PCK_JOINTS,
    thresholds: Sequence[float] = AUC_THRESHOLDS_MM,
) -> Tensor:
    """Mean of the PCK over ``thresholds`` (default 0, 5, ..., 150 mm), ``(...)`` in percent."""
    err = _pck_joint_errors(pred, target, root_align, joints, "auc_3dhp_per_frame")
    thr = torch.as_tensor(sorted(thresholds), dtype=err.dtype, device=err.device)
    # thresholds passed by a joint: those strictly above its error = all - those <= error
    below_or_equal = torch.searchsorted(thr, err.contiguous(), right=True)
    hits = (len(thr) - below_or_equal).to(err.dtype)
    return hits.mean(-1) / len(thr) * 100.0


def _mean_update(per_frame: Tensor, valid: Tensor | None, where: str) -> tuple[Tensor, Tensor]:
    """Sum (float64) and count (int64) of the ``valid`` entries of ``per_frame``."""
    if valid is not None:
        per_frame = per_frame[check_mask(valid, per_frame.shape, "valid", where)]
    total = per_frame.to(torch.float64).sum()
    count = torch.tensor(per_frame.numel(), dtype=torch.int64, device=per_frame.device)
    return total, count


def _mean_compute(total: Tensor, count: Tensor, where: str) -> Tensor:
    if int(count) == 0:
        raise ValueError(f"{where}: no frames were scored (every update was empty or masked out)")
    return total / count


def _reduced(per_frame: Tensor, pred: Tensor, target: Tensor, where: str) -> Tensor:
    """Mean of ``per_frame`` in its dtype, with a clear error for empty or non-finite inputs."""
    if per_frame.numel() == 0:
        raise ValueError(f"{where}: the input holds no frames (shape {tuple(pred.shape)})")
    result = per_frame.mean()
    check_finite_result(result, pred, target, where)
    return result


def mpjpe(pred: Tensor, target: Tensor, root_align: bool = True) -> Tensor:
    """MPJPE (Protocol 1): mean over frames and joints of ``||pred - target||``, mm.

    Example:
        >>> import torch
        >>> target = torch.zeros(2, 17, 3)
        >>> pred = target.clone(); pred[..., 1:, 0] = 3.0; pred[..., 1:, 1] = 4.0
        >>> mpjpe(pred, target)
        tensor(4.7059)
    """
    return _reduced(mpjpe_per_frame(pred, target, root_align), pred, target, "mpjpe")


def p_mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """P-MPJPE (Protocol 2): MPJPE after per-frame similarity Procrustes alignment, mm.

    Example:
        >>> import torch
        >>> target = torch.randn(4, 17, 3) * 100
        >>> rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> pred = 2.0 * target @ rot + 50.0  # rotated, scaled, translated copy
        >>> bool(p_mpjpe(pred, target) < 1e-3), bool(mpjpe(pred, target) > 1.0)
        (True, True)
    """
    return _reduced(p_mpjpe_per_frame(pred, target), pred, target, "p_mpjpe")


def n_mpjpe(pred: Tensor, target: Tensor, root_align: bool = True) -> Tensor:
    """N-MPJPE: MPJPE after the optimal per-frame scale of the (root-aligned) prediction, mm.

    Example:
        >>> import torch
        >>> target = torch.randn(3, 17, 3) * 100
        >>> bool(n_mpjpe(0.5 * target, target) < 1e-3)
        True
    """
    return _reduced(n_mpjpe_per_frame(pred, target, root_align), pred, target, "n_mpjpe")


def mpjve(pred: Tensor, target: Tensor, root_align: bool = True) -> Tensor:
    """MPJVE: mean error of first differences along the time axis of ``(..., T, J, 3)``, mm/frame.

    Example:
        >>> import torch
        >>> target = torch.zeros(1, 3, 17, 3)
        >>> pred = target.clone(); pred[:, 1, 1:, 2] = 17.0  # one frame off by 17 mm
        >>> mpjve(pred, target)
        tensor(16.)
    """
    return _reduced(mpjve_per_frame(pred, target, root_align), pred, target, "mpjve")


def pck_3dhp(
    pred: Tensor,
    target: Tensor,
    threshold: float = PCK_THRESHOLD_MM,
    root_align: bool = True,
    joints: Sequence[int] = PCK_JOINTS,
) -> Tensor:
    """MPI-INF-3DHP PCK: percent of the 14 scored joints with error ``< threshold`` (150 mm).

    Example:
        >>> import torch
        >>> target = torch.zeros(1, 17, 3)
        >>> pred = target.clone(); pred[0, 1:, 0] = 150.0  # exactly at the threshold: a miss
        >>> pred[0, 1:8, 0] = 149.0
        >>> pck_3dhp(pred, target)  # joints 1..6 hit (7 is not scored): 6 of 14
        tensor(42.8571)
    """
    per_frame = pck_3dhp_per_frame(pred, target, threshold, root_align, joints)
    return _reduced(per_frame, pred, target, "pck_3dhp")


def auc_3dhp(
    pred: Tensor,
    target: Tensor,
    root_align: bool = True,
    joints: Sequence[int] = PCK_JOINTS,
    thresholds: Sequence[float] = AUC_THRESHOLDS_MM,
) -> Tensor:
    """MPI-INF-3DHP AUC: mean PCK over thresholds 0, 5, ..., 150 mm, in percent.

    Example:
        >>> import torch
        >>> target = torch.zeros(1, 17, 3)
        >>> pred = target.clone(); pred[0, 1:, 0] = 12.0  # passes thresholds 15..150: 28 of 31
        >>> auc_3dhp(pred, target)
        tensor(90.3226)
    """
    per_frame = auc_3dhp_per_frame(pred, target, root_align, joints, thresholds)
    return _reduced(per_frame, pred, target, "auc_3dhp")
