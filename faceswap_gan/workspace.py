"""Where each command reads and writes by default: one folder with a place for each kind of data.

    workspace/
      samples/              generated sample footage (faceswap samples)
      faces/<speaker>/      aligned crops (faceswap extract)
      unknown/              crops of faces that are none of the speakers (extract --speakers)
      alignments/           one <source>.jsonl per extracted source
      models/<name>/        step1/, step2/, step3/ checkpoints, previews, metrics; the
                            speaker gate (gate.safetensors, gate.json)
      renders/              swapped videos when the input's folder is not writable
      eval/                 eval reports and strips
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from faceswap_gan.errors import FaceswapError

WORKSPACE_ENV = "FACESWAP_WORKSPACE"
DEFAULT_WORKSPACE = "workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def faces_dir(self) -> Path:
        return self.root / "faces"

    @property
    def unknown_dir(self) -> Path:
        """Crops extract set aside as nobody's (never training data; the gate's negatives)."""
        return self.root / "unknown"

    def speaker_faces_dir(self, speaker: str) -> Path:
        return self.faces_dir / speaker

    @property
    def alignments_dir(self) -> Path:
        return self.root / "alignments"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_dir(self, name: str = "default") -> Path:
        return self.models_dir / name

    @property
    def renders_dir(self) -> Path:
        return self.root / "renders"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    def speakers(self) -> list[str]:
        """Speakers that have a non-empty faces folder, sorted (this order is the label order)."""
        if not self.faces_dir.is_dir():
            return []
        return sorted(
            d.name for d in self.faces_dir.iterdir() if d.is_dir() and any(d.glob("*.png"))
        )


def resolve_workspace(path: str | os.PathLike | None = None, create: bool = True) -> Workspace:
    """--workspace, else $FACESWAP_WORKSPACE, else ./workspace."""
    chosen = Path(path or os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE).expanduser()
    if chosen.exists() and not chosen.is_dir():
        raise FaceswapError(f"workspace {chosen} exists and is not a folder")
    if create:
        try:
            chosen.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FaceswapError(f"cannot create workspace {chosen}: {exc.strerror}") from None
    return Workspace(chosen.resolve())
