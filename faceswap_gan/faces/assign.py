"""Which speaker a face belongs to: the main face, a side of a split screen, or a cluster.

- ``SpeakerAssignment.single("A")``: the largest face of each frame is A (others unnamed).
- ``SpeakerAssignment.by_position({"left": "A", "right": "B"})``: by the face centre's side
  of the frame (top/bottom work too, for stacked layouts).
- ``SpeakerAssignment.clusters(["A", "B"])``: tracks are grouped by identity after the whole
  source is seen; the groups on screen longest are the speakers, named in order of first
  appearance, and every other group is ``unknown`` (a moderator, the audience).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces.types import TrackedFace

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
POSITIONS = ("left", "right", "top", "bottom")


UNKNOWN = "unknown"  # the group of faces that are none of the speakers (models/gate.py's too)


def check_speaker_name(name: str) -> str:
    name = name.strip()
    if name == UNKNOWN:
        raise FaceswapError(f"'{UNKNOWN}' cannot be a speaker name: it is the group of faces "
                            "that are none of the speakers")
    if not _NAME.match(name):
        raise FaceswapError(
            f"bad speaker name '{name}': use letters, digits, '_', '-' or '.', starting with a "
            "letter or digit (it becomes a folder name)"
        )
    return name


@dataclass(frozen=True)
class SpeakerAssignment:
    mode: str  # "single", "position" or "cluster"
    names: tuple[str, ...]
    positions: tuple[str, ...] = ()  # for "position": the side each name belongs to

    @classmethod
    def single(cls, name: str) -> SpeakerAssignment:
        return cls("single", (check_speaker_name(name),))

    @classmethod
    def by_position(cls, sides: dict[str, str]) -> SpeakerAssignment:
        if not sides:
            raise FaceswapError("--assign needs at least one side, e.g. left=A,right=B")
        for side in sides:
            if side not in POSITIONS:
                raise FaceswapError(f"unknown side '{side}' in --assign (use {', '.join(POSITIONS)})")
        horizontal = {"left", "right"} & set(sides)
        vertical = {"top", "bottom"} & set(sides)
        if horizontal and vertical:
            raise FaceswapError("--assign mixes left/right with top/bottom; use one pair")
        names = tuple(check_speaker_name(n) for n in sides.values())
        if len(set(names)) != len(names):
            raise FaceswapError("--assign gives one speaker two sides")
        return cls("position", names, tuple(sides))

    @classmethod
    def clusters(cls, names: list[str] | tuple[str, ...]) -> SpeakerAssignment:
        checked = tuple(check_speaker_name(n) for n in names)
        if not checked:
            raise FaceswapError("--speakers needs at least one name")
        if len(set(checked)) != len(checked):
            raise FaceswapError("--speakers lists a name twice")
        return cls("cluster", checked)

    @classmethod
    def parse_positions(cls, text: str) -> SpeakerAssignment:
        """'left=A,right=B' -> by_position."""
        sides: dict[str, str] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise FaceswapError(f"--assign expects side=NAME pairs, e.g. left=A,right=B; got '{part}'")
            side, name = (s.strip() for s in part.split("=", 1))
            if side in sides:
                raise FaceswapError(f"--assign names the side '{side}' twice")
            sides[side.lower()] = name
        return cls.by_position(sides)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "names": list(self.names), "positions": list(self.positions)}

    def speakers_in_frame(
        self, faces: list[TrackedFace], frame_width: int, frame_height: int
    ) -> dict[int, str]:
        """track id -> speaker for the faces of one frame (single and position modes).

        Cluster mode names tracks only at the end (see ``cluster_tracks``): returns {}.
        """
        if not faces or self.mode == "cluster":
            return {}
        if self.mode == "single":
            main = max(faces, key=lambda f: float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])))
            return {main.track_id: self.names[0]}
        out: dict[int, str] = {}
        taken: dict[str, float] = {}
        for face in faces:
            cx = float(face.box[0] + face.box[2]) / 2
            cy = float(face.box[1] + face.box[3]) / 2
            side = _side(cx, cy, frame_width, frame_height, self.positions)
            if side is None:
                continue
            name = self.names[self.positions.index(side)]
            # Two faces on one side: the larger one is the speaker there.
            area = float((face.box[2] - face.box[0]) * (face.box[3] - face.box[1]))
            if name in taken and taken[name] >= area:
                continue
            if name in taken:
                out = {k: v for k, v in out.items() if v != name}
            taken[name] = area
            out[face.track_id] = name
        return out


def _side(cx: float, cy: float, w: int, h: int, positions: tuple[str, ...]) -> str | None:
    if "left" in positions or "right" in positions:
        side = "left" if cx < w / 2 else "right"
    else:
        side = "top" if cy < h / 2 else "bottom"
    return side if side in positions else None


# ---- clustering ------------------------------------------------------------------------

FEATURE_SIZE = 24


def appearance_feature(crop: np.ndarray) -> np.ndarray:
    """A vector describing a face crop's identity cheaply: shape and colour at low resolution.

    The central part of the aligned crop (where the face is) in Lab at 24 px: lightness
    standardised per crop (so lighting matters less), a and b kept as they are (skin and
    hair tone). Aligned crops make pixel positions comparable between faces.
    """
    s = crop.shape[0]
    m = s // 8
    centre = crop[m : s - m, m : s - m]
    small = cv2.resize(centre, (FEATURE_SIZE, FEATURE_SIZE), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    light = lab[..., 0]
    light = (light - light.mean()) / (light.std() + 1e-6)
    ab = (lab[..., 1:] - 128.0) / 16.0
    return np.concatenate([light.ravel(), ab.ravel()]).astype(np.float32)


def kmeans(x: np.ndarray, k: int, seed: int = 0, restarts: int = 8, iters: int = 50) -> np.ndarray:
    """Labels (N,) of k-means with k-means++ starts; the best of ``restarts`` runs."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    best_labels, best_cost = np.zeros(n, dtype=int), np.inf
    for _ in range(restarts):
        centres = [x[rng.integers(n)]]
        for _ in range(1, k):
            d2 = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
            centres.append(x[rng.choice(n, p=p)])
        c = np.stack(centres)
        labels = np.zeros(n, dtype=int)
        for _ in range(iters):
            d = ((x[:, None, :] - c[None]) ** 2).sum(axis=2)
            new = d.argmin(axis=1)
            if np.array_equal(new, labels) and _ > 0:
                break
            labels = new
            for j in range(k):
                if np.any(labels == j):
                    c[j] = x[labels == j].mean(axis=0)
        cost = float(((x - c[labels]) ** 2).sum())
        if cost < best_cost:
            best_cost, best_labels = cost, labels.copy()
    return best_labels


