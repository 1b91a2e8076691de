"""The ground truth of a face swap: the target's inner face on the source's drawn head.

A face swap replaces only the inner face, brows to chin (``render/mask.py``), and
recolours it towards the face it replaces (``render/color.py``); the source's hair, head
shape and background stay. So the truth draws the source exactly as the debate clip does,
draws the target's face mesh onto the source's drawn mesh (same pose, mouth and blinks,
the source's outline), matches its Lab colour inside the mask to the source's skin, paints
the target's mouth interior and lashes, and blends it in through the render's own mask.
Lighting and noise come after, as for any frame, so the face is lit like the source.
"""

from __future__ import annotations

import numpy as np

from faceswap_gan.config import RenderConfig
from faceswap_gan.render.color import ColorStats, lab_stats, transfer_lab
from faceswap_gan.render.mask import face_mask
from faceswap_gan.synthetic.mesh import PoseParams
from faceswap_gan.synthetic.render import Framing, RenderedFace, SpeakerRenderer

# Colour statistics come from one neutral frame of this size (eye distance a quarter of it),
# not from each frame: an opening mouth changes the masked statistics, and following them
# would make the skin tone pulse with speech.
_REFERENCE_SIZE = 256


def swap_mask(landmarks: np.ndarray, size: tuple[int, int],
              config: RenderConfig | None = None) -> np.ndarray:
    """Where a swap replaces the face: the render's mask (float32, (height, width)) for the
    478 landmarks in pixels of an image of ``size`` (width, height), at the render settings."""
    config = config or RenderConfig()  # the defaults: what `faceswap render` replaces
    return face_mask(landmarks, (size[1], size[0]), config.mask_erode, config.mask_feather)


class SwapTruthRenderer:
    """Draws ``source``'s head with ``target``'s inner face: what a perfect swap outputs."""

    def __init__(self, source: SpeakerRenderer, target: SpeakerRenderer,
                 config: RenderConfig | None = None) -> None:
        self.source = source
        self.target = target
        self.config = config
        self.colour = self._colour_statistics()

    def _colour_statistics(self) -> tuple[ColorStats, ColorStats] | None:
        """(source skin, target face) Lab statistics inside the mask at a neutral pose.

        None (the target's own colours) when the render settings correct no colour; any
        other mode is matched in Lab, once per pair, so the tone stays put over time.
        """
        if self.config is not None and self.config.color == "none":
            return None
        side = _REFERENCE_SIZE
        framing = Framing(side / 2, side * 0.42, side / 4)
        face = self.source.render(PoseParams(), framing, (side, side))
        mask = swap_mask(face.landmarks, (side, side), self.config)
        drawn = self.target.draw_face_on(face, framing, (0, 0, side, side))
        reference, own = lab_stats(face.image, mask), lab_stats(drawn, mask)
        return None if reference is None or own is None else (reference, own)

    def render(self, pose: PoseParams, framing: Framing, size: tuple[int, int]) -> RenderedFace:
        """The source's face at ``pose`` with the target's inner face; the source's landmarks."""
        face = self.source.render(pose, framing, size)
        width, height = size
        lo = np.floor(face.landmarks.min(axis=0)).astype(int)
        hi = np.ceil(face.landmarks.max(axis=0)).astype(int) + 1
        x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        x1, y1 = min(int(hi[0]), width), min(int(hi[1]), height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return face  # the face is off the frame
        # The mask lies inside the landmarks' hull, so their box is all the work there is.
        origin = np.array([x0, y0], np.float32)
        mask = swap_mask(face.landmarks - origin, (x1 - x0, y1 - y0), self.config)
        if not mask.any():
            return face
        inner = self.target.draw_face_on(face, framing, (x0, y0, x1, y1))
        if self.colour is not None:
            reference, own = self.colour
            inner = transfer_lab(inner, mask, reference, own)
        # Mouth interior and lashes after the skin-tone match: they are not skin.
        self.target.paint_details(inner, face.landmarks - origin, face.blink, framing.iod_px)
        alpha = mask[..., None]
        region = face.image[y0:y1, x0:x1].astype(np.float32)
        blended = region * (1.0 - alpha) + inner.astype(np.float32) * alpha
        face.image[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return face
