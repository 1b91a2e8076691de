"""Which model a command uses: --model NAME|PATH, else the workspace's default, else the sample."""

from __future__ import annotations

from pathlib import Path

from faceswap_gan.errors import FaceswapError
from faceswap_gan.workspace import Workspace

DEFAULT_MODEL = "default"
# The small pre-trained model shipped in the repository's samples/ folder.
SAMPLE_MODEL = Path(__file__).resolve().parents[2] / "samples" / "sample_model.safetensors"


def _is_model(path: Path) -> bool:
    return path.is_file() or (path / "step1").is_dir()


def locate_model(workspace: Workspace, name_or_path: str | Path | None = None,
                 sample_model: Path = SAMPLE_MODEL) -> Path:
    """The model folder or inference file to load.

    ``name_or_path`` is a path (a model folder, a step folder or an exported .safetensors
    file) or the name of a folder in ``workspace/models``. Without it: ``models/default``
    when it exists, else the shipped sample model.
    """
    if name_or_path:
        path = Path(name_or_path).expanduser()
        if path.exists():
            return path
        named = workspace.model_dir(str(name_or_path))
        if "/" not in str(name_or_path) and path.suffix != ".safetensors" and named.is_dir():
            return named
        known = known_models(workspace)
        hint = f" (models in {workspace.models_dir}: {', '.join(known)})" if known else ""
        raise FaceswapError(f"no model '{name_or_path}': not a file or folder{hint}")
    default = workspace.model_dir(DEFAULT_MODEL)
    if _is_model(default):
        return default
    if sample_model.is_file():
        return sample_model
    raise FaceswapError("no model: train one with `faceswap train`")


def known_models(workspace: Workspace) -> list[str]:
    """Names of the model folders in the workspace, sorted."""
    if not workspace.models_dir.is_dir():
        return []
    return sorted(d.name for d in workspace.models_dir.iterdir() if _is_model(d))
