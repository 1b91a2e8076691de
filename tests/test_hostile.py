"""The CLI used as a hostile user would: bad files, bad options, tampered models, outputs that
cannot be written, a full disk, Ctrl-C at any moment. Every case must end in one line
(``error: ...``), a non-zero exit, no traceback, no temporary file left and nothing that was
there before changed.

The cases run the real ``faceswap`` entry point in child processes forked from one server
that imported torch, PyAV and MediaPipe once (a fresh interpreter per case would cost 2-3 s
each). A full disk is a file-size limit in the child (``RLIMIT_FSIZE``: Python ignores
SIGXFSZ, so a write past it fails with EFBIG, as one on a full disk fails with ENOSPC).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from helpers import CPU, SAMPLE_MODEL, portraits, write_portrait_clip, write_portrait_crops

from faceswap_gan import fileio
from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces.alignments import load_state
from faceswap_gan.models.checkpoint import load_face_model, model_lock, save_stage
from faceswap_gan.video import remux, writer
from faceswap_gan.video.remux import SwapVideoWriter

# Reads one case (JSON) a line, forks, runs it in the child, answers the child's pid, then
# its exit status. The child exits as `faceswap` does (its SystemExit's code, or a traceback
# and 1), less the interpreter's teardown of torch and MediaPipe (0.5 s a case).
_SERVER = r"""
import atexit, json, os, resource, signal, sys, traceback
import av, cv2, mediapipe, numpy, torch
from faceswap_gan import cli
for name in ("eval", "extract", "render", "samples", "train", "translate"):
    cli.cli.get_command(None, name)
for line in sys.stdin:
    case = json.loads(line)
    pid = os.fork()
    if pid == 0:
        for fd, name in ((1, "out"), (2, "err")):
            os.dup2(os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        os.chdir(case["cwd"])
        os.environ.update(case["env"])
        if case["fsize"] is not None:
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (case["fsize"], hard))
        signal.alarm(case["timeout"])
        try:
            cli.main(case["args"])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(json.dumps(pid), flush=True)
    print(json.dumps(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])), flush=True)
