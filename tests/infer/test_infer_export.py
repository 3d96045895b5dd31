"""ONNX / TorchScript export parity, and the attention maps captured from a forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from pose2met.infer.cli import export_main
from pose2met.infer.export import example_input
from pose2met.infer.predict import load_inference_model
from pose2met.models import STAPFormer
from pose2met.viz.attention import capture_attention, stap_attention_weights, stc_attention_weights


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch(fmt: str, unified_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "m.pt")
    args = ["--checkpoint", str(unified_checkpoint), "--format", fmt, "--output", str(out)]
    assert export_main([*args, "--batch", "2", "--device", "cpu"]) == 0
    loaded = load_inference_model(unified_checkpoint)
    x = example_input(loaded, batch=2) + 0.05  # not the tracing input
    with torch.no_grad():
        ref = loaded.model(x)
    if fmt == "onnx":
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert [o.name for o in session.get_outputs()] == ["pose_3d", "kcal_logits"]
        got = dict(zip(["pose_3d", "kcal_logits"], session.run(None, {"keypoints": x.numpy()}), strict=True))
    else:
        module = torch.jit.load(str(out))
        got = dict(zip(["pose_3d", "kcal_logits"], (t.detach().numpy() for t in module(x)), strict=True))
    for name in ("pose_3d", "kcal_logits"):
        np.testing.assert_allclose(got[name], ref[name].numpy(), atol=1e-4, rtol=0, err_msg=name)


def test_export_bad_checkpoint_writes_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_text("not a checkpoint")
    out = tmp_path / "m.onnx"
    assert export_main(["--checkpoint", str(bad), "--format", "onnx", "--output", str(out)]) == 2
    assert str(bad) in capsys.readouterr().err and not out.exists()


def test_captured_attention_reproduces_the_branch_outputs() -> None:
    enc = STAPFormer(num_frames=12, depth=2, dim_feat=16, dim_rep=32, num_heads=2, stap_kernel=(3, 3),
                     stap_stride=(3, 3)).eval()  # fmt: skip
    block = enc.blocks[-1]
    seen: dict[str, torch.Tensor] = {}
    block.joint.register_forward_hook(lambda m, a, o: seen.update(joint_in=a[0], joint_out=o))
    block.stap.register_forward_hook(lambda m, a, o: seen.update(stap_in=a[0], stap_out=o))
    x = torch.randn(2, 12, 17, 3)
    maps = capture_attention(enc, lambda: enc(x))
    # rebuild each branch's output from the recomputed weights and the module's own values
    y = seen["joint_in"]
    spatial, temporal = stc_attention_weights(block.joint, y)
    _, _, vs, _, _, vt = rearrange(block.joint.qkv(y), "b t j (s n h c) -> (s n) b t j h c", n=3, s=2, h=2)
    out_s = torch.einsum("bthik,btkhc->btihc", spatial, vs)
    out_t = torch.einsum("bjhsu,bujhc->bsjhc", temporal, vt)
    joint = block.joint.proj(rearrange(torch.stack([out_s, out_t], 3), "b t j s h c -> b t j (s h c)"))
    torch.testing.assert_close(joint, seen["joint_out"], atol=1e-5, rtol=1e-5)
    z = seen["stap_in"]
    weights, (gt, gj) = stap_attention_weights(block.stap, z)
    assert (gt, gj) == (4, 6)
    tokens = F.gelu(block.stap.qkv_norm(rearrange(block.stap.aggregate(z), "b gt gj c -> b c gt gj")))
    v = rearrange(tokens, "b (n h c) gt gj -> n b h (gt gj) c", n=3, h=2)[2]
    stap = block.stap.proj(rearrange(weights @ v, "b h (gt gj) c -> b gt gj (h c)", gt=gt))
    stap = F.interpolate(rearrange(stap, "b gt gj c -> b c gt gj"), size=(12, 17), mode="bilinear")
    torch.testing.assert_close(rearrange(stap, "b c t j -> b t j c"), seen["stap_out"], atol=1e-5, rtol=1e-5)
    # averaged maps: rows are distributions
    assert maps.spatial.shape == (17, 17) and maps.temporal.shape == (12, 12) and maps.stap.shape == (24, 24)
    for m in (maps.spatial, maps.temporal, maps.stap):
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_export_never_replaces_its_checkpoint(unified_checkpoint: Path, tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "model.pt"  # a checkpoint with the suffix of the TorchScript output
    ckpt.write_bytes(unified_checkpoint.read_bytes())
    (tmp_path / "link.pt").symlink_to(ckpt)
    for output in (ckpt, tmp_path / "sub" / ".." / "model.pt", tmp_path / "link.pt"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        for extra in ([], ["--overwrite"]):
            args = ["--checkpoint", str(ckpt), "--format", "torchscript", "--output", str(output), *extra]
            assert export_main(args) == 2
            err = one_line_error(capsys)
            assert str(output) in err and "--checkpoint" in err
    assert ckpt.read_bytes() == unified_checkpoint.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.pt", "model.pt", "sub"]


def test_export_existing_output_needs_overwrite(unified_checkpoint: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    args = ["--checkpoint", str(unified_checkpoint), "--format", "onnx", "--output", str(out)]
    assert export_main(args) == 2
    assert one_line_error(capsys) == f"error: {out} exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]
    assert export_main([*args, "--overwrite", "--device", "cpu"]) == 0
    assert [
        o.name for o in ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_outputs()
    ] == ["pose_3d", "kcal_logits"]


@pytest.mark.parametrize(
    ("fmt", "name", "words"),
    [
        ("onnx", "folder", "is a folder; expected a file name ending in .onnx"),
        ("torchscript", "folder.pt", "is a folder; expected a file name ending in .pt"),
        ("onnx", "model.pt", "--format onnx output name must end with .onnx"),
        ("torchscript", "model.onnx", "--format torchscript output name must end with .pt"),
    ],
)
def test_export_bad_output_name(fmt: str, name: str, words: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.pt").mkdir()
    missing = tmp_path / "missing.ckpt"  # the output is checked before the checkpoint is read
    out = tmp_path / name
    assert export_main(["--checkpoint", str(missing), "--format", fmt, "--output", str(out)]) == 2
    assert one_line_error(capsys) == f"error: {out}: {words}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "folder.pt"]
    assert not any((tmp_path / "folder").iterdir())


@pytest.mark.parametrize("available_bytes", [None, 100_000])
def test_export_batch_beyond_memory_is_refused_before_tracing(
    available_bytes: int | None, unified_checkpoint: Path, tmp_path: Path, capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An export batch whose trace cannot fit stops with one line instead of being killed by the OS."""
    from types import SimpleNamespace

    import pose2met.infer.export as export

    batch = 10**7 if available_bytes is None else 2  # the second: 0.2 MB, more than the memory left
    if available_bytes is not None:
        memory = SimpleNamespace(available=available_bytes)
        monkeypatch.setattr(export.psutil, "virtual_memory", lambda: memory)
    out = tmp_path / "m.onnx"
    args = ["--checkpoint", str(unified_checkpoint), "--format", "onnx", "--output", str(out)]
    assert export_main([*args, "--batch", str(batch)]) == 2
    err = one_line_error(capsys)
    # 10 float32 (T, J, d) token maps per block and sequence: the tiny model has 1 block, T=9, d=16
    floor_gib = 10 * 1 * batch * 9 * 17 * 16 * 4 / 2**30
    assert err.startswith(f"error: --batch {batch}: tracing {batch} sequences of 9 frames needs at least")
    assert f"{floor_gib:.1f} GiB" in err and "export a smaller --batch" in err
    assert list(tmp_path.iterdir()) == []
