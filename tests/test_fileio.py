"""Outputs: the usual file mode, one writer per output name, and what killed runs leave behind."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers import run_cli, write_face_folders

from faceswap_gan.errors import FaceswapError
from faceswap_gan.fileio import atomic_path, output_lock, usual_modes, write_bytes_atomic

# A writer killed (SIGKILL) while its output is half-written: what `kill -9` of any run leaves.
_KILLED_WRITER = """
import os, signal, sys
from faceswap_gan.fileio import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a file")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _kill_a_writer_of(dest: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(dest)], timeout=60)
    assert done.returncode == -signal.SIGKILL


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_the_usual_mode(tmp_path):
    """0666 less the umask, also when the writing library replaced the temporary file with a
    0600 one of its own (as safetensors does), and 0777 less it for a tempfile folder."""
    previous = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"x")
        with atomic_path(tmp_path / "b.bin") as tmp:
            fd, private = tempfile.mkstemp(dir=tmp_path)  # mode 0600
            os.close(fd)
            os.replace(private, tmp)
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        (folder / "weights").write_bytes(b"x")
        os.chmod(folder / "weights", 0o600)
        usual_modes(folder)
        os.umask(0o027)
        write_bytes_atomic(tmp_path / "c.bin", b"x")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "a.bin") == _mode(tmp_path / "b.bin") == 0o644
    assert _mode(folder) == 0o755 and _mode(folder / "weights") == 0o644
    assert _mode(tmp_path / "c.bin") == 0o640


def test_one_writer_per_output_and_stale_temporaries_removed(tmp_path):
    dest = tmp_path / "out.json"
    _kill_a_writer_of(dest)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and ".out.json.lock" in left  # the temporary file and the lock
    with output_lock(dest):  # held as a running writer holds it
        with pytest.raises(FaceswapError, match=rf"being written by another faceswap run \(pid {os.getpid()}\)"):
            write_bytes_atomic(dest, b"second")
    write_bytes_atomic(dest, b"done")  # the writer is gone: its temporary file goes too
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with pytest.raises(FaceswapError, match="exists; use --force"):
        with atomic_path(dest, overwrite=False):
            pass
    assert dest.read_bytes() == b"done" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_sigterm_stops_training_like_ctrl_c(tmp_path, capsys):
    """SIGTERM during `faceswap train`: the step in progress finishes, a checkpoint is saved,
    exit 143. The 0-byte loss-curve temporary a killed run left is removed by this run, and the
    checkpoint is readable by others (usual modes)."""
    write_face_folders(tmp_path, per_speaker=4)
    logs = tmp_path / "models" / "default" / "logs" / "step1"
    _kill_a_writer_of(logs / "loss.png")
    assert list(logs.glob(".loss.*.png"))

    def sigterm_once_the_curve_is_drawn() -> None:
        deadline = time.monotonic() + 120
        while not (logs / "loss.png").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    late: list = []  # a SIGTERM after the command returned must not stop the tests
    previous_handler = signal.signal(signal.SIGTERM, lambda *args: late.append(args))
    umask = os.umask(0o022)
    try:
        watcher = threading.Thread(target=sigterm_once_the_curve_is_drawn, daemon=True)
        watcher.start()
        code, text = run_cli(["train", "--step", "1", "--pipeline", "tiny", "--steps", "500",
                              "--workspace", str(tmp_path), "--device", "cpu"], capsys)
        watcher.join(timeout=60)
    finally:
        os.umask(umask)
        signal.signal(signal.SIGTERM, previous_handler)
    assert code == 143 and "terminated" in text and not late, text
    step1 = tmp_path / "models" / "default" / "step1"
    assert (step1 / "model.json").is_file()
    assert not list(logs.glob(".loss.*")) and not list(step1.parent.glob(".step1*"))
    assert _mode(step1) == 0o755 and _mode(step1 / "model.safetensors") == 0o644
    assert _mode(logs / "loss.png") == 0o644
