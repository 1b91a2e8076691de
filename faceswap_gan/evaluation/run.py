"""What ``faceswap eval`` does, step by step: find the inputs (a truth, or none for real
footage), get the classifier and the optional pretrained embedding, render what needs
rendering, score every candidate, and write the strip and JSON.

It draws nothing: notices (str) and progress (EvalProgress) go to ``EvalRequest.report``, and
the reports come back (and go out) as an EvalSummary; ``commands/eval.py`` shows them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from faceswap_gan.config import Pipeline, load_pipeline
from faceswap_gan.device import resolve_device
from faceswap_gan.errors import FaceswapError
from faceswap_gan.evaluation.crops import OnFace, folder_crops, speaker_crops
from faceswap_gan.evaluation.evaluate import EvalResult, evaluate_videos
from faceswap_gan.evaluation.identity import IdentityClassifier, cached_identity_classifier
from faceswap_gan.evaluation.judge import EmbeddingJudge, SpeakerMeans, load_embedder
from faceswap_gan.evaluation.report import build_report, write_report_json, write_strip
from faceswap_gan.evaluation.truth import load_truth_record
from faceswap_gan.workspace import Workspace


@dataclass
class EvalProgress:
    """Sent while a candidate is rendered or scored: which step, whose, and how far (frames).
    Each step starts with done=0, total=None (the frame count is not known yet)."""

    stage: Literal["render", "score"]
    name: str  # render: the clip's file name; score: the candidate's name
    done: int
    total: int | None


@dataclass
class EvalSummary:
    """Every candidate's report, in order. Sent once all are scored, before the strip and the
    JSON are written (a notice follows each file); also what ``run_eval`` returns."""

    names: list[str]  # the candidates' names (the table's columns when there are several)
    reports: list[dict[str, Any]]  # report.build_report's, one per candidate
    strip: Path
    json_path: Path | None


Report = Callable[[Union[str, EvalProgress, EvalSummary]], None]


@dataclass
class EvalRequest:
    clip: Path
    truth: Path | None = None
    rendered: list[Path] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)
    speaker_clips: dict[str, Path] = field(default_factory=dict)
    no_truth: bool = False  # score against the source even where a truth clip exists
    target: str | None = None  # without a truth: the speaker every face should become
    judge_every: int = 3  # pretrained embedding on every n-th frame; 0: off
    json_path: Path | None = None
    strip_path: Path | None = None
    device: str = "auto"
    seed: int = 0
    # What the run reports, for the caller to show: notices (str; a warning starts with
    # "warning:"), EvalProgress while rendering and scoring, and the EvalSummary.
    report: Report | None = None


@dataclass
class Candidate:
    """One swapped video to score, and what made it."""

    name: str
    rendered: Path | None  # None: still to render
    model: str | None = None
    recipe: Pipeline | None = None


def run_eval(request: EvalRequest, workspace: Workspace, pipeline: Pipeline) -> EvalSummary:
    """Run a whole eval; returns (and reports) the candidates' reports, one each."""

    def report(event: str | EvalProgress | EvalSummary) -> None:
        if request.report is not None:
            request.report(event)

    clip = _existing(request.clip, "clip")
    truth = _truth(request, clip, report)
    for path in request.rendered:
        _existing(path, "rendered video")
    device = resolve_device(request.device)
    candidates = _candidates(request, pipeline)

    record = load_truth_record(clip, truth) if truth is not None else None
    if truth is not None:
        needed, named_by = (record.speakers() if record else set()), "the truth shows"
    else:
        needed, named_by = ({request.target} if request.target else set()), "--target"
    means, judge_note = _speaker_means(request, report)
    classifier = _classifier(request, clip, workspace, device, report, needed=needed,
                             on_face=means.add if means is not None else None,
                             pairwise=truth is None and request.target is None,
                             named_by=named_by)
    judge = _judge(means, report)

    results: list[EvalResult] = []
    reports = []
    for cand in candidates:
        rendered = cand.rendered or _render(cand, clip, workspace, pipeline, request, report)
        result = _score(clip, truth, rendered, classifier, record, report, cand.name,
                        pipeline.extract.cut_threshold, request, judge)
        results.append(result)
        scores = build_report(result, model=cand.model, judge_note=judge_note)
        scores["recipe"] = cand.recipe.name if cand.recipe else None
        scores["code"] = _code_health(cand.model, workspace, device)
        reports.append(scores)

    names = [c.name for c in candidates]
    strip = request.strip_path or workspace.eval_dir / f"{clip.stem}_strip.png"
    summary = EvalSummary(names, reports, strip, request.json_path)
    report(summary)  # the scores are shown before the files are written
    write_strip(strip, results, names)
    report(f"strip: {strip}")
    if request.json_path is not None:
        write_report_json(request.json_path, reports)
        report(f"report: {request.json_path}")
    return summary


