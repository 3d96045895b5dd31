"""Detector-like 2D keypoints from exact projections: jitter, motion blur, outliers, left/right
swaps and a confidence that falls with the error.

Noise model (pixels; ``scale = (focal / 1145) * (5000 mm / root depth)``, 1 for a person 5 m
from a Human3.6M camera):

* jitter: per joint ``sigma_j * scale`` with ``sigma_j`` = 1.5 (neck, head), 2.0 (pelvis, hips,
  spine, thorax, shoulders), 3.0 (knees, elbows), 4.5 (ankles, wrists);
* motion blur: ``0.15 * image speed`` (px/frame), capped at 6 px, added in quadrature;
* the noise is half white, half temporally correlated (Gaussian low-pass, sigma 2 frames), each
  coordinate ``N(0, sigma^2)``;
* outliers: a joint jumps by 20-80 px (times ``scale``, random direction) for 3 frames; the start
  rate per frame is 0.1 % (torso, head), 0.2 % (knees, elbows), 0.4 % (ankles, wrists);
* left/right swaps of knees, ankles, elbows or wrists for 5 frames, start rate per frame and pair
  ``0.05 % + 1 % * exp(-d / (20 px * scale))`` (``d``: the pair's image distance);
* confidence ``c_j / (1 + (e / (2.5 sigma))^2) * U(0.93, 1)`` clipped to [0.01, 1], ``e`` the
  error, ``c_j`` = 0.97 (torso, head), 0.93 (knees, elbows), 0.90 (ankles, wrists).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose2met.data.synthmet.kinematics import smooth_noise
from pose2met.skeleton import NUM_JOINTS

REFERENCE_FOCAL_PX = 1145.0
REFERENCE_DEPTH_MM = 5000.0
_CLASS = np.array([0, 0, 1, 2, 0, 1, 2, 0, 0, 3, 3, 0, 1, 2, 0, 1, 2])  # torso, middle, end, head
JITTER_PX = np.array([2.0, 3.0, 4.5, 1.5])[_CLASS]
OUTLIER_RATE = np.array([0.001, 0.002, 0.004, 0.001])[_CLASS]
MAX_CONFIDENCE = np.array([0.97, 0.93, 0.90, 0.97])[_CLASS]
BLUR_PER_PX = 0.15
BLUR_CAP_PX = 6.0
OUTLIER_PX = (20.0, 80.0)
OUTLIER_FRAMES = 3
SWAP_PAIRS = ((2, 5), (3, 6), (12, 15), (13, 16))
SWAP_RATE = (0.0005, 0.01)  # base, extra when the pair overlaps
SWAP_DISTANCE_PX = 20.0
SWAP_FRAMES = 5
CONFIDENCE_WIDTH = 2.5  # errors of this many sigma halve the confidence


@dataclass
class Detections:
    """Simulated detections of ``N`` sequences of ``T`` frames.

    ``joints_2d (N, T, J, 2)`` px, ``confidence (N, T, J)``, the jitter ``sigma (N, T, J)`` px
    per coordinate, and the ``outlier`` / ``swapped`` masks ``(N, T, J)``.
    """

    joints_2d: np.ndarray
    confidence: np.ndarray
    sigma: np.ndarray
    outlier: np.ndarray
    swapped: np.ndarray


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """Delay ``x`` by ``k`` frames along axis 1 (zeros / False fill)."""
    if k == 0:
        return x
    out = np.zeros_like(x)
    out[:, k:] = x[:, :-k]
    return out


def detect(
    gt_2d: np.ndarray, root_depth_mm: np.ndarray, focal_px: np.ndarray, rng: np.random.Generator
) -> Detections:
    """Simulate a 2D detector on exact projections.

    Args:
        gt_2d: ``(N, T, J, 2)`` ground-truth pixels.
        root_depth_mm: ``(N, T)`` depth of the root joint in the camera frame.
        focal_px: ``(N,)`` mean focal length of each sequence's camera.
        rng: the random generator.

    Returns:
        :class:`Detections`.
    """
    n, t, j, _ = gt_2d.shape
    if j != NUM_JOINTS:
        raise ValueError(f"gt_2d: expected {NUM_JOINTS} joints, got shape {gt_2d.shape}")
    scale = (np.asarray(focal_px)[:, None] / REFERENCE_FOCAL_PX) * (REFERENCE_DEPTH_MM / root_depth_mm)
    speed = np.linalg.norm(np.gradient(gt_2d, axis=1), axis=-1) if t > 1 else np.zeros((n, t, j))
    blur = np.minimum(BLUR_PER_PX * speed, BLUR_CAP_PX)
    sigma = np.sqrt((JITTER_PX * scale[..., None]) ** 2 + blur**2)
    white = rng.standard_normal((n, t, j, 2))
    smooth = smooth_noise(rng, (n, t, j, 2), 2.0) if t > 1 else rng.standard_normal((n, t, j, 2))
    det = gt_2d + sigma[..., None] * np.sqrt(0.5) * (white + smooth)

    # left/right swaps (bursts of SWAP_FRAMES frames)
    swapped = np.zeros((n, t, j), dtype=bool)
    for a, b in SWAP_PAIRS:
        dist = np.linalg.norm(gt_2d[:, :, a] - gt_2d[:, :, b], axis=-1)
        rate = SWAP_RATE[0] + SWAP_RATE[1] * np.exp(-dist / (SWAP_DISTANCE_PX * scale))
        start = rng.uniform(size=(n, t)) < rate
        burst = np.logical_or.reduce([_shift(start, k) for k in range(min(SWAP_FRAMES, t))])
        det[burst, a], det[burst, b] = det[burst, b].copy(), det[burst, a].copy()
        swapped[..., a] |= burst
        swapped[..., b] |= burst

    # outliers (bursts of OUTLIER_FRAMES frames with one displacement)
    start = rng.uniform(size=(n, t, j)) < OUTLIER_RATE
    size = rng.uniform(*OUTLIER_PX, size=(n, t, j)) * scale[..., None]
    angle = rng.uniform(0.0, 2 * np.pi, size=(n, t, j))
    jump = np.stack([size * np.cos(angle), size * np.sin(angle)], axis=-1)
    outlier = np.zeros((n, t, j), dtype=bool)
    displacement = np.zeros_like(det)
    for k in range(min(OUTLIER_FRAMES, t)):
        active = _shift(start, k)
        displacement = np.where(active[..., None], _shift(jump, k), displacement)
        outlier |= active
    det = det + displacement

    error = np.linalg.norm(det - gt_2d, axis=-1)
    confidence = MAX_CONFIDENCE / (1.0 + (error / (CONFIDENCE_WIDTH * sigma)) ** 2)
    confidence = np.clip(confidence * rng.uniform(0.93, 1.0, size=(n, t, j)), 0.01, 1.0)
    return Detections(det, confidence, sigma, outlier, swapped)
