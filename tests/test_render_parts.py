"""The swap's building blocks on real portraits: colour transfer, mesh mask, blend, smoothing, remux."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from helpers import mesh_landmarks

from faceswap_gan.config import ExtractConfig
from faceswap_gan.faces.align import alignment_matrix, transform_points, warp_face
from faceswap_gan.render.blend import crop_box_in_frame, paste_face
from faceswap_gan.render.color import (
    ColorStats,
    correct_color,
    lab_stats,
    match_histograms,
    transfer_lab,
)
from faceswap_gan.render.mask import crop_face_mask, face_hull
from faceswap_gan.render.temporal import TemporalSmoother
from faceswap_gan.synthetic.portraits import default_portraits
from faceswap_gan.video.remux import SwapVideoWriter, audio_packets, copy_streams, read_metadata
from faceswap_gan.video.threads import ThreadedSink
from faceswap_gan.video.writer import VideoWriter

CROP = 64


@pytest.fixture(scope="module")
def portraits():
    faces = default_portraits()
    astronaut, hopper = faces["speaker_a"], faces["speaker_b"]
    out = {}
    for name, image in (("astronaut", astronaut), ("hopper", hopper)):
        lm = mesh_landmarks(image)
        m = alignment_matrix(lm, CROP, ExtractConfig.padding)  # the product's own alignment
        crop = warp_face(image, m, CROP)
        out[name] = {"image": image, "landmarks": lm, "matrix": m, "crop": crop,
                     "mask": crop_face_mask(lm, m, CROP)}
    return out


# -- mask -------------------------------------------------------------------------------


def test_mask_covers_face_from_brows_to_chin_and_is_feathered(portraits):
    p = portraits["astronaut"]
    mask = p["mask"]
    pts = transform_points(p["matrix"], p["landmarks"])
    assert mask.shape == (CROP, CROP) and mask.dtype == np.float32
    assert 0.0 == mask.min() and mask.max() == 1.0
    # Nose tip (1) is inside, forehead top (10) is above the brows so outside, chin (152) at the edge.
    nose, forehead = pts[1].round().astype(int), pts[10].round().astype(int)
    assert mask[nose[1], nose[0]] == 1.0
    assert mask[np.clip(forehead[1], 0, CROP - 1), forehead[0]] == 0.0
    # Feathered: a band of values strictly between 0 and 1.
    assert ((mask > 0.05) & (mask < 0.95)).sum() > 20
    # Every non-zero value lies inside the hull (erosion keeps the seam inside the face).
    hull = face_hull(pts)
    inside = np.zeros_like(mask, dtype=np.uint8)
    cv2.fillConvexPoly(inside, np.round(hull).astype(np.int32), 1)
    assert not ((mask > 0) & (cv2.dilate(inside, np.ones((3, 3), np.uint8)) == 0)).any()


def test_mask_erode_and_feather_shrink_the_core(portraits):
    p = portraits["hopper"]
    plain = crop_face_mask(p["landmarks"], p["matrix"], CROP, erode=0.0, feather=0.01)
    eroded = crop_face_mask(p["landmarks"], p["matrix"], CROP, erode=0.1, feather=0.01)
    feathered = crop_face_mask(p["landmarks"], p["matrix"], CROP, erode=0.0, feather=0.2)
    assert (eroded > 0.5).sum() < 0.8 * (plain > 0.5).sum()
    assert (feathered >= 1.0).sum() < (plain >= 1.0).sum()
    assert ((feathered > 0) & (feathered < 1)).sum() > ((plain > 0) & (plain < 1)).sum()


# -- colour -----------------------------------------------------------------------------


def test_lab_transfer_matches_masked_statistics(portraits):
    a, h = portraits["astronaut"], portraits["hopper"]
    mask = a["mask"]
    target = lab_stats(h["crop"], h["mask"])
    before = lab_stats(a["crop"], mask)
    moved = transfer_lab(a["crop"], mask, target)
    after = lab_stats(moved, mask)
    assert np.abs(after.mean - target.mean).max() < 1.5
    assert np.abs(after.std - target.std).max() < 1.5
    assert np.abs(before.mean - target.mean).max() > 3  # the portraits really differ
    # Only colours change, not structure: the result still correlates with the source.
    gray = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(float)[mask > 0.5] for x in (a["crop"], moved)]
    assert np.corrcoef(*gray)[0, 1] > 0.9


def test_histogram_match_and_none(portraits):
    a, h = portraits["astronaut"], portraits["hopper"]
    mask = np.minimum(a["mask"], h["mask"])
    matched = match_histograms(a["crop"], h["crop"], mask)
    for c in range(3):
        ref = np.sort(h["crop"][..., c][mask > 0.5].astype(float))
        src = np.sort(a["crop"][..., c][mask > 0.5].astype(float))
        got = np.sort(matched[..., c][mask > 0.5].astype(float))
        assert np.abs(got - ref).mean() < 0.5 * np.abs(src - ref).mean()
    assert correct_color(a["crop"], h["crop"], mask, "none") is a["crop"]
    assert not np.array_equal(correct_color(a["crop"], h["crop"], mask, "lab"), a["crop"])


# -- blend ------------------------------------------------------------------------------


@pytest.mark.parametrize("seamless", [False, True])
def test_paste_changes_only_masked_pixels(portraits, seamless):
    p = portraits["astronaut"]
    frame = p["image"].copy()
    inverse = cv2.invertAffineTransform(p["matrix"])
    other = portraits["hopper"]["crop"]
    box = paste_face(frame, other, p["mask"], inverse, seamless=seamless)
    assert box is not None
    x0, y0, x1, y1 = box
    changed = np.any(frame != p["image"], axis=2)
    ys, xs = np.nonzero(changed)
    assert len(xs) > 500
    assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    # Outside the warped mask nothing moved at all.
    alpha = cv2.warpAffine(p["mask"], inverse, frame.shape[1::-1], flags=cv2.INTER_LINEAR)
    assert not changed[alpha == 0].any()
    # Inside the full-strength mask, the frame now shows the pasted crop.
    back = cv2.warpAffine(frame, p["matrix"], (CROP, CROP), flags=cv2.INTER_LINEAR)
    core = p["mask"] >= 1.0
    err_new = np.abs(back[core].astype(int) - other[core].astype(int)).mean()
    err_old = np.abs(back[core].astype(int) - p["crop"][core].astype(int)).mean()
    if not seamless:  # Poisson cloning re-lights the crop on purpose
        assert err_new < 12 and err_new < err_old / 2


def test_sharpen_adds_detail_inside_the_mask_only(portraits):
    """render.sharpen: an unsharp mask on the enlarged face, sized to the enlargement."""
    p = portraits["astronaut"]
    inverse = cv2.invertAffineTransform(p["matrix"])
    other = portraits["hopper"]["crop"]
    plain, sharp = p["image"].copy(), p["image"].copy()
    paste_face(plain, other, p["mask"], inverse)
    paste_face(sharp, other, p["mask"], inverse, sharpen=1.0)
    alpha = cv2.warpAffine(p["mask"], inverse, plain.shape[1::-1], flags=cv2.INTER_LINEAR)
    assert np.array_equal(sharp[alpha == 0], p["image"][alpha == 0])

    def detail(image: np.ndarray) -> float:  # high-frequency energy where the face is pasted
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[alpha >= 1.0].mean())

    assert detail(sharp) > 1.3 * detail(plain), (detail(plain), detail(sharp))


def test_crop_box_clipped_and_outside():
    inverse = np.array([[2.0, 0, -10], [0, 2.0, 5]])
    assert crop_box_in_frame(inverse, 32, (100, 100)) == (0, 4, 55, 70)
    assert crop_box_in_frame(np.array([[1.0, 0, 500], [0, 1, 500]]), 32, (100, 100)) is None


# -- temporal ---------------------------------------------------------------------------


def test_temporal_smoother_ema_per_track_and_reset():
    s = TemporalSmoother(z_weight=0.5, color_weight=0.8)
    z0, z1 = np.zeros(4, np.float32), np.ones(4, np.float32)
    assert np.allclose(s.smooth_z(1, z0), 0)
    assert np.allclose(s.smooth_z(1, z1), 0.5)
    assert np.allclose(s.smooth_z(2, z1), 1.0)  # another track has its own memory
    noisy = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    out = np.array([s.smooth_z(3, z) for z in noisy])
    assert np.abs(np.diff(out, axis=0)).mean() < 0.6 * np.abs(np.diff(noisy, axis=0)).mean()
    s.reset()
    assert np.allclose(s.smooth_z(1, z1), 1.0)
    a = ColorStats(np.zeros(3, np.float32), np.ones(3, np.float32))
    b = ColorStats(np.full(3, 10, np.float32), np.ones(3, np.float32))
    s.smooth_color(5, a, a)
    ref, gen = s.smooth_color(5, b, b)
    assert np.allclose(ref.mean, 2.0) and np.allclose(gen.mean, 2.0)
    s.forget_except({1})
    ref, _ = s.smooth_color(5, b, b)
    assert np.allclose(ref.mean, 10.0)


# -- encode with copied audio -----------------------------------------------------------


@pytest.fixture(scope="module")
def clip_with_audio(tmp_path_factory, portraits):
    path = tmp_path_factory.mktemp("clip") / "in.mp4"
    image = cv2.resize(portraits["astronaut"]["image"], (160, 96))
    rate = 16000
    t = np.arange(int(rate * 1.0)) / rate
    with VideoWriter(path, 160, 96, 25, audio_rate=rate) as w:
        for i in range(25):
            w.write(np.roll(image, i, axis=1))
        w.write_audio(0.3 * np.sin(2 * np.pi * 440 * t))
    return path


def test_swap_writer_copies_audio_packets_and_metadata(clip_with_audio, tmp_path):
    out = tmp_path / "out.mp4"
    with av.open(str(clip_with_audio)) as src:
        frames = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in src.decode(video=0)]
    with SwapVideoWriter(out, 160, 96, Fraction(25), audio_source=clip_with_audio,
                         metadata={"comment": "synthetic test", "synthetic": "true"}) as w:
        for image, t in frames:
            w.write(255 - image, t)
    assert audio_packets(out) == audio_packets(clip_with_audio) != []
    meta = read_metadata(out)
    assert meta.get("comment") == "synthetic test" and meta.get("synthetic") == "true"
    with av.open(str(out)) as o, av.open(str(clip_with_audio)) as i:
        vo, vi = o.streams.video[0], i.streams.video[0]
        assert vo.average_rate == vi.average_rate == 25
        got = [f.to_ndarray(format="rgb24") for f in o.decode(video=0)]
        assert len(got) == len(frames)
        assert abs(float(vo.duration * vo.time_base) - float(vi.duration * vi.time_base)) < 1e-6
        assert np.abs(got[3].astype(int) - (255 - frames[3][0]).astype(int)).mean() < 4


def test_swap_writer_partial_range_and_odd_size(clip_with_audio, tmp_path):
    out = tmp_path / "part.mp4"
    with SwapVideoWriter(out, 161, 97, 25, audio_source=clip_with_audio, start=0.4, end=0.8) as w:
        for i in range(10):
            w.write(np.full((97, 161, 3), 20 * i, np.uint8), 0.4 + i / 25)
    with av.open(str(out)) as o:
        v = o.streams.video[0]
        assert (v.width, v.height) == (161, 97)
        assert sum(1 for _ in o.decode(video=0)) == 10
        with av.open(str(out)) as o2:
            times = [float(p.pts * p.time_base) for p in o2.demux(o2.streams.audio[0]) if p.size]
    assert times and min(times) >= -0.07 and max(times) < 0.4
    src = audio_packets(clip_with_audio)
    assert all(p in src for p in audio_packets(out))


def test_writer_failure_leaves_nothing(clip_with_audio, tmp_path):
    out = tmp_path / "broken.mp4"
    with pytest.raises(ValueError), \
            SwapVideoWriter(out, 160, 96, 25, audio_source=clip_with_audio) as w:
        w.write(np.zeros((96, 160, 3), np.uint8))
        w.write(np.zeros((10, 10, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_copy_streams_is_bit_exact(clip_with_audio, tmp_path):
    out = tmp_path / "copy.mp4"
    copy_streams(clip_with_audio, out, metadata={"comment": "no faces"})
    assert audio_packets(out) == audio_packets(clip_with_audio)
    with av.open(str(out)) as o, av.open(str(clip_with_audio)) as i:
        assert [bytes(p) for p in o.demux(video=0) if p.size] == \
               [bytes(p) for p in i.demux(video=0) if p.size]


def test_threaded_sink_keeps_order_and_reraises():
    seen = []
    sink = ThreadedSink(seen.append, depth=2)
    for i in range(50):
        sink.put(i)
    sink.close()
    assert seen == list(range(50))

    def fail(x):
        raise OSError("disk full")

    sink = ThreadedSink(fail)
    with pytest.raises(OSError):
        for i in range(20):
            sink.put(i)
        sink.close()
