"""The ``faceswap`` command: a click group over the commands in faceswap_gan.commands."""

from __future__ import annotations

import importlib
import os
import sys

import click

from faceswap_gan import __version__
from faceswap_gan.errors import FaceswapError

# name -> module in faceswap_gan.commands; imported lazily so `faceswap --help` stays fast
# and a heavy import (torch, mediapipe) is paid only by the command that needs it.
COMMANDS = {
    "samples": "Generate sample talking-head footage with ground truth for every swap.",
    "extract": "Detect, track and align faces in videos or image folders into per-speaker crops.",
    "train": "Train step 1 (conditional GAN) or step 2 (encoder) on the extracted faces.",
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
      faceswap train --step 1
      faceswap train --step 2
      faceswap render workspace/samples/debate.mp4 --swap
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit status 1."""
    # MediaPipe's C++ side logs every graph start to stderr; keep only its errors, unless the
    # user asked for more. Must be set before mediapipe is first imported.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        cli.main(args=argv, prog_name="faceswap", standalone_mode=False)
    except FaceswapError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted: finished work is kept; run the same command to resume", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
