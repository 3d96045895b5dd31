"""Under DDP (two gloo CPU processes) every metric equals the single-process value on all the data.

The data are split unevenly between the ranks; frames seen twice are split across ranks; some
groups (an action, a test sequence, unknown activities, an activity) exist on one rank only; and
one metric of each record kind gets no update at all on rank 1.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics import Metric

from pose2met.metrics import (
    AUC3DHP,
    MPJPE,
    MPJVE,
    NMPJPE,
    PCK3DHP,
    PMPJPE,
    EnergyMetrics,
    GaussianNLL,
    H36MProtocol,
    MPI3DHPProtocol,
    Vid2BurnMetric,
)

CENTERS = torch.arange(0.5, 500.0, 1.0)
ACTIONS = ["Walking", "Eating", "Sitting"]
ACTIVITIES = ["A001", "A002", "A034"]


def _pose_batches() -> list[dict[str, Any]]:
    """Five batches of two clips (T=4); the frames of batch 0, clip 0 reappear (other errors) in batch 4."""
    g = torch.Generator().manual_seed(0)
    batches = []
    for i in range(5):
        target = torch.randn(2, 4, 17, 3, generator=g) * 200
        pred = target + torch.randn(2, 4, 17, 3, generator=g) * 50
        frames = torch.arange(8).reshape(2, 4) + 8 * i
        if i == 4:
            frames[0] = torch.tensor([1, 2, 3, 0])  # clip 0 of batch 0 again, which goes to the other rank
        valid = torch.ones(2, 4, dtype=torch.bool)
        valid[1, 3] = False
        frames[1, 3] = -1
        actions = ["Sitting", "Walking"] if i == 3 else ["Walking", "Eating"]
        sequences = ["TS1", "TS2"] if i < 2 else ["TS1", "TS1"]
        batches.append(
            dict(pred=pred, target=target, frames=frames, valid=valid, actions=actions, seqs=sequences)
        )
    return batches


def _energy_batches() -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(1)
    batches = []
    for i in range(4):
        labels = 150 + 300 * torch.rand(3, generator=g)
        logits = -((CENTERS[None] - labels[:, None] - 20 * torch.randn(3, 1, generator=g)) ** 2) / 800
        probs = (logits + 0.2 * torch.randn(3, 500, generator=g)).softmax(-1)
        known = torch.tensor([True, True, i != 3])  # unknown samples only in batch 3
        acts = ["A001", "A002", "A034"] if i != 0 else ["A001", "A001", "A001"]
        batches.append(dict(probs=probs, labels=labels, known=known, acts=acts))
    return batches


def _sequence_batches() -> list[dict[str, Any]]:
    """Clips of five sequences; sequence 0 has clips in batch 0 and batch 2 (on the other rank)."""
    g = torch.Generator().manual_seed(2)
    table = {  # sequence -> (label, known, activity)
        0: (210.0, True, "A001"), 1: (330.0, True, "A002"), 2: (180.0, False, "A034"),
        3: (400.0, True, "A001"), 4: (260.0, False, "A034"),
    }  # fmt: skip
    batches = []
    for seqs in ([0, 1], [2, 3, 3], [4, 0, 1], [2]):
        labels = torch.tensor([table[s][0] for s in seqs])
        logits = -((CENTERS[None] - labels[:, None] - 30 * torch.randn(len(seqs), 1, generator=g)) ** 2) / 800
        batches.append(
            dict(
                probs=logits.softmax(-1),
                labels=labels,
                known=torch.tensor([table[s][1] for s in seqs]),
                acts=[table[s][2] for s in seqs],
                seqs=torch.tensor(seqs),
                weights=torch.randint(1, 10, (len(seqs),), generator=g).double(),
            )
        )
    return batches


def _metrics(**kwargs: Any) -> dict[str, tuple[Metric, Callable[[Metric, dict[str, Any]], None], str]]:
    """name -> (metric, how to update it with one batch, which batches it reads)."""

    def pose(m: Metric, b: dict[str, Any]) -> None:
        m.update(b["pred"], b["target"], b["valid"])

    def h36m(m: Metric, b: dict[str, Any]) -> None:
        m.update(b["pred"], b["target"], b["frames"], b["valid"], b["actions"])

    def dhp(m: Metric, b: dict[str, Any]) -> None:
        m.update(b["pred"], b["target"], b["frames"], b["valid"], b["seqs"])

    def energy(m: Metric, b: dict[str, Any]) -> None:
        m.update(b["probs"], b["labels"], b["known"], b["acts"])

    def per_sequence(m: Metric, b: dict[str, Any]) -> None:
        m.update(b["probs"], b["labels"], b["known"], b["acts"], sequence=b["seqs"], weight=b["weights"])

    def vid2burn(m: Metric, b: dict[str, Any]) -> None:
        m.update(b["probs"], b["labels"])

    def nll(m: Metric, b: dict[str, Any]) -> None:
        m.update(b["labels"] + 5.0, torch.full_like(b["labels"], 12.0), b["labels"])

    out: dict[str, tuple[Metric, Callable[[Metric, dict[str, Any]], None], str]] = {
        cls.__name__: (cls(**kwargs), pose, "pose")
        for cls in (MPJPE, PMPJPE, NMPJPE, MPJVE, PCK3DHP, AUC3DHP)
    }
    out["h36m"] = (H36MProtocol(ACTIONS, **kwargs), h36m, "pose")
    out["3dhp"] = (MPI3DHPProtocol(["TS1", "TS2", "TS3"], **kwargs), dhp, "pose")
    out["h36m_rank0_only"] = (H36MProtocol(ACTIONS, **kwargs), h36m, "pose_rank0")
    out["energy"] = (EnergyMetrics(CENTERS, activities=ACTIVITIES, **kwargs), energy, "energy")
    out["energy_rank0_only"] = (
        EnergyMetrics(CENTERS, activities=ACTIVITIES, **kwargs),
        energy,
        "energy_rank0",
    )
    out["energy_per_sequence"] = (
        EnergyMetrics(CENTERS, activities=ACTIVITIES, per_sequence=True, **kwargs),
        per_sequence,
        "sequences",
    )
    out["energy_per_sequence_rank0_only"] = (
        EnergyMetrics(CENTERS, activities=ACTIVITIES, per_sequence=True, **kwargs),
        per_sequence,
        "sequences_rank0",
    )
    out["vid2burn"] = (Vid2BurnMetric(CENTERS, **kwargs), vid2burn, "energy")
    out["gaussian_nll"] = (GaussianNLL(**kwargs), nll, "energy")
    return out


def _as_dict(value: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in value.items()} if isinstance(value, dict) else {"value": float(value)}


def _worker(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        pose, energy, sequences = _pose_batches(), _energy_batches(), _sequence_batches()
        data = {
            "pose": pose,
            "energy": energy,
            "pose_rank0": pose,
            "energy_rank0": energy,
            "sequences": sequences,
            "sequences_rank0": sequences,
        }
        shards = {  # uneven splits; batch 0 and its overlap (batch 4) land on different ranks
            "pose": [pose[:3], pose[3:]],
            "energy": [energy[:1], energy[1:]],
            "pose_rank0": [pose, []],
            "energy_rank0": [energy, []],
            "sequences": [sequences[:1], sequences[1:]],  # sequences 0 and 1 have clips on both ranks
            "sequences_rank0": [sequences, []],
        }
        distributed = _metrics()
        single = _metrics(sync_on_compute=False)
        for name, (metric, update, kind) in distributed.items():
            for batch in shards[kind][rank]:
                update(metric, batch)
            reference, _, _ = single[name]
            for batch in data[kind]:
                update(reference, batch)
            got, want = _as_dict(metric.compute()), _as_dict(reference.compute())
            assert got.keys() == want.keys(), f"{name}: keys {sorted(got)} != {sorted(want)}"
            for key, value in want.items():
                assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (
                    f"{name}/{key}: {got[key]} != {value}"
                )
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_two_process_values_equal_single_process_values() -> None:
    mp.spawn(_worker, args=(2, _free_port()), nprocs=2, join=True)


def test_single_process_reference_sees_the_cross_rank_cases() -> None:
    """The DDP data really contain what the DDP test claims (fast check, no processes)."""
    pose = _pose_batches()
    frames = [set(b["frames"][b["valid"]].tolist()) for b in pose]
    assert frames[0] & frames[4]  # overlapping frames, split across ranks by the shard [:3] / [3:]
    assert all("Sitting" not in b["actions"] for b in pose[:3]) and "Sitting" in pose[3]["actions"]
    assert all("TS2" not in b["seqs"] for b in pose[3:]) and "TS2" in pose[0]["seqs"]
    energy = _energy_batches()
    assert bool(energy[0]["known"].all()) and not bool(energy[3]["known"].all())
    assert "A034" not in energy[0]["acts"]
    sequences = _sequence_batches()
    first_rank = set(sequences[0]["seqs"].tolist())
    second_rank = {int(s) for b in sequences[1:] for s in b["seqs"]}
    assert first_rank & second_rank == {0, 1}
