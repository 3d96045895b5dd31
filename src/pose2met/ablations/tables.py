"""The ablation tables as data: which runs each table needs, under which budget.

A *cell* is one row of a table (its labels and the run settings behind it). Cells of different
tables that need the same training run (e.g. the default HPE model is T=27 in Table 4, k=s=3 in
Table 6 and stc + STAP in Table 7) share one :class:`RunSpec`, so every run trains once per seed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Literal

Task = Literal["hpe", "eee", "unified", "eee-3d", "eee-3d-finetune"]
TABLES = ("t4", "t5", "t6", "t7", "t3_t8")
EXPERIMENT = "conf/experiment/stapformer-s_synthmet-27f_cpu-{task}.yaml"
ENCODER = "--model.init_args.encoder.init_args."
#: Energy settings of Tables 3 and 8 (paper name -> task).
ENERGY_TASKS: dict[str, Task] = {
    "2D standard": "eee",
    "2D unified": "unified",
    "3D input": "eee-3d",
    "3D fine-tuned": "eee-3d-finetune",
}


@dataclass(frozen=True)
class RunSettings:
    """What distinguishes one training run from the CPU recipe (``EXPERIMENT``) of its task."""

    task: Task = "hpe"
    frames: int = 27
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (3, 3)
    mixer: str = "stc"
    stap: bool = True

    @property
    def key(self) -> str:
        """Readable unique name, e.g. ``hpe-T27-k3x3-s3x3-stc-stap``."""
        k, s = self.kernel, self.stride
        stap = "stap" if self.stap else "nostap"
        return f"{self.task}-T{self.frames}-k{k[0]}x{k[1]}-s{s[0]}x{s[1]}-{self.mixer}-{stap}"

    @property
    def config(self) -> str:
        return EXPERIMENT.format(task=self.task)

    @property
    def pretrain(self) -> RunSettings | None:
        """The HPE run whose checkpoint initializes this one (3D fine-tuning only)."""
        return replace(self, task="hpe") if self.task == "eee-3d-finetune" else None

    def overrides(self) -> list[str]:
        """CLI overrides of the experiment config (the differences a table reports)."""
        return [
            "--data.num_frames", str(self.frames),
            ENCODER + "stap_kernel", json.dumps(list(self.kernel)),
            ENCODER + "stap_stride", json.dumps(list(self.stride)),
            ENCODER + "joint_mixer", self.mixer,
            ENCODER + "stap", str(self.stap).lower(),
        ]  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """Training length and table extent of one harness mode (``quick`` or ``full``).

    Validation and test use clips spread evenly over their split (``max_val_clips`` /
    ``max_test_clips``, ``None`` = all): the trainer's ``limit_*_batches`` would keep only the first
    sequences, i.e. a few actions and maybe no unknown ones.
    """

    name: str
    seeds: tuple[int, ...]
    max_epochs: int
    max_train_clips: int
    max_val_clips: int
    max_test_clips: int | None = None
    test_flip: bool = False
    frames: tuple[int, ...] = (9, 27, 81)
    timing_frames: tuple[int, ...] = (9, 27, 81)
    kernels: tuple[int, ...] = (3, 5)
    strides: tuple[int, ...] = (1, 2, 3)
    mixers: tuple[str, ...] = ("stconv", "mixste", "stc")
    energy: tuple[str, ...] = tuple(ENERGY_TASKS)
    timing_repeats: int = 200

    def unified_stages(self) -> list[dict[str, object]]:
        """HPE stage then joint stage, ``max_epochs`` in total like the other energy settings."""
        hpe = max(1, self.max_epochs // 2)
        joint = max(1, self.max_epochs - hpe)
        return [
            {"name": "hpe", "epochs": hpe, "pose_weight": 1.0, "kcal_weight": 0.0},
            {"name": "joint", "epochs": joint, "pose_weight": 1.0, "kcal_weight": 1.0},
        ]

    def describe(self) -> str:
        """One line for the reports."""
        test = "all" if self.max_test_clips is None else str(self.max_test_clips)
        return (
            f"Budget `{self.name}`: {self.max_epochs} epochs on {self.max_train_clips} train clips, "
            f"{self.max_val_clips} val clips per epoch, {test} test clips (both spread evenly over "
            "their split), "
            f"test-time flip {'on' if self.test_flip else 'off'}"
        )


#: ``--quick``: one seed, T=81 dropped from Table 4 (Table 5 still times it) (its runs cost ~4x a T=27 run).
QUICK = Budget(
    "quick",
    seeds=(0,),
    max_epochs=2,
    max_train_clips=512,
    max_val_clips=128,
    frames=(9, 27),
    timing_repeats=50,
)
#: ``--full``: three seeds, every cell.
FULL = Budget(
    "full", seeds=(0, 1, 2), max_epochs=3, max_train_clips=768, max_val_clips=128, max_test_clips=1024
)
BUDGETS = {"quick": QUICK, "full": FULL}


@dataclass(frozen=True)
class Cell:
    """One row of a table: its labels (column -> text) and the run settings behind it."""

    table: str
    labels: tuple[tuple[str, str], ...]
    settings: RunSettings


def run_id(settings: RunSettings, seed: int) -> str:
    """Name of one training run, e.g. ``hpe-T27-k3x3-s3x3-stc-stap-seed0``."""
    return f"{settings.key}-seed{seed}"


@dataclass
class RunSpec:
    """One training run (settings + seed), possibly shared by several tables."""

    settings: RunSettings
    seed: int
    tables: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return run_id(self.settings, self.seed)

    @property
    def depends_on(self) -> str | None:
        """``run_id`` of the run whose checkpoint this one starts from, if any."""
        pre = self.settings.pretrain
        return None if pre is None else run_id(pre, self.seed)

    @property
    def group(self) -> str:
        """W&B group: the tables this run belongs to, e.g. ``t4+t6+t7``."""
        return "+".join(self.tables)


def table_cells(table: str, budget: Budget) -> list[Cell]:
    """The rows of ``table`` under ``budget`` (Table 5 rows have settings but no training run)."""
    if table in ("t4", "t5"):
        frames = budget.frames if table == "t4" else budget.timing_frames
        return [Cell(table, (("T", str(t)),), RunSettings(frames=t)) for t in frames]
    if table == "t6":
        return [
            Cell(table, (("k", str(k)), ("s", str(s))), RunSettings(kernel=(k, k), stride=(s, s)))
            for k in budget.kernels
            for s in budget.strides
        ]
    if table == "t7":
        return [
            Cell(table, (("mixer", m), ("STAP", "on" if on else "off")), RunSettings(mixer=m, stap=on))
            for m in budget.mixers
            for on in (False, True)
        ]
    if table == "t3_t8":
        return [
            Cell(
                table,
                (("setting", name), ("STAP", "on" if on else "off")),
                RunSettings(task=ENERGY_TASKS[name], stap=on),
            )
            for name in budget.energy
            for on in (False, True)
        ]
    raise ValueError(f"unknown table {table!r}: expected one of {', '.join(TABLES)}")


def parse_tables(text: str | None) -> list[str]:
    """``"t4,t6"`` -> ``["t4", "t6"]`` (all tables for ``None``/empty); unknown names raise."""
    names = [t.strip() for t in (text or "").split(",") if t.strip()] or list(TABLES)
    bad = [t for t in names if t not in TABLES]
    if bad:
        raise ValueError(f"--tables: unknown {', '.join(bad)}; expected a comma list of {', '.join(TABLES)}")
    return names


def expand(tables: list[str], budget: Budget) -> list[RunSpec]:
    """Unique training runs of ``tables`` x ``budget.seeds``; a run's pretraining run comes first."""
    runs: dict[str, RunSpec] = {}

    def add(settings: RunSettings, seed: int, table: str) -> None:
        pre = settings.pretrain
        if pre is not None:
            add(pre, seed, table)
        spec = runs.setdefault(run_id(settings, seed), RunSpec(settings, seed))
        if table not in spec.tables:
            spec.tables.append(table)

    for table in tables:
        if table == "t5":  # timed, not trained
            continue
        for cell in table_cells(table, budget):
            for seed in budget.seeds:
                add(cell.settings, seed, table)
    return list(runs.values())


