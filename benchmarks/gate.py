"""Which face embedding tells the speakers from faces that are nobody's? Prints numbers.

For each embedding, the speaker gate (models/gate.py) is fitted on the speakers' crops as
`faceswap train` fits it (threshold calibrated on held-out crops and impostors only: no
unknown faces given), then scored on the speakers' held-out crops and on the unknown
person's crops: ROC AUC of the best normalised distance, and at the calibrated threshold the
share of known crops accepted and of unknown crops rejected, per crop and per 8-frame track.

    .venv/bin/python benchmarks/gate.py --faces WS/faces/a,WS/faces/b --unknown WS/faces/c \\
        [--model MODEL] [--kinds dlib,discriminator,identity,appearance]

``identity`` is eval's identity classifier trained on the speakers' crops, pooled penultimate
features (the gate's fallback); ``discriminator`` the trained D's trunk features (the other
candidate, which lost: see docs/DESIGN.md, "The speaker gate").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from faceswap_gan.config import ExtractConfig
from faceswap_gan.models.gate import (
    IdentityEmbedder,
    fit_gate_model,
    make_embedder,
    read_crops,
    track_means,
)


class DiscriminatorFeatures:
    """The trained D's trunk features of each crop, L2-normalised (the other candidate)."""

    kind = "discriminator"

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.model = model

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1
            f = self.model.discriminator.features(x).float()
            return torch.nn.functional.normalize(f, dim=1).numpy()


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(unknown scores above known), ties half."""
    return float((neg[None] > pos[:, None]).mean() + 0.5 * (neg[None] == pos[:, None]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", required=True, help="comma-separated speaker crop folders")
    ap.add_argument("--unknown", required=True, help="crop folder of a person who is none of them")
    ap.add_argument("--model", default=None, help="model for the discriminator embedding")
    ap.add_argument("--kinds", default="dlib,discriminator,identity,appearance")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--padding", type=float, default=ExtractConfig.padding)
    ap.add_argument("--limit", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    folders = [Path(f) for f in args.faces.split(",")]
    crops = {f.name: read_crops(f, args.size, args.limit) for f in folders}
    unknown = read_crops(Path(args.unknown), args.size, args.limit)
    model = None
    if args.model:
        from faceswap_gan.models.checkpoint import load_face_model

        model = load_face_model(Path(args.model), torch.device("cpu"), need_encoder=False)
    print("crops:", {k: len(v) for k, v in crops.items()}, "unknown:", len(unknown))
    for kind in args.kinds.split(","):
        if kind == "discriminator" and model is None:
            continue
        t0 = time.perf_counter()
        if kind == "identity":
            fit_part = {k: v[: len(v) - max(1, round(len(v) * 0.2))] for k, v in crops.items()}
            embed = IdentityEmbedder.fit(fit_part, args.padding)
        elif kind == "discriminator":
            embed = DiscriminatorFeatures(model)
        else:
            embed = make_embedder(kind, args.padding)
        emb = {k: embed(v) for k, v in crops.items()}
        neg_emb = embed(unknown)
        seconds = time.perf_counter() - t0
        gm = fit_gate_model(kind, emb, None)
        pos = np.concatenate([gm.scores(e[-max(1, round(len(e) * 0.2)):]).min(axis=1)
                              for e in emb.values()])
        neg = gm.scores(neg_emb).min(axis=1)
        tau = gm.threshold
        tp, tn = track_means(pos[:, None])[:, 0], track_means(neg[:, None])[:, 0]
        print(f"{kind:13s} {seconds:6.1f} s  threshold {tau:.2f} ({gm.calibration['method']})  "
              f"AUC {auc(pos, neg):.3f}  crops: known accepted {np.mean(pos <= tau):.3f}, "
              f"unknown rejected {np.mean(neg > tau):.3f}  tracks of 8: known "
              f"{np.mean(tp <= tau):.3f}, unknown {np.mean(tn > tau):.3f}  (known p99 "
              f"{np.quantile(pos, .99):.2f}, unknown p01 {np.quantile(neg, .01):.2f})")


if __name__ == "__main__":
    main()
