"""The swap of a batch of faces: align -> E -> (smooth z) -> G(z, target) -> colour -> paste.

Shared by ``faceswap render`` (many frames, with temporal smoothing per track) and
``faceswap translate`` (one still image, no smoothing). The networks see whole batches of
crops (``Translator`` runs E and G once per batch on the device); the per-face work around
them (warps, colour statistics, blending) happens at crop size or inside the face's box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from faceswap_gan.config import RenderConfig
from faceswap_gan.faces.align import align_face, invert_matrix
from faceswap_gan.faces.types import AlignedCrop, TrackedFace
from faceswap_gan.render.blend import paste_face
from faceswap_gan.render.color import ColorStats, correct_color
from faceswap_gan.render.mask import crop_face_mask
from faceswap_gan.render.temporal import TemporalSmoother

if TYPE_CHECKING:  # torch-heavy; only the type is needed here
    from faceswap_gan.models.inference import Translator


@dataclass
class FaceJob:
    """One face to swap: its aligned crop (with the frame -> crop matrix and the tracked face)."""

    crop: AlignedCrop
    reset: bool = False  # a shot cut happened just before this face's frame: forget the past

    @property
    def track_id(self) -> int:
        return self.crop.face.track_id


class FaceSwapper:
    """Turns faces into another speaker's, in batches, with optional temporal smoothing."""

    def __init__(
        self,
        translator: Translator,
        crop_size: int,
        padding: float,
        config: RenderConfig,
        smoother: TemporalSmoother | None = None,
    ) -> None:
        self.translator = translator
        self.crop_size = crop_size
        self.padding = padding
        self.config = config
        self.smoother = smoother

    def prepare(self, image: np.ndarray, face: TrackedFace) -> FaceJob:
        return FaceJob(crop=align_face(image, face, self.crop_size, self.padding))

    def generate(self, jobs: Sequence[FaceJob], labels: Sequence[int]) -> list[np.ndarray]:
        """Each job's face as speaker ``labels[i]``: uint8 RGB crops, not yet colour corrected."""
        if not jobs:
            return []
        crops = np.stack([job.crop.image for job in jobs])
        z = self.translator.encode(crops)  # batched by the translator (render.batch_size)
        if self.smoother is not None:
            # In time order: each track's z is averaged with its own past (reset at cuts).
            for i, job in enumerate(jobs):
                if job.reset:
                    self.smoother.reset(z=True, color=False)
                z[i] = self.smoother.smooth_z(job.track_id, z[i])
        return list(self.translator.generate(z, np.asarray(labels, dtype=np.int64)))

    def recolor(self, job: FaceJob, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The generated crop with the colour of the face it replaces (smoothed per track)."""
        smooth = None
        if self.smoother is not None:
            smoother = self.smoother
            if job.reset:
                smoother.reset(z=False, color=True)

            def smooth(reference: ColorStats, own: ColorStats) -> tuple[ColorStats, ColorStats]:
                return smoother.smooth_color(job.track_id, reference, own)

        return correct_color(generated, job.crop.image, mask, self.config.color, smooth)

    def paste(self, image: np.ndarray, job: FaceJob, generated: np.ndarray) -> bool:
        """Blend the recoloured crop into ``image`` in place; False when it fell outside."""
        # The blend mask is made here, for the faces that are pasted, not for every face seen.
        mask = crop_face_mask(job.crop.face.landmarks, job.crop.matrix, self.crop_size,
                              self.config.mask_erode, self.config.mask_feather)
        face = self.recolor(job, generated, mask)
        box = paste_face(image, face, mask, invert_matrix(job.crop.matrix),
                         seamless=self.config.seamless, sharpen=self.config.sharpen)
        return box is not None