def cluster_tracks(
    features: dict[int, np.ndarray],
    first_frame: dict[int, int],
    names: tuple[str, ...] | list[str],
    seed: int = 0,
) -> dict[int, str]:
    """track id -> name: k-means over per-track mean features, groups named by first appearance.

    Each track weighs the same whatever its length. With fewer tracks than names, the
    later names stay unused.
    """
    ids = sorted(features)
    if not ids:
        return {}
    x = np.stack([features[i] for i in ids])
    labels = kmeans(x, len(names), seed=seed)
    order = sorted(set(labels.tolist()), key=lambda g: min(first_frame[i] for i, lab in zip(ids, labels) if lab == g))
    name_of = {g: names[n] for n, g in enumerate(order)}
    return {i: name_of[int(lab)] for i, lab in zip(ids, labels)}


def average_linkage(x: np.ndarray, threshold: float) -> np.ndarray:
    """Group labels (N,) of agglomerative clustering with average linkage: the two groups whose
    mean pairwise distance is smallest merge, until it exceeds ``threshold``."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int)
    d = np.sqrt(((x[:, None, :] - x[None]) ** 2).sum(axis=2))
    groups = [[i] for i in range(n)]
    link = d.copy()
    np.fill_diagonal(link, np.inf)
    sizes = np.ones(n)
    alive = np.ones(n, bool)
    while alive.sum() > 1:
        masked = np.where(alive[:, None] & alive[None], link, np.inf)
        i, j = np.unravel_index(np.argmin(masked), masked.shape)
        if masked[i, j] > threshold:
            break
        # Average linkage (Lance-Williams): the merged group's distance to every other.
        link[i] = link[:, i] = (sizes[i] * link[i] + sizes[j] * link[j]) / (sizes[i] + sizes[j])
        link[i, i] = np.inf
        sizes[i] += sizes[j]
        alive[j] = False
        groups[i] += groups[j]
        groups[j] = []
    labels = np.zeros(n, dtype=int)
    for g, members in enumerate(m for m in groups if m):
        labels[members] = g
    return labels


def group_tracks(
    features: dict[int, np.ndarray],
    frames: dict[int, set[int]],
    first_frame: dict[int, int],
    names: tuple[str, ...] | list[str],
    same_person: float,
    seed: int = 0,
) -> dict[int, str]:
    """track id -> a name or ``UNKNOWN``, by identity.

    Track features (each track's mean embedding) are grouped by average linkage up to the
    distance ``same_person`` (the embedding's scale of "one person"); the ``len(names)``
    groups on screen in the most frames (``frames``: each track's frames with a crop; two
    faces of one group in a frame count once) are the speakers, named in order of first
    appearance, and every other group is ``UNKNOWN``. When fewer groups than names come out
    (the speakers look alike to the embedding), k-means splits the tracks into that many, as
    before."""
    ids = sorted(features)
    if not ids:
        return {}
    x = np.stack([features[i] for i in ids])
    labels = average_linkage(x, same_person)
    if len(set(labels.tolist())) < min(len(names), len(ids)):
        return cluster_tracks(features, first_frame, names, seed=seed)
    members = {g: [i for i, lab in zip(ids, labels) if lab == g] for g in set(labels.tolist())}
    seen = {g: len(set().union(*(frames.get(i, set()) for i in m))) for g, m in members.items()}
    start = {g: min(first_frame[i] for i in m) for g, m in members.items()}
    chosen = sorted(members, key=lambda g: (-seen[g], start[g]))[: len(names)]
    name_of = {g: names[n] for n, g in enumerate(sorted(chosen, key=lambda g: start[g]))}
    return {i: name_of.get(int(lab), UNKNOWN) for i, lab in zip(ids, labels)}


def contact_sheet(crops: list[np.ndarray], columns: int = 8, tile: int = 64) -> np.ndarray:
    """A grid of crops (RGB), for a person to check a cluster at a glance."""
    if not crops:
        return np.zeros((tile, tile, 3), dtype=np.uint8)
    rows = (len(crops) + columns - 1) // columns
    cols = min(columns, len(crops))
    sheet = np.full((rows * tile, cols * tile, 3), 32, dtype=np.uint8)
    for n, crop in enumerate(crops):
        r, c = divmod(n, columns)
        img = crop if crop.shape[0] == tile else cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA)
        sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = img
    return sheet
