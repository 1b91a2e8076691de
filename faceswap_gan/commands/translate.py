"""``faceswap translate``: translate the face in a still image to another speaker."""

from __future__ import annotations

from pathlib import Path

import click

from faceswap_gan.commands.common import (
    console,
    device_option,
    model_options,
    open_run,
    pipeline_option,
    with_render_overrides,
    workspace_option,
)
from faceswap_gan.errors import FaceswapError


@click.command("translate", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option("--to", "to", required=True, metavar="SPEAKER", help="The speaker (or domain) to become.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output image [default: IMAGE.<speaker>.<ext> beside the input].")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@model_options
@workspace_option
@pipeline_option
@device_option(inference=True)
def command(image_path: Path, to: str, output: Path | None, force: bool, model_name: str | None,
            color: str | None, seamless: bool | None, sharpen: float | None, workspace: str | None,
            pipeline: str | None, device: str) -> None:
    """Align the face(s) in IMAGE, translate them to speaker --to and paste them back.

    \b
    Examples:
      faceswap translate portrait.jpg --to speaker_b
      faceswap translate portrait.png --to female --model faces_by_gender -o out.png
    """

    import cv2

    from faceswap_gan.device import resolve_device
    from faceswap_gan.fileio import atomic_path, check_writable
    from faceswap_gan.models.checkpoint import load_face_model
    from faceswap_gan.models.locate import locate_model
    from faceswap_gan.render.still import translate_image
    from faceswap_gan.video.reader import read_image

    image = read_image(image_path)
    if output is None:
        output = image_path.with_name(f"{image_path.stem}.{to}{image_path.suffix}")
    check_writable(output, force, source=image_path)
    ext = output.suffix.lower()
    if ext not in (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"):
        raise FaceswapError(f"cannot write '{ext}' images; use .png or .jpg")
    ws, preset = open_run(workspace, pipeline)
    preset = with_render_overrides(preset, color, seamless, sharpen)
    dev = resolve_device(device)
    model_path = locate_model(ws, model_name)
    model = load_face_model(model_path, dev, need_encoder=True)
    result = translate_image(image, model, preset, to, dev)
    ok, data = cv2.imencode(ext, cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise FaceswapError(f"could not encode {output.name}")
    with atomic_path(output, overwrite=force) as tmp:  # checked again under the lock
        tmp.write_bytes(data.tobytes())
    console().print(f"translated {result.faces} face(s) to {to}: {output}")
