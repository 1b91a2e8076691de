#!/usr/bin/env bash
# How samples/sample_model.safetensors was made: the exact commands, on the 2-core CPU.
# The recipes compared in README's table each trained on one core (taskset, one thread),
# so a run's budget is its own core's time; the step counts below are what each reached.
#
#   bash samples/make_sample_model.sh [WORKSPACE]
set -euo pipefail
WS=${1:-workspace_sample_model}
FS=".venv/bin/faceswap"

$FS samples --workspace "$WS"                      # 30 s per speaker, 640x360, seed 0
$FS extract "$WS/samples/speaker_a.mp4" --speaker speaker_a --workspace "$WS"
$FS extract "$WS/samples/speaker_b.mp4" --speaker speaker_b --workspace "$WS"

# The default recipe (`debate`: per-speaker output blocks in G, then step 3), 33 minutes on
# one core of the Xeon (AMX, bf16): its preset's step counts are exactly these.
export OMP_NUM_THREADS=1
taskset -c 1 $FS train --pipeline debate --model debate --step 1 --steps 800 --workspace "$WS"
taskset -c 1 $FS train --model debate --step 2 --steps 300 --workspace "$WS"
taskset -c 1 $FS train --model debate --step 3 --steps 3000 --workspace "$WS"
# The paper's recipe, for the comparison, on the other core (about the same time).
taskset -c 0 $FS train --pipeline paper --model paper --step 1 --steps 1400 --workspace "$WS"
taskset -c 0 $FS train --model paper --step 2 --steps 1500 --workspace "$WS"
unset OMP_NUM_THREADS

# Render the sample debate with --swap and score it against the face-swap truth.
for m in debate paper; do
    $FS render "$WS/samples/debate.mp4" --swap --model "$WS/models/$m" \
        -o "$WS/eval/debate_$m.mp4" --force --workspace "$WS"
    $FS eval --clip "$WS/samples/debate.mp4" --rendered "$WS/eval/debate_$m.mp4" \
        --json "$WS/eval/debate_$m.json" --workspace "$WS"
done

# The winner, in fp16, G + E + D in one safetensors file.
.venv/bin/python - "$WS" <<'PY'
import sys
from pathlib import Path
from faceswap_gan.models.checkpoint import export_inference_model
out = export_inference_model(Path(sys.argv[1]) / "models" / "debate", Path("samples/sample_model.safetensors"))
print(out, out.stat().st_size / 1e6, "MB")
PY
