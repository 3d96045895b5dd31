"""EpochSeededSampler / ResumableDataLoader: seeded per-epoch subsets, DDP shares, mid-epoch resume."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler, TensorDataset

from pose2met.data.resumable import EpochSeededSampler, ResumableDataLoader


def test_subsets_are_seeded_per_epoch() -> None:
    a, b = EpochSeededSampler(20, seed=5, num_samples=6), EpochSeededSampler(20, seed=5, num_samples=6)
    first = list(a)
    assert first == list(b) and len(first) == 6 == len(a) and len(set(first)) == 6
    a.set_epoch(1)
    assert list(a) != first
    assert list(EpochSeededSampler(4, shuffle=False)) == [0, 1, 2, 3]


@pytest.mark.parametrize(("size", "num_samples"), [(10, None), (10, 7), (9, None)])
def test_ddp_ranks_split_one_epoch_order(size: int, num_samples: int | None) -> None:
    whole = list(EpochSeededSampler(size, seed=2, num_samples=num_samples))
    ranks = [
        EpochSeededSampler(size, seed=2, num_samples=num_samples, num_replicas=2, rank=r) for r in (0, 1)
    ]
    parts = [list(s) for s in ranks]
    assert len(parts[0]) == len(parts[1]) == len(ranks[0]) == -(-len(whole) // 2)
    assert set(parts[0]) | set(parts[1]) == set(whole)
    # interleaved shares of the same order; an odd count pads rank 1 with the first index
    assert parts[0] == whole[0::2]
    assert parts[1] == (whole[1::2] + whole[:1])[: len(parts[0])]
    # Lightning leaves a DistributedSampler in place instead of wrapping it
    assert isinstance(ranks[0], DistributedSampler)
    with pytest.raises(ValueError, match="rank 2 outside 0..1"):
        EpochSeededSampler(size, num_replicas=2, rank=2)


def test_resume_mid_epoch_gives_the_remaining_batches() -> None:
    data = TensorDataset(torch.arange(23))
    full = ResumableDataLoader(data, seed=1, batch_size=4)
    full.sampler.set_epoch(3)
    expected = [b[0].tolist() for b in full]
    first = ResumableDataLoader(data, seed=1, batch_size=4)
    first.sampler.set_epoch(3)
    it = iter(first)
    seen = [next(it)[0].tolist() for _ in range(2)]
    state = first.state_dict()
    assert state == {"epoch": 3, "served": 2}
    resumed = ResumableDataLoader(data, seed=1, batch_size=4)
    resumed.load_state_dict(state)
    rest = [b[0].tolist() for b in resumed]
    assert seen + rest == expected
    assert [b[0].tolist() for b in resumed] == expected  # the next pass starts from the beginning again


def test_item_seeds_follow_the_item_not_the_rank_or_resume() -> None:
    whole = EpochSeededSampler(11, seed=3, item_seeds=True)
    keys = list(whole)
    assert [k.index for k in keys] == list(EpochSeededSampler(11, seed=3))  # the same order as without seeds
    seed_of = {k.index: k.seed for k in keys}
    assert len(set(seed_of.values())) == 11
    ranks = [EpochSeededSampler(11, seed=3, item_seeds=True, num_replicas=2, rank=r) for r in (0, 1)]
    assert all(seed_of[k.index] == k.seed for s in ranks for k in s)
    resumed = EpochSeededSampler(11, seed=3, item_seeds=True)
    resumed.skip = 4
    assert list(resumed) == keys[4:]
    whole.set_epoch(1)
    assert {k.index: k.seed for k in whole} != seed_of  # fresh draws each epoch
