"""``python -m pose2met.ablations --quick|--full [--tables t4,t6] [--dry-run] [--out results] [-- ARGS]``.

Runs the training runs the tables need (resuming: runs with a results JSON are skipped), then
writes ``<out>/<table>.md`` and ``.csv``. Arguments after ``--`` go to every ``pose2met fit``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from pose2met.ablations.report import write_reports
from pose2met.ablations.runner import Paths, build_command, finished, run_all
from pose2met.ablations.tables import BUDGETS, estimate_seconds, expand, parse_tables
from pose2met.data.interrupts import Terminated, interrupted_message, sigterm_raises


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pose2met.ablations", description=__doc__)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--quick", action="store_const", const="quick", dest="budget", help="1 seed, short runs"
    )
    mode.add_argument(
        "--full", action="store_const", const="full", dest="budget", help="3 seeds, longer runs"
    )
    p.add_argument("--tables", default=None, help="comma list of t4,t5,t6,t7,t3_t8 (default: all)")
    p.add_argument(
        "--out", type=Path, default=Path("results"), help="tables: OUT/<table>.md; quick: OUT/quick/"
    )
    p.add_argument("--work", type=Path, default=Path("runs/ablations"), help="runs: WORK/<quick|full>/...")
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (holds conf/)")
    p.add_argument("--logger", choices=("wandb", "csv"), default="wandb", help="W&B offline (default) or CSV")
    p.add_argument(
        "--dry-run", action="store_true", help="print the runs, their commands and a time estimate"
    )
    p.add_argument("--report-only", action="store_true", help="only rewrite the tables from finished runs")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 when every needed run finished, 1 otherwise, 2 on bad arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = parser().parse_args(argv)
    try:
        tables = parse_tables(args.tables)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    root = args.root.resolve()
    if not (root / "conf" / "experiment").is_dir():
        print(f"error: --root {root} has no conf/experiment (run from the repository root)", file=sys.stderr)
        return 2
    budget = BUDGETS[args.budget]
    out = (root / args.out).resolve() / ("quick" if budget.name == "quick" else "")
    paths = Paths(out, (root / args.work).resolve() / budget.name)
    specs = expand(tables, budget)
    todo = [s for s in specs if not finished(paths.json(s.run_id), extra)]
    estimate = sum(estimate_seconds(s.settings, budget) for s in todo)
    print(
        f"{args.budget}: tables {', '.join(tables)}; {len(specs)} runs, {len(specs) - len(todo)} finished, "
        f"{len(todo)} to run; estimate {estimate / 60:.0f} min on the 2-core CPU reference machine"
    )
    if args.dry_run:
        for spec in specs:
            done = (
                "done"
                if finished(paths.json(spec.run_id), extra)
                else f"~{estimate_seconds(spec.settings, budget):.0f} s"
            )
            init = f"<checkpoint of {spec.depends_on}>" if spec.depends_on else None
            cmd = build_command(spec, budget, paths, logger=args.logger, init_from=init, extra=extra)
            print(f"\n{spec.run_id} [{spec.group}] ({done})\n  {shlex.join(cmd[3:])}")
        return 0
    start = time.perf_counter()
    try:
        with sigterm_raises():
            outcomes = (
                []
                if args.report_only
                else run_all(specs, budget, paths, cwd=root, logger=args.logger, extra=extra)
            )
    except (Terminated, KeyboardInterrupt) as err:
        _, code = interrupted_message(err, paths.work)
        print("error: interrupted; the running training run was stopped, finished runs are kept: "
              "rerun the same command to continue", file=sys.stderr)  # fmt: skip
        return code
    written = write_reports(tables, budget, paths, root, extra, retime=not args.report_only)
    bad = [o for o in outcomes if o.status in ("failed", "blocked")]
    print(f"wall time {time.perf_counter() - start:.0f} s; wrote {', '.join(str(p) for p in written)}")
    for o in bad:
        print(f"  {o.status}: {o.run_id} — {o.detail}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
