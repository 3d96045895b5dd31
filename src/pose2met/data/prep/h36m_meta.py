"""Human3.6M facts shared by its two converters: actions, cameras, subjects, joint subset."""

from __future__ import annotations

import re

from pose2met.data.prep.common import camera_entry

FPS = 50.0
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")

#: Human3.6M action ids (``act_02`` ... ``act_16``) -> canonical names (VideoPose3D spelling:
#: "Photo" for TakingPhoto, "WalkDog" for WalkingDog). Id 1 ("_ALL") is not an action.
ACTIONS_BY_ID: dict[int, str] = {
    2: "Directions", 3: "Discussion", 4: "Eating", 5: "Greeting", 6: "Phoning", 7: "Posing",
    8: "Purchases", 9: "Sitting", 10: "SittingDown", 11: "Smoking", 12: "Photo", 13: "Waiting",
    14: "Walking", 15: "WalkDog", 16: "WalkTogether",
}  # fmt: skip
ACTIONS: tuple[str, ...] = tuple(ACTIONS_BY_ID.values())
_ALIASES = {"takingphoto": "Photo", "walkingdog": "WalkDog", "walkingtogether": "WalkTogether"}
_CANONICAL = {a.lower(): a for a in ACTIONS} | _ALIASES
_TRAILING_NUMBER = re.compile(r"[\s_]*\d+$")

#: Camera ids in Human3.6M order: ``ca_01`` ... ``ca_04`` and the 4 views of VideoPose3D's lists.
CAMERA_IDS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")
#: Pinhole intrinsics (pixels) and image sizes of the four cameras, as published with the dataset
#: (VideoPose3D ``h36m_dataset.py``); lens distortion is not stored.
CAMERAS: dict[str, dict[str, float]] = {
    "54138969": camera_entry(
        1000, 1002, fx=1145.0494384765625, fy=1143.7811279296875, cx=512.54150390625, cy=515.4514770507812
    ),
    "55011271": camera_entry(
        1000, 1000, fx=1149.6756591796875, fy=1147.5916748046875, cx=508.8486328125, cy=508.0649108886719
    ),
    "58860488": camera_entry(
        1000, 1000, fx=1149.1407470703125, fy=1148.7989501953125, cx=519.8158569335938, cy=501.40264892578125
    ),
    "60457274": camera_entry(
        1000, 1002, fx=1145.5113525390625, fy=1144.77392578125, cx=514.9682006835938, cy=501.88201904296875
    ),
}

#: The 17 moving joints of the 32-joint Human3.6M skeleton, in h36m17 order.
JOINTS_32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)


def subject_split(subject: str) -> str | None:
    """``train`` for S1, S5-S8, ``test`` for S9, S11, None for others (S2-S4 have no 3D)."""
    if subject in TRAIN_SUBJECTS:
        return "train"
    if subject in TEST_SUBJECTS:
        return "test"
    return None


def normalize_action(raw: str) -> str | None:
    """Canonical action name: drop the take number and map aliases (``'WalkingDog 1'`` -> ``'WalkDog'``)."""
    base = _TRAILING_NUMBER.sub("", str(raw).strip())
    return _CANONICAL.get(base.lower())
