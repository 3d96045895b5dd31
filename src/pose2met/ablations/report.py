"""Aggregate finished runs per table (mean +- std over seeds); write ``<out>/<table>.md`` and ``.csv``."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pose2met.ablations import claims
from pose2met.ablations.claims import Stat, Verdict
from pose2met.ablations.profile import WARMUP, Cost, measure
from pose2met.ablations.runner import Paths, finished, load_result
from pose2met.ablations.tables import Budget, RunSettings, run_id, table_cells
from pose2met.atomic import write_atomic
from pose2met.checks import finite_float

TITLES = {
    "t4": "Table 4 — frame count T (HPE, SynthMet)",
    "t5": "Table 5 — inference time and FPS per T (batch 1, HPE model)",
    "t6": "Table 6 — STAP kernel k x stride s (HPE, SynthMet)",
    "t7": "Table 7 — joint mixer x STAP branch (HPE, SynthMet)",
    "t3_t8": "Tables 3 and 8 — energy settings with and without the STAP branch (SynthMet)",
}
#: Columns per table: (title, source, decimals). Sources: a ``metrics`` key of the results JSON,
#: ``params`` (the JSON's count), or ``gflops`` / ``ms`` / ``fps`` (measured by ``profile``).
COLUMNS: dict[str, list[tuple[str, str, int]]] = {
    "t4": [("P1 (mm)", "test/mpjpe", 1), ("P2 (mm)", "test/p_mpjpe", 1)],
    "t5": [("params", "params", 0), ("GFLOPs", "gflops", 4), ("ms (median)", "ms", 2), ("FPS", "fps", 0)],
    "t6": [("P1 (mm)", "test/mpjpe", 1), ("params", "params", 0), ("GFLOPs", "gflops", 4)],
    "t7": [("P1 (mm)", "test/mpjpe", 1), ("P2 (mm)", "test/p_mpjpe", 1)],
    "t3_t8": [
        ("MAE known", "test/known/mae", 1),
        ("MAE unknown", "test/unknown/mae", 1),
        ("SPC known", "test/known/spc", 3),
        ("SPC unknown", "test/unknown/spc", 3),
        ("NLL known", "test/known/nll", 2),
        ("NLL unknown", "test/unknown/nll", 2),
    ],
}
PROFILED = ("gflops", "ms", "fps")
#: Columns that do not vary with the seed: shown without ``± std``.
EXACT = ("params", *PROFILED)


@dataclass
class TableRow:
    """One row: cell labels, its config differences, stats per column source, and its run ids."""

    labels: dict[str, str]
    config: str
    stats: dict[str, Stat]
    runs: list[str]


def aggregate(values: Sequence[float]) -> Stat:
    """Mean and sample std (ddof=1) over seeds; std ``None`` for one value; NaN mean for none."""
    if not values:
        return Stat(math.nan, None, 0)
    arr = np.asarray(values, dtype=np.float64)
    return Stat(float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else None, int(arr.size))


def format_stat(stat: Stat, decimals: int, exact: bool = False) -> str:
    """``"12.3 ± 0.4"``; ``"12.3 ± -"`` for one seed; ``"12.3"`` if ``exact``; ``"n/a"`` if not measured."""
    if stat.n == 0:
        return "n/a"
    fmt = f"{{:,.{decimals}f}}"
    if exact:
        return fmt.format(stat.mean)
    std = "-" if stat.std is None else fmt.format(stat.std)
    return f"{fmt.format(stat.mean)} ± {std}"


def config_difference(settings: RunSettings) -> str:
    """The cell's config: its task's CPU recipe plus what it changes, e.g. ``T=9`` or ``k=5x5 s=2x2``."""
    base = RunSettings(task=settings.task)
    parts = []
    if settings.frames != base.frames:
        parts.append(f"T={settings.frames}")
    if settings.kernel != base.kernel or settings.stride != base.stride:
        parts.append(
            f"k={settings.kernel[0]}x{settings.kernel[1]} s={settings.stride[0]}x{settings.stride[1]}"
        )
    if settings.mixer != base.mixer:
        parts.append(f"joint_mixer={settings.mixer}")
    if settings.stap != base.stap:
        parts.append(f"stap={str(settings.stap).lower()}")
    return f"`{settings.config}`" + (" + " + ", ".join(parts) if parts else "")


def collect(
    table: str,
    budget: Budget,
    paths: Paths,
    root: Path,
    cost: Callable[[RunSettings, int], Cost] | None = None,
    extra: Sequence[str] = (),
) -> list[TableRow]:
    """Rows of ``table`` from the results JSONs under ``paths``; missing or unreadable runs, runs made
    with other extra arguments, and non-numeric values count as not measured."""
    profile = cost or (lambda s, repeats: measure(s, root, repeats=repeats))
    rows = []
    for cell in table_cells(table, budget):
        sources = [src for _, src, _ in COLUMNS[table]]
        stats: dict[str, Stat] = {}
        runs: list[str] = []
        if any(src in PROFILED for src in sources):
            measured = profile(cell.settings, budget.timing_repeats if table == "t5" else 0)
            value = asdict(measured)  # params, gflops, ms, fps
            for src in sources:
                if src in PROFILED or table == "t5":
                    stats[src] = aggregate([v] if (v := value[src]) is not None else [])
        if table != "t5":
            records = []
            for seed in budget.seeds:
                name = run_id(cell.settings, seed)
                runs.append(name)
                if finished(paths.json(name), extra):
                    records.append(load_result(paths.json(name)))
            for src in sources:
                if src in stats:
                    continue
                values = [
                    finite_float(r.get("params") if src == "params" else r["metrics"].get(src))
                    for r in records
                ]
                stats[src] = aggregate([v for v in values if v is not None])
        rows.append(TableRow(dict(cell.labels), config_difference(cell.settings), stats, runs))
    return rows


def verdicts(table: str, rows: Sequence[TableRow]) -> list[Verdict]:
    """The paper claims this table checks, computed from its rows."""
    if table == "t4":
        return [claims.longer_t_is_better({int(r.labels["T"]): r.stats["test/mpjpe"] for r in rows})]
    if table == "t6":
        return [
            claims.kernel_and_stride(
                {(int(r.labels["k"]), int(r.labels["s"])): r.stats["test/mpjpe"] for r in rows}
            )
        ]
    if table == "t7":
        p1 = {(r.labels["mixer"], r.labels["STAP"] == "on"): r.stats["test/mpjpe"] for r in rows}
        return [claims.stap_beats_off(p1, "P1", " mm")]
    if table == "t3_t8":
        out = []
        mae = {}
        for split in ("known", "unknown"):
            key = f"test/{split}/mae"
            cells = {(r.labels["setting"], r.labels["STAP"] == "on"): r.stats[key] for r in rows}
            out.append(claims.stap_beats_off(cells, f"MAE {split}", " kcal/h"))
            mae.update({(r.labels["setting"], split): r.stats[key] for r in rows if r.labels["STAP"] == "on"})
        return [claims.unified_closes_gap(mae), *out]
    return []


def markdown(table: str, rows: Sequence[TableRow], budget: Budget, checks: Sequence[Verdict]) -> str:
    """The table as Markdown: title, budget, claims with their verdicts, the table itself."""
    columns = COLUMNS[table]
    label_names = list(rows[0].labels) if rows else []
    seeds = (
        sorted({r.stats[c[1]].n for r in rows for c in columns if c[1] not in PROFILED})
        if table != "t5"
        else []
    )
    lines = [f"## {TITLES[table]}", ""]
    if table == "t5":
        lines.append(
            f"Median of {budget.timing_repeats} batch-1 forward passes after {WARMUP} untimed ones "
            "(eval, inference_mode) of the "
            "CPU-recipe encoder + pose head; GFLOPs of one clip from `FlopCounterMode`."
        )
    else:
        lines.append(
            f"{budget.describe()}; seeds per cell: "
            f"{', '.join(map(str, seeds)) or '0'} (of {len(budget.seeds)} planned); "
            "mean ± sample std over seeds (`-`: one seed)."
        )
    if table != "t5" and seeds and max(seeds) == 1:
        lines.append("")
        lines.append("One seed per cell: there is no noise estimate, so a verdict may reflect seed noise.")
    lines.append("")
    for check in checks:
        lines += [check.markdown(), ""]
    head = [*label_names, *(c[0] for c in columns), "config"]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        stats = [format_stat(r.stats[src], d, exact=src in EXACT) for _, src, d in columns]
        cells = [*r.labels.values(), *stats, r.config]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, table: str, rows: Sequence[TableRow]) -> None:
    """One line per row: labels, then ``<source>_mean``, ``<source>_std``, ``<source>_n``, config, runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: _write_csv_rows(tmp, table, rows))


