"""Only the speakers: how render and extract treat faces that are none of the speakers.

    .venv/bin/python benchmarks/others.py --workspace WS [--part samples|real|all]

samples: a sample set with a third person (`faceswap samples --moderator`: moderator
reaction shots and audience cutaways in the debate), the speakers' crops extracted from their
own clips, the speaker gate fitted on them, and the shipped sample model:
- render --swap with the gate (dlib's embedding where installed, and the identity fallback
  alone) and with --all-faces, each scored against a plain re-encode of the debate
  (evaluation/others.py): speakers' faces swapped, other faces untouched;
- extract --speakers speaker_a,speaker_b on the debate: where each person's crops went
  (with dlib's embedding, and the appearance fallback regrouping the same tracks).

real (../shared/real, never copied into the project): Obama and Lieu are the speakers, with
the training crops of benchmarks/real_pair.py (each clip but its last seconds); Reagan is
nobody's. A cut of held-out Obama and Lieu footage with Reagan cutaways, a throwaway model
trained a few steps (what is measured is which faces change, not how well), the gate fitted
on the training crops only (no Reagan), then the same measurements.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faceswap_gan.config import ExtractConfig, load_pipeline  # noqa: E402
from faceswap_gan.evaluation.others import crop_groups, measure_others, plain_reencode  # noqa: E402
from faceswap_gan.extract.pipeline import extract_source  # noqa: E402
from faceswap_gan.faces.assign import SpeakerAssignment, group_tracks  # noqa: E402
from faceswap_gan.models.checkpoint import load_face_model  # noqa: E402
from faceswap_gan.models.gate import (  # noqa: E402
    SAME_PERSON,
    AppearanceEmbedder,
    SpeakerGate,
    build_gate,
)
from faceswap_gan.render.pipeline import RenderOptions, render_video  # noqa: E402
from faceswap_gan.render.target import SwapTarget  # noqa: E402
from faceswap_gan.workspace import Workspace  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def identity_only(gate: SpeakerGate) -> SpeakerGate:
    """The gate as a machine without dlib uses it."""
    return dataclasses.replace(gate, models={"identity": gate.models["identity"]})


def renders(clip: Path, record: dict, model, pipe, gate: SpeakerGate, out: Path) -> None:  # type: ignore[no-untyped-def]
    plain = plain_reencode(clip, out / f"{clip.stem}.plain.mp4", pipe.render.crf,
                           pipe.render.x264_preset)
    cases = [("gate " + gate.usable().kind, gate, False, gate.usable().kind)]
    if "dlib" in gate.models:
        cases.append(("gate identity (no dlib)", identity_only(gate), False, "identity"))
    cases.append(("--all-faces", gate, True, "all_faces"))
    for name, g, all_faces, tag in cases:
        model.gate = g
        target = SwapTarget(swap=True, all_faces=all_faces)
        path = out / f"{clip.stem}.{tag}.mp4"
        t0 = time.perf_counter()
        summary = render_video(clip, path, model, pipe, target, CPU, RenderOptions(overwrite=True))
        seconds = time.perf_counter() - t0
        result = measure_others(path, plain, record)
        print(f"render --swap, {name}: speakers' faces swapped {result.swapped_rate:.1%} "
              f"({result.speakers_swapped}/{result.speakers}), other faces untouched "
              f"{result.untouched_rate:.1%} ({result.others_untouched}/{result.others}); "
              f"left alone {summary.faces_left}; {summary.frames / seconds:.1f} frames/s",
              flush=True)


def extraction(clip: Path, record: dict, names: list[str], ws: Workspace, padding: float) -> None:
    summary = extract_source(clip, ws, load_pipeline("debate"), SpeakerAssignment.clusters(names))
    groups = crop_groups(summary.alignments, record)
    print(f"extract --speakers {','.join(names)}: {groups}", flush=True)
    # The appearance fallback on the same tracks.
    from faceswap_gan.faces.alignments import read_alignments

    _, faces = read_alignments(summary.alignments)
    by_track: dict[int, list[str]] = {}
    first: dict[int, int] = {}
    for f in faces:
        if f.crop:
            by_track.setdefault(f.track, []).append(f.crop)
            first.setdefault(f.track, f.frame)
    embed = AppearanceEmbedder()
    feats = {}
    for t, paths in by_track.items():
        pick = paths[:: max(1, len(paths) // 12)][:12]
        crops = np.stack([cv2.cvtColor(cv2.imread(str(ws.root / p)), cv2.COLOR_BGR2RGB) for p in pick])
        feats[t] = embed(crops).mean(axis=0)
    seen = {t: {f.frame for f in faces if f.track == t and f.crop} for t in by_track}
    names_of = group_tracks(feats, seen, first, names, SAME_PERSON["appearance"])
    moved: dict[str, dict[str, int]] = {}
    frames = {fr["index"]: fr["faces"] for fr in record["frames"]}
    for f in faces:
        if not f.crop:
            continue
        cx, cy = f.landmarks[:, :2].mean(axis=0)
        who = next((x["speaker"] for x in frames.get(f.frame, [])
                    if x["box"][0] <= cx <= x["box"][2] and x["box"][1] <= cy <= x["box"][3]), "?")
        group = names_of[f.track]
        moved.setdefault(who, {})
        moved[who][group] = moved[who].get(group, 0) + 1
    print(f"  the same tracks grouped by the appearance fallback: {moved}", flush=True)


def part_samples(root: Path) -> None:
    from faceswap_gan.synthetic.footage import generate_sample_set
    from faceswap_gan.synthetic.portraits import default_third_portrait

    t0 = time.perf_counter()
    sample = generate_sample_set(root / "samples", seconds=8, debate_seconds=20, size=(480, 270),
                                 fps=25, layout="cuts", seed=0,
                                 others={"moderator": default_third_portrait()})
    record = json.loads(Path(sample.record).read_text())
    print(f"samples: {time.perf_counter() - t0:.0f} s; shots "
          f"{[(s['start'], s['end'], s.get('role') or s['speaker']) for s in record['shots']]}")
    ws = Workspace(root / "ws")
    for name in sample.speakers:
        extract_source(sample.speaker_clips[name], ws, load_pipeline("debate"),
                       SpeakerAssignment.single(name))
    model = load_face_model(REPO / "samples" / "sample_model.safetensors", CPU)
    t0 = time.perf_counter()
    gate = build_gate(ws, model, root / "gate")
    print(f"gate fitted in {time.perf_counter() - t0:.0f} s:",
          {k: (round(m.threshold, 2), m.calibration) for k, m in gate.models.items()})
    renders(sample.debate, record, model, load_pipeline("debate"), gate, root)
    extraction(sample.debate, record, sample.speakers, Workspace(root / "ws_extract"), ExtractConfig.padding)


# The real cut: (clip, speaker, role, first frame, frames); Obama and Lieu from their held-out
# tails (benchmarks/real_pair.py), Reagan anywhere (he is nobody's).
REAL_CUT = (
    ("obama_weekly_256.mp4", "obama", "speaker", 0, 90),
    ("lieu_256.mp4", "lieu", "speaker", 0, 90),
    ("reagan_256.mp4", "reagan", "other", 100, 40),
    ("obama_address_450.mp4", "obama", "speaker", 40, 75),
    ("reagan_256.mp4", "reagan", "other", 500, 35),
    ("lieu_256.mp4", "lieu", "speaker", 90, 35),
)


def make_real_cut(out: Path) -> tuple[Path, dict]:
    """The cut and a record in the sample footage's format (faces' boxes from the mesh)."""
    import real_pair

    from faceswap_gan.evaluation.landmarks import FaceMeshes
    from faceswap_gan.video.reader import VideoReader
    from faceswap_gan.video.writer import VideoWriter

    frames_out, faces_out = [], []
    with FaceMeshes() as meshes:
        for clip, speaker, role, start, count in REAL_CUT:
            path = real_pair.REAL / clip
            if role == "speaker":
                images = real_pair._tail(path)[0][start:start + count]
            else:
                images = []
                with VideoReader(path) as reader:
                    for frame in reader:
                        if start <= frame.index < start + count:
                            images.append(cv2.resize(frame.image, (real_pair.CUT_SIZE,) * 2,
                                                     interpolation=cv2.INTER_AREA))
            for image in images:
                found = meshes(image)
                boxes = [[*m[:, :2].min(axis=0).tolist(), *m[:, :2].max(axis=0).tolist()] for m in found]
                faces_out.append([{"role": role, "speaker": speaker, "box": b} for b in boxes])
                frames_out.append(image)
    with VideoWriter(out, real_pair.CUT_SIZE, real_pair.CUT_SIZE, real_pair.CUT_FPS) as writer:
        for image in frames_out:
            writer.write(image)
    record = {"frames": [{"index": i, "faces": f} for i, f in enumerate(faces_out)]}
    return out, record


def part_real(root: Path, steps: int, faces_from: Path | None, model_from: Path | None) -> None:
    import shutil

    import real_pair

    if not real_pair.REAL.is_dir():
        print(f"no real footage at {real_pair.REAL}; skipped")
        return
    ws = Workspace(root / "ws")
    if faces_from is not None:  # crops real_pair.py already extracted (the same settings)
        for speaker in ("obama", "lieu"):
            if not ws.speaker_faces_dir(speaker).is_dir():
                shutil.copytree(faces_from / "faces" / speaker, ws.speaker_faces_dir(speaker))
    else:
        for speaker in ("obama", "lieu"):
            for clip in real_pair.PEOPLE[speaker]:
                path = real_pair.REAL / clip
                frames, _ = real_pair.clip_info(path)
                extract_source(path, ws, load_pipeline("debate"), SpeakerAssignment.single(speaker),
                               max_frames=frames - real_pair.held_out_frames(path))
    if model_from is not None:  # a model real_pair.py trained (copied: its gate is refitted here)
        model_dir = ws.model_dir("given")
        if not model_dir.is_dir():
            shutil.copytree(model_from, model_dir)
    else:
        from faceswap_gan.training.loop import TrainRequest, train

        model_dir = ws.model_dir("throwaway")
        for stage in (1, 2):
            train(TrainRequest(workspace=ws, stage=stage, model_dir=model_dir,
                               pipeline=load_pipeline("debate") if stage == 1 else None,
                               steps=steps, device=CPU, seed=0, speakers=None))
    model = load_face_model(model_dir, CPU)
    t0 = time.perf_counter()
    gate = build_gate(ws, model, model_dir)
    print(f"gate fitted in {time.perf_counter() - t0:.0f} s:",
          {k: (round(m.threshold, 2), m.calibration) for k, m in gate.models.items()})
    cut, record = make_real_cut(root / "real_cut.mp4")
    renders(cut, record, model, load_pipeline("debate"), gate, root)
    extraction(cut, record, ["obama", "lieu"], Workspace(root / "ws_extract"), ExtractConfig.padding)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--part", default="all", choices=["samples", "real", "all"])
    ap.add_argument("--steps", type=int, default=20, help="training steps of the real throwaway model")
    ap.add_argument("--model-from", type=Path, default=None,
                    help="a model folder trained on those crops (instead of a throwaway one)")
    ap.add_argument("--faces-from", type=Path, default=None,
                    help="a workspace whose faces/obama and faces/lieu real_pair.py extracted")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.workspace)
    root.mkdir(parents=True, exist_ok=True)
    if args.part in ("samples", "all"):
        part_samples(root / "samples_part")
    if args.part in ("real", "all"):
        part_real(root / "real_part", args.steps, args.faces_from, args.model_from)


if __name__ == "__main__":
    main()
