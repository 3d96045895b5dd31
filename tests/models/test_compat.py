"""Loading official STAPFormer weights: the shared test vector and an independent re-implementation.

``official_forward`` below is written from the documented facts of the official implementation
(DESIGN §3: interleaved STC qkv, ``(channel, head)`` STC output order, scales ``(d/h)^-0.5`` and
``(d_c/h)^-0.5``, contiguous ``[q|k|v]`` STAP channels, interpolate-then-project, exact GELU) in
the official tensor layout, with plain torch ops. It is first checked against the shared test
vector, then used as the reference for configurations the vector does not cover.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from pose2met.compat import OfficialWeightsError, convert_official_state_dict, load_official_stapformer
from pose2met.models import PoseLifter

# ----------------------------------------------------------------------------- reference


def _bn(x: torch.Tensor, sd: dict, p: str, training: bool = False) -> torch.Tensor:
    mean, var = sd[p + ".running_mean"], sd[p + ".running_var"]
    if training:  # batch statistics (BatchNorm2d in train mode, running statistics updated)
        return F.batch_norm(x, mean, var, sd[p + ".weight"], sd[p + ".bias"], training=True, eps=1e-5)
    shape = (1, -1, 1, 1)
    return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + 1e-5) * sd[p + ".weight"].view(shape) + sd[
        p + ".bias"
    ].view(shape)


def _softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.softmax((q @ k.transpose(-2, -1)) * scale, dim=-1) @ v


def official_forward(
    sd: dict, cfg: dict, x: torch.Tensor, return_rep: bool = False, training: bool = False
) -> torch.Tensor:
    """Official STAPFormer forward on the official state dict ``sd``; ``x (B, T, J, 3)``.

    Eval mode by default; ``training=True`` normalizes with batch statistics (dropout and drop-path
    are 0 in the configurations used here), which the training-step benchmark times."""
    d, h = cfg["dim_feat"], cfg["num_heads"]
    dc = cfg.get("dim_compress") or d
    kt, kj = cfg["block_size"]
    st, sj = cfg["block_stride"]
    b, t, j, _ = x.shape
    x = x @ sd["encoder.input_embed.weight"].T + sd["encoder.input_embed.bias"]
    x = x + sd["encoder.pos_embed_t"][:, :t] + sd["encoder.pos_embed_s"]
    x = x.permute(0, 3, 1, 2)  # (B, C, T, J)
    for i in range(cfg["depth"]):
        p = f"encoder.blocks.{i}."
        y = _bn(x, sd, p + "norm1", training)
        # STC: interleaved qkv -> (B, T, J, C, 3); first C/2 channels spatial, then temporal
        qkv = (y.permute(0, 2, 3, 1) @ sd[p + "inner_mixer.qkv.weight"].T).reshape(b, t, j, d, 3)
        half, cs = d // 2, d // (2 * h)
        outs = []
        for part in range(2):
            q, k, v = (
                qkv[:, :, :, part * half : (part + 1) * half, n].reshape(b, t, j, h, cs) for n in range(3)
            )
            if part == 0:  # over joints
                q, k, v = (z.permute(0, 1, 3, 2, 4) for z in (q, k, v))
                o = _softmax_attention(q, k, v, (d / h) ** -0.5).permute(0, 1, 3, 2, 4)
            else:  # over frames
                q, k, v = (z.permute(0, 2, 3, 1, 4) for z in (q, k, v))
                o = _softmax_attention(q, k, v, (d / h) ** -0.5).permute(0, 3, 1, 2, 4)
            outs.append(o)  # (B, T, J, h, c)
        o = torch.cat(outs, dim=-1).transpose(-1, -2).reshape(b, t, j, d)  # index c * h + head
        inner = (o @ sd[p + "inner_mixer.proj.weight"].T + sd[p + "inner_mixer.proj.bias"]).permute(
            0, 3, 1, 2
        )
        # STAP: conv -> BN -> GELU, contiguous [q | k | v], heads (head, channel)
        z = F.conv2d(y, sd[p + "outer_mixer.qkv.0.weight"], stride=(st, sj), padding=(kt // 2, kj // 2))
        z = F.gelu(_bn(z, sd, p + "outer_mixer.qkv.1", training))
        gt, gj = z.shape[-2:]
        z = z.reshape(b, 3, h, dc // h, gt * gj).permute(1, 0, 2, 4, 3)
        o = _softmax_attention(z[0], z[1], z[2], (dc / h) ** -0.5).permute(0, 1, 3, 2).reshape(b, dc, gt, gj)
        o = F.interpolate(o, size=(t, j), mode="bilinear", align_corners=False)
        outer = F.conv2d(o, sd[p + "outer_mixer.proj.weight"], sd[p + "outer_mixer.proj.bias"])
        x = x + inner + outer
        y = F.conv2d(_bn(x, sd, p + "norm2", training), sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])
        y = F.conv2d(
            F.gelu(_bn(y, sd, p + "mlp.norm1", training)), sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"]
        )
        x = x + _bn(y, sd, p + "mlp.norm2", training)
    x = F.layer_norm(x.permute(0, 2, 3, 1), (d,), sd["norm.weight"], sd["norm.bias"], eps=1e-5)
    rep = torch.tanh(x @ sd["rep_logit.0.weight"].T + sd["rep_logit.0.bias"])
    return rep if return_rep else rep @ sd["head.weight"].T + sd["head.bias"]


def random_official_state_dict(
    cfg: dict, seed: int, dtype: torch.dtype = torch.float64
) -> dict[str, torch.Tensor]:
    """Random weights in the official layout (BN statistics randomized too): float32 values stored as
    ``dtype`` (the loader builds a float32 model, so the values must survive that rounding)."""
    g = torch.Generator().manual_seed(seed)
    d = cfg["dim_feat"]
    dc, de, hidden = cfg.get("dim_compress") or d, cfg["dim_rep"], 4 * cfg["dim_feat"]
    kt, kj = cfg["block_size"]

    def w(*shape: int, s: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * s

    def bn(p: str, n: int) -> dict[str, torch.Tensor]:
        return {
            p + ".weight": 1 + w(n),
            p + ".bias": w(n),
            p + ".running_mean": w(n),
            p + ".running_var": 0.5 + torch.rand(n, generator=g),
            p + ".num_batches_tracked": torch.tensor(3),
        }

    sd = {
        "encoder.pos_embed_t": w(1, cfg["num_frames"], 1, d),
        "encoder.pos_embed_s": w(1, 1, 17, d),
        "encoder.input_embed.weight": w(d, 3, s=0.5),
        "encoder.input_embed.bias": w(d),
    }
    for i in range(cfg["depth"]):
        p = f"encoder.blocks.{i}."
        sd |= bn(p + "norm1", d) | bn(p + "outer_mixer.qkv.1", 3 * dc) | bn(p + "norm2", d)
        sd |= bn(p + "mlp.norm1", hidden) | bn(p + "mlp.norm2", d)
        sd[p + "inner_mixer.qkv.weight"] = w(3 * d, d)
        sd[p + "inner_mixer.proj.weight"], sd[p + "inner_mixer.proj.bias"] = w(d, d), w(d)
        sd[p + "outer_mixer.qkv.0.weight"] = w(3 * dc, d, kt, kj, s=0.05)
        sd[p + "outer_mixer.proj.weight"], sd[p + "outer_mixer.proj.bias"] = w(d, dc, 1, 1), w(d)
        sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = w(hidden, d, 1, 1), w(hidden)
        sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = w(d, hidden, 1, 1, s=0.05), w(d)
    sd |= {
        "norm.weight": 1 + w(d),
        "norm.bias": w(d),
        "rep_logit.0.weight": w(de, d),
        "rep_logit.0.bias": w(de),
    }
    sd |= {"head.weight": w(3, de), "head.bias": w(3)}
    return {k: v.float().to(dtype) if v.is_floating_point() else v for k, v in sd.items()}


@pytest.fixture(scope="module")
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    path = os.path.join(
        os.path.dirname(__file__), "..", "..", "..", "shared", "reference", "official_stapformer_tiny.pt"
    )
    if not os.path.isfile(path):
        pytest.fail(f"shared test vector not found at {os.path.abspath(path)}")
    return torch.load(path, weights_only=True)


# ----------------------------------------------------------------------------- the test vector


def test_reference_reimplementation_reproduces_vector(vector: dict[str, Any]) -> None:
    sd, cfg = vector["state_dict"], vector["config"]
    with torch.no_grad():
        out = official_forward(sd, cfg, vector["input"])
        rep = official_forward(sd, cfg, vector["input"], return_rep=True)
    torch.testing.assert_close(out, vector["output"], atol=1e-5, rtol=0)
    torch.testing.assert_close(rep, vector["representation"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("fuse", [False, True])
def test_loader_reproduces_vector(vector: dict[str, Any], fuse: bool) -> None:
    model = load_official_stapformer(vector["state_dict"], vector["config"])
    assert isinstance(model, PoseLifter) and not model.training
    if fuse:
        model.fuse_for_inference()
    with torch.no_grad():
        out, rep = model(vector["input"]), model.representation(vector["input"])
    torch.testing.assert_close(out, vector["output"], atol=1e-5, rtol=0)
    torch.testing.assert_close(rep, vector["representation"], atol=1e-5, rtol=0)


def test_loader_accepts_wrappers_prefixes_and_paths(vector: dict[str, Any], tmp_path) -> None:
    sd = {"module." + k: v for k, v in vector["state_dict"].items()}
    path = tmp_path / "best_epoch.bin"
    torch.save({"epoch": 3, "lr": 1e-4, "model": sd}, path)
    config = dict(
        vector["config"], learning_rate=5e-4, batch_size=16, epochs=100, data_root="data/", flip=True
    )
    yaml_path = tmp_path / "cfg.yaml"
    yaml_path.write_text(
        "".join(f"{k}: {list(v) if isinstance(v, (list, tuple)) else v}\n" for k, v in config.items())
    )
    for weights, cfg in ((path, config), ({"model_pos": sd}, yaml_path), ({"state_dict": sd}, config)):
        model = load_official_stapformer(weights, cfg)
        with torch.no_grad():
            torch.testing.assert_close(model(vector["input"]), vector["output"], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- other configurations

OTHER_CONFIGS = [
    # the configurations named in the issue: 5x5 kernel with 2x2 stride, d_c != d, depth 3, T 81
    dict(depth=3, dim_feat=96, dim_compress=64, dim_rep=80, block_size=[5, 5], block_stride=[2, 2],
         num_heads=4, num_frames=81),
    dict(depth=2, dim_feat=32, dim_compress=64, dim_rep=48, block_size=[3, 5], block_stride=[1, 2],
         num_heads=2, num_frames=20),
    dict(depth=2, dim_feat=48, dim_compress=24, dim_rep=40, block_size=[4, 2], block_stride=[4, 2],
         num_heads=4, num_frames=22),
    # 1x1 blocks: the STAP conv is 1x1 too but stays a convolution
    dict(depth=1, dim_feat=16, dim_compress=16, dim_rep=8, block_size=[1, 1], block_stride=[1, 1],
         num_heads=4, num_frames=5),
]  # fmt: skip


@pytest.mark.parametrize(
    "cfg", OTHER_CONFIGS, ids=lambda c: f"k{c['block_size']}s{c['block_stride']}L{c['depth']}"
)
def test_loader_matches_reference_on_other_configs(cfg: dict) -> None:
    sd = random_official_state_dict(cfg, seed=cfg["depth"] + cfg["dim_feat"])
    x = torch.randn(2, cfg["num_frames"], 17, 3, dtype=torch.float64)
    model = load_official_stapformer(sd, cfg).double()
    with torch.no_grad():
        expected = official_forward(sd, cfg, x)
        torch.testing.assert_close(model(x), expected, atol=1e-9, rtol=0)
        torch.testing.assert_close(
            model.representation(x), official_forward(sd, cfg, x, True), atol=1e-9, rtol=0
        )
        # shorter inputs use the first rows of the temporal position embedding
        short = x[:, : cfg["num_frames"] // 2 + 1]
        torch.testing.assert_close(model(short), official_forward(sd, cfg, short), atol=1e-9, rtol=0)
        model.fuse_for_inference()
        torch.testing.assert_close(model(x), expected, atol=1e-9, rtol=0)


def test_loaded_model_trains_like_the_official_layout() -> None:
    """Train mode (batch statistics): same output, input and weight gradients, running statistics."""
    cfg = OTHER_CONFIGS[0]
    sd = random_official_state_dict(cfg, seed=11)
    model = load_official_stapformer(sd, cfg).double().train()
    sd = {k: v.clone().requires_grad_(k.endswith(("weight", "bias"))) for k, v in sd.items()}
    x = torch.randn(2, cfg["num_frames"], 17, 3, dtype=torch.float64)
    x_ours, x_official = x.clone().requires_grad_(), x.clone().requires_grad_()
    probe = torch.randn(2, cfg["num_frames"], 17, 3, dtype=torch.float64)
    out = model(x_ours)
    expected = official_forward(sd, cfg, x_official, training=True)
    torch.testing.assert_close(out, expected, atol=1e-9, rtol=0)
    (out * probe).sum().backward()
    (expected * probe).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_official.grad, atol=1e-9, rtol=0)
    ours = dict(model.named_parameters())
    for key in (
        "encoder.blocks.2.mlp.fc1.weight",
        "encoder.blocks.0.mlp.fc2.bias",
        "encoder.blocks.1.norm1.weight",
    ):
        torch.testing.assert_close(ours[key].grad, sd[key].grad.reshape(ours[key].shape), atol=1e-9, rtol=0)
    buffers = dict(model.named_buffers())
    for key in ("encoder.blocks.0.mlp.norm1.running_mean", "encoder.blocks.2.norm2.running_var"):
        torch.testing.assert_close(buffers[key], sd[key], atol=1e-12, rtol=0)


def test_loader_float32_other_config() -> None:
    cfg = OTHER_CONFIGS[0]
    sd = random_official_state_dict(cfg, seed=5, dtype=torch.float32)
    x = torch.randn(1, cfg["num_frames"], 17, 3)
    with torch.no_grad():
        expected = official_forward({k: v.double() for k, v in sd.items()}, cfg, x.double()).float()
        torch.testing.assert_close(load_official_stapformer(sd, cfg)(x), expected, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- errors


def _tiny(vector: dict[str, Any]) -> tuple[dict, dict]:
    return dict(vector["state_dict"]), dict(vector["config"])


def test_missing_unexpected_and_misshapen_keys_are_named(vector: dict[str, Any]) -> None:
    sd, cfg = _tiny(vector)
    missing = dict(sd)
    del missing["encoder.blocks.1.inner_mixer.proj.bias"]
    with pytest.raises(
        OfficialWeightsError, match=r"missing 1 key.*encoder\.blocks\.1\.inner_mixer\.proj\.bias"
    ):
        load_official_stapformer(missing, cfg)
    extra = dict(sd, **{"encoder.blocks.2.norm1.weight": torch.ones(64)})
    with pytest.raises(OfficialWeightsError, match=r"unexpected key.*encoder\.blocks\.2\.norm1\.weight"):
        load_official_stapformer(extra, cfg)
    wrong = dict(sd, **{"rep_logit.0.weight": torch.ones(64, 64)})
    with pytest.raises(
        OfficialWeightsError, match=r"'rep_logit\.0\.weight' has shape \(64, 64\), expected \(128, 64\)"
    ):
        load_official_stapformer(wrong, cfg)
    # older checkpoints without num_batches_tracked still load
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert len(convert_official_state_dict(old, cfg)) == len(old)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"qkv_bias": True}, "qkv_bias"),
        ({"qkv_scale": 0.1}, "qkv_scale"),
        ({"attn_head_dim": 4}, "attn_head_dim"),
        ({"mlp_out_ratio": 2}, "mlp_out_ratio"),
        ({"model_name": "motionbert"}, "model_name"),
        ({"block_size": [3, 3, 3]}, "block_size"),
        ({"num_heads": 5}, "num_heads"),
        ({"num_heads": 0}, r"config\['num_heads'\] must be a positive integer, got 0"),
        ({"depth": 2.5}, r"config\['depth'\] must be a positive integer, got 2.5"),
    ],
)
def test_unsupported_config_values_raise(vector: dict[str, Any], update: dict, message: str) -> None:
    sd, cfg = _tiny(vector)
    with pytest.raises(OfficialWeightsError, match=message):
        load_official_stapformer(sd, dict(cfg, **update))


def test_config_and_file_errors(vector: dict[str, Any], tmp_path) -> None:
    sd, cfg = _tiny(vector)
    with pytest.raises(OfficialWeightsError, match=r"required keys \['depth'\]"):
        load_official_stapformer(sd, {k: v for k, v in cfg.items() if k != "depth"})
    with pytest.raises(OfficialWeightsError, match="not found"):
        load_official_stapformer(tmp_path / "nope.pt", cfg)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(OfficialWeightsError, match="not a readable PyTorch checkpoint"):
        load_official_stapformer(bad, cfg)
    with pytest.raises(OfficialWeightsError, match=r"missing 30 key.*encoder\.blocks\.2\."):  # depth 3 vs 2
        load_official_stapformer(sd, dict(cfg, depth=3))


def test_nan_weights_and_a_broken_yaml_config(vector: dict[str, Any], tmp_path) -> None:
    sd, cfg = _tiny(vector)
    key = next(k for k in sd if k.endswith("norm1.weight"))
    poisoned = dict(sd, **{key: sd[key].clone().index_fill_(0, torch.tensor([0]), float("nan"))})
    with pytest.raises(OfficialWeightsError, match=f"entry '{key}' holds NaN or inf"):
        load_official_stapformer(poisoned, cfg)
    broken = tmp_path / "config.yaml"
    broken.write_text("depth: [1, 2\n  dim_feat: 3\n")
    with pytest.raises(OfficialWeightsError, match=r"config\.yaml: not a readable YAML config"):
        load_official_stapformer(sd, broken)
