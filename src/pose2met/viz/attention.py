"""Attention maps of a STAPFormer block (paper Fig. 4 style), captured without changing the model.

Forward hooks on a block's Joint-Branch (:class:`STCAttention`) and STAP-Branch
(:class:`STAPAttention`) record the tensors those modules receive during one ordinary forward
pass; the attention weights are then recomputed from the modules' own projections. Nothing is
added to the model's forward (zero cost when not capturing); the hooks are removed afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from einops import rearrange, reduce  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from pose2met.models.mixers import STCAttention  # noqa: E402
from pose2met.models.stap import STAPAttention  # noqa: E402
from pose2met.models.stapformer import STAPFormer  # noqa: E402


def stc_attention_weights(module: STCAttention, y: Tensor) -> tuple[Tensor, Tensor]:
    """Attention weights of the STC Joint-Branch for its input ``y (B, T, J, C)``.

    Returns:
        spatial ``(B, T, h, J, J)`` (each frame's joints over joints) and temporal ``(B, J, h, T, T)``
        (each joint's frames over frames); rows sum to 1.
    """
    qs, ks, _, qt, kt, _ = rearrange(
        module.qkv(y), "b t j (s n h c) -> (s n) b t j h c", n=3, s=2, h=module.num_heads
    ).unbind(0)
    spatial = torch.einsum("btihc,btkhc->bthik", qs, ks) * module.scale
    temporal = torch.einsum("bsjhc,bujhc->bjhsu", qt, kt) * module.scale
    return spatial.softmax(-1), temporal.softmax(-1)


def stap_attention_weights(module: STAPAttention, y: Tensor) -> tuple[Tensor, tuple[int, int]]:
    """Attention weights of the STAP-Branch for its input ``y (B, T, J, C)``.

    Returns:
        weights ``(B, h, N, N)`` over the ``N = T' J'`` STAP tokens (frame-major order) and the
        token grid ``(T', J')``.
    """
    tokens = rearrange(module.aggregate(y), "b gt gj c -> b c gt gj")
    tokens = rearrange(F.gelu(module.qkv_norm(tokens)), "b c gt gj -> b gt gj c")
    grid = (int(tokens.shape[1]), int(tokens.shape[2]))
    q, k, _ = rearrange(tokens, "b gt gj (n h c) -> n b h (gt gj) c", n=3, h=module.num_heads).unbind(0)
    return (torch.einsum("bhnc,bhmc->bhnm", q, k) * module.scale).softmax(-1), grid


@dataclass
class AttentionMaps:
    """Head-, batch- and position-averaged attention maps of one block.

    Attributes:
        spatial: ``(J, J)`` joint-to-joint weights, averaged over frames.
        temporal: ``(T, T)`` frame-to-frame weights, averaged over joints.
        stap: ``(N, N)`` STAP token weights (``None`` without a STAP-Branch).
        stap_grid: ``(T', J')`` of the STAP tokens.
        block: index of the block.
    """

    spatial: np.ndarray
    temporal: np.ndarray
    stap: np.ndarray | None
    stap_grid: tuple[int, int] | None
    block: int


@torch.no_grad()
def capture_attention(encoder: STAPFormer, run: Callable[[], Any], block: int = -1) -> AttentionMaps:
    """Run ``run()`` (a forward pass through ``encoder``) and return block ``block``'s attention maps."""
    target = encoder.blocks[block]
    if not isinstance(target.joint, STCAttention):
        raise ValueError(
            "attention maps need the 'stc' joint mixer; "
            f"this model's block uses {type(target.joint).__name__}"
        )
    seen: dict[str, Tensor] = {}
    modules: dict[str, torch.nn.Module] = {"joint": target.joint}
    if isinstance(target.stap, STAPAttention):
        modules["stap"] = target.stap

    def hook(name: str):
        def record(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
            seen[name] = args[0].detach()

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    if "joint" not in seen:
        raise RuntimeError("capture_attention: the forward pass did not reach the chosen block")
    spatial, temporal = stc_attention_weights(target.joint, seen["joint"])
    stap, grid = None, None
    if "stap" in seen:
        weights, grid = stap_attention_weights(modules["stap"], seen["stap"])  # type: ignore[arg-type]
        stap = reduce(weights, "b h n m -> n m", "mean").float().cpu().numpy()
    return AttentionMaps(
        spatial=reduce(spatial, "b t h i k -> i k", "mean").float().cpu().numpy(),
        temporal=reduce(temporal, "b j h s u -> s u", "mean").float().cpu().numpy(),
        stap=stap,
        stap_grid=grid,
        block=block % len(encoder.blocks),
    )


def attention_figure(maps: AttentionMaps, joint_names: Sequence[str] | None = None) -> Figure:
    """Heat maps of the spatial and temporal Joint-Branch attention and of the STAP-Branch."""
    panels: list[tuple[np.ndarray, str, str]] = [
        (maps.spatial, "Joint-Branch spatial (joint → joint)", "joint"),
        (maps.temporal, "Joint-Branch temporal (frame → frame)", "frame"),
    ]
    if maps.stap is not None and maps.stap_grid is not None:
        gt, gj = maps.stap_grid
        panels.append((maps.stap, f"STAP-Branch ({gt} x {gj} tokens, frame-major)", "STAP token"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4.4))
    for ax, (data, title, label) in zip(np.atleast_1d(axes), panels, strict=True):
        image = ax.imshow(data, cmap="viridis", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"key {label}")
        ax.set_ylabel(f"query {label}")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        if label == "joint" and joint_names is not None:
            ticks = np.arange(len(joint_names))
            ax.set_xticks(ticks, joint_names, rotation=90, fontsize=6)
            ax.set_yticks(ticks, joint_names, fontsize=6)
    fig.suptitle(f"attention of block {maps.block} (mean over heads)", fontsize=10)
    fig.tight_layout()
    return fig
