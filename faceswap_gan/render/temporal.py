"""Temporal smoothing of what varies per frame in a swap: the latent z and the colour statistics.

Landmarks are smoothed by the tracker (One Euro, in faceswap_gan.faces); here each track
keeps an exponential moving average of its z (the encoder's answer flickers frame to frame,
and every flicker becomes a different generated face) and of the two Lab statistics used for
colour transfer (the original's and the generated face's). A shot cut or a new track starts
from scratch: averaging across a cut would blend two different faces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from faceswap_gan.render.color import ColorStats


@dataclass
class _TrackMemory:
    z: np.ndarray | None = None
    reference: ColorStats | None = None  # the original face's colour
    generated: ColorStats | None = None  # the generated face's colour


@dataclass
class TemporalSmoother:
    """Per-track EMAs; a weight is how much of the previous value is kept (0 = no smoothing)."""

    z_weight: float = 0.5
    color_weight: float = 0.8
    _tracks: dict[int, _TrackMemory] = field(default_factory=dict)

    def reset(self, z: bool = True, color: bool = True) -> None:
        """Forget every track's z and/or colour (at a shot cut)."""
        for memory in self._tracks.values():
            if z:
                memory.z = None
            if color:
                memory.reference = memory.generated = None

    def forget_except(self, live_tracks: set[int]) -> None:
        """Drop tracks that have ended, so memory stays flat over a long video."""
        for track_id in list(self._tracks):
            if track_id not in live_tracks:
                del self._tracks[track_id]

    def smooth_z(self, track_id: int, z: np.ndarray) -> np.ndarray:
        memory = self._tracks.setdefault(track_id, _TrackMemory())
        if memory.z is not None and self.z_weight > 0:
            z = self.z_weight * memory.z + (1.0 - self.z_weight) * z
        memory.z = np.asarray(z, dtype=np.float32)
        return memory.z

    def smooth_color(
        self, track_id: int, reference: ColorStats, generated: ColorStats
    ) -> tuple[ColorStats, ColorStats]:
        memory = self._tracks.setdefault(track_id, _TrackMemory())
        if self.color_weight > 0 and memory.reference is not None and memory.generated is not None:
            reference = reference.blend(memory.reference, self.color_weight)
            generated = generated.blend(memory.generated, self.color_weight)
        memory.reference, memory.generated = reference, generated
        return reference, generated
