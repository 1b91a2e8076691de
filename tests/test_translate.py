"""`faceswap translate` on real portraits with a tiny trained model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import portraits, run_cli

pytestmark = pytest.mark.slow  # the session's tiny model


@pytest.fixture(scope="module")
def ws(tiny_workspace) -> Path:
    """The session's tiny model (its own copy), the astronaut's photo and a face-free wall."""
    root = tiny_workspace
    image = cv2.resize(portraits()["speaker_a"], (256, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "astronaut.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "wall.png"), np.full((120, 160, 3), 128, np.uint8))
    return root


def test_translate_changes_only_the_face(ws, capsys):
    src = ws / "astronaut.png"
    code, text = run_cli(["translate", str(src), "--to", "speaker_b", "--workspace", str(ws)], capsys)
    assert code == 0, text
    out = ws / "astronaut.speaker_b.png"
    before = cv2.imread(str(src))
    after = cv2.imread(str(out))
    assert after.shape == before.shape
    changed = np.any(before != after, axis=2)
    ys, xs = np.nonzero(changed)
    # The face of the astronaut sits around (90..150, 40..110) in the 256 px image.
    assert 200 < len(xs) < 0.15 * changed.size
    assert 60 < xs.mean() < 180 and 30 < ys.mean() < 140
    # The hair and the suit, away from the face, are exactly as they were (PNG is lossless).
    assert not changed[200:, :].any() and not changed[:, :40].any()
    code, text = run_cli(["translate", str(src), "--to", "speaker_b", "--workspace", str(ws)], capsys)
    assert code == 1 and "--force" in text
    code, text = run_cli(["translate", str(src), "--to", "speaker_b", "--workspace", str(ws),
                       "--seamless", "--color", "hist", "--sharpen", "1", "-o", str(ws / "s.jpg")],
                          capsys)
    assert code == 0, text
    assert (ws / "s.jpg").is_file()


def test_translate_errors(ws, capsys):
    base = ["--workspace", str(ws)]
    code, text = run_cli(["translate", str(ws / "wall.png"), "--to", "speaker_b", *base], capsys)
    assert code == 1 and "no face found" in text
    code, text = run_cli(["translate", str(ws / "astronaut.png"), "--to", "zed", *base], capsys)
    assert code == 1 and "unknown speaker 'zed'" in text and "speaker_a, speaker_b" in text
    code, text = run_cli(["translate", str(ws / "astronaut.png"), "--to", "speaker_b",
                       "--model", "missing", "-o", str(ws / "m.png"), *base], capsys)
    assert code == 1 and "no model 'missing'" in text and "default" in text
    code, text = run_cli(["translate", str(ws / "nope.png"), "--to", "speaker_b", *base], capsys)
    assert code == 1 and "file not found" in text
    (ws / "bad.png").write_text("not an image")
    code, text = run_cli(["translate", str(ws / "bad.png"), "--to", "speaker_b", *base], capsys)
    assert code == 1 and "not a readable image" in text
    assert not list(ws.glob(".*")), "temporary files left behind"
