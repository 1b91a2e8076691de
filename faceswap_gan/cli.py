"""The ``faceswap`` command: a click group over the commands in faceswap_gan.commands."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

import click

from faceswap_gan import __version__
from faceswap_gan.errors import FaceswapError
from faceswap_gan.fileio import is_write_failure, removing_leftovers, write_error

# name -> module in faceswap_gan.commands; imported lazily so `faceswap --help` stays fast
# and a heavy import (torch, mediapipe) is paid only by the command that needs it.
COMMANDS = {
    "samples": "Generate sample talking-head footage with ground truth for every swap.",
    "extract": "Detect, track and align faces in videos or image folders into per-speaker crops.",
    "train": "Train the model on the extracted faces: step 1 (GAN), 2 (encoder), 3 (fine-tune).",
    "render": "Swap the faces in a video and write it with the audio kept.",
    "translate": "Translate the face in a still image to another speaker.",
    "eval": "Measure a swap against ground truth: identity, pose, expression, SSIM, stability.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"faceswap_gan.commands.{name}")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, so listing commands imports nothing heavy.
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, text in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="faceswap")
def cli() -> None:
    """Swap the faces of speakers in video.

    \b
    Typical session (everything lands in ./workspace):
      faceswap samples                               # sample footage, if you have none
      faceswap extract workspace/samples/speaker_a.mp4 --speaker speaker_a
      faceswap extract workspace/samples/speaker_b.mp4 --speaker speaker_b
      faceswap train                                 # steps 1, 2 and 3 (or --step N)
      faceswap render workspace/samples/debate.mp4 --swap
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit status 1 (2 for a bad
    option); an output the system refuses to write is one of them (``fileio.WriteError``).

    SIGTERM is handled like Ctrl-C (whatever handles SIGINT at that moment runs: a run stops
    and removes its temporary files, training saves a checkpoint first), then exits 143.
    """
    # MediaPipe's C++ side logs every graph start to stderr; keep only its errors, unless the
    # user asked for more. Must be set before mediapipe is first imported.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _sigterm_as_interrupt() as terminated:
        try:
            with removing_leftovers():
                cli.main(args=argv, prog_name="faceswap", standalone_mode=False)
        except FaceswapError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:
            if not is_write_failure(exc):
                raise
            # A write the code did not word itself (a log line, a library's own file).
            click.echo(f"error: {write_error(exc.filename or 'a file', exc.errno)}", err=True)
            sys.exit(1)
        except (click.exceptions.Abort, KeyboardInterrupt) as exc:
            if terminated:
                click.echo("terminated: finished work is kept; run the same command to resume",
                           err=True)
                sys.exit(128 + signal.SIGTERM)
            if isinstance(exc, click.exceptions.Abort):
                click.echo("interrupted", err=True)
            else:
                click.echo("interrupted: finished work is kept; run the same command to resume",
                           err=True)
            sys.exit(130)
        except click.UsageError as exc:
            # One line, as every other error: what is wrong, and where the options are listed.
            where = exc.ctx.command_path if exc.ctx is not None else "faceswap"
            click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[list[int]]:
    """While the command runs, SIGTERM calls the current SIGINT handler (by default it raises
    KeyboardInterrupt, so every stage cleans up as for Ctrl-C); the yielded list records it."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set from the main thread
        return

    def on_sigterm(signum: int, frame: object) -> None:
        received.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:  # SIG_IGN or SIG_DFL: stop all the same
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