def _truth(request: EvalRequest, clip: Path, report: Report) -> Path | None:
    """--truth, else the sample set's truth beside the clip, else None (score vs the source)."""
    if request.no_truth:
        if request.truth is not None:
            raise FaceswapError("give either --truth or --no-truth, not both")
        truth = None
    elif request.truth is not None:
        truth = _existing(request.truth, "truth clip")
    else:
        found = default_truth(clip)
        truth = found if found.is_file() else None
    if truth is None:
        report("no truth clip: scoring each swapped face against its source face "
               "(identity by the classifier, the rest by the source)")
    elif request.target is not None:
        raise FaceswapError("--target is for eval without a truth (the truth names each face's "
                            "target): add --no-truth to score against the source instead")
    return truth


def _speaker_means(request: EvalRequest, report: Report) -> tuple[SpeakerMeans | None, str | None]:
    """A collector of each speaker's mean pretrained embedding, or None and why not."""
    if request.judge_every <= 0:
        return None, "turned off (--judge-every 0)"
    embedder, note = load_embedder()
    if embedder is None:
        report(f"pretrained embedding skipped: {note}")
        return None, note
    return SpeakerMeans(embedder), None


def _judge(means: SpeakerMeans | None, report: Report) -> EmbeddingJudge | None:
    if means is None:
        return None
    judge = means.judge()
    report("pretrained embedding (dlib ResNet): speaker means from "
           + ", ".join(f"{n} {judge.counts.get(n, 0)}" for n in sorted(judge.means))
           + " real faces")
    return judge


def _classifier(request: EvalRequest, clip: Path, workspace: Workspace, device: Any,
                report: Report, needed: set[str], on_face: OnFace | None = None,
                pairwise: bool = False, named_by: str = "the truth shows") -> IdentityClassifier:
    """Trained on --speaker-clip clips, else the sample set's, else workspace/faces/.

    ``needed``: the target speakers the record (or --target) names; each must be one it
    can learn (``named_by`` says who named them, for the error). ``pairwise``: every face's
    target is "the other speaker", so there must be exactly two. ``on_face`` sees every real
    face a crop is cut from (the pretrained embedding's speaker means learn from it).
    """
    clips = request.speaker_clips or default_speaker_clips(clip)
    if clips:
        for name, path in clips.items():
            _existing(path, f"clip of speaker '{name}'")
        _check_speakers(set(clips), needed, pairwise, named_by)
        report(f"identity classifier: learning {', '.join(sorted(clips))} from their clips")
        crops = speaker_crops(clips, on_face=on_face)
    else:
        speakers = workspace.speakers()
        if len(speakers) < 2:
            raise FaceswapError(
                "no clips of the speakers to train the identity classifier on: pass "
                "--speaker-clip NAME=PATH for each speaker (or extract their faces first)"
            )
        _check_speakers(set(speakers), needed, pairwise, named_by)
        report(f"identity classifier: learning {', '.join(speakers)} from {workspace.faces_dir}")
        crops = folder_crops({s: workspace.speaker_faces_dir(s) for s in speakers},
                             on_face=on_face)
    classifier = cached_identity_classifier(crops, workspace.eval_dir, device, seed=request.seed)
    report(f"identity classifier: {classifier.heldout_accuracy:.1%} on held-out real crops")
    if classifier.heldout_accuracy < 0.9:
        report("warning: the identity classifier is unsure of these speakers; "
               "treat the identity numbers with care (more or longer clips help)")
    return classifier


