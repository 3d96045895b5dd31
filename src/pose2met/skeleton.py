"""The h36m17 skeleton: the one joint order used everywhere inside the package."""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
NUM_JOINTS = len(JOINT_NAMES)
ROOT = 0
#: Parent of every joint (-1 for the root).
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
LEFT_JOINTS: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
#: Bones as (parent, child) pairs, in joint order.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)
#: The 14 joints scored by MPI-INF-3DHP PCK/AUC (all but pelvis, spine and 3DHP's "head").
PCK_JOINTS: tuple[int, ...] = tuple(j for j in range(NUM_JOINTS) if j not in (0, 7, 9))


def flip_permutation() -> list[int]:
    """Index list that swaps left and right joints: ``x_flipped = x[..., perm, :]``."""
    perm = list(range(NUM_JOINTS))
    for left, right in zip(LEFT_JOINTS, RIGHT_JOINTS, strict=True):
        perm[left], perm[right] = right, left
    return perm


def adjacency(self_loops: bool = True) -> np.ndarray:
    """Binary skeleton adjacency ``(J, J)``, symmetric, with the identity added if asked."""
    a = np.zeros((NUM_JOINTS, NUM_JOINTS), dtype=np.float64)
    for p, c in BONES:
        a[p, c] = a[c, p] = 1.0
    if self_loops:
        a += np.eye(NUM_JOINTS)
    return a


def normalized_adjacency() -> np.ndarray:
    """Symmetrically normalized ``D^-1/2 (A + I) D^-1/2``, shape ``(J, J)``."""
    a = adjacency(self_loops=True)
    d = 1.0 / np.sqrt(a.sum(axis=1))
    return a * d[:, None] * d[None, :]
