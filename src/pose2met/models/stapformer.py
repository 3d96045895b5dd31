"""STAPFormer encoder: pose sequences ``(B, T, J, C_in)`` -> motion representation ``(B, T, J, d_e)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from pose2met.checks import integer_pair, is_integer
from pose2met.models.attention import AttentionImpl, check_attention_impl
from pose2met.models.layers import (
    DropPath,
    FeedForward,
    TokenBatchNorm,
    chunked_tokens,
    fold_bn_before,
    linear_tanh,
    use_chunks,
)
from pose2met.models.mixers import MixSTEMixer, SkeletonGCN, STCAttention, STConvMixer
from pose2met.models.stap import STAPAttention
from pose2met.models.tracing import tracing

JointMixer = Literal["stc", "mixste", "stconv"]
JOINT_MIXERS: tuple[str, ...] = ("stc", "mixste", "stconv")


def _int_pair(value: object, name: str) -> tuple[int, int]:
    """``k`` or ``(k_t, k_j)`` of positive integers -> ``(k_t, k_j)``."""
    pair = integer_pair(value)
    if pair is None:
        raise ValueError(f"STAPFormer: {name} must be a positive integer or a pair of them, got {value!r}")
    return pair


class STAPBlock(nn.Module):
    """One STAP block on tokens ``(B, T, J, C)``.

    ``x = x + drop_path(joint(y) + gcn(y) + stap(y))`` with ``y = BN(x)``, then
    ``x = x + drop_path(MLP(BN(x)))``. The skeleton GCN (if any) reads the same normalized input
    ``y`` as the joint mixer and is summed with the joint mixer's projected output.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        dim_compress: int | None,
        stap_kernel: tuple[int, int],
        stap_stride: tuple[int, int],
        joint_mixer: JointMixer,
        stconv_kernel: int,
        stap: bool,
        joint_gcn: bool,
        num_joints: int,
        dropout: float,
        attn_dropout: float,
        drop_path: float,
        attention_impl: AttentionImpl,
    ) -> None:
        super().__init__()
        attn = dict(
            num_heads=num_heads, attn_dropout=attn_dropout, dropout=dropout, attention_impl=attention_impl
        )
        self.norm1 = TokenBatchNorm(dim)
        self.joint: nn.Module
        if joint_mixer == "stc":
            self.joint = STCAttention(dim, **attn)
        elif joint_mixer == "mixste":
            self.joint = MixSTEMixer(dim, **attn)
        else:
            self.joint = STConvMixer(dim, stconv_kernel)
        self.gcn = SkeletonGCN(dim, num_joints) if joint_gcn else None
        self.stap = STAPAttention(dim, dim_compress, stap_kernel, stap_stride, **attn) if stap else None
        self.norm2: nn.Module = TokenBatchNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        branches = [self.joint(y)]
        if self.gcn is not None:
            branches.append(self.gcn(y))
        if self.stap is not None:
            branches.append(self.stap(y))
        if self.training and self.drop_path.p > 0.0:  # stochastic depth: per-sample masks on each branch
            x = x + self.drop_path(sum(branches[1:], branches[0]))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        # one fresh tensor for the mixer's residual sum, the other branches added in place (never in place
        # on a branch itself: layer outputs are often views, whose in-place update autograd undoes with
        # copies); the block's input is kept
        x = x + branches[0]
        for branch in branches[1:]:
            x.add_(branch)
        if use_chunks(self):
            return x.add_(self.mlp(self.norm2(x)))
        return x + self.mlp(self.norm2(x))

    def fuse_(self) -> None:
        """Fold eval-mode batch norms into neighbouring linear layers (``norm1`` stays: the padded STAP
        convolution reads it, where a fold would change the zero padding)."""
        if isinstance(self.norm2, nn.BatchNorm1d):
            fold_bn_before(self.mlp.fc1, self.norm2)
            self.norm2 = nn.Identity()
        self.mlp.fuse_()
        for branch in (self.joint, self.stap):
            if hasattr(branch, "fuse_"):
                branch.fuse_()


