"""Independent NumPy references shared by the metric tests (not collected: no ``test_`` prefix)."""

from __future__ import annotations

import numpy as np

PCK_14 = [j for j in range(17) if j not in (0, 7, 9)]  # MPI-INF-3DHP scored joints, written out here


def root_rel(x: np.ndarray) -> np.ndarray:
    return x - x[..., :1, :]


def umeyama_aligned(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame similarity alignment (Umeyama 1991, column-vector form), NumPy loop over frames."""
    shape = target.shape
    pred, target = pred.reshape(-1, shape[-2], 3), target.reshape(-1, shape[-2], 3)
    out = np.empty_like(target)
    for i, (p, x) in enumerate(zip(pred, target, strict=True)):
        mp, mx = p.mean(0), x.mean(0)
        pc, xc = p - mp, x - mx
        u, d, vt = np.linalg.svd(xc.T @ pc / len(p))
        s = np.eye(3)
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            s[2, 2] = -1.0
        c = np.trace(np.diag(d) @ s) / ((pc**2).sum() / len(p))
        out[i] = (c * (u @ s @ vt @ pc.T)).T + mx
    return out.reshape(shape)


def mpjpe_frames(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.linalg.norm(root_rel(pred) - root_rel(target), axis=-1).mean(-1)


def p_mpjpe_frames(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.linalg.norm(umeyama_aligned(pred, target) - target, axis=-1).mean(-1)


def pck_frames(pred: np.ndarray, target: np.ndarray, thr: float = 150.0) -> np.ndarray:
    err = np.linalg.norm(root_rel(pred) - root_rel(target), axis=-1)[..., PCK_14]
    return (err < thr).mean(-1) * 100.0


def auc_frames(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.mean([pck_frames(pred, target, t) for t in np.linspace(0.0, 150.0, 31)], axis=0)


def gaussian_target(labels: np.ndarray, centers: np.ndarray, sigma: float) -> np.ndarray:
    w = np.exp(-((centers[None, :] - labels[:, None]) ** 2) / (2.0 * sigma**2))
    return w / w.sum(-1, keepdims=True)


def offset_pose(target: np.ndarray, error_mm: float) -> np.ndarray:
    """A prediction with MPJPE ``error_mm``: every non-root joint moved along x by 17/16 of it."""
    pred = target.copy()
    pred[..., 1:, 0] += error_mm * 17.0 / 16.0
    return pred
