"""The figure helpers check their inputs before drawing (clear errors, no open figure left behind)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from pose2met.viz import kcal_scatter_figure, skeleton_comparison_figure
from pose2met.viz.animation import AnimationError, save_skeleton_animation
from pose2met.viz.sheet import skeleton_sheet_figure
from pose2met.viz.skeleton import draw_skeleton_3d

POSES = np.random.default_rng(0).normal(0, 300, (3, 17, 3))


def _nan(poses: np.ndarray) -> np.ndarray:
    bad = poses.copy()
    bad[1, 4, 2] = np.nan
    return bad


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: skeleton_comparison_figure(POSES[0]),
            r"`predicted` must have shape \(N >= 1, 17, 3\), got \(17, 3\)",
        ),
        (lambda: skeleton_comparison_figure(POSES[:, :16]), r"`predicted` must have shape"),
        (lambda: skeleton_comparison_figure(POSES[:0]), r"got \(0, 17, 3\)"),
        (lambda: skeleton_comparison_figure(POSES, POSES[:2]), r"`ground_truth` \(2, 17, 3\) must match"),
        (lambda: skeleton_comparison_figure(POSES, titles=["a"]), "1 titles for 3 poses"),
        (lambda: skeleton_comparison_figure(_nan(POSES)), "`predicted` contains NaN or inf"),
        (lambda: skeleton_sheet_figure(_nan(POSES)), "skeleton_sheet_figure: `joints` contains NaN"),
        (lambda: skeleton_sheet_figure(POSES, columns=0), "count and columns must be >= 1"),
        (lambda: kcal_scatter_figure([1.0, 2.0], [1.0]), r"\(2\) and `pred_kcal` \(1\) must be finite"),
        (lambda: kcal_scatter_figure([1.0, 2.0], [1.0, 2.0], ["known", "unknown"]), "`known` must be a bool"),
        (lambda: draw_skeleton_3d(plt.figure().add_subplot(), POSES[0]), "must be a 3D axis"),
    ],
)
def test_bad_figure_inputs_raise_before_drawing(call, message: str) -> None:
    plt.close("all")
    before = len(plt.get_fignums())
    with pytest.raises(ValueError, match=message):
        call()
    opened = len(plt.get_fignums()) - before
    assert opened <= (1 if "3D axis" in message else 0)  # only the caller's own figure
    plt.close("all")


def test_nan_animation_is_an_animation_error(tmp_path) -> None:
    with pytest.raises(AnimationError, match="animation: `joints` contains NaN"):
        save_skeleton_animation(_nan(POSES), tmp_path / "a.gif")
    assert not list(tmp_path.iterdir())


def test_tensors_with_gradients_are_drawn() -> None:
    poses = torch.tensor(POSES, requires_grad=True)
    fig = skeleton_comparison_figure(poses, poses.detach() + 1.0)
    assert len(fig.axes) == 3
    plt.close(fig)
