"""Whom each face becomes: the user's request (``SwapTarget``), checked and turned into the
model's labels once (``resolve``), and the per-face decision (``ResolvedTarget.label_for``).

Everything downstream (render, translate) works with labels; speaker names are looked up
here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from faceswap_gan.errors import FaceswapError

if TYPE_CHECKING:  # torch-heavy; only the type is needed here
    from faceswap_gan.models.checkpoint import FaceModel

SIDES = ("left", "right")  # --assign's halves of the frame

# Why a face was left as it was (RenderSummary.faces_left keys).
LEFT_UNKNOWN = "not a trained speaker"
LEFT_TARGET = "already the target speaker"
LEFT_NOT_CHOSEN = "not the --only speaker"
LEFT_NO_SIDE = "no speaker on its side"


@dataclass(frozen=True)
class SwapTarget:
    """Which faces become whom, as the user names them.

    - ``to`` alone: every face of a trained speaker other than ``to`` becomes ``to``;
    - ``swap``: each speaker's face becomes the other speaker of a two-speaker model;
    - ``only``: only faces of that speaker are swapped (to ``to``, else to the other speaker).

    With the model's speaker gate (``models/gate.py``), a track that is none of the trained
    speakers (a moderator, the audience) is left alone, and the speaker of a track is the
    gate's nearest; ``assign`` (``{"left": A, "right": B}``) names speakers by which half of
    the frame a face is in instead. ``all_faces`` (or a model without a gate) takes every face
    for a speaker, as before the gate: the speaker then comes from D's class head.
    """

    to: str | None = None
    swap: bool = False
    only: str | None = None
    assign: dict[str, str] | None = None
    all_faces: bool = False

    def describe(self) -> str:
        """The output's name part: ``clip.<this>.mp4``."""
        if self.swap:
            return "swapped"
        return self.to or f"not_{self.only}"


@dataclass(frozen=True)
class ResolvedTarget:
    """A ``SwapTarget`` in the model's labels; made only by ``resolve``."""

    request: SwapTarget
    speakers: tuple[str, ...]
    to: int | None
    only: int | None
    sides: dict[str, int]  # --assign: "left"/"right" -> label

    @property
    def swap(self) -> bool:
        return self.request.swap

    @property
    def all_faces(self) -> bool:
        return self.request.all_faces

    @property
    def assigned(self) -> bool:
        return bool(self.sides)

    @property
    def needs_speakers(self) -> bool:
        """Whether each face's speaker must be known even without a gate (not for plain --to)."""
        return self.swap or self.only is not None

    def describe(self) -> str:
        return self.request.describe()

    def side_speaker(self, face_center_x: float, frame_width: int) -> int | None:
        """--assign: the speaker of the half of the frame the face is in (None: nobody's)."""
        return self.sides.get(SIDES[0] if face_center_x < frame_width / 2 else SIDES[1])

    def label_for(self, speaker: int | None, known: bool = True) -> tuple[int | None, str | None]:
        """(the label a face becomes, None), or (None, why it is left as it was).

        ``speaker``: who the face is now (None: not known); ``known``: the gate took it for
        one of the trained speakers."""
        if not known:
            return None, LEFT_UNKNOWN
        if speaker is None:
            return None, LEFT_NO_SIDE if self.assigned else LEFT_UNKNOWN
        other = 1 - speaker if len(self.speakers) == 2 else None
        if self.swap:
            return other, None
        if self.only is not None:
            if speaker != self.only:
                return None, LEFT_NOT_CHOSEN
            return (self.to if self.to is not None else other), None
        if speaker == self.to:
            return None, LEFT_TARGET
        return self.to, None


def resolve(target: SwapTarget, model: FaceModel) -> ResolvedTarget:
    """Check ``target`` against the model's speakers and look every name up, once.

    FaceswapError (one line, listing the speakers) for anything impossible, before any
    decoding starts."""
    speakers = tuple(model.speakers)
    chosen = [bool(target.to), target.swap, bool(target.only)]
    if not any(chosen):
        raise FaceswapError(f"say whom to swap to: --to SPEAKER, --swap or --only SPEAKER "
                            f"(speakers: {', '.join(speakers)})")
    if target.swap and (target.to or target.only):
        raise FaceswapError("--swap cannot be combined with --to or --only")
    to = model.label_of(target.to) if target.to else None
    only = model.label_of(target.only) if target.only else None
    named = {side: model.label_of(name) for side, name in (target.assign or {}).items()}
    if (target.swap or (target.only and not target.to)) and len(speakers) != 2:
        raise FaceswapError(
            f"--swap/--only without --to needs a two-speaker model; this one has "
            f"{len(speakers)} ({', '.join(speakers)}): use --to SPEAKER"
        )
    if target.only and target.to == target.only:
        raise FaceswapError(f"--only {target.only} --to {target.to} would change nothing")
    for side in named:
        if side not in SIDES:
            raise FaceswapError(f"--assign takes left=SPEAKER,right=SPEAKER, got '{side}'")
    return ResolvedTarget(request=target, speakers=speakers, to=to, only=only, sides=named)
