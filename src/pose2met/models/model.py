"""Encoder + heads: :class:`Pose2MetModel` (pose and/or energy) and :class:`PoseLifter` (official layout)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from pose2met.models.heads import CalorieHead, PoseHead
from pose2met.models.stapformer import STAPFormer

HeadName = Literal["pose", "kcal"]


class Pose2MetModel(nn.Module):
    """STAPFormer encoder with a pose head and/or a calorie head.

    ``forward(x (B, T, J, C_in))`` returns a dict with ``"pose_3d"`` ``(B, T, J, 3)`` and/or
    ``"kcal_logits"`` ``(B, K)`` for the heads present. A calorie head with
    ``use_pose_features=True`` receives the pose head's prediction (gradients flow through it).
    """

    def __init__(
        self, encoder: STAPFormer, pose_head: PoseHead | None = None, calorie_head: CalorieHead | None = None
    ) -> None:
        super().__init__()
        if pose_head is None and calorie_head is None:
            raise ValueError("Pose2MetModel needs at least one head: pose_head and/or calorie_head")
        for name, head in (("pose_head", pose_head), ("calorie_head", calorie_head)):
            if head is not None and head.dim_rep != encoder.dim_rep:
                raise ValueError(
                    f"Pose2MetModel: {name} reads dim_rep={head.dim_rep} "
                    f"but the encoder gives {encoder.dim_rep}"
                )
        if calorie_head is not None and calorie_head.use_pose_features:
            if pose_head is None:
                raise ValueError("Pose2MetModel: calorie_head uses pose features, which needs a pose_head")
            if calorie_head.num_joints != encoder.num_joints:
                raise ValueError(
                    f"Pose2MetModel: calorie_head expects {calorie_head.num_joints} joints, "
                    f"the encoder has {encoder.num_joints}"
                )
        self.encoder = encoder
        self.pose_head = pose_head
        self.calorie_head = calorie_head

    @classmethod
    def build(
        cls,
        encoder: STAPFormer,
        heads: Sequence[HeadName] = ("pose", "kcal"),
        num_bins: int = 500,
        kcal_range: tuple[float, float] = (0.0, 500.0),
        calorie_hidden: int = 512,
        calorie_pose_features: bool = False,
        calorie_dropout: float = 0.0,
        pose_dim: int = 3,
    ) -> Pose2MetModel:
        """Model with the named heads (``"pose"``, ``"kcal"``) sized to ``encoder``."""
        unknown = set(heads) - {"pose", "kcal"}
        if unknown:
            raise ValueError(
                f"Pose2MetModel.build: unknown heads {sorted(unknown)}; expected 'pose' and/or 'kcal'"
            )
        pose = PoseHead(encoder.dim_rep, pose_dim) if "pose" in heads else None
        kcal = None
        if "kcal" in heads:
            kcal = CalorieHead(
                encoder.dim_rep, num_bins, kcal_range[0], kcal_range[1], calorie_hidden,
                calorie_pose_features, encoder.num_joints, calorie_dropout,
            )  # fmt: skip
        return cls(encoder, pose, kcal)

    @property
    def heads(self) -> tuple[HeadName, ...]:
        """Names of the active heads, in output order."""
        names: list[HeadName] = []
        if self.pose_head is not None:
            names.append("pose")
        if self.calorie_head is not None:
            names.append("kcal")
        return tuple(names)

    def representation(self, x: Tensor) -> Tensor:
        """Motion representation ``(B, T, J, d_e)``."""
        return self.encoder.forward_features(x)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        rep = self.encoder.forward_features(x)
        out: dict[str, Tensor] = {}
        if self.pose_head is not None:
            out["pose_3d"] = self.pose_head(rep)
        if self.calorie_head is not None:
            out["kcal_logits"] = self.calorie_head(rep, out.get("pose_3d"))
        return out

    def fuse_for_inference(self) -> Pose2MetModel:
        """Fold the encoder's batch norms (see :meth:`STAPFormer.fuse_for_inference`); returns ``self``."""
        self.encoder.fuse_for_inference()
        return self


class PoseLifter(nn.Module):
    """Encoder + pose head, the shape of the official STAPFormer: ``(B, T, J, C_in) -> (B, T, J, 3)``."""

    def __init__(self, encoder: STAPFormer, head: PoseHead) -> None:
        super().__init__()
        if head.dim_rep != encoder.dim_rep:
            raise ValueError(
                f"PoseLifter: head reads dim_rep={head.dim_rep}, the encoder gives {encoder.dim_rep}"
            )
        self.encoder = encoder
        self.head = head

    def representation(self, x: Tensor) -> Tensor:
        """Motion representation ``(B, T, J, d_e)`` (the official ``return_rep=True`` output)."""
        return self.encoder.forward_features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder.forward_features(x))

    def fuse_for_inference(self) -> PoseLifter:
        """Fold the encoder's batch norms (see :meth:`STAPFormer.fuse_for_inference`); returns ``self``."""
        self.encoder.fuse_for_inference()
        return self
