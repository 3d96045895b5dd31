"""The paper's claims (DESIGN.md section 8), checked on measured means — never asserted by hand.

Each checker takes ``Stat`` values (mean, std over seeds, seeds) keyed by the table's cells and
returns a :class:`Verdict`: whether the claim holds here, and the numbers behind it. A comparison
whose difference is smaller than the larger seed std is flagged ``within seed std``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Stat:
    """Mean and sample std (ddof=1; ``None`` for one seed) of a metric over ``n`` seeds."""

    mean: float
    std: float | None
    n: int

    @property
    def valid(self) -> bool:
        return self.n > 0 and math.isfinite(self.mean)


@dataclass(frozen=True)
class Verdict:
    """``holds``: True/False, or None when the numbers needed are missing."""

    claim: str
    holds: bool | None
    details: list[str]

    def markdown(self) -> str:
        word = {True: "**holds here**", False: "**does not hold here**", None: "**not measured**"}[self.holds]
        lines = [f"Paper claim: {self.claim} — {word}."]
        return "\n".join(lines + [f"* {d}" for d in self.details])


def lower_is_better(a: Stat, b: Stat) -> tuple[bool, str]:
    """Whether ``a`` beats ``b`` (lower mean) and a text ``a vs b`` with a noise flag."""
    text = f"{a.mean:.1f} vs {b.mean:.1f}"
    stds = [s for s in (a.std, b.std) if s is not None]
    if stds and abs(a.mean - b.mean) < max(stds):
        text += " (within seed std)"
    return a.mean < b.mean, text


def _verdict(claim: str, wins: list[bool], details: list[str], missing: int = 0) -> Verdict:
    """A measured loss decides (does not hold); a win needs every comparison of the claim measured."""
    if wins and not all(wins):
        return Verdict(claim, False, details)
    if missing:
        details.append(f"{missing} comparison(s) not measured, so the claim cannot hold yet")
        return Verdict(claim, None, details)
    return Verdict(claim, True if wins else None, details)


def longer_t_is_better(p1: dict[int, Stat]) -> Verdict:
    """P1 falls at every step of increasing T."""
    claim = "longer T is better (lower P1)"
    frames = sorted(t for t, s in p1.items() if s.valid)
    wins, details = [], []
    for short, long in zip(frames, frames[1:], strict=False):
        win, text = lower_is_better(p1[long], p1[short])
        wins.append(win)
        details.append(f"T={long} vs T={short}: P1 {text} mm -> {'better' if win else 'not better'}")
    details.insert(0, f"P1 falls with T at {sum(wins)}/{len(wins)} steps")
    return _verdict(claim, wins, details, missing=sum(not s.valid for s in p1.values()))


def stap_beats_off(metric: dict[tuple[str, bool], Stat], name: str, unit: str = "") -> Verdict:
    """For every group (mixer or setting), the STAP-on cell beats the STAP-off cell."""
    claim = f"STAP on beats off ({name}) for every {'mixer' if name == 'P1' else 'setting'}"
    groups = list(dict.fromkeys(g for g, _ in metric))  # first-seen order
    wins, details, missing = [], [], 0
    for g in groups:
        on, off = metric.get((g, True)), metric.get((g, False))
        if on is None or off is None or not (on.valid and off.valid):
            details.append(f"{g}: not measured")
            missing += 1
            continue
        win, text = lower_is_better(on, off)
        wins.append(win)
        details.append(f"{g}: on vs off {text}{unit} -> {'on better' if win else 'off better or equal'}")
    details.insert(0, f"STAP on beats off for {sum(wins)}/{len(wins)}")
    return _verdict(claim, wins, details, missing)


def kernel_and_stride(p1: dict[tuple[int, int], Stat]) -> Verdict:
    """k=5 beats k=3 at every stride, and s=2 beats both s=1 and s=3 at every kernel."""
    claim = "k=5 is better than k=3, and s=2 better than s=1 and s=3 (P1)"
    details: list[str] = []
    strides = sorted({s for _, s in p1})
    kernels = sorted({k for k, _ in p1})
    k_wins = []
    for s in strides:
        a, b = p1.get((5, s)), p1.get((3, s))
        if a and b and a.valid and b.valid:
            win, text = lower_is_better(a, b)
            k_wins.append(win)
            details.append(f"s={s}: k=5 vs k=3 {text} mm")
    s_wins = []
    for k in kernels:
        two, others = p1.get((k, 2)), [p1.get((k, s)) for s in (1, 3)]
        if two and two.valid and all(o and o.valid for o in others):
            results = [lower_is_better(two, o) for o in others]  # type: ignore[arg-type]
            s_wins.append(all(w for w, _ in results))
            details.append(f"k={k}: s=2 vs s=1 {results[0][1]}, s=2 vs s=3 {results[1][1]} mm")
    wins = k_wins + s_wins
    missing = len(strides) - len(k_wins) + len(kernels) - len(s_wins)
    details.insert(
        0,
        f"k=5 beats k=3 for {sum(k_wins)}/{len(k_wins)} strides; "
        f"s=2 beats s=1 and s=3 for {sum(s_wins)}/{len(s_wins)} kernels",
    )
    return _verdict(claim, wins, details, missing)


def unified_closes_gap(mae: dict[tuple[str, str], Stat]) -> Verdict:
    """Unified 2D training moves the 2D MAE towards (or below) the 3D-input MAE, most on unknown.

    With ``gap = MAE(2D setting) - MAE(3D input)``, the claim holds when the unified gap is lower
    than the standard gap on known and on unknown activities, by more on unknown. ``mae`` is keyed
    by ``(setting, split)``: settings ``"2D standard"``, ``"2D unified"``, ``"3D input"``; splits
    ``"known"``, ``"unknown"``.
    """
    claim = (
        "unified training closes the gap between 2D- and 3D-input energy estimation "
        "(MAE(2D) - MAE(3D input) lower with unified than with standard training), most on unknown"
    )
    wins, details, closed = [], [], {}
    for split in ("known", "unknown"):
        cells = [mae.get((s, split)) for s in ("2D standard", "2D unified", "3D input")]
        if not all(c and c.valid for c in cells):
            details.append(f"{split}: not measured")
            continue
        std, uni, three = (c.mean for c in cells)  # type: ignore[union-attr]
        closed[split] = (std - three) - (uni - three)
        wins.append(closed[split] > 0)
        details.append(
            f"{split}: MAE(2D) - MAE(3D input) {std - three:+.1f} (standard) -> {uni - three:+.1f} (unified) "
            f"kcal/h: {'lower' if closed[split] > 0 else 'not lower'}"
        )
    if len(closed) == 2:
        most = closed["unknown"] > closed["known"]
        wins.append(most)
        details.append(
            f"lowered by {closed['known']:.1f} (known) vs {closed['unknown']:.1f} (unknown) kcal/h: "
            f"{'most on unknown' if most else 'not most on unknown'}"
        )
    return _verdict(claim, wins, details, missing=2 - len(closed))