def _write_csv_rows(path: Path, table: str, rows: Sequence[TableRow]) -> None:
    sources = [src for _, src, _ in COLUMNS[table]]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        label_names = list(rows[0].labels) if rows else []
        writer.writerow(
            [*label_names, *(f"{s}_{k}" for s in sources for k in ("mean", "std", "n")), "config", "runs"]
        )
        for r in rows:
            values = []
            for s in sources:
                st = r.stats[s]
                values += ["" if st.n == 0 else repr(st.mean), "" if st.std is None else repr(st.std), st.n]
            writer.writerow([*r.labels.values(), *values, r.config.replace("`", ""), " ".join(r.runs)])


def measured_anything(table: str, rows: Sequence[TableRow]) -> bool:
    """Whether any trained-run cell of ``table`` has a value (the profiled columns always do)."""
    sources = [src for _, src, _ in COLUMNS[table] if src not in PROFILED]
    return table == "t5" or any(r.stats[s].n > 0 for r in rows for s in sources)


def write_reports(
    tables: Sequence[str],
    budget: Budget,
    paths: Paths,
    root: Path,
    extra: Sequence[str] = (),
    echo: Callable[[str], None] = print,
    retime: bool = True,
) -> list[Path]:
    """Write ``<out>/<table>.md`` and ``.csv`` (atomically) for each table; returns the Markdown paths.

    A table none of whose runs finished is not written, so existing tables (e.g. the committed
    results of an earlier run) are never replaced by an empty one. With ``retime=False``
    (``--report-only``) the timing-only Table 5, which has no runs to report, is kept as it is.
    """
    written = []
    for table in tables:
        md = paths.out / f"{table}.md"
        if table == "t5" and not retime:
            echo(f"t5: timed, not trained; {md} left as it was (run without --report-only to re-time)")
            continue
        rows = collect(table, budget, paths, root, extra=extra)
        if not measured_anything(table, rows):
            echo(f"{table}: no finished runs; {md} left as it was")
            continue
        text = markdown(table, rows, budget, verdicts(table, rows))
        md.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(md, lambda tmp, text=text: tmp.write_text(text))
        write_csv(paths.out / f"{table}.csv", table, rows)
        written.append(md)
    return written
