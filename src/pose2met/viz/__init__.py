"""Figures: 3D skeletons, kcal scatter plots and timelines (matplotlib, headless)."""

from pose2met.viz.energy import kcal_scatter_figure
from pose2met.viz.skeleton import draw_skeleton_3d, skeleton_comparison_figure

__all__ = ["draw_skeleton_3d", "kcal_scatter_figure", "skeleton_comparison_figure"]
