"""Scoring as the protocols define it: energy distributions keep their far tails (test-time flip,
float64 softmax), and the MotionBERT Human3.6M exclusion finds its sequences or says why not.

SPC ranks every bin; a floor or a float32 underflow turns the tail bins into ties and changes it
(DESIGN §7 warns of the same for the target). References: SciPy ``logsumexp`` / ``spearmanr``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, softmax
from scipy.stats import spearmanr
from tests.lit.test_training import datamodule, tiny_encoder, tiny_trainer
from torch import nn

from pose2met.lit import EnergyTask
from pose2met.metrics import EnergyMetrics

K = 500


def _peaked_logits(centre: torch.Tensor, sigma_bins: float = 12.0) -> torch.Tensor:
    """Logits of a model trained towards a narrow Gaussian: ``(B, K)``, tails near -(K / sigma)^2."""
    bins = torch.arange(K, dtype=torch.float32)
    return -0.5 * ((bins - centre[:, None]) / sigma_bins) ** 2


class _TwoViews(nn.Module):
    """Returns ``a`` for the input and ``b`` for its flip (the flip negates x, the first channel)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"kcal_logits": self.a if bool(x[0, 0, 0, 0] > 0) else self.b}


def test_flip_average_is_the_exact_log_of_the_mean_distribution() -> None:
    a, b = _peaked_logits(torch.tensor([100.0, 300.0])), _peaked_logits(torch.tensor([120.0, 310.0]))
    task = EnergyTask(tiny_encoder(), setting="standard", num_bins=K, kcal_range=(0.0, 500.0))
    task.model = _TwoViews(a, b)  # type: ignore[assignment]
    x = torch.ones(2, 9, 17, 3)
    merged = task.predict_with_flip(x)["kcal_logits"].double().log_softmax(-1).numpy()
    la = a.double().numpy() - logsumexp(a.double().numpy(), axis=-1, keepdims=True)
    lb = b.double().numpy() - logsumexp(b.double().numpy(), axis=-1, keepdims=True)
    expected = np.logaddexp(la, lb) - np.log(2.0)
    assert expected.min() < -200  # far tails, below any float32 probability
    np.testing.assert_allclose(merged, expected, rtol=1e-6, atol=1e-3)
    # so SPC against a target sees every bin's rank, as in float64
    target = softmax(-0.5 * ((np.arange(K) - 105.0) / 10.0) ** 2)
    ours = spearmanr(np.exp(merged[0]), target).statistic
    assert ours == pytest.approx(spearmanr(np.exp(expected[0]), target).statistic, abs=1e-9)


def test_eval_scores_float64_distributions(synthmet_tiny: Path, tmp_path: Path, monkeypatch) -> None:
    seen: list[torch.dtype] = []
    update = EnergyMetrics.update

    def spy(self, probs, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.append(probs.dtype)
        return update(self, probs, *args, **kwargs)

    monkeypatch.setattr(EnergyMetrics, "update", spy)
    task = EnergyTask(tiny_encoder(), setting="standard", num_bins=50, kcal_range=(0.0, 1000.0))
    tiny_trainer(tmp_path, limit_val_batches=1).validate(task, datamodule=datamodule(synthmet_tiny))
    assert seen and set(seen) == {torch.float64}


def test_motionbert_exclusion_needs_motionbert_source_names(synthmet_tiny: Path, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pose2met.lit import HPETask
    from pose2met.metrics import MOTIONBERT_H36M_EXCLUDE

    task = HPETask(tiny_encoder(), motionbert_exclude=True)
    converted = SimpleNamespace(path="h36m.h5", source_names=lambda split: ["s_09_act_05_subact_02_ca_01"])
    assert task.h36m_exclusions(converted, "test") == MOTIONBERT_H36M_EXCLUDE
    # a file without those names (VideoPose3D-converted, SynthMet): the exclusion would skip nothing
    with pytest.raises(ValueError, match=r"motionbert_exclude needs MotionBERT source names .* 'val' split"):
        tiny_trainer(tmp_path, limit_val_batches=1).validate(task, datamodule=datamodule(synthmet_tiny))
    assert HPETask(tiny_encoder()).h36m_exclusions(converted, "test") is None