class STAPFormer(nn.Module):
    """STAPFormer encoder (SpatioTemporal Aggregated Pose transformer).

    ``Linear(C_in -> d)`` + temporal and spatial position embeddings, ``depth`` STAP blocks
    (:class:`STAPBlock`), ``LayerNorm(d)``, then the motion representation ``Tanh(Linear(d -> d_e))``.

    Args:
        num_joints: J. num_frames: the longest T (rows of the temporal position embedding).
        dim_in: input channels C_in (3: x, y, confidence or x, y, z).
        dim_feat: d. dim_rep: d_e. depth: L. num_heads: h. mlp_ratio: a (MLP hidden ``a * d``).
        dim_compress: STAP token width d_c (default d).
        stap_kernel, stap_stride: (frames, joints) kernel and stride of the STAP aggregation.
        joint_mixer: ``"stc"`` | ``"mixste"`` | ``"stconv"``; stconv_kernel: k of ``"stconv"``.
        stap: use the STAP-Branch. joint_gcn: add the skeleton GCN to the Joint-Branch.
        dropout, attn_dropout: dropout of features / attention weights.
        drop_path: stochastic depth of the last block, increasing linearly from 0 over the blocks.
        attention_impl: ``"auto"`` | ``"sdpa"`` | ``"math"`` (see :mod:`pose2met.models.attention`).
        check_finite: check inputs for NaN/inf in :meth:`forward_features` (one reduction).
    """

    def __init__(
        self,
        num_joints: int = 17,
        num_frames: int = 243,
        dim_in: int = 3,
        dim_feat: int = 128,
        dim_rep: int = 512,
        depth: int = 16,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        dim_compress: int | None = None,
        stap_kernel: Sequence[int] = (3, 3),
        stap_stride: Sequence[int] = (3, 3),
        joint_mixer: JointMixer = "stc",
        stconv_kernel: int = 3,
        stap: bool = True,
        joint_gcn: bool = True,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
        attention_impl: AttentionImpl = "auto",
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        sizes = dict(num_joints=num_joints, num_frames=num_frames, dim_in=dim_in, dim_feat=dim_feat,
                     dim_rep=dim_rep, depth=depth, num_heads=num_heads)  # fmt: skip
        for name, value in sizes.items():
            if not is_integer(value) or value < 1:
                raise ValueError(f"STAPFormer: {name} must be a positive integer, got {value!r}")
        if joint_mixer not in JOINT_MIXERS:
            raise ValueError(f"STAPFormer: joint_mixer must be one of {JOINT_MIXERS}, got {joint_mixer!r}")
        for name, rate in (("dropout", dropout), ("attn_dropout", attn_dropout), ("drop_path", drop_path)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"STAPFormer: {name} must be in [0, 1), got {rate}")
        if not (mlp_ratio > 0 and int(dim_feat * mlp_ratio) >= 1):
            raise ValueError(
                f"STAPFormer: mlp_ratio must be > 0 (MLP hidden width mlp_ratio * d >= 1), got {mlp_ratio}"
            )
        if dim_compress is not None and (not is_integer(dim_compress) or dim_compress < 1):
            raise ValueError(
                f"STAPFormer: dim_compress must be a positive integer or None, got {dim_compress!r}"
            )
        check_attention_impl(attention_impl)
        kernel, stride = _int_pair(stap_kernel, "stap_kernel"), _int_pair(stap_stride, "stap_stride")
        self.config: dict[str, Any] = dict(
            num_joints=num_joints, num_frames=num_frames, dim_in=dim_in, dim_feat=dim_feat, dim_rep=dim_rep,
            depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, dim_compress=dim_compress,
            stap_kernel=list(kernel), stap_stride=list(stride), joint_mixer=joint_mixer,
            stconv_kernel=stconv_kernel, stap=stap, joint_gcn=joint_gcn, dropout=dropout,
            attn_dropout=attn_dropout, drop_path=drop_path, attention_impl=attention_impl,
            check_finite=check_finite,
        )  # fmt: skip
        self.num_joints, self.num_frames, self.dim_in = num_joints, num_frames, dim_in
        self.dim_feat, self.dim_rep = dim_feat, dim_rep
        self.check_finite = check_finite
        self.fused = False

        self.embed = nn.Linear(dim_in, dim_feat)
        self.pos_embed_t = nn.Parameter(torch.zeros(1, num_frames, 1, dim_feat))
        self.pos_embed_s = nn.Parameter(torch.zeros(1, 1, num_joints, dim_feat))
        self.pos_drop = nn.Dropout(dropout)
        rates = torch.linspace(0.0, drop_path, depth).tolist() if depth > 1 else [drop_path]
        block = dict(
            dim=dim_feat, num_heads=num_heads, mlp_ratio=mlp_ratio, dim_compress=dim_compress,
            stap_kernel=kernel, stap_stride=stride, joint_mixer=joint_mixer, stconv_kernel=stconv_kernel,
            stap=stap, joint_gcn=joint_gcn, num_joints=num_joints, dropout=dropout, attn_dropout=attn_dropout,
            attention_impl=attention_impl,
        )  # fmt: skip
        self.blocks = nn.ModuleList(STAPBlock(**block, drop_path=rate) for rate in rates)  # type: ignore[arg-type]
        self.norm = nn.LayerNorm(dim_feat)
        self.rep = nn.Linear(dim_feat, dim_rep)
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.02) -> None:
        """Truncated-normal weights (std 0.02), zero biases, unit norms (the official initialization)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for pos in (self.pos_embed_t, self.pos_embed_s):
            nn.init.trunc_normal_(pos, std=std, a=-2 * std, b=2 * std)

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is finite float ``(B, T <= num_frames, num_joints, dim_in)``."""
        expected = f"(B, T <= {self.num_frames}, {self.num_joints}, {self.dim_in})"
        if not isinstance(x, Tensor):
            raise ValueError(f"STAPFormer input must be a tensor {expected}, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(
                f"STAPFormer input must have shape {expected}, got rank {x.dim()} {tuple(x.shape)}"
            )
        b, t, j, c = x.shape
        if j != self.num_joints:
            raise ValueError(
                f"STAPFormer input must have shape {expected}: got {j} joints in {tuple(x.shape)}"
            )
        if c != self.dim_in:
            raise ValueError(
                f"STAPFormer input must have shape {expected}: got {c} channels in {tuple(x.shape)}"
            )
        if b < 1:
            raise ValueError(
                f"STAPFormer input must have shape {expected}: got an empty batch {tuple(x.shape)}"
            )
        if t > self.num_frames or t < 1:
            raise ValueError(
                f"STAPFormer input must have shape {expected}: got {t} frames in {tuple(x.shape)} "
                f"(the model was built for at most num_frames={self.num_frames})"
            )
        if not x.is_floating_point():
            raise ValueError(f"STAPFormer input must be a floating-point tensor, got {x.dtype}")
        weight_dtype = self.embed.weight.dtype
        if x.dtype != weight_dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(
                f"STAPFormer input is {x.dtype} but the model's weights are {weight_dtype}: cast the input "
                f"(x.to({weight_dtype})) or the model (model.to({x.dtype})), or run under torch.autocast"
            )
        if self.check_finite and not tracing() and not bool(torch.isfinite(x).all()):
            raise ValueError(
                f"STAPFormer input {tuple(x.shape)} contains NaN or inf values "
                "(mask or interpolate missing joints before the model)"
            )

    def forward_features(self, x: Tensor) -> Tensor:
        """Motion representation: ``(B, T, J, C_in) -> (B, T, J, dim_rep)``, values in (-1, 1)."""
        self.check_input(x)
        t = x.shape[1]
        x = self.embed(x) + self.pos_embed_t[:, :t] + self.pos_embed_s
        x = self.pos_drop(x)
        for block in self.blocks:
            x = block(x)
        if use_chunks(self):
            return chunked_tokens(self._represent, x, self.dim_rep)
        return self._represent(x)

    def _represent(self, x: Tensor) -> Tensor:
        return linear_tanh(self.norm(x), self.rep)

    forward = forward_features

    @torch.no_grad()
    def fuse_for_inference(self) -> STAPFormer:
        """Fold eval-mode batch norms into neighbouring linear/conv layers, in place; returns ``self``.

        Outputs stay equal up to float rounding (about 1e-6); the fused model cannot be trained
        (its batch norms are gone) and its ``state_dict`` lacks their keys. Call on an eval-mode model.
        """
        if self.training:
            raise RuntimeError("fuse_for_inference() needs an eval-mode model: call model.eval() first")
        for block in self.blocks:
            block.fuse_()
        self.fused = True
        return self

    def train(self, mode: bool = True) -> STAPFormer:
        if mode and self.fused:
            raise RuntimeError(
                "this STAPFormer was fused for inference (batch norms folded); rebuild it to train"
            )
        return super().train(mode)

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return f"params={self.num_parameters() / 1e6:.2f}M, fused={self.fused}"


PRESET_DEPTHS: dict[str, int] = {"base": 16, "small": 6}


def stapformer_preset(name: Literal["base", "small"], **overrides: Any) -> STAPFormer:
    """Paper presets: ``base`` (L=16) and ``small`` (L=6), both d=128, d_e=512, a=4, h=8.

    Any :class:`STAPFormer` argument can be overridden, e.g.
    ``stapformer_preset("small", num_frames=81, joint_gcn=False)``.
    """
    if name not in PRESET_DEPTHS:
        raise ValueError(f"unknown STAPFormer preset {name!r}; expected one of {sorted(PRESET_DEPTHS)}")
    config: dict[str, Any] = dict(
        depth=PRESET_DEPTHS[name], dim_feat=128, dim_rep=512, mlp_ratio=4.0, num_heads=8
    )
    config.update(overrides)
    return STAPFormer(**config)
