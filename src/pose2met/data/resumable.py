"""A training DataLoader whose order depends only on (seed, epoch) and that resumes mid-epoch.

Lightning saves ``state_dict()`` of stateful loaders in checkpoints and restores it on resume, so
a run killed mid-epoch continues with exactly the batches an uninterrupted run would have seen.

Under DDP each rank takes every ``num_replicas``-th index of the same epoch order (padded like
``DistributedSampler``). The sampler subclasses ``DistributedSampler`` so that Lightning keeps it
instead of wrapping it in one of its own (which would freeze the per-epoch subsets).

With ``item_seeds`` the sampler yields :class:`ItemKey` ``(index, seed)`` instead of a bare index,
the seed drawn from ``(seed, epoch)``: random augmentation then depends neither on the worker that
loads the item nor on where a resumed run restarted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

#: Item seeds are drawn below this bound (they fit an int64 and ``numpy.random.default_rng``).
ITEM_SEED_BOUND = 2**62


class ItemKey(NamedTuple):
    """A dataset index with the seed of that item's augmentation in this epoch."""

    index: int
    seed: int


class EpochSeededSampler(DistributedSampler):
    """Shuffled (or sequential) indices from ``torch.Generator(seed + epoch)``, optionally skipping a prefix.

    Args:
        size: number of items in the dataset.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        shuffle: random order (else ``0, 1, 2, ...``).
        num_samples: draw this many items per epoch (a fresh subset each epoch), default all.
        num_replicas: DDP world size; this rank's share is every ``num_replicas``-th index.
        rank: this process's rank.
        item_seeds: yield :class:`ItemKey` ``(index, seed)`` instead of bare indices; item ``i`` of
            epoch ``e`` gets the same seed on every rank, worker and resume.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        num_samples: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        item_seeds: bool = False,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"EpochSeededSampler: rank {rank} outside 0..{num_replicas - 1}")
        super().__init__(range(size), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.size = size
        self.epoch_samples = min(num_samples or size, size)
        self.num_samples = math.ceil(self.epoch_samples / num_replicas)  # per rank
        self.total_size = self.num_samples * num_replicas
        self.item_seeds = item_seeds
        self.skip = 0

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int | ItemKey]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.shuffle:
            order = torch.randperm(self.size, generator=g)[: self.epoch_samples].tolist()
        else:
            order = list(range(self.epoch_samples))
        if self.total_size > len(order):  # pad so that every rank gets the same count
            order += (order * math.ceil(self.total_size / max(len(order), 1)))[: self.total_size - len(order)]
        mine = order[self.rank : self.total_size : self.num_replicas]
        skip, self.skip = self.skip, 0
        if not self.item_seeds:
            return iter(mine[skip:])
        seeds = torch.randint(ITEM_SEED_BOUND, (self.size,), generator=g).tolist()  # after the order
        return iter([ItemKey(i, seeds[i]) for i in mine[skip:]])


class ResumableDataLoader(DataLoader):
    """DataLoader over :class:`EpochSeededSampler` that records how many batches it has served.

    ``item_seeds=True`` needs a dataset that accepts :class:`ItemKey` (``ClipDataset`` does).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        seed: int = 0,
        shuffle: bool = True,
        num_samples: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        item_seeds: bool = False,
        **kwargs: Any,
    ) -> None:
        sampler = EpochSeededSampler(
            len(dataset),
            seed=seed,
            shuffle=shuffle,
            num_samples=num_samples,
            num_replicas=num_replicas,
            rank=rank,
            item_seeds=item_seeds,
        )
        # its own generator: creating an iterator then draws no number from the global torch RNG,
        # which a resumed run restores (dropout) and must not see consumed
        kwargs.setdefault("generator", torch.Generator().manual_seed(seed))
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._served = 0
        self._resume_from = 0

    def __iter__(self) -> Iterator[Any]:
        sampler: EpochSeededSampler = self.sampler  # type: ignore[assignment]
        self._served = self._resume_from
        sampler.skip = self._resume_from * (self.batch_size or 1)
        self._resume_from = 0
        for batch in super().__iter__():
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "served": self._served}  # type: ignore[attr-defined]

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(int(state["epoch"]))  # type: ignore[attr-defined]
        self._resume_from = int(state["served"])
