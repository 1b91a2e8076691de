"""Does the network follow its input, before any pasting: mouth opening of crops, of their
reconstructions G(E(x), c_x) and of their translations G(E(x), c'), read by the face mesh.

    .venv/bin/python benchmarks/follow.py --workspace WS --model NAME [--faces DIR] [--n 120]

Crops come from ``--faces`` (a folder of ``<speaker>/*.png``, e.g. crops `faceswap extract`
made of held-out footage), else from the workspace's own training crops (then it says how
well the model fits what it saw). Each crop, its reconstruction and its translation are
enlarged and meshed afresh; the mouth opening (inner-lip gap over the eye distance, eval's
measure) of the reconstruction and of the translation is correlated with the crop's, per
speaker (Pearson r), and the spread of each (standard deviation) is printed beside it: a
network that draws one average face has a small spread and an r near 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from faceswap_gan.evaluation.landmarks import FaceMeshes
from faceswap_gan.evaluation.metrics import mouth_opening
from faceswap_gan.models.checkpoint import load_face_model
from faceswap_gan.models.inference import Translator
from faceswap_gan.models.locate import locate_model
from faceswap_gan.training.data import read_crop
from faceswap_gan.workspace import Workspace

ENLARGED = 256  # the mesh finds faces in small crops once enlarged


def mouths(meshes: FaceMeshes, crops: np.ndarray) -> np.ndarray:
    """Mouth opening of each crop (NaN where the mesh finds no face)."""
    out = []
    for crop in crops:
        found = meshes(cv2.resize(crop, (ENLARGED, ENLARGED), interpolation=cv2.INTER_CUBIC))
        out.append(mouth_opening(found[0]) if found else np.nan)
    return np.asarray(out)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() < 5 or a[keep].std() == 0 or b[keep].std() == 0:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--model", default="default")
    parser.add_argument("--faces", type=Path, default=None)
    parser.add_argument("--n", type=int, default=120, help="crops per speaker, evenly spaced")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    ws = Workspace(args.workspace.resolve())
    model = load_face_model(locate_model(ws, args.model), torch.device("cpu"))
    translator = Translator(model, torch.device("cpu"))
    faces = args.faces or ws.faces_dir
    results = {}
    with FaceMeshes(max_faces=1) as fitter:
        for speaker in model.speakers:
            files = sorted((faces / speaker).glob("*.png"))
            if not files:
                continue
            pick = np.linspace(0, len(files) - 1, min(args.n, len(files))).round().astype(int)
            crops = np.stack([read_crop(files[i], model.size) for i in pick])
            own = model.label_of(speaker)
            other = (own + 1) % len(model.speakers)
            z = translator.encode(crops)
            source = mouths(fitter, crops)
            recon = mouths(fitter, translator.generate(z, own))
            swapped = mouths(fitter, translator.generate(z, other))
            results[speaker] = {
                "crops": len(crops),
                "recon_r": correlation(source, recon), "translation_r": correlation(source, swapped),
                "source_sd": float(np.nanstd(source)), "recon_sd": float(np.nanstd(recon)),
                "translation_sd": float(np.nanstd(swapped)),
            }
            r = results[speaker]
            print(f"{speaker:>10}: mouth r reconstruction {r['recon_r']:+.2f}, translation "
                  f"{r['translation_r']:+.2f}; spread source {r['source_sd']:.3f}, reconstruction "
                  f"{r['recon_sd']:.3f}, translation {r['translation_sd']:.3f} ({len(crops)} crops)")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
