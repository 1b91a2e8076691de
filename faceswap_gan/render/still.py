"""Translate the faces of one still image (the paper's image-to-image use), with render's blend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from faceswap_gan.config import Pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.models.checkpoint import FaceModel
from faceswap_gan.render.pipeline import extract_config_for
from faceswap_gan.render.swap import FaceSwapper
from faceswap_gan.render.target import SwapTarget, resolve
from faceswap_gan.video.frames import VideoFrame


@dataclass
class StillResult:
    image: np.ndarray  # RGB uint8, same size as the input
    faces: int  # faces translated


def translate_image(
    image: np.ndarray,
    model: FaceModel,
    pipeline: Pipeline,
    to: str,
    device: torch.device,
    use_autocast: bool = True,
) -> StillResult:
    """Every face found in ``image`` becomes speaker ``to``; FaceswapError when there is none."""
    from faceswap_gan.faces.track import FaceTracker
    from faceswap_gan.models.inference import Translator

    label = resolve(SwapTarget(to=to), model).to
    extract = extract_config_for(model, pipeline)
    translator = Translator(model, device, autocast=use_autocast,
                            batch_size=max(1, pipeline.render.batch_size))
    swapper = FaceSwapper(translator, extract.crop_size, extract.padding, pipeline.render)
    with FaceTracker(extract, 1.0) as tracker:
        faces = tracker.update(VideoFrame(index=0, timestamp=0.0, image=image), new_shot=True)
    if not faces:
        raise FaceswapError("no face found in the image")
    jobs = [swapper.prepare(image, face) for face in faces]
    out = image.copy()
    pasted = sum(swapper.paste(out, job, crop) for job, crop in zip(jobs, swapper.generate(jobs, [label] * len(jobs))))
    return StillResult(image=out, faces=int(pasted))
