"""Energy metrics against NumPy/SciPy references: Vid2Burn MAE/SPC/NLL and point-estimate metrics."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from metrics_reference import gaussian_target as np_gaussian_target
from scipy.stats import pearsonr, rankdata, spearmanr

from pose2met.metrics import EnergyMetrics, GaussianNLL, Vid2BurnMetric
from pose2met.metrics import functional as MF

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CENTERS = np.arange(0.5, 500.0, 1.0)  # 500 bins over 0..500 kcal/h


def _predictions(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax distributions (float32 values) near the labels, and labels in 150..450 kcal/h."""
    rng = np.random.default_rng(seed)
    labels = rng.uniform(150, 450, n).astype(np.float32).astype(np.float64)  # float32 like the batches
    centre = labels + rng.normal(0, 30, n)
    logits = -((CENTERS[None] - centre[:, None]) ** 2) / (2 * rng.uniform(8, 40, n)[:, None] ** 2)
    logits = logits + rng.normal(0, 0.3, logits.shape)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)
    return probs, labels


def _np_vid2burn(probs: np.ndarray, labels: np.ndarray, sigma: float = 10.0) -> dict[str, np.ndarray]:
    p = probs.astype(np.float64)
    t = np_gaussian_target(labels, CENTERS, sigma)
    mae = np.abs(CENTERS[p.argmax(-1)] - CENTERS[t.argmax(-1)])
    spc = np.array([spearmanr(pi, ti).statistic for pi, ti in zip(p, t, strict=True)])
    pc, tc = np.clip(p, 1e-6, 1 - 1e-6), np.clip(t, 1e-6, 1 - 1e-6)
    nll = -(tc * np.log(pc) + (1 - tc) * np.log(1 - pc)).sum(-1)
    return {"mae": mae, "spc": spc, "nll": nll}


def _t(x: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(x, dtype=dtype)


def test_gaussian_target_is_float64_and_matches_numpy() -> None:
    labels = np.array([150.0, 333.3, 449.9])
    got = MF.gaussian_target(_t(labels, torch.float64), _t(CENTERS), sigma=10.0)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), np_gaussian_target(labels, CENTERS, 10.0), rtol=1e-9, atol=1e-300)


