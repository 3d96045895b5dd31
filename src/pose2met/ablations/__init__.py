"""Ablation harness: the paper's Tables 3-8 as ``pose2met fit`` runs with resume, and their reports.

``python -m pose2met.ablations --quick|--full`` (see ``docs/ablations.md``).
"""

from __future__ import annotations

from pose2met.ablations.tables import BUDGETS, FULL, QUICK, TABLES, Budget, RunSettings, RunSpec, expand

__all__ = ["BUDGETS", "FULL", "QUICK", "TABLES", "Budget", "RunSettings", "RunSpec", "expand"]
