"""STAPFormer encoder, heads and the combined model: shapes, gradients, batch independence, errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from pose2met.models import CalorieHead, Pose2MetModel, PoseHead, PoseLifter, STAPFormer, stapformer_preset

TINY = dict(num_frames=9, dim_feat=32, dim_rep=24, depth=2, num_heads=4)


def tiny(**overrides) -> STAPFormer:
    return STAPFormer(**(TINY | overrides))


@pytest.mark.parametrize(
    ("mixer", "stap", "gcn"),
    list(itertools.product(("stc", "mixste", "stconv"), (True, False), (True, False))),
)
def test_shapes_no_nan_and_gradients_for_every_variant(mixer: str, stap: bool, gcn: bool) -> None:
    model = tiny(joint_mixer=mixer, stap=stap, joint_gcn=gcn)
    x = torch.randn(3, 9, 17, 3)
    rep = model(x)
    assert rep.shape == (3, 9, 17, 24)
    assert torch.isfinite(rep).all() and rep.abs().max() < 1  # Tanh representation
    rep.square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
    # shorter sequences use the first rows of the temporal position embedding
    assert model.eval()(x[:, :4]).shape == (3, 4, 17, 24)


@pytest.mark.parametrize("heads", [("pose",), ("kcal",), ("pose", "kcal")])
@pytest.mark.parametrize("pose_features", [False, True])
def test_every_parameter_gets_a_gradient_per_head_set(heads: tuple[str, ...], pose_features: bool) -> None:
    if pose_features and "pose" not in heads:
        with pytest.raises(ValueError, match="needs a pose_head"):
            Pose2MetModel.build(tiny(), heads=heads, num_bins=20, calorie_pose_features=True)
        return
    model = Pose2MetModel.build(
        tiny(drop_path=0.1, dropout=0.1), heads=heads, num_bins=20, calorie_pose_features=pose_features
    )
    assert model.heads == heads
    out = model(torch.randn(4, 9, 17, 3))
    assert set(out) == {"pose": {"pose_3d"}, "kcal": {"kcal_logits"}}[heads[0]] | (
        {"kcal_logits"} if len(heads) == 2 else set()
    )
    loss = torch.zeros(())
    if "pose_3d" in out:
        assert out["pose_3d"].shape == (4, 9, 17, 3)
        loss = loss + out["pose_3d"].square().mean()
    if "kcal_logits" in out:
        assert out["kcal_logits"].shape == (4, 20)
        loss = loss + torch.log_softmax(out["kcal_logits"], -1)[:, 3].mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


def test_model_needs_a_head_and_consistent_sizes() -> None:
    with pytest.raises(ValueError, match="at least one head"):
        Pose2MetModel(tiny())
    with pytest.raises(ValueError, match="dim_rep=16 but the encoder gives 24"):
        Pose2MetModel(tiny(), pose_head=PoseHead(16))
    with pytest.raises(ValueError, match="unknown heads"):
        Pose2MetModel.build(tiny(), heads=("pose", "speed"))  # type: ignore[arg-type]
    model = Pose2MetModel(tiny(), calorie_head=CalorieHead(24, num_bins=10))
    assert model.heads == ("kcal",)
    assert model.representation(torch.randn(1, 9, 17, 3)).shape == (1, 9, 17, 24)


@pytest.mark.parametrize("impl", ["math", "sdpa", "auto"])
@pytest.mark.parametrize("fuse", [False, True])
def test_eval_output_does_not_depend_on_batch_composition(impl: str, fuse: bool) -> None:
    model = Pose2MetModel.build(tiny(attention_impl=impl), num_bins=10, calorie_pose_features=True)
    with torch.no_grad():  # give the batch norms non-trivial statistics
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    if fuse:
        model.fuse_for_inference()
    x = torch.randn(5, 9, 17, 3)
    with torch.no_grad():
        batch = model(x)
        for i in (0, 3):
            alone = model(x[i : i + 1])
            for key in batch:
                torch.testing.assert_close(alone[key][0], batch[key][i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mixer", ["stc", "mixste", "stconv"])
def test_fuse_for_inference_keeps_outputs(mixer: str) -> None:
    model = tiny(joint_mixer=mixer, stap_kernel=(5, 3), stap_stride=(2, 3))
    x = torch.randn(2, 9, 17, 3)
    model.train()
    for _ in range(3):  # update BN running statistics away from their initial values
        model(x * 3 + 1)
    model.eval()
    with torch.no_grad():
        reference = model(x)
        model.fuse_for_inference()
        fused = model(x)
    torch.testing.assert_close(fused, reference, atol=1e-5, rtol=0)
    norms = [
        name for name, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    assert norms == [f"blocks.{i}.norm1" for i in range(len(model.blocks))]  # only the pre-mixer norms stay
    with pytest.raises(RuntimeError, match="fused for inference"):
        model.train()


def test_fuse_requires_eval_mode() -> None:
    with pytest.raises(RuntimeError, match="eval-mode"):
        tiny().fuse_for_inference()


def test_inference_chunking_matches_unchunked() -> None:
    model = tiny(num_frames=81).eval()
    x = torch.randn(2, 81, 17, 3)  # 2754 tokens: several 1024-token pieces
    with torch.no_grad():
        chunked = model(x)
    with torch.enable_grad():
        plain = model(x)
    torch.testing.assert_close(chunked, plain.detach(), atol=1e-6, rtol=0)


def test_autocast_output_dtype_does_not_depend_on_the_token_count() -> None:
    model = tiny(num_frames=81).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        short, long = model(torch.randn(1, 9, 17, 3)), model(torch.randn(2, 81, 17, 3))  # 153 / 2754 tokens
    assert short.dtype == long.dtype == torch.bfloat16


def test_attention_impls_agree() -> None:
    x = torch.randn(2, 9, 17, 3)
    outs = []
    for impl in ("math", "sdpa", "auto"):
        torch.manual_seed(1)
        outs.append(tiny(attention_impl=impl).eval()(x))
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(outs[2], outs[0], atol=1e-5, rtol=0)


def test_config_rebuilds_the_same_architecture() -> None:
    model = tiny(joint_mixer="mixste", stap_kernel=(5, 5), stap_stride=(2, 2), dim_compress=16)
    clone = STAPFormer(**model.config)
    clone.load_state_dict(model.state_dict())
    x = torch.randn(1, 9, 17, 3)
    torch.testing.assert_close(clone.eval()(x), model.eval()(x))


def test_drop_path_increases_linearly() -> None:
    model = tiny(depth=5, drop_path=0.2)
    rates = [block.drop_path.p for block in model.blocks]
    assert rates == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])


@pytest.mark.parametrize(("preset", "official_millions"), [("base", 10.64), ("small", 4.05)])
def test_official_compatible_parameter_counts(preset: str, official_millions: float) -> None:
    model = PoseLifter(stapformer_preset(preset, joint_gcn=False), PoseHead(512))
    count = sum(p.numel() for p in model.parameters())
    assert abs(count / 1e6 - official_millions) / official_millions < 0.005, count
    with_gcn = PoseLifter(stapformer_preset(preset), PoseHead(512))
    depth = 16 if preset == "base" else 6
    assert sum(p.numel() for p in with_gcn.parameters()) - count == depth * (128 * 128 + 128)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((9, 17, 3), "rank 3"),
        ((1, 9, 16, 3), "got 16 joints"),
        ((1, 9, 17, 2), "got 2 channels"),
        ((1, 10, 17, 3), "got 10 frames .* at most num_frames=9"),
        ((0, 9, 17, 3), "empty batch"),
        ((1, 0, 17, 3), "got 0 frames"),
    ],
)
def test_bad_input_shapes_raise(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny()(torch.randn(*shape))


def test_non_finite_and_non_float_inputs_raise() -> None:
    model = tiny()
    x = torch.randn(1, 9, 17, 3)
    x[0, 4, 2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        model(x)
    x[0, 4, 2, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        model(x)
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.ones(1, 9, 17, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="must be a tensor"):
        model([[1.0]])  # type: ignore[arg-type]
    model.check_finite = False  # the check can be switched off (export); the NaN then propagates
    assert torch.isnan(model.eval()(x)).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(joint_mixer="conv"), "joint_mixer"),
        (dict(num_heads=5), "divisible"),
        (dict(dim_compress=30), "dim_compress"),
        (dict(attention_impl="flash"), "attention_impl"),
        (dict(stap_kernel=(3, 3, 3)), "stap_kernel"),
        (dict(num_joints=25), "joint_gcn"),
        (dict(depth=0), "depth"),
        (dict(drop_path=1.0), "drop_path"),
        (dict(joint_mixer="stconv", stconv_kernel=4), "stconv_kernel"),
        (
            dict(stap_kernel=(3.7, 3)),
            r"stap_kernel must be a positive integer or a pair of them, got \(3.7, 3\)",
        ),
        (dict(stap_stride="33"), "stap_stride must be a positive integer or a pair"),
        (dict(num_frames=2.5), "num_frames must be a positive integer, got 2.5"),
        (dict(num_heads="2"), "num_heads must be a positive integer, got '2'"),
        (dict(mlp_ratio=0), "mlp_ratio must be > 0"),
        (dict(dim_compress=-4), "dim_compress must be a positive integer"),
        (dict(dropout=2.0), r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(**kwargs)


def test_a_single_int_kernel_means_a_square_block() -> None:
    assert tiny(stap_kernel=3, stap_stride=3).config["stap_kernel"] == [3, 3]


def test_input_dtype_must_match_the_weights() -> None:
    model = tiny().eval()
    x = torch.randn(1, 9, 17, 3)
    with pytest.raises(ValueError, match=r"input is torch.float64 but the model's weights are torch.float32"):
        model(x.double())
    torch.testing.assert_close(model.double()(x.double()), model.float()(x).double(), atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts inside the layers
        assert model(x).shape == model.float()(x).shape


def test_training_batch_of_one_stap_token_is_a_clear_error() -> None:
    """A 1x1 STAP token grid with batch 1 leaves the STAP batch norm one value per channel."""
    model = tiny(num_frames=3, stap_kernel=(3, 17), stap_stride=(3, 17)).train()
    with pytest.raises(ValueError, match=r"batch of 1 with 3 frames x 17 joints gives a 1x1 token grid"):
        model(torch.randn(1, 3, 17, 3))
    assert model(torch.randn(2, 3, 17, 3)).shape == (2, 3, 17, 24)  # two tokens: batch statistics exist
    assert model.eval()(torch.randn(1, 3, 17, 3)).shape == (1, 3, 17, 24)  # running statistics


def test_preset_names() -> None:
    assert len(stapformer_preset("small", num_frames=27, dim_feat=32, dim_rep=16).blocks) == 6
    with pytest.raises(ValueError, match="unknown STAPFormer preset"):
        stapformer_preset("large")  # type: ignore[arg-type]