#: Costs measured on the 2-core CPU machine (CPU recipe, batch 32, T=27, k=s=3, full budget): start-up
#: to first step, one train clip-epoch (0.75 s per 32-clip step), one validation or test batch (no
#: flip); SynthMet default test frames.
SECONDS_STARTUP = 15.0
SECONDS_PER_CLIP = 0.0234
SECONDS_PER_EVAL_BATCH = 0.31
TEST_FRAMES = 84_560


def estimate_seconds(settings: RunSettings, budget: Budget) -> float:
    """Rough wall time of one run on the reference machine (T=81 trains at ~6x the cost of T=27).

    The whole test split has ``~frames / T`` clips, of which ``max_test_clips`` are tested.
    """
    ratio = settings.frames / 27
    scale = ratio ** (1.6 if ratio > 1 else 0.7)
    if settings.stap and settings.stride != (3, 3):  # more STAP tokens: 9 / (s_t * s_j) times as many
        scale *= 1 + 0.1 * (9 / (settings.stride[0] * settings.stride[1]) - 1)
    train = budget.max_train_clips * budget.max_epochs * SECONDS_PER_CLIP * scale
    batch = SECONDS_PER_EVAL_BATCH * ratio**0.6
    val = math.ceil(budget.max_val_clips / 32) * budget.max_epochs * batch
    test_clips = math.ceil(TEST_FRAMES / settings.frames)
    if budget.max_test_clips is not None:
        test_clips = min(test_clips, budget.max_test_clips)
    test_batches = math.ceil(test_clips / 32)
    test = test_batches * batch * (2 if budget.test_flip else 1)
    return SECONDS_STARTUP + train + val + test
