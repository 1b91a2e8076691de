"""The demo a fresh machine runs with ``make demo``.

    .venv/bin/python samples/demo.py --workspace workspace [--docs]

Steps (each a function; the swap and the score run the real CLI commands, printed first,
so what the demo does is what a user types):
  1. generate the sample footage into <workspace>/samples (reused when already there
     with the same settings);
  2. write a contact sheet of every clip to <workspace>/samples/contact_sheet.png
     (and to docs/images/contact_sheet.png with --docs);
  3. swap the debate: ``faceswap render debate.mp4 --swap`` with the workspace's model, or
     the shipped sample model when the workspace has none;
  4. score the swap against the ground truth: ``faceswap eval`` (table, JSON, PNG strip).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from faceswap_gan.errors import FaceswapError
from faceswap_gan.synthetic.footage import SampleSet, generate_sample_set
from faceswap_gan.synthetic.sheet import contact_sheet
from faceswap_gan.workspace import Workspace, resolve_workspace

REPO = Path(__file__).resolve().parent.parent


def step_samples(workspace: Workspace, seed: int = 0) -> SampleSet:
    """Sample clips for every speaker, the debate and its ground truth."""
    started = time.perf_counter()
    samples = generate_sample_set(workspace.samples_dir, seed=seed)
    print(f"samples: {samples.out_dir} ({time.perf_counter() - started:.1f} s)")
    for name, clip in samples.speaker_clips.items():
        print(f"  {name:<14}{clip}")
    print(f"  {'debate':<14}{samples.debate}")
    print(f"  {'ground truth':<14}{samples.truth}")
    print(f"  {'record':<14}{samples.record}")
    return samples


def step_contact_sheet(samples: SampleSet, copy_to_docs: bool) -> Path:
    """A labelled grid of frames from every clip."""
    clips = {**samples.speaker_clips, "debate": samples.debate, "debate_truth": samples.truth}
    sheet = contact_sheet(clips, samples.out_dir / "contact_sheet.png")
    print(f"contact sheet: {sheet}")
    if copy_to_docs:
        target = REPO / "docs" / "images" / "contact_sheet.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sheet, target)
        print(f"  copied to {target}")
    return sheet


def run_cli(*args: str) -> None:
    """Run one faceswap command in a child process, as a user would type it."""
    print("$ faceswap " + " ".join(shlex.quote(a) for a in args), flush=True)
    result = subprocess.run([sys.executable, "-m", "faceswap_gan.cli", *args])
    if result.returncode != 0:
        raise FaceswapError(f"'faceswap {args[0]}' failed (exit {result.returncode})")


def step_render(samples: SampleSet, workspace: Workspace) -> Path:
    """Each debater's face becomes the other's; the audio is copied unchanged."""
    output = samples.debate.with_name("debate.swapped.mp4")
    run_cli("render", str(samples.debate), "--swap", "-o", str(output), "--force",
            "--workspace", str(workspace.root))
    return output


def step_eval(samples: SampleSet, workspace: Workspace, rendered: Path, copy_to_docs: bool) -> Path:
    """Score the swap against the ground truth clip."""
    report = workspace.eval_dir / "demo.json"
    strip = workspace.eval_dir / "demo_strip.png"
    run_cli("eval", "--clip", str(samples.debate), "--truth", str(samples.truth),
            "--rendered", str(rendered), "--json", str(report), "--strip", str(strip),
            "--workspace", str(workspace.root))
    if copy_to_docs:
        target = REPO / "docs" / "images" / "demo_strip.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(strip, target)
        print(f"  copied to {target}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the faceswap_gan demo.")
    parser.add_argument("--workspace", default=None, help="workspace folder [./workspace]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", action="store_true",
                        help="also copy the contact sheet and eval strip to docs/images/")
    args = parser.parse_args(argv)
    try:
        workspace = resolve_workspace(args.workspace)
        samples = step_samples(workspace, seed=args.seed)
        step_contact_sheet(samples, copy_to_docs=args.docs)
        rendered = step_render(samples, workspace)
        report = step_eval(samples, workspace, rendered, copy_to_docs=args.docs)
        print(f"\nswapped debate: {rendered}\nscore: {report}")
    except FaceswapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
