"""Pose2Met: 2D pose sequences to 3D poses and energy expenditure (kcal/h) with STAPFormer."""

__version__ = "0.1.0"
