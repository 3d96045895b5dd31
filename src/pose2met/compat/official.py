"""Load weights saved by the official STAPFormer code into a :class:`~pose2met.models.PoseLifter`.

Layout differences handled here (the math is identical):

* STC ``qkv``: official output channels are interleaved (``3 c + {0, 1, 2}`` = q, k, v of channel
  ``c``); ours are contiguous ``(half, qkv, head, channel)``. STC ``proj`` input: official
  ``(channel, head)`` with the spatial channels first; ours ``(half, head, channel)``.
* 1x1 convolutions (STAP ``proj``, MLP ``fc1``/``fc2``) are ``nn.Linear`` here: weights lose
  their trailing ``(1, 1)``.
* ``norm``/``rep_logit`` live in our encoder; the official ``head`` is our ``PoseHead``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from einops import rearrange
from torch import Tensor

from pose2met.checks import integer_pair, is_integer, nonfinite_tensors
from pose2met.models.heads import PoseHead
from pose2met.models.model import PoseLifter
from pose2met.models.stapformer import STAPFormer
from pose2met.safe_load import load_torch_file

#: Official architecture keys and their defaults (``None``: required).
ARCH_DEFAULTS: dict[str, Any] = {
    "depth": None, "dim_feat": None, "dim_rep": None, "num_heads": None, "num_frames": None,
    "dim_in": 3, "dim_out": 3, "dim_compress": None, "block_size": (3, 3), "block_stride": None,
    "mlp_ratio": 4.0, "mlp_out_ratio": 1.0, "qkv_bias": False, "qkv_scale": None, "attn_head_dim": None,
    "num_joints": 17, "drop_rate": 0.0, "attn_drop_rate": 0.0, "drop_path_rate": 0.0,
    "init_std": 0.02, "model_name": "stapformer",
}  # fmt: skip
REQUIRED_KEYS = ("depth", "dim_feat", "dim_rep", "num_heads", "num_frames")
#: Wrappers a training script may put around the weights.
CHECKPOINT_ENTRIES = ("model", "model_pos", "state_dict")
#: A key only the official layout has (ours is ``encoder.embed.weight``).
OFFICIAL_MARKER = "encoder.input_embed.weight"
#: Encoder settings the official model fixes.
OFFICIAL_ENCODER = {"joint_mixer": "stc", "stap": True, "joint_gcn": False}


class OfficialWeightsError(ValueError):
    """Official weights or configuration that cannot be loaded (names the key and the problem)."""


def _pair(value: Any, key: str) -> tuple[int, int]:
    pair = integer_pair(value)
    if pair is None:
        raise OfficialWeightsError(f"config[{key!r}] must be a positive int or a pair of them, got {value!r}")
    return pair


def parse_official_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """Official YAML keys -> (:class:`STAPFormer` kwargs, ``dim_out``).

    Keys that are not architectural (learning rate, batch size, data paths, loss weights, ...) are
    ignored; architectural values this implementation cannot reproduce raise
    :class:`OfficialWeightsError`. Dropout rates are carried over (they only matter in training;
    the official stochastic depth is constant over blocks, ours increases linearly).
    """
    if not isinstance(config, Mapping):
        raise OfficialWeightsError(
            f"config must be a mapping of the official YAML keys, got {type(config).__name__}"
        )
    missing = [k for k in REQUIRED_KEYS if config.get(k) is None]
    if missing:
        raise OfficialWeightsError(f"official config lacks required keys {missing}")
    cfg = {k: config.get(k, default) for k, default in ARCH_DEFAULTS.items()}
    if str(cfg["model_name"]).lower() != "stapformer":
        raise OfficialWeightsError(
            f"config['model_name']={cfg['model_name']!r}: only 'stapformer' can be loaded"
        )
    if cfg["qkv_bias"]:
        raise OfficialWeightsError(
            "config['qkv_bias']=True is not supported: Pose2Met attention has no qkv bias"
        )
    if cfg["qkv_scale"] is not None:
        raise OfficialWeightsError(f"config['qkv_scale']={cfg['qkv_scale']!r} is not supported (only null)")
    for key in ("dim_feat", "num_heads", "depth", "dim_rep", "dim_in", "num_joints", "num_frames", "dim_out"):
        if not is_integer(cfg[key]) or cfg[key] < 1:
            raise OfficialWeightsError(f"config[{key!r}] must be a positive integer, got {cfg[key]!r}")
    dim, heads = int(cfg["dim_feat"]), int(cfg["num_heads"])
    if cfg["attn_head_dim"] is not None and int(cfg["attn_head_dim"]) != dim // heads:
        raise OfficialWeightsError(
            f"config['attn_head_dim']={cfg['attn_head_dim']!r} is not supported "
            "(only null or dim_feat / num_heads)"
        )
    if float(cfg["mlp_out_ratio"]) != 1.0:
        raise OfficialWeightsError(
            f"config['mlp_out_ratio']={cfg['mlp_out_ratio']!r} is not supported (only 1)"
        )
    if dim % (2 * heads):
        raise OfficialWeightsError(f"config: dim_feat={dim} must be divisible by 2 * num_heads={2 * heads}")
    compress = int(cfg["dim_compress"] or dim)
    if compress % heads:
        raise OfficialWeightsError(f"config: dim_compress={compress} must be divisible by num_heads={heads}")
    kernel = _pair(cfg["block_size"], "block_size")
    stride = _pair(cfg["block_stride"], "block_stride") if cfg["block_stride"] is not None else kernel
    kwargs = dict(
        num_joints=int(cfg["num_joints"]), num_frames=int(cfg["num_frames"]), dim_in=int(cfg["dim_in"]),
        dim_feat=dim, dim_rep=int(cfg["dim_rep"]), depth=int(cfg["depth"]), num_heads=heads,
        mlp_ratio=float(cfg["mlp_ratio"]), dim_compress=compress, stap_kernel=kernel, stap_stride=stride,
        joint_mixer="stc", stap=True, joint_gcn=False, dropout=float(cfg["drop_rate"]),
        attn_dropout=float(cfg["attn_drop_rate"]), drop_path=float(cfg["drop_path_rate"]),
    )  # fmt: skip
    return kwargs, int(cfg["dim_out"])


def official_key_shapes(kwargs: Mapping[str, Any], dim_out: int = 3) -> dict[str, tuple[int, ...]]:
    """Every key of the official state dict and its shape, for STAPFormer ``kwargs`` from the parser."""
    d, dc, de = kwargs["dim_feat"], kwargs["dim_compress"], kwargs["dim_rep"]
    hidden = int(d * kwargs["mlp_ratio"])
    kt, kj = kwargs["stap_kernel"]

    def bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
        return {f"{prefix}.{name}": (n,) for name in ("weight", "bias", "running_mean", "running_var")} | {
            f"{prefix}.num_batches_tracked": ()
        }

    shapes: dict[str, tuple[int, ...]] = {
        "encoder.pos_embed_t": (1, kwargs["num_frames"], 1, d),
        "encoder.pos_embed_s": (1, 1, kwargs["num_joints"], d),
        "encoder.input_embed.weight": (d, kwargs["dim_in"]),
        "encoder.input_embed.bias": (d,),
    }
    for i in range(kwargs["depth"]):
        p = f"encoder.blocks.{i}."
        shapes |= bn(p + "norm1", d) | bn(p + "norm2", d) | bn(p + "outer_mixer.qkv.1", 3 * dc)
        shapes |= bn(p + "mlp.norm1", hidden) | bn(p + "mlp.norm2", d)
        shapes |= {
            p + "inner_mixer.qkv.weight": (3 * d, d),
            p + "inner_mixer.proj.weight": (d, d),
            p + "inner_mixer.proj.bias": (d,),
            p + "outer_mixer.qkv.0.weight": (3 * dc, d, kt, kj),
            p + "outer_mixer.proj.weight": (d, dc, 1, 1),
            p + "outer_mixer.proj.bias": (d,),
            p + "mlp.fc1.weight": (hidden, d, 1, 1),
            p + "mlp.fc1.bias": (hidden,),
            p + "mlp.fc2.weight": (d, hidden, 1, 1),
            p + "mlp.fc2.bias": (d,),
        }
    shapes |= {
        "norm.weight": (d,),
        "norm.bias": (d,),
        "rep_logit.0.weight": (de, d),
        "rep_logit.0.bias": (de,),
    }
    shapes |= {"head.weight": (dim_out, de), "head.bias": (dim_out,)}
    return shapes


def _rename(key: str) -> str:
    """Official key -> :class:`PoseLifter` key (layout changes are applied separately)."""
    for old, new in (
        ("encoder.input_embed.", "encoder.embed."),
        (".inner_mixer.", ".joint."),
        (".outer_mixer.qkv.0.", ".stap.qkv."),
        (".outer_mixer.qkv.1.", ".stap.qkv_norm."),
        (".outer_mixer.proj.", ".stap.proj."),
    ):
        key = key.replace(old, new)
    if key.startswith("norm."):
        return "encoder." + key
    if key.startswith("rep_logit.0."):
        return "encoder.rep." + key[len("rep_logit.0.") :]
    if key.startswith("head."):
        return "head.linear." + key[len("head.") :]
    return key


def convert_official_state_dict(
    state_dict: Mapping[str, Tensor], config: Mapping[str, Any]
) -> dict[str, Tensor]:
    """Official state dict (``module.`` prefixes allowed) -> :class:`PoseLifter` state dict.

    Raises :class:`OfficialWeightsError` naming the first missing / unexpected key or wrong shape.
    """
    kwargs, dim_out = parse_official_config(config)
    source = _strip_module_prefix(state_dict)
    expected = official_key_shapes(kwargs, dim_out)
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(source) - optional)
    unexpected = sorted(set(source) - set(expected))
    if missing:
        raise OfficialWeightsError(
            f"official state dict is missing {len(missing)} key(s), first: {missing[:5]}"
        )
    if unexpected:
        raise OfficialWeightsError(
            f"official state dict has {len(unexpected)} unexpected key(s) for this config, "
            f"first: {unexpected[:5]}"
        )
    for key, value in source.items():
        if not isinstance(value, Tensor):
            raise OfficialWeightsError(
                f"official state dict entry {key!r} is a {type(value).__name__}, not a tensor"
            )
        if tuple(value.shape) != expected[key]:
            raise OfficialWeightsError(
                f"official state dict entry {key!r} has shape {tuple(value.shape)}, expected {expected[key]} "
                f"for this config"
            )
    heads = kwargs["num_heads"]
    out: dict[str, Tensor] = {}
    broken = nonfinite_tensors(source)
    if broken:
        raise OfficialWeightsError(f"official state dict entry {broken[0]!r} holds NaN or inf values")
    for key, value in source.items():
        if key.endswith("inner_mixer.qkv.weight"):
            value = rearrange(value, "(s h c n) i -> (s n h c) i", n=3, s=2, h=heads)
        elif key.endswith("inner_mixer.proj.weight"):
            value = rearrange(value, "o (s c h) -> o (s h c)", s=2, h=heads)
        elif value.dim() == 4 and value.shape[-2:] == (1, 1) and not key.endswith("outer_mixer.qkv.0.weight"):
            # a 1x1 convolution that is an nn.Linear here (the STAP aggregation conv stays a conv,
            # also with a 1x1 block_size)
            value = rearrange(value, "o i 1 1 -> o i")
        out[_rename(key)] = value.detach().clone()
    return out


def official_state_dict(content: Any) -> dict[str, Any] | None:
    """The official STAPFormer weights held by a loaded file (bare, or under ``model`` /
    ``model_pos`` / ``state_dict``, ``module.`` prefixes stripped); ``None`` when it holds none,
    e.g. a Pose2Met checkpoint."""
    if not isinstance(content, Mapping):
        return None
    wrapped = [content[e] for e in CHECKPOINT_ENTRIES if isinstance(content.get(e), Mapping)]
    for candidate in (content, *wrapped):
        weights = _strip_module_prefix(candidate)
        if OFFICIAL_MARKER in weights:
            return weights
    return None


def official_config_of(encoder_config: Mapping[str, Any]) -> dict[str, Any]:
    """The official YAML keys of a :class:`STAPFormer` (its ``config``), for converting weights.

    Raises :class:`OfficialWeightsError` naming the first setting the official model does not have
    (a GCN, another joint mixer, no STAP branch).
    """
    for key, value in OFFICIAL_ENCODER.items():
        if encoder_config[key] != value:
            raise OfficialWeightsError(
                f"the official STAPFormer has {key} {value!r}, this encoder {encoder_config[key]!r}"
            )
    return {
        "depth": encoder_config["depth"], "dim_in": encoder_config["dim_in"],
        "dim_feat": encoder_config["dim_feat"], "dim_rep": encoder_config["dim_rep"],
        "dim_compress": encoder_config["dim_compress"] or encoder_config["dim_feat"],
        "num_heads": encoder_config["num_heads"], "mlp_ratio": encoder_config["mlp_ratio"],
        "num_frames": encoder_config["num_frames"], "num_joints": encoder_config["num_joints"],
        "block_size": list(encoder_config["stap_kernel"]),
        "block_stride": list(encoder_config["stap_stride"]),
    }  # fmt: skip


def _strip_module_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    prefix = "module."
    return {
        (k[len(prefix) :] if isinstance(k, str) and k.startswith(prefix) else k): v
        for k, v in state_dict.items()
    }


def _read_weights(source: Mapping[str, Any] | str | os.PathLike) -> Mapping[str, Any]:
    if isinstance(source, (str, os.PathLike)):
        source = load_torch_file(source, OfficialWeightsError)
    if not isinstance(source, Mapping):
        raise OfficialWeightsError(f"expected a state dict or checkpoint dict, got {type(source).__name__}")
    for entry in CHECKPOINT_ENTRIES:
        inner = source.get(entry)
        if isinstance(inner, Mapping) and not isinstance(source.get("encoder.pos_embed_t"), Tensor):
            return inner
    return source


def _read_config(config: Mapping[str, Any] | str | os.PathLike) -> Mapping[str, Any]:
    if isinstance(config, (str, os.PathLike)):
        import yaml

        path = Path(config)
        if not path.is_file():
            raise OfficialWeightsError(f"{path}: official config file not found")
        try:
            with open(path) as f:
                loaded = yaml.safe_load(f)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            reason = str(err).splitlines()[0]
            raise OfficialWeightsError(f"{path}: not a readable YAML config ({reason})") from None
        if not isinstance(loaded, Mapping):
            raise OfficialWeightsError(f"{path}: expected a YAML mapping of official config keys")
        return loaded
    if not isinstance(config, Mapping) and hasattr(config, "__dict__"):  # argparse.Namespace / EasyDict
        return vars(config)
    return config


def load_official_stapformer(
    state_dict_or_path: Mapping[str, Any] | str | os.PathLike,
    config: Mapping[str, Any] | str | os.PathLike,
) -> PoseLifter:
    """Build a :class:`PoseLifter` (no GCN, STC mixer) from official STAPFormer weights, in eval mode.

    Args:
        state_dict_or_path: the official state dict, a checkpoint dict holding it under
            ``model`` / ``model_pos`` / ``state_dict``, or a path to such a ``.pt``/``.bin`` file
            (loaded with ``weights_only=True``). DDP ``module.`` prefixes are stripped.
        config: the official YAML keys (a mapping, a namespace, or the YAML file path).

    Returns:
        ``PoseLifter`` whose ``forward`` gives the official output ``(B, T, J, dim_out)`` and
        ``representation`` the official ``return_rep=True`` output. Inputs may be shorter than
        ``num_frames`` (the official code requires exactly ``num_frames``).
    """
    kwargs, dim_out = parse_official_config(_read_config(config))
    weights = convert_official_state_dict(_read_weights(state_dict_or_path), _read_config(config))
    model = PoseLifter(STAPFormer(**kwargs), PoseHead(kwargs["dim_rep"], dim_out))
    for key, value in model.state_dict().items():  # older checkpoints may lack num_batches_tracked
        weights.setdefault(key, value)
    model.load_state_dict(weights, strict=True)
    return model.eval()
