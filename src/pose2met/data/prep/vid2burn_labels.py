"""Vid2Burn-ADL labels, activity sets and splits.

Label files (values in kcal/h), as Vid2Burn ships them:

* CSV with two columns ``File_name,Calorie_label`` (a header row is optional), e.g.
  ``S003007R002A006,395.0``;
* a pickle of a dict ``{key: kcal}``.

A key is either camera-free (``S003007R002A006``: setup, performer, replication, action; one
label for all cameras of a performance, as in ``ntu_labels_cam_unified_*.csv``) or a per-camera
clip name (``S003C001P007R002A006``, possibly inside a path such as ``.../S003C001P007R002A006.skeleton``).
A per-camera label wins over a camera-free one.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pose2met.data.prep.common import PrepError, load_pickle
from pose2met.data.prep.ntu_skeleton import ClipId

KNOWN_ACTIONS = range(1, 34)  # A001-A033: train and test
UNKNOWN_ACTIONS = range(34, 40)  # A034-A039: test only
#: NTU RGB+D cross-subject protocol: training performers (the other performers are test).
NTU_XSUB_TRAIN: frozenset[int] = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
)
#: Training performers held out for validation.
VAL_PERFORMERS: frozenset[int] = frozenset((18, 28))
SPLITS = ("train", "val", "test")
_UNIFIED = re.compile(r"S(\d{3})(\d{3})R(\d{3})A(\d{3})")
_PERFORMER = re.compile(r"^P(\d{3})$")


def activity_set(action: int) -> str | None:
    """``known`` (A001-A033), ``unknown`` (A034-A039) or None (not a Vid2Burn-ADL activity)."""
    if action in KNOWN_ACTIONS:
        return "known"
    if action in UNKNOWN_ACTIONS:
        return "unknown"
    return None


def normalize_label_key(raw: str) -> str | None:
    """Per-camera clip name or camera-free key found in ``raw`` (a name or a path); None if neither."""
    base = re.split(r"[\\/]", str(raw).strip())[-1]
    clip = ClipId.parse(base)
    if clip is not None:
        return clip.name
    m = _UNIFIED.match(base)
    return m.group(0) if m else None


@dataclass
class Labels:
    """kcal/h labels by per-camera clip name and by camera-free key."""

    per_clip: dict[str, float] = field(default_factory=dict)
    unified: dict[str, float] = field(default_factory=dict)

    def lookup(self, clip: ClipId) -> float | None:
        """Label of a clip: its own, else its performance's camera-free one, else None."""
        value = self.per_clip.get(clip.name)
        return value if value is not None else self.unified.get(clip.unified_name)

    def __len__(self) -> int:
        return len(self.per_clip) + len(self.unified)


def _add(labels: Labels, raw_key: object, raw_value: object, where: str) -> None:
    key = normalize_label_key(str(raw_key))
    if key is None:
        raise PrepError(
            f"{where}: key '{raw_key}' is neither an NTU clip name (S001C001P001R001A001) "
            "nor a camera-free key (S001001R001A001)"
        )
    try:
        value = float(np.asarray(raw_value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise PrepError(
            f"{where}: label of '{raw_key}' is {raw_value!r}, expected a number (kcal/h)"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise PrepError(f"{where}: label of '{raw_key}' is {value}, expected a positive kcal/h rate")
    table = labels.per_clip if ClipId.parse(key) else labels.unified
    if key in table and table[key] != value:
        raise PrepError(f"{where}: '{key}' has two different labels ({table[key]} and {value})")
    table[key] = value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_labels(path: str | Path) -> Labels:
    """Read a Vid2Burn label file: ``.csv`` (or ``.txt``) as CSV, anything else as a pickled dict."""
    path = Path(path)
    labels = Labels()
    if path.suffix.lower() in (".csv", ".txt"):
        try:
            rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
        except FileNotFoundError:
            raise PrepError(f"{path}: file not found (expected the Vid2Burn label CSV)") from None
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise PrepError(f"{path}: cannot read as CSV ({e})") from None
        for i, row in enumerate(rows, start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise PrepError(f"{path}: line {i}: expected 2 columns (name, kcal/h), got {len(row)}")
            if i == 1 and not _is_number(row[1]) and normalize_label_key(row[0].strip()) is None:
                continue  # header row such as "File_name,Calorie_label" (its first column is no clip key)
            _add(labels, row[0], row[1].strip(), f"{path}: line {i}")
    else:
        data = load_pickle(path, "the Vid2Burn label pickle, a dict {clip name: kcal/h}")
        if not isinstance(data, Mapping):
            raise PrepError(
                f"{path}: expected a pickled dict {{clip name: kcal/h}}, got {type(data).__name__}"
            )
        for key, value in data.items():
            _add(labels, key, value, str(path))
    if not len(labels):
        raise PrepError(f"{path}: no labels found")
    return labels


def default_split(clip: ClipId) -> str:
    """Cross-subject split: unknown activities -> test; NTU x-sub training performers -> train
    (P018 and P028 -> val); the other performers -> test."""
    if clip.action in UNKNOWN_ACTIONS or clip.performer not in NTU_XSUB_TRAIN:
        return "test"
    return "val" if clip.performer in VAL_PERFORMERS else "train"


@dataclass
class SplitFile:
    """Explicit split: per performer and per clip (a clip line overrides its performer's line)."""

    performers: dict[int, str]
    clips: dict[str, str]

    def split(self, clip: ClipId) -> str | None:
        """Split of a clip, or None if the file does not mention it."""
        return self.clips.get(clip.name, self.performers.get(clip.performer))


def load_split_file(path: str | Path) -> SplitFile:
    """Read a split file: lines ``<P### | clip name> <train|val|test>``; ``#`` comments, blank lines ok."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PrepError(f"{path}: file not found (expected the split file)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PrepError(f"{path}: cannot read ({e})") from None
    out = SplitFile({}, {})
    for i, line in enumerate(text.splitlines(), start=1):
        tokens = line.split("#", 1)[0].replace(",", " ").split()
        if not tokens:
            continue
        if len(tokens) != 2 or tokens[1] not in SPLITS:
            raise PrepError(
                f"{path}: line {i}: expected '<P### or clip name> <train|val|test>', got '{line.strip()}'"
            )
        name, split = tokens
        m = _PERFORMER.match(name)
        clip = ClipId.parse(name)
        if m:
            table, key = out.performers, int(m.group(1))
        elif clip is not None and clip.name == name:
            table, key = out.clips, clip.name
        else:
            raise PrepError(
                f"{path}: line {i}: '{name}' is neither a performer (P008) nor a clip name "
                "(S008C001P008R002A047)"
            )
        if table.get(key, split) != split:
            raise PrepError(f"{path}: line {i}: '{name}' was already assigned to '{table[key]}'")
        table[key] = split
    return out
