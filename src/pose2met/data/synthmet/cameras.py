"""A Human3.6M-like rig: four calibrated pinhole cameras around the capture area, looking at it.

World frame: x, y on the floor (z = 0), z up, mm. Camera frame (OpenCV): x right, y down,
z forward; ``X_cam = R @ X_world + t``; pixels ``u = fx X/Z + cx``, ``v = fy Y/Z + cy`` (no lens
distortion).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Image sizes of the four Human3.6M cameras (54138969 and 60457274 are 1000x1002).
IMAGE_SIZES = ((1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002))
FOCAL_PX = 1145.0
RIG_RADIUS_MM = (6500.0, 7500.0)
CAMERA_HEIGHT_MM = (1300.0, 1700.0)
TARGET_HEIGHT_MM = (900.0, 1100.0)


@dataclass(frozen=True)
class Camera:
    """One calibrated camera: intrinsics in pixels, world-to-camera extrinsics in mm."""

    name: str
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    R: np.ndarray  # (3, 3) world -> camera rotation
    t: np.ndarray  # (3,) mm

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates, mm: ``-R^T t``."""
        return -self.R.T @ self.t

    @property
    def focal(self) -> float:
        """Mean focal length ``(fx + fy) / 2`` in pixels."""
        return 0.5 * (self.fx + self.fy)

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """``(..., 3)`` world mm -> camera mm."""
        return points @ self.R.T + self.t

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Pinhole projection of camera-frame points ``(..., 3)`` (mm) to pixels ``(..., 2)``."""
        z = points_cam[..., 2]
        if np.any(z <= 0):
            raise ValueError(f"camera {self.name}: points behind the camera (min depth {z.min():.1f} mm)")
        return np.stack(
            [self.fx * points_cam[..., 0] / z + self.cx, self.fy * points_cam[..., 1] / z + self.cy], axis=-1
        )

    def attrs(self) -> dict[str, float | int | np.ndarray]:
        """The ``/cameras/<id>`` attributes: intrinsics, ``R``, ``t`` (mm) and the centre (mm)."""
        return {
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
            "R": self.R,
            "t": self.t,
            "center": self.center,
        }


def look_at(position: np.ndarray, target: np.ndarray, roll: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera ``(R, t)`` of a camera at ``position`` looking at ``target`` (z-up world)."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = np.cos(roll), np.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    rot = np.stack([right, down, forward])
    return rot, -rot @ position


def make_rig(rng: np.random.Generator, num_cameras: int = 4) -> list[Camera]:
    """``num_cameras`` (1-4) cameras at azimuths 45 + 90k degrees (+-12), 6.5-7.5 m from the
    centre, 1.3-1.7 m high, aimed at 0.9-1.1 m above the floor near the centre; Human3.6M-like
    intrinsics (focal 1145 +- 3 px, principal point within 15 px of the image centre)."""
    if not 1 <= num_cameras <= len(IMAGE_SIZES):
        raise ValueError(f"num_cameras: expected 1..{len(IMAGE_SIZES)}, got {num_cameras}")
    cameras = []
    for k in range(num_cameras):
        azimuth = np.deg2rad(45.0 + 90.0 * k + rng.uniform(-12.0, 12.0))
        radius = rng.uniform(*RIG_RADIUS_MM)
        position = np.array(
            [radius * np.cos(azimuth), radius * np.sin(azimuth), rng.uniform(*CAMERA_HEIGHT_MM)]
        )
        target = np.array([*rng.uniform(-200.0, 200.0, size=2), rng.uniform(*TARGET_HEIGHT_MM)])
        rot, t = look_at(position, target, roll=np.deg2rad(rng.uniform(-1.5, 1.5)))
        width, height = IMAGE_SIZES[k]
        fx = FOCAL_PX + rng.uniform(-3.0, 3.0)
        cameras.append(
            Camera(
                name=f"C{k + 1}",
                fx=float(fx),
                fy=float(fx - rng.uniform(0.5, 2.0)),
                cx=float(width / 2 + rng.uniform(-15.0, 15.0)),
                cy=float(height / 2 + rng.uniform(-15.0, 15.0)),
                width=width,
                height=height,
                R=rot,
                t=t,
            )
        )
    return cameras