"""


class Run:
    """One case in flight: ``pid``, then ``wait()`` -> (exit status, stderr)."""

    def __init__(self, server: subprocess.Popen, err: Path) -> None:
        self.server, self.err = server, err
        self.pid = json.loads(server.stdout.readline())

    def wait(self) -> tuple[int, str]:
        code = json.loads(self.server.stdout.readline())
        return code, self.err.read_text(errors="replace")


class Cli:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        self.count = 0

    def start(self, *args: str, cwd: Path, env: dict | None = None, fsize: int | None = None,
              timeout: int = 120) -> Run:
        self.count += 1
        err = self.logs / f"{self.count}.err"
        case = {"args": list(args), "cwd": str(cwd), "env": env or {}, "fsize": fsize,
                "timeout": timeout, "out": str(self.logs / f"{self.count}.out"), "err": str(err)}
        self.server.stdin.write(json.dumps(case) + "\n")
        self.server.stdin.flush()
        return Run(self.server, err)

    def __call__(self, *args: str, **kwargs) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        return self.start(*args, **kwargs).wait()

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=30)


def one_error_line(code: int, err: str, expected: str) -> str:
    """The one ``error:`` line (the last of stderr: a progress bar may come before it)."""
    lines = err.strip().splitlines()
    assert code not in (0, -signal.SIGALRM) and "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: ") and expected in lines[-1], err
    assert sum(line.startswith("error:") for line in lines) == 1, err
    return lines[-1]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its inode, size and modification time: a file replaced,
    rewritten or touched shows."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        found[str(path.relative_to(root))] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def temporaries(root: Path) -> list[Path]:
    """What a writer leaves while it writes: ``.<stem>.<token><suffix>``, ``.stepN.tmp-*``."""
    return [p for p in root.rglob(".*") if not p.name.endswith(".lock")]


def tampered(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """A copy of an exported model whose metadata (model.json in its header) ``edit`` changed."""
    raw = src.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    meta = json.loads(header["__metadata__"]["faceswap_gan"])
    edit(meta)
    header["__metadata__"]["faceswap_gan"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    dst.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size:])
    return dst


class Payload:
    """What a pickle-based model loader would run: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    runner = Cli(tmp_path_factory.mktemp("hostile_logs"))
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def site(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with good and bad inputs, models and a workspace with a tiny step-1 model."""
    root = tmp_path_factory.mktemp("hostile")
    write_portrait_clip(root / "clip.mp4", frames=8)
    raw = (root / "clip.mp4").read_bytes()
    (root / "empty.mp4").write_bytes(b"")
    (root / "truncated.mp4").write_bytes(raw[: len(raw) // 3])
    (root / "text.mp4").write_text("not a video\n")
    (root / "text.png").write_text("not an image\n")
    cv2.imwrite(str(root / "face.png"), cv2.cvtColor(portraits()["speaker_a"], cv2.COLOR_RGB2BGR))
    audio_only(root / "audio.m4a")
    (root / "folder.mp4").mkdir()
    (root / "folder.png").mkdir()
    (root / "folder.mp4" / "keep.txt").write_text("mine\n")
    (root / "existing.mp4").write_bytes(b"an earlier render\n")
    (root / "in_the_way").write_text("a file, not a folder\n")
    (root / "bad.toml").write_text('[render]\ncolour = "lab"\n')
    (root / "broken.toml").write_text("[render\n")
    models = root / "models"
    models.mkdir()
    sample = SAMPLE_MODEL.read_bytes()
    (models / "garbage.safetensors").write_bytes(os.urandom(4096))
    (models / "truncated.safetensors").write_bytes(sample[: len(sample) // 2])
    (models / "pickled.safetensors").write_bytes(pickle.dumps(Payload(root / "PWNED")))
    edits = {
        "four_speakers": lambda m: m.update(speakers=["x", "y", "z", "../../evil"]),
        "evil_name": lambda m: m.update(speakers=["speaker_a", "../../evil"]),
        "speakers_text": lambda m: m.update(speakers="ab"),
        "four_classes": lambda m: m.update(speakers=["a", "b", "c", "d"],
                                           spec={**m["spec"], "n_classes": 4}),
        "version_text": lambda m: m.update(version="1; rm -rf /"),
        "padding_text": lambda m: m["pipeline"]["extract"].update(padding="wide"),
        "other_format": lambda m: m.update(format="something.else"),
    }
    for name, edit in edits.items():
        tampered(SAMPLE_MODEL, models / f"{name}.safetensors", edit)
    ws = root / "ws"
    write_portrait_crops(ws / "faces", size=32, count=4)
    code, err = cli("train", "--step", "1", "--pipeline", "tiny", "--steps", "2",
                    "--workspace", "ws", "--device", "cpu", cwd=root)
    assert code == 0, err
    step1 = ws / "models" / "default" / "step1"
    meta = json.loads((step1 / "model.json").read_text())
    broken = {  # step folders: model.json not JSON, a pickle as weights, a speaker added
        "bad_json": ("model.json", b"{not json"),
        "pickle": ("model.safetensors", pickle.dumps(Payload(root / "PWNED"))),
        "step_speakers": ("model.json",
                          json.dumps({**meta, "speakers": ["astronaut", "hopper", "x"]}).encode()),
    }
    for name, (file, data) in broken.items():
        shutil.copytree(step1, models / name / "step1")
        (models / name / "step1" / file).write_bytes(data)
    return root


OPTIONS = ("--workspace", "ws", "--pipeline", "tiny", "--all-faces")
RENDER = ("render", "clip.mp4", *OPTIONS)
SAMPLE = ("--model", str(SAMPLE_MODEL))

# (arguments, what the error line says, extra environment)
CASES: list[tuple[tuple[str, ...], str, dict]] = [
    # inputs: empty, cut short, not a video, audio only, a folder, missing
    (("render", "empty.mp4", "--to", "speaker_b", *OPTIONS, *SAMPLE), "not a video", {}),
    (("render", "truncated.mp4", "--to", "speaker_b", *OPTIONS, *SAMPLE), "truncated.mp4", {}),
    (("render", "text.mp4", "--to", "speaker_b", *OPTIONS, *SAMPLE), "not a video", {}),
    (("render", "audio.m4a", "--to", "speaker_b", *OPTIONS, *SAMPLE), "no video stream", {}),
    (("render", "folder.mp4", "--to", "speaker_b", *OPTIONS, *SAMPLE), "is a folder, not a video", {}),
    (("translate", "folder.png", "--to", "speaker_b", *SAMPLE), "is a folder, not an image", {}),
    (("translate", "text.png", "--to", "speaker_b", *SAMPLE), "not a readable image", {}),
    (("translate", "missing.png", "--to", "speaker_b", *SAMPLE), "file not found", {}),
    (("extract", "empty.mp4", "--speaker", "a", "--workspace", "ws"), "not a video", {}),
    (("extract", "audio.m4a", "--speaker", "a", "--workspace", "ws"), "no video stream", {}),
    (("eval", "--clip", "empty.mp4", "--workspace", "ws"), "not a video", {}),
    # models: corrupt, cut short, pickles renamed, metadata edited against the weights
    ((*RENDER, "--to", "x", "--model", "models/garbage.safetensors"), "corrupt checkpoint", {}),
    ((*RENDER, "--to", "x", "--model", "models/truncated.safetensors"), "corrupt checkpoint", {}),
    ((*RENDER, "--to", "x", "--model", "models/pickled.safetensors"), "corrupt checkpoint", {}),
    ((*RENDER, "--to", "z", "--model", "models/four_speakers.safetensors"),
     "this model is inconsistent", {}),
    ((*RENDER, "--to", "speaker_a", "--model", "models/evil_name.safetensors"),
     "'../../evil' is not a speaker name", {}),
    ((*RENDER, "--to", "a", "--model", "models/speakers_text.safetensors"),
     "this model is inconsistent", {}),
    ((*RENDER, "--to", "a", "--model", "models/four_classes.safetensors"),
     "network spec 4, discriminator classes 2, generator heads 2", {}),
    ((*RENDER, "--to", "x", "--model", "models/version_text.safetensors"), "corrupt checkpoint", {}),
    ((*RENDER, "--to", "x", "--model", "models/padding_text.safetensors"), "crop padding", {}),
    ((*RENDER, "--to", "x", "--model", "models/other_format.safetensors"), "corrupt checkpoint", {}),
    ((*RENDER, "--to", "x", "--model", "models/bad_json"), "not valid JSON", {}),
    ((*RENDER, "--to", "x", "--model", "models/pickle"), "corrupt checkpoint", {}),
    ((*RENDER, "--to", "x", "--model", "models/step_speakers"), "this model is inconsistent", {}),
    # options and presets
    ((*RENDER, "--to", "nobody", *SAMPLE), "unknown speaker 'nobody'", {}),
    ((*RENDER, *SAMPLE), "--to SPEAKER, --swap or --only", {}),
    ((*RENDER, "--to", "speaker_b", "--crf", "99", *SAMPLE), "--crf", {}),
    ((*RENDER, "--to", "speaker_b", "--start", "60", *SAMPLE), "(--start)", {}),
    ((*RENDER, "--to", "speaker_b", "--threads", "0", *SAMPLE), "--threads must be at least 1", {}),
    ((*RENDER, "--to", "speaker_b", "--threads", "999", *SAMPLE), "CPUs this process may use", {}),
    ((*RENDER, "--to", "speaker_b", *SAMPLE), "$FACESWAP_THREADS must be at least 1",
     {"FACESWAP_THREADS": "0"}),
    ((*RENDER, "--to", "speaker_b", "--device", "tpu", *SAMPLE), "unknown device 'tpu'", {}),
    (("render", "clip.mp4", "--to", "speaker_b", "--pipeline", "nope", *SAMPLE),
     "unknown pipeline 'nope'", {}),
    (("render", "clip.mp4", "--to", "speaker_b", "--pipeline", "bad.toml", *SAMPLE), "colour", {}),
    (("render", "clip.mp4", "--to", "speaker_b", "--pipeline", "broken.toml", *SAMPLE),
     "not valid TOML", {}),
    (("samples", "--workers", "0"), "--workers", {}),
    (("train", "--step", "1", "--steps", "0", "--workspace", "ws"), "at least 1", {}),
    (("extract", "clip.mp4", "--speaker", "../x", "--workspace", "ws"), "bad speaker name", {}),
    (("frobnicate",), "No such command", {}),
    # outputs that cannot be written: a folder in the way (with --force too), a file in the
    # way of the folder, the input itself, an existing file, another format
    ((*RENDER, "--to", "speaker_b", "-o", "folder.mp4", "--force", *SAMPLE), "is a folder", {}),
    (("translate", "face.png", "--to", "speaker_b", "-o", "folder.png", "--force", *SAMPLE),
     "is a folder", {}),
    ((*RENDER, "--to", "speaker_b", "-o", "in_the_way/out.mp4", *SAMPLE), "a file is in the way", {}),
    ((*RENDER, "--to", "speaker_b", "-o", "clip.mp4", "--force", *SAMPLE), "is the input", {}),
    ((*RENDER, "--to", "speaker_b", "-o", "existing.mp4", *SAMPLE), "use --force", {}),
    ((*RENDER, "--to", "speaker_b", "-o", "out.avi", *SAMPLE), "must be an .mp4", {}),
    (("eval", "--clip", "clip.mp4", "--no-truth", "--json", "in_the_way/report.json",
      "--workspace", "ws"), "a file is in the way", {}),
    (("samples", "in_the_way/samples", "--seconds", "1"), "a file is in the way", {}),
]


@pytest.mark.slow
def test_bad_input_is_one_line_and_changes_nothing(cli: Cli, site: Path) -> None:
    failures = []
    for args, expected, env in CASES:
        before = snapshot(site)
        code, err = cli(*args, cwd=site, env=env)
        try:
            line = one_error_line(code, err, expected)
            assert len(err.strip().splitlines()) == 1, err  # refused before any work
            assert snapshot(site) == before, "files changed"
        except AssertionError as exc:
            failures.append(f"faceswap {' '.join(args)}: {exc}")
        else:
            assert len(line) < 400
    assert not (site / "PWNED").exists()  # no pickle ever ran
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_folder_is_refused_before_the_work(cli: Cli, site: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, err = cli(*RENDER, "--to", "speaker_b", "-o", str(locked / "out.mp4"), *SAMPLE,
                        cwd=site)
    finally:
        locked.chmod(0o755)
    one_error_line(code, err, "permission denied")
    assert len(err.strip().splitlines()) == 1 and list(locked.iterdir()) == []


# -- a full disk: a file-size limit in the child ------------------------------------------


@pytest.mark.slow
def test_full_disk_render_keeps_the_earlier_output(cli: Cli, site: Path, tmp_path: Path) -> None:
    out = tmp_path / "render.mp4"
    out.write_bytes(b"the render of yesterday\n")
    code, err = cli(*RENDER, "--to", "speaker_b", "-o", str(out), "--force", *SAMPLE, cwd=site,
                    fsize=4096)
    one_error_line(code, err, f"cannot write {out}: file too large")
    assert out.read_bytes() == b"the render of yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["render.mp4"]  # no temporary, no lock


@pytest.mark.slow
def test_full_disk_training_keeps_the_checkpoint_and_resumes(cli: Cli, site: Path,
                                                             tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(site / "ws", ws)
    model = ws / "models" / "default"
    before = snapshot(model / "step1")
    train = ("train", "--step", "1", "--pipeline", "tiny", "--steps", "4", "--workspace", str(ws),
             "--device", "cpu")
    code, err = cli(*train, cwd=tmp_path, fsize=100_000)  # the weights are 196 kB
    one_error_line(code, err, f"cannot write {model / 'step1'}: file too large")
    assert snapshot(model / "step1") == before and temporaries(model) == []
    code, err = cli(*train, cwd=tmp_path)  # room again: the same command resumes
    assert code == 0, err
    assert json.loads((model / "step1" / "model.json").read_text())["step"] == 4


@pytest.mark.slow
def test_full_disk_extract_keeps_its_progress_and_resumes(cli: Cli, tmp_path: Path) -> None:
    """Full after the first done marker (frame 24; a face's landmarks are ~11 kB a line): what
    was recorded up to it stays, a run while still full changes nothing of it, and the same
    command resumes there once there is room."""
    clip = write_portrait_clip(tmp_path / "talk.mp4")
    ws = tmp_path / "ws"
    extract = ("extract", str(clip), "--speaker", "speaker_a", "--pipeline", "tiny",
               "--workspace", str(ws))
    code, err = cli(*extract, cwd=tmp_path, fsize=400_000)
    line = one_error_line(code, err, "file too large")
    (alignments,) = (ws / "alignments").glob("*.jsonl")
    assert line.startswith(f"error: cannot write {alignments}")

    def recorded() -> tuple[int, list[dict], dict]:
        state = load_state(alignments)
        crops = {k: v for k, v in snapshot(ws / "faces").items()
                 if k.endswith(".png") and int(k.rsplit("_f", 1)[1][:6]) <= state.last_done}
        return state.last_done, [r.to_json() for r in state.records], crops

    kept = recorded()
    assert kept[0] == 24 and len(kept[2]) == 25
    code, err = cli(*extract, cwd=tmp_path, fsize=400_000)  # still full
    one_error_line(code, err, "file too large")
    assert recorded() == kept and temporaries(ws) == []
    code, err = cli(*extract, cwd=tmp_path)
    assert code == 0 and "resumed at frame 25" in err, err
    assert temporaries(ws) == []


# -- Ctrl-C ------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_during_render_leaves_nothing(cli: Cli, site: Path, tmp_path: Path) -> None:
    # Long enough that the render is still running when the signal lands (60 frames took
    # 0.7 s on an idle 2-core machine, and finished first).
    clip = write_portrait_clip(tmp_path / "long.mp4", frames=450)
    out = tmp_path / "out.mp4"
    run = cli.start("render", str(clip), "--to", "speaker_b", "--all-faces", "-o", str(out),
                    "--pipeline", "tiny", "--workspace", str(site / "ws"), *SAMPLE, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*.mp4")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(run.pid, signal.SIGINT)
    code, err = run.wait()
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


def test_ctrl_c_at_any_line_of_a_write_leaves_no_temporary(tmp_path: Path) -> None:
    """A signal raises KeyboardInterrupt between any two lines: here it is raised (by a trace
    function) at every line the writers run in turn, with render's cleanup around the write
    and `faceswap`'s around the command; no temporary may survive, and an output that
    appears is whole."""
    clip = write_portrait_clip(tmp_path / "clip.mp4", frames=4)
    out = tmp_path / "out" / "swapped.mp4"
    files = {fileio.__file__, writer.__file__, remux.__file__}
    # What runs with the signals held off (fileio.removing_leftovers' own cleanup).
    held = {"removing_leftovers", "remove_owned_temporaries", "_signals_held", "_disown"}
    image = np.zeros((64, 64, 3), np.uint8)

    def write(stop_at: int) -> int:
        seen = [0]

        def local(frame, event, arg):  # type: ignore[no-untyped-def]
            if event == "line":
                if seen[0] == stop_at:
                    raise KeyboardInterrupt
                seen[0] += 1
            return local

        def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
            code = frame.f_code
            return local if code.co_filename in files and code.co_name not in held else None

        with fileio.removing_leftovers():
            sys.settrace(tracer)
            try:
                with fileio.output_lock(out):  # as render_video
                    video = SwapVideoWriter(out, 64, 64, 25, audio_source=clip, locked=True)
                    try:
                        video.write(image, 0.0)
                        video.write(image, 0.04)
                        video.close()
                    except BaseException:
                        video._abort()
                        raise
            finally:
                sys.settrace(None)
        return seen[0]

    lines = write(-1)
    assert lines > 100
    for stop_at in range(lines):
        with pytest.raises(KeyboardInterrupt):
            write(stop_at)
        assert temporaries(out.parent) == [], f"left at line event {stop_at}"
        if out.exists():  # stopped after the rename: the whole video
            with av.open(str(out)) as done:
                assert sum(1 for _ in done.decode(video=0)) == 2
            out.unlink()
        for lock in out.parent.glob(".*.lock"):  # harmless (reused), but start clean
            lock.unlink()


# -- models: what model.json says against the weights; temporaries of killed saves -------


def test_model_metadata_is_checked_against_its_weights(tmp_path: Path) -> None:
    model = load_face_model(SAMPLE_MODEL, CPU)  # the shipped model passes
    assert model.speakers == ["speaker_a", "speaker_b"]
    renamed = tampered(SAMPLE_MODEL, tmp_path / "renamed.safetensors",
                       lambda m: m.update(speakers=["alice", "bob"]))
    assert load_face_model(renamed, CPU).speakers == ["alice", "bob"]  # a rename is fine
    for speakers, why in ((["x", "y", "z"], "names 3 speakers"), (["a", "a"], "twice"),
                          (["a", "unknown"], "'unknown' is not a speaker name"),
                          (["a", " b"], "' b' is not a speaker name")):
        edited = tampered(SAMPLE_MODEL, tmp_path / "edited.safetensors",
                          lambda m, s=speakers: m.update(speakers=s))
        with pytest.raises(FaceswapError, match="this model is inconsistent") as info:
            load_face_model(edited, CPU)
        assert why in str(info.value)


def test_model_lock_removes_what_killed_saves_left(tmp_path: Path) -> None:
    model = tmp_path / "models" / "m"
    meta = {"format": "faceswap_gan.checkpoint", "step": 2}
    save_stage(model / "step1", {"w": torch.zeros(4)}, {}, meta)
    save_stage(model / "step2", {"w": torch.zeros(4)}, {}, meta)
    kept = snapshot(model)
    half = model / ".step1.tmp-k1ll3d_9"  # kill -9 while saving step 1 left these
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"half")
    shutil.copytree(model / "step1", model / ".step1.old")  # swapped, old copy not yet removed
    shutil.copytree(model / "step2", model / ".step3.old")  # the only copy of step 3
    with model_lock(model):
        with pytest.raises(FaceswapError, match="being written by another faceswap run"):
            with model_lock(model):
                pass
    assert sorted(p.name for p in model.iterdir()) == [".step3.old", "step1", "step2"]
    assert {k: v for k, v in snapshot(model).items() if not k.startswith(".step3.old")} == kept


def test_output_checks_before_the_work(tmp_path: Path) -> None:
    (tmp_path / "dir.mp4").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(fileio.WriteError, match="is a folder"):
        fileio.check_writable(tmp_path / "dir.mp4")
    with pytest.raises(fileio.WriteError, match="a file is in the way"):
        fileio.check_writable(tmp_path / "file" / "deeper" / "out.mp4")
    with pytest.raises(FaceswapError, match="is the input"):
        fileio.check_writable(tmp_path / "file", source=tmp_path / "." / "file")
    fileio.check_writable(tmp_path / "new" / "folders" / "out.mp4")  # made when written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.mp4", "file"]