def test_average_ranks_match_scipy_rankdata_with_ties() -> None:
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(7, 40)), 1)  # many ties
    x[3] = 1.0  # a constant row
    expected = np.stack([rankdata(row, method="average") for row in x])
    np.testing.assert_array_equal(MF.average_ranks(_t(x, torch.float64)).numpy(), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_vid2burn_matches_numpy_scipy_reference(device: str) -> None:
    probs, labels = _predictions()
    ref = _np_vid2burn(probs, labels)
    per_sample = MF.vid2burn_per_sample(_t(probs).to(device), _t(labels).to(device), _t(CENTERS))
    assert per_sample["spc"].device.type == device
    np.testing.assert_allclose(per_sample["abs_error"].cpu().numpy(), ref["mae"])
    np.testing.assert_allclose(per_sample["spc"].cpu().numpy(), ref["spc"], rtol=1e-9)
    np.testing.assert_allclose(per_sample["nll"].cpu().numpy(), ref["nll"], rtol=1e-9)
    out = MF.vid2burn_metrics(_t(probs).to(device), _t(labels).to(device), _t(CENTERS).to(device))
    for key in ("mae", "spc", "nll"):
        assert out[key].item() == pytest.approx(ref[key].mean(), rel=1e-9)
    assert 0.0 < ref["mae"].mean() and 0.0 < ref["spc"].mean() < 1.0


def test_float64_target_matters_for_spc() -> None:
    """A float32 target underflows to ties in the far tails, which changes SPC (DESIGN §7)."""
    probs, labels = _predictions(n=6, seed=2)
    t32 = np_gaussian_target(labels, CENTERS, 10.0).astype(np.float32).astype(np.float64)
    spc32 = np.mean([spearmanr(p, t).statistic for p, t in zip(probs.astype(np.float64), t32, strict=True)])
    spc64 = _np_vid2burn(probs, labels)["spc"].mean()
    assert abs(spc32 - spc64) > 1e-3
    got = MF.vid2burn_metrics(_t(probs), _t(labels), _t(CENTERS))["spc"].item()
    assert got == pytest.approx(spc64, rel=1e-9)


def test_perfect_distribution_and_hand_cases() -> None:
    labels = np.array([200.4, 389.6])
    perfect = np_gaussian_target(labels, CENTERS, 10.0)
    out = MF.vid2burn_metrics(_t(perfect, torch.float64), _t(labels), _t(CENTERS))
    assert out["mae"].item() == 0.0
    assert out["spc"].item() == pytest.approx(1.0)
    one_hot = np.zeros((1, 500))
    one_hot[0, 250] = 1.0  # predicts 250.5; label 230.5 -> target argmax 230.5
    assert MF.vid2burn_metrics(_t(one_hot), _t(np.array([230.5])), _t(CENTERS))["mae"].item() == 20.0
    # a uniform prediction has no rank order: SPC defined as 0 (SciPy gives NaN)
    uniform = np.full((1, 500), 1 / 500)
    assert MF.vid2burn_metrics(_t(uniform), _t(np.array([300.0])), _t(CENTERS))["spc"].item() == 0.0


def test_bf16_probabilities_are_ranked_in_float64() -> None:
    probs, labels = _predictions(n=5, seed=3)
    probs_bf = _t(probs, torch.bfloat16)
    ref = _np_vid2burn(probs_bf.double().numpy(), labels)
    out = MF.vid2burn_metrics(probs_bf, _t(labels), _t(CENTERS))
    assert out["spc"].item() == pytest.approx(ref["spc"].mean(), rel=1e-9)
    assert out["nll"].item() == pytest.approx(ref["nll"].mean(), rel=1e-9)


def test_vid2burn_bad_inputs() -> None:
    probs, labels = _predictions(n=3)
    with pytest.raises(ValueError, match=r"`target_kcal` must have shape \(3,\)"):
        MF.vid2burn_metrics(_t(probs), _t(labels[:2]), _t(CENTERS))
    with pytest.raises(ValueError, match=r"`bin_centers` must have shape \(500,\)"):
        MF.vid2burn_metrics(_t(probs), _t(labels), _t(CENTERS[:400]))
    with pytest.raises(ValueError, match=r"`probs` must have shape \(B, K\)"):
        MF.vid2burn_metrics(_t(probs[0]), _t(labels), _t(CENTERS))
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        MF.vid2burn_metrics(_t(np.log(probs)), _t(labels), _t(CENTERS))  # logits instead of probabilities
    with pytest.raises(ValueError, match="`target_kcal` contain NaN"):
        MF.vid2burn_metrics(_t(probs), _t(np.array([1.0, np.nan, 3.0])), _t(CENTERS))


def test_vid2burn_metric_class_over_batches_and_pickle() -> None:
    probs, labels = _predictions(n=10, seed=5)
    metric = Vid2BurnMetric(CENTERS)
    metric.update(_t(probs[:4]), _t(labels[:4]))
    metric.update(_t(probs[4:]), _t(labels[4:]))
    ref = _np_vid2burn(probs, labels)
    out = pickle.loads(pickle.dumps(metric)).compute()
    for key in ("mae", "spc", "nll"):
        assert out[key].item() == pytest.approx(ref[key].mean(), rel=1e-9)


def _np_point(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    p = probs.astype(np.float64) / probs.astype(np.float64).sum(-1, keepdims=True)
    mean = p @ CENTERS
    var = (p * (CENTERS[None] - mean[:, None]) ** 2).sum(-1)
    nll = 0.5 * (np.log(2 * np.pi) + np.log(var) + (labels - mean) ** 2 / var)
    out = {
        "mae_expectation": np.abs(mean - labels).mean(),
        "rmse_expectation": math.sqrt(((mean - labels) ** 2).mean()),
        "gaussian_nll": nll.mean(),
    }
    if len(labels) >= 2:
        out["spearman"] = spearmanr(mean, labels).statistic
        out["pearson"] = pearsonr(mean, labels).statistic
    return out


def test_energy_metrics_groups_and_activities_match_references() -> None:
    probs, labels = _predictions(n=14, seed=6)
    known = np.array([True] * 9 + [False] * 5)
    activities = ["A001", "A002", "A034"]
    act = [activities[i % 3] if k else "A034" for i, k in enumerate(known)]
    metric = EnergyMetrics(CENTERS, activities=activities)
    for sl in (slice(0, 5), slice(5, 14)):
        metric.update(_t(probs[sl]), _t(labels[sl]), torch.tensor(known[sl]), act[sl])
    out = metric.compute()
    for prefix, mask in (("", np.ones_like(known)), ("known/", known), ("unknown/", ~known)):
        ref = _np_point(probs[mask], labels[mask])
        ref.update({k: v.mean() for k, v in _np_vid2burn(probs[mask], labels[mask]).items()})
        for key, value in ref.items():
            tol = 1e-5 if key in ("spearman", "pearson") else 1e-9
            assert out[prefix + key].item() == pytest.approx(value, rel=tol, abs=1e-6), prefix + key
    mae = _np_vid2burn(probs, labels)["mae"]
    for a in activities:
        sel = np.array(act) == a
        assert out[f"mae/{a}"].item() == pytest.approx(mae[sel].mean())
    assert pickle.loads(pickle.dumps(metric)).compute()["mae"] == out["mae"]


def test_energy_metrics_optional_groups_and_errors() -> None:
    probs, labels = _predictions(n=4, seed=7)
    metric = EnergyMetrics(CENTERS)
    metric.update(_t(probs), _t(labels), activity=["ignored"] * 4)  # no activities configured: ignored
    out = metric.compute()
    assert not any(k.startswith(("known/", "unknown/", "mae/")) for k in out)
    only_known = EnergyMetrics(CENTERS)
    only_known.update(_t(probs[:1]), _t(labels[:1]), torch.tensor([True]))
    out = only_known.compute()
    assert "known/mae" in out and "unknown/mae" not in out and "known/spearman" not in out  # one sample
    with_acts = EnergyMetrics(CENTERS, activities=["A001"])
    with pytest.raises(ValueError, match="`activity` is required"):
        with_acts.update(_t(probs), _t(labels))
    with pytest.raises(ValueError, match="unknown activity 'A002'"):
        with_acts.update(_t(probs[:1]), _t(labels[:1]), activity=["A002"])
    with pytest.raises(ValueError, match="`activity` has 1 entries but the batch has 4"):
        with_acts.update(_t(probs), _t(labels), activity=["A001"])
    with pytest.raises(ValueError, match=r"`known` must be a bool tensor of shape \(4,\)"):
        with_acts.update(_t(probs), _t(labels), torch.ones(4), ["A001"] * 4)
    with pytest.raises(ValueError, match="`bin_centers`"):
        EnergyMetrics(CENTERS[:1])


def test_per_sequence_scores_the_weighted_mixture_of_each_sequence() -> None:
    probs, _ = _predictions(n=11, seed=9)
    rng = np.random.default_rng(9)
    seq = np.array([4, 1, 4, 7, 1, 4, 2, 7, 2, 2, 9])  # clips of 5 sequences, interleaved
    seq_label = {s: rng.uniform(150, 450) for s in np.unique(seq)}
    seq_label = {s: float(np.float32(v)) for s, v in seq_label.items()}
    seq_known = {1: True, 2: True, 4: False, 7: True, 9: False}
    labels = np.array([seq_label[s] for s in seq])
    known = np.array([seq_known[s] for s in seq])
    weight = rng.integers(1, 28, len(seq)).astype(np.float64)  # real frames per clip
    metric = EnergyMetrics(CENTERS, per_sequence=True)
    for sl in (slice(0, 4), slice(4, 11)):
        metric.update(
            _t(probs[sl]), _t(labels[sl]), torch.tensor(known[sl]),
            sequence=torch.tensor(seq[sl]), weight=torch.tensor(weight[sl]),
        )  # fmt: skip
    out = metric.compute()
    ids = np.unique(seq)
    mix = np.stack([(weight[seq == s, None] * probs[seq == s]).sum(0) / weight[seq == s].sum() for s in ids])
    mix_labels = np.array([seq_label[s] for s in ids])
    mix_known = np.array([seq_known[s] for s in ids])
    for prefix, mask in (("", np.ones(len(ids), bool)), ("known/", mix_known), ("unknown/", ~mix_known)):
        ref = _np_point(mix[mask], mix_labels[mask])
        ref.update({k: v.mean() for k, v in _np_vid2burn(mix[mask], mix_labels[mask]).items()})
        for key, value in ref.items():
            tol = 1e-5 if key in ("spearman", "pearson") else 1e-9
            assert out[prefix + key].item() == pytest.approx(value, rel=tol, abs=1e-6), prefix + key
    # differs from scoring the clips one by one
    clips = EnergyMetrics(CENTERS)
    clips.update(_t(probs), _t(labels))
    assert clips.compute()["nll"] != pytest.approx(out["nll"].item())


def test_per_sequence_errors() -> None:
    probs, labels = _predictions(n=3, seed=10)
    metric = EnergyMetrics(CENTERS, per_sequence=True)
    with pytest.raises(ValueError, match=r"needs integer `sequence` ids of shape \(3,\), got None"):
        metric.update(_t(probs), _t(labels))
    with pytest.raises(ValueError, match="`weight` must be positive"):
        metric.update(_t(probs), _t(labels), sequence=torch.arange(3), weight=torch.tensor([1.0, 0.0, 2.0]))
    metric.update(_t(probs), _t(labels), sequence=torch.tensor([5, 5, 6]))  # two labels for sequence 5
    with pytest.raises(ValueError, match="the clips of sequence 5 disagree in their label"):
        metric.compute()


def test_gaussian_nll_class_matches_formula() -> None:
    rng = np.random.default_rng(8)
    mean, std, target = rng.normal(300, 30, 9), rng.uniform(5, 40, 9), rng.normal(300, 30, 9)
    metric = GaussianNLL()
    metric.update(_t(mean[:4]), _t(std[:4]), _t(target[:4]))
    metric.update(_t(mean[4:]), _t(std[4:]), _t(target[4:]))
    ref = np.mean(np.log(std * np.sqrt(2 * np.pi)) + (target - mean) ** 2 / (2 * std**2))
    assert metric.compute().item() == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match="must all have shape"):
        metric.update(_t(mean), _t(std[:2]), _t(target))
