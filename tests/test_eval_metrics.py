"""The eval metrics on known cases, on real portraits and their real MediaPipe meshes."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data

from faceswap_gan.evaluation import metrics as M
from faceswap_gan.evaluation.landmarks import FaceMeshes


@pytest.fixture(scope="module")
def portrait():
    image = skimage.data.astronaut()
    with FaceMeshes() as meshes:
        faces = meshes(image)
    assert len(faces) == 1
    return image, faces[0]


def _shift(image, px):
    return np.ascontiguousarray(np.roll(image, px, axis=1))


def _noisy(image, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _blur(image, sigma):
    return cv2.GaussianBlur(image, (0, 0), sigma)


def test_truth_against_itself_is_perfect(portrait):
    image, lm = portrait
    mask = M.face_mask(lm, image.shape)
    assert M.region_ssim(image, image, mask) == pytest.approx(1.0)
    assert M.region_psnr(image, image, mask) == 100.0
    assert M.outside_change(image, image, mask) == 0.0
    assert M.pose_error(lm, lm) == (0.0, 0.0, 0.0)
    assert M.mouth_opening(lm) == M.mouth_opening(lm.copy())
    track = [lm + np.float32([t * 1.5, 0.5 * t, 0]) for t in range(6)]  # steady motion
    assert M.landmark_jitter(track) == pytest.approx(0.0, abs=1e-6)
    assert M.stability_ratio(M.landmark_jitter(track), M.landmark_jitter(track)) == 1.0


@pytest.mark.parametrize("degrade,levels", [
    (_shift, [1, 3, 8]),
    (_blur, [0.7, 1.5, 3.0]),
    (_noisy, [4, 12, 30]),
])
def test_appearance_worsens_monotonically(portrait, degrade, levels):
    image, lm = portrait
    mask = M.face_mask(lm, image.shape)
    ssim = [M.region_ssim(degrade(image, k), image, mask) for k in levels]
    psnr = [M.region_psnr(degrade(image, k), image, mask) for k in levels]
    assert 1.0 > ssim[0] > ssim[1] > ssim[2]
    assert 100.0 > psnr[0] > psnr[1] > psnr[2]


def test_outside_change_ignores_the_face_and_grows_with_damage(portrait):
    image, lm = portrait
    region = M.face_mask(lm, image.shape, dilate=0.3)
    pasted = image.copy()
    pasted[region] = 0  # a swap may change anything inside the face region
    assert M.outside_change(pasted, image, region) == 0.0
    values = [M.outside_change(_noisy(image, s), image, region) for s in (3, 10, 30)]
    assert 0 < values[0] < values[1] < values[2]


def test_face_mask_covers_the_face_and_dilation_grows_it(portrait):
    image, lm = portrait
    tight, wide = M.face_mask(lm, image.shape), M.face_mask(lm, image.shape, dilate=0.3)
    assert tight.sum() > 0.02 * tight.size
    assert wide.sum() > tight.sum() and not (tight & ~wide).any()
    nose = lm[1, :2].round().astype(int)
    assert tight[nose[1], nose[0]]


def test_roll_error_follows_an_in_plane_rotation(portrait):
    image, lm = portrait
    centre = tuple(float(v) for v in lm[:, :2].mean(axis=0))
    errors = []
    with FaceMeshes() as meshes:
        for angle in (4, 10, 20):
            matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
            rotated = cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            yaw, pitch, roll = M.pose_error(meshes(rotated)[0], lm)
            assert roll == pytest.approx(angle, abs=1.5)
            assert yaw < 4 and pitch < 4  # the mesh itself wobbles a few degrees
            errors.append(roll)
    assert errors[0] < errors[1] < errors[2]


def test_yaw_and_pitch_follow_a_3d_rotation_of_the_mesh(portrait):
    _, lm = portrait
    centre = lm.mean(axis=0)
    for axis, angle in (("yaw", 15.0), ("pitch", 10.0)):
        a = math.radians(angle)
        if axis == "yaw":  # about the image's vertical axis
            rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
        else:
            rot = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        turned = (lm - centre) @ rot.T + centre
        err = dict(zip(("yaw", "pitch", "roll"), M.pose_error(turned, lm)))
        assert err[axis] == pytest.approx(angle, abs=1.0)
        assert max(v for k, v in err.items() if k != axis) < 1.5


def test_mouth_and_eye_opening_measure_the_gaps(portrait):
    _, lm = portrait
    opened = lm.copy()
    lower_lip = [14, 87, 317, 178, 402, 88, 318]
    opened[lower_lip, 1] += 0.3 * M.interocular(lm)
    assert M.mouth_opening(opened) > M.mouth_opening(lm) + 0.2
    shut = lm.copy()
    for upper, lower in M.RIGHT_EYE_LIDS + M.LEFT_EYE_LIDS:
        shut[upper, :2] = shut[lower, :2]
    assert M.eye_opening(shut) == pytest.approx(0.0, abs=1e-6)
    assert 0.1 < M.eye_opening(lm) < 0.6


def test_jitter_grows_with_landmark_shake(portrait):
    _, lm = portrait
    rng = np.random.default_rng(1)
    steady = [lm + np.float32([t, 0, 0]) for t in range(20)]
    base = M.landmark_jitter([s + rng.normal(0, 0.2, s.shape).astype(np.float32) for s in steady])
    ratios = []
    for sigma in (0.5, 1.0, 2.0):
        shaky = [s + rng.normal(0, sigma, s.shape).astype(np.float32) for s in steady]
        ratios.append(M.stability_ratio(M.landmark_jitter(shaky), base))
    assert 1.0 < ratios[0] < ratios[1] < ratios[2]


def test_flicker_grows_with_brightness_swings():
    steady = 100 + np.arange(10) * 0.5
    swinging = steady + np.array([0, 3] * 5)
    assert M.flicker(steady) == pytest.approx(0.5)
    assert M.flicker(swinging) > M.flicker(steady) * 4
    assert math.isnan(M.flicker([1.0]))


def test_sharpness_falls_with_blur_inside_the_inner_face(portrait):
    """High-frequency energy in render's inner-face mask: equal for the same face, lower the
    more the face is blurred, blind to anything outside the mask."""
    from faceswap_gan.render.mask import face_mask as inner_face

    image, lm = portrait
    weights = inner_face(lm, image.shape[:2])
    base = M.high_frequency_energy(image, weights)
    assert base > 0 and M.high_frequency_energy(image.copy(), weights) == base
    blurred = [M.high_frequency_energy(_blur(image, s), weights) for s in (0.7, 1.5, 3.0)]
    assert base > blurred[0] > blurred[1] > blurred[2]
    assert blurred[1] / base < 0.5
    outside_noise = np.where(weights[..., None] > 0, image, _noisy(image, 30))
    assert M.high_frequency_energy(outside_noise, weights) == pytest.approx(base, rel=0.05)


def test_periodic_energy_tells_a_grid_from_texture_and_blur(portrait):
    """A blurred face and a sharp one score alike (a smooth spectrum); a checkerboard, a grid
    or a face drawn small and enlarged with nearest pixels score far above them."""
    from faceswap_gan.render.mask import face_mask as inner_face

    image, lm = portrait
    x0, y0 = np.floor(lm[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(lm[:, :2].max(0)).astype(int)
    face = cv2.resize(image[y0:y1, x0:x1], (96, 110), interpolation=cv2.INTER_AREA)
    weights = cv2.resize(inner_face(lm, image.shape[:2])[y0:y1, x0:x1].astype(np.float32), (96, 110))
    sharp = M.periodic_energy(face, weights)
    blurred = M.periodic_energy(_blur(face, 2.0), weights)
    assert blurred == pytest.approx(sharp, rel=0.35)
    yy, xx = np.mgrid[:110, :96]
    checker = np.clip(_blur(face, 2.0) + 12.0 * ((yy // 2 + xx // 2) % 2 - 0.5)[..., None], 0, 255)
    small = cv2.resize(cv2.resize(face, (24, 28), interpolation=cv2.INTER_AREA), (96, 110),
                       interpolation=cv2.INTER_NEAREST)
    for patterned in (checker.astype(np.uint8), small):
        assert M.periodic_energy(patterned, weights) > 1.8 * max(sharp, blurred)
    # Noise is not a pattern: it scores like texture.
    assert M.periodic_energy(_noisy(_blur(face, 2.0), 6), weights) < 1.3 * sharp
