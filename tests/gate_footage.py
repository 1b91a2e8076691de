"""Shared by the speaker-gate tests: sample footage with a third person (the moderator, in
reaction shots and audience cutaways), the speakers' crops extracted from their own clips,
and a gate fitted on them."""

from __future__ import annotations

from pathlib import Path

from faceswap_gan.config import load_pipeline
from faceswap_gan.extract.pipeline import extract_source
from faceswap_gan.faces.assign import SpeakerAssignment
from faceswap_gan.models.gate import fit_gate, read_crops
from faceswap_gan.synthetic.footage import SampleSet, generate_sample_set
from faceswap_gan.synthetic.portraits import default_third_portrait
from faceswap_gan.workspace import Workspace

SIZE = (320, 180)
CROP = 64  # the sample model's crop size (debate preset)


def third_person_set(root: Path) -> SampleSet:
    """3 s speaker clips and a 14 s cuts debate with a moderator and an audience cutaway
    (seed 2: speaker_b on screen 92 frames, speaker_a 78, the moderator 40)."""
    return generate_sample_set(root, seconds=3, debate_seconds=14, size=SIZE, fps=15,
                               layout="cuts", seed=2, workers=1,
                               others={"moderator": default_third_portrait()})


def speaker_workspace(sample: SampleSet, root: Path) -> Workspace:
    """workspace/faces/<speaker>/ from each speaker's own clip, as `faceswap extract` makes it."""
    ws = Workspace(root)
    for name in sample.speakers:
        extract_source(sample.speaker_clips[name], ws, load_pipeline("debate"),
                       SpeakerAssignment.single(name))
    return ws


def fitted_gate(ws: Workspace, speakers: list[str], kinds: list[str] | None = None):  # type: ignore[no-untyped-def]
    crops = {s: read_crops(ws.speaker_faces_dir(s), CROP, 300) for s in speakers}
    return fit_gate(crops, CROP, 0.25, kinds=kinds)
