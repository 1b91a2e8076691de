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
from faceswap_gan.render.color import lab_stats, match_histograms, transfer_lab
from faceswap_gan.render.mask import crop_face_mask
from faceswap_gan.render.temporal import TemporalSmoother

if TYPE_CHECKING:  # torch-heavy; only the type is needed here
    from faceswap_gan.models.inference import Translator


@dataclass
class FaceJob:
    """One face to swap: its aligned crop, its blend mask in the crop, and the target label."""

    crop: AlignedCrop
    mask: np.ndarray  # (S, S) float32 in [0, 1]
    label: int  # the speaker it becomes
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

    def prepare(self, image: np.ndarray, face: TrackedFace, label: int) -> FaceJob:
        crop = align_face(image, face, self.crop_size, self.padding)
        mask = crop_face_mask(face.landmarks, crop.matrix, self.crop_size,
                              self.config.mask_erode, self.config.mask_feather)
        return FaceJob(crop=crop, mask=mask, label=label)

    def generate(self, jobs: Sequence[FaceJob]) -> list[np.ndarray]:
        """The generated crops (uint8 RGB, not yet colour corrected), in job order."""
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
        labels = np.array([job.label for job in jobs], dtype=np.int64)
        return list(self.translator.generate(z, labels))

    def recolor(self, job: FaceJob, generated: np.ndarray) -> np.ndarray:
        """The generated crop with the colour of the face it replaces (smoothed per track)."""
        mode = self.config.color
        if mode == "none":
            return generated
        if mode == "hist":
            return match_histograms(generated, job.crop.image, job.mask)
        reference = lab_stats(job.crop.image, job.mask)
        own = lab_stats(generated, job.mask)
        if reference is None or own is None:
            return generated
        if self.smoother is not None:
            if job.reset:
                self.smoother.reset(z=False, color=True)
            reference, own = self.smoother.smooth_color(job.track_id, reference, own)
        return transfer_lab(generated, job.mask, reference, own)

    def paste(self, image: np.ndarray, job: FaceJob, generated: np.ndarray) -> bool:
        """Blend the recoloured crop into ``image`` in place; False when it fell outside."""
        face = self.recolor(job, generated)
        box = paste_face(image, face, job.mask, invert_matrix(job.crop.matrix),
                         seamless=self.config.seamless)
        return box is not None