def _check_speakers(known: set[str], needed: set[str], pairwise: bool, named_by: str) -> None:
    """Fail before any training when the classifier could not name the targets."""
    unknown = sorted(needed - known)
    if unknown:
        raise FaceswapError(
            f"{named_by} {', '.join(unknown)}, but the identity classifier can only "
            f"learn {', '.join(sorted(known))}: pass --speaker-clip NAME=PATH for each speaker"
        )
    if pairwise and len(known) != 2:
        raise FaceswapError(
            f"without a truth each face becomes 'the other speaker', but there are {len(known)} "
            f"speakers ({', '.join(sorted(known))}): pass --target NAME (who every face should "
            "become)"
        )


def default_truth(clip: Path) -> Path:
    """The sample generator's truth clip for ``clip``: <stem>_truth<suffix> beside it."""
    return clip.with_name(f"{clip.stem}_truth{clip.suffix}")


def default_speaker_clips(clip: Path) -> dict[str, Path]:
    """The sample set's single-speaker clips beside ``clip`` (<speaker>.mp4 per speaker)."""
    from faceswap_gan.evaluation.truth import sample_speakers

    names = sample_speakers(clip)
    found = {n: clip.with_name(f"{n}{clip.suffix}") for n in names}
    return {n: p for n, p in found.items() if p.is_file()}


def _code_health(model: str | None, workspace: Workspace, device: Any) -> dict[str, float] | None:
    """The model's own code measures (evaluation/code.py), when the model is known."""
    from faceswap_gan.evaluation.code import code_health
    from faceswap_gan.models.checkpoint import load_face_model
    from faceswap_gan.models.locate import locate_model

    if model is None:
        return None
    return code_health(load_face_model(locate_model(workspace, model), device), workspace, device) or None


def _candidates(request: EvalRequest, pipeline: Pipeline) -> list[Candidate]:
    if request.rendered:  # --model with them names the model that rendered them
        model = request.models[0] if request.models else None
        return [Candidate(p.stem, p, model=model) for p in request.rendered]
    recipes = [load_pipeline(r) for r in request.recipes] or [pipeline]
    models = request.models or [None]
    out = []
    for model in models:
        for recipe in recipes:
            parts = [str(Path(model).stem) if model else "model"]
            if len(recipes) > 1:
                parts.append(recipe.name)
            out.append(Candidate("/".join(parts), None, model=model, recipe=recipe))
    return out


def _render(cand: Candidate, clip: Path, workspace: Workspace, pipeline: Pipeline,
            request: EvalRequest, report: Report) -> Path:
    """Swap every speaker in ``clip`` to the other with the candidate's model and recipe."""
    from faceswap_gan.evaluation.render import render_swap

    recipe = cand.recipe or pipeline
    # The settings' hash in the name: a changed recipe never reuses a stale render.
    settings = json.dumps(recipe.to_dict(), sort_keys=True, default=str).encode()
    model = Path(cand.model).stem if cand.model else "model"
    out = workspace.eval_dir / (
        f"{clip.stem}_{model}_{recipe.name}_{hashlib.sha1(settings).hexdigest()[:8]}.mp4"
    )
    report(f"rendering {clip.name} with {cand.name} -> {out}")
    return render_swap(clip, out, workspace, cand.model, recipe, request.device, notice=report,
                       progress=lambda done, total: report(EvalProgress("render", clip.name, done, total)))


def _score(clip: Path, truth: Path | None, rendered: Path, classifier: IdentityClassifier,
           record: Any, report: Report, name: str, cut_threshold: float,
           request: EvalRequest, judge: EmbeddingJudge | None) -> EvalResult:
    def progress(done: int, total: int | None) -> None:
        report(EvalProgress("score", name, done, total))

    progress(0, None)
    return evaluate_videos(clip, truth, rendered, classifier, record,
                           cut_threshold=cut_threshold, progress=progress,
                           target=request.target, judge=judge, judge_every=request.judge_every)


def _existing(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FaceswapError(f"{what} not found: {path}")
    return path
