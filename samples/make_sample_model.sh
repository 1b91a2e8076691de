#!/usr/bin/env bash
# How samples/sample_model.safetensors was made: the exact commands, on the 2-core CPU.
# Both recipes get the same wall-clock budget, trained side by side with one thread each
# (the budget, not the step count, is what an ordinary machine has).
#
#   bash samples/make_sample_model.sh [WORKSPACE]
set -euo pipefail
WS=${1:-workspace_sample_model}
FS=".venv/bin/faceswap"
PAPER_STEPS1=${PAPER_STEPS1:-1391}
DEBATE_STEPS1=${DEBATE_STEPS1:-4306}
STEPS2=${STEPS2:-1500}

$FS samples --workspace "$WS"                      # 30 s per speaker, 640x360, seed 0
$FS extract "$WS/samples/speaker_a.mp4" --speaker speaker_a --workspace "$WS"
$FS extract "$WS/samples/speaker_b.mp4" --speaker speaker_b --workspace "$WS"

export OMP_NUM_THREADS=1
$FS train --step 1 --pipeline paper  --model paper  --steps "$PAPER_STEPS1"  --workspace "$WS" &
$FS train --step 1 --pipeline debate --model debate --steps "$DEBATE_STEPS1" --workspace "$WS" &
wait
$FS train --step 2 --model paper  --steps "$STEPS2" --workspace "$WS" &
$FS train --step 2 --model debate --pipeline debate --steps "$STEPS2" --workspace "$WS" &
wait
unset OMP_NUM_THREADS

# The same table for both: render the sample debate with --swap and score it.
$FS eval --clip "$WS/samples/debate.mp4" --model "$WS/models/paper" --model "$WS/models/debate" \
    --json "$WS/eval/paper_vs_debate.json" --workspace "$WS"

# The winner, in fp16, G + E + D in one safetensors file.
.venv/bin/python - "$WS" <<'PY'
import sys
from pathlib import Path
from faceswap_gan.models.checkpoint import export_inference_model
out = export_inference_model(Path(sys.argv[1]) / "models" / "debate", Path("samples/sample_model.safetensors"))
print(out, out.stat().st_size / 1e6, "MB")
PY
