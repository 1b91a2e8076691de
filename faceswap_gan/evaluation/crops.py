"""Real crops of each speaker for the identity classifier, from clips or from face folders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import cv2
import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.evaluation.identity import identity_crop
from faceswap_gan.evaluation.landmarks import FaceMeshes
from faceswap_gan.video.reader import VideoReader, list_images, read_image

MIN_CROPS = 4
# Called with (speaker, RGB image, its face mesh) for every face a crop is cut from, so a
# second judge (judge.SpeakerMeans) learns from the same faces in the same pass.
OnFace = Callable[[str, np.ndarray, np.ndarray], None]
_FOLDER_UPSCALE = 256  # extract's crops are small; the mesh wants a face of this size


def speaker_crops(clips: Mapping[str, Path], per_speaker: int = 120,
                  on_face: OnFace | None = None) -> dict[str, list[np.ndarray]]:
    """Identity crops of each speaker from their own (single-speaker) clips, evenly spaced."""
    out: dict[str, list[np.ndarray]] = {}
    with FaceMeshes(max_faces=1) as meshes:
        for name, path in sorted(clips.items()):
            with VideoReader(path) as reader:
                every = max(1, (reader.frame_count or per_speaker) // per_speaker)
                crops = []
                for frame in reader:
                    if frame.index % every:
                        continue
                    faces = meshes(frame.image)
                    if faces:
                        crops.append(identity_crop(frame.image, faces[0]))
                        if on_face is not None:
                            on_face(name, frame.image, faces[0])
                    if len(crops) >= per_speaker:
                        break
            out[name] = _enough(crops, name, path)
    return out


def folder_crops(folders: Mapping[str, Path], per_speaker: int = 120,
                 on_face: OnFace | None = None) -> dict[str, list[np.ndarray]]:
    """Identity crops from folders of aligned face crops (``workspace/faces/<speaker>/``).

    Each crop is enlarged and meshed afresh (the mesh finds faces in crops as small as
    32 px once enlarged), then cut the classifier's way, so crops from clips and from
    folders look alike to it.
    """
    from faceswap_gan.faces.detect import MeshFitter

    out: dict[str, list[np.ndarray]] = {}
    with MeshFitter() as fitter:
        for name, folder in sorted(folders.items()):
            paths = list_images(folder)
            chosen = paths[:: max(1, len(paths) // per_speaker)][:per_speaker]
            crops = []
            for path in chosen:
                image = cv2.resize(read_image(path), (_FOLDER_UPSCALE, _FOLDER_UPSCALE),
                                   interpolation=cv2.INTER_CUBIC)
                mesh = fitter.fit(image, np.array([0, 0, _FOLDER_UPSCALE, _FOLDER_UPSCALE], np.float32))
                if mesh is not None:
                    crops.append(identity_crop(image, mesh))
                    if on_face is not None:
                        on_face(name, image, mesh)
            out[name] = _enough(crops, name, folder)
    return out


def _enough(crops: list[np.ndarray], name: str, where: Path) -> list[np.ndarray]:
    if len(crops) < MIN_CROPS:
        raise FaceswapError(f"found too few faces of '{name}' in {where} to learn them "
                            f"({len(crops)}, need {MIN_CROPS})")
    return crops
