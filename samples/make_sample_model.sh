#!/usr/bin/env bash
# How samples/sample_model.safetensors was made: the exact commands, on the 2-core CPU.
#
#   bash samples/make_sample_model.sh [WORKSPACE] [MINUTES]
#
# The default recipe (`debate`) trained by time on both cores: MINUTES in all (30 for the
# shipped model), split over steps 1-3 by the preset's time_share. The README's `paper` and
# `twostep` columns were trained by the earlier version of this script (step counts on one
# core each); their commands are in the git history of this file.
set -euo pipefail
WS=${1:-workspace_sample_model}
MINUTES=${2:-30}
FS=".venv/bin/faceswap"

$FS samples --workspace "$WS"                      # 30 s per speaker, 640x360, seed 0
$FS extract "$WS/samples/speaker_a.mp4" --speaker speaker_a --workspace "$WS"
$FS extract "$WS/samples/speaker_b.mp4" --speaker speaker_b --workspace "$WS"
$FS train --pipeline debate --model debate --minutes "$MINUTES" --workspace "$WS"

# Render the sample debate with --swap and score it against the face-swap truth.
$FS render "$WS/samples/debate.mp4" --swap --model "$WS/models/debate" \
    -o "$WS/eval/debate_debate.mp4" --force --workspace "$WS"
$FS eval --clip "$WS/samples/debate.mp4" --rendered "$WS/eval/debate_debate.mp4" --model debate \
    --json "$WS/eval/debate_debate.json" --strip "$WS/eval/debate_debate_strip.png" --workspace "$WS"

# G + E + D in fp16 in one safetensors file, with the speaker gate.
.venv/bin/python - "$WS" <<'PY'
import sys
from pathlib import Path
from faceswap_gan.models.checkpoint import export_inference_model
out = export_inference_model(Path(sys.argv[1]) / "models" / "debate", Path("samples/sample_model.safetensors"))
print(out, out.stat().st_size / 1e6, "MB")
PY
