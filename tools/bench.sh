#!/bin/sh
# tools/bench.sh - `make bench`: attn against its peers on this machine, every
# figure measured in this run, printed as one markdown table (also written to
# $B/bench/table.md for the README).
#   - FMA peak (own microbenchmark) and read bandwidth            (bench_gemm)
#   - GEMM GFLOP/s vs OpenBLAS sgemm on transformer shapes        (bench_gemm)
#   - forward + full attention capture vs PyTorch, GPT-2-small shape, T=128, 512
#   - `attn ablate` of every head vs the same loop in PyTorch, GPT-2-small, T=128
#   - decode tok/s vs llama2.c run.c, stories15M shape, same file converted
#   - decode tok/s of TinyLlama-1.1B-shaped F16 / Q8_0 models vs the bound
#     bandwidth / bytes read per token, and peak RSS against the weights
# Peers run in their best configuration: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
# (set on some machines for safety) are unset for their commands only.
# Env: B (build dir), ATTN (binary), THREADS (default: online cores), SKIP_LARGE=1
# leaves out the 1.1B models. Models are made once into $B/bench (tools/bench_models.py).
B=${B:-build}
ATTN=${ATTN:-./attn}
D=$B/bench
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
REF=../shared/ref
NT=${THREADS:-$(nproc)}
PEER="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
mkdir -p "$D"
out=$D/results.txt
: >"$out"
say() { echo "bench: $*" >&2; }
num() { awk -v k="$1" '$1 == k { print $2; exit }' "$out"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-" }'; }

say "machine and GEMM (bench_gemm, OpenBLAS linked into it only)"
$PEER "$B/bench_gemm" -t "$NT" >>"$out" || { say "bench_gemm failed"; exit 1; }

say "models (made once into $D)"
large=; [ "${SKIP_LARGE:-0}" = 1 ] && large=--skip-large
if ! $PY -c 'import torch, numpy' 2>/dev/null || [ ! -d "$REF" ]; then
    say "no torch/numpy or no $REF: model-level rows skipped"
    models=0
else
    nice $PY tools/bench_models.py "$D" $large >/dev/null 2>"$D/models.log" || { say "bench_models.py failed (see $D/models.log)"; exit 1; }
    models=1
fi

attn_json() { # model T n -> json line of attn bench
    "$ATTN" bench -m "$1" -T "$2" -n "$3" -t "$NT" --repeat "${4:-5}" --format json
}
jget() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }

if [ $models = 1 ]; then
    for T in 128 512; do
        say "forward + capture, GPT-2-small shape, T=$T: attn"
        echo "attn_capture_ms_$T $(attn_json "$D/gpt2s.gguf" $T 1 10 | jget prefill_capture_ms)" >>"$out"
    done
    say "forward + capture: PyTorch"
    $PEER $PY tools/bench_torch.py "$D/gpt2s.pt" "$NT" 128 512 2>/dev/null | awk '{ print "torch_capture_ms_" $2, $3 }' >>"$out"

    say "ablate every head (one at a time), GPT-2-small shape, T=128: attn, and PyTorch (one forward per head)"
    ids=$($PY -c 'import random; r = random.Random(1); print(",".join(str(r.randrange(50257)) for _ in range(128)))')
    t0=$(date +%s.%N)
    "$ATTN" ablate -m "$D/gpt2s.gguf" --ids "$ids" -t "$NT" --format tsv >"$D/ablate.tsv" &&
        echo "attn_ablate_ms_128 $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", (b - a) * 1000 }')" >>"$out"
    $PEER $PY tools/bench_torch.py --ablate "$D/gpt2s.pt" "$NT" 128 2>/dev/null | awk '{ print "torch_ablate_ms_" $2, $3 }' >>"$out"

    say "decode, stories15M shape: attn, and run.c (-O3 -march=native -fopenmp)"
    echo "attn_stories_toks $(attn_json "$D/stories.gguf" 16 255 | jget decode_tok_s)" >>"$out"
    if gcc -O3 -march=native -fopenmp "$REF/llama2.c/run.c" -lm -o "$D/run" 2>/dev/null; then
        # best of 3 runs with each OpenMP wait policy (spinning loses badly on a busy machine);
        # a prompt, because a random model may end the sample at once
        best=0
        for pol in ACTIVE PASSIVE; do
            for r in 1 2 3; do
                t=$(OMP_WAIT_POLICY=$pol OMP_NUM_THREADS=$NT "$D/run" "$D/stories.bin" -z ../shared/models/tokenizer.bin \
                    -n 256 -t 0 -i "Once upon a time" 2>&1 | sed -n 's/.*achieved tok\/s: \([0-9.]*\).*/\1/p')
                best=$(awk -v a="$best" -v b="${t:-0}" 'BEGIN { print (b > a ? b : a) }')
            done
        done
        echo "runc_stories_toks $best" >>"$out"
    fi

    if [ -z "$large" ]; then
        bw=$(num read_bw_gbs)
        for q in f16 q8_0; do
            f=$D/tinyllama-$q.gguf
            say "decode, TinyLlama-1.1B shape, $q"
            /usr/bin/time -f "rss_kb %M" -o "$D/time.txt" "$ATTN" bench -m "$f" -T 16 -n 32 -t "$NT" --repeat 2 --format json >"$D/tl.json"
            echo "attn_tl_${q}_toks $(jget decode_tok_s <"$D/tl.json")" >>"$out"
            echo "attn_tl_${q}_rss_mb $(awk '/rss_kb/ { printf "%.0f", $2 / 1024 }' "$D/time.txt")" >>"$out"
            size=$(stat -c %s "$f")
            # bytes read per token: every weight but the token embedding (one row of it)
            emb=$(awk -v q=$q 'BEGIN { printf "%.0f", 32000 * 2048 * (q == "f16" ? 2 : 34 / 32) }')
            echo "tl_${q}_weights_mb $(awk -v s="$size" 'BEGIN { printf "%.0f", s / 1048576 }')" >>"$out"
            echo "tl_${q}_bound_toks $(awk -v s="$size" -v e="$emb" -v bw="$bw" 'BEGIN { printf "%.2f", bw * 1e9 / (s - e) }')" >>"$out"
        done
    fi
fi

# ---------------------------------------------------------------- the table
peak=$(num fma_peak_gflops)
{
    echo "attn \`make bench\`, $(date -u +%Y-%m-%d), $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(nproc) cores," \
        "$NT threads, SIMD path $(num path), OpenBLAS kernel $(num openblas_core)" \
        "(load average at the start: $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "| figure | attn | peer or bound | attn / peer | target |"
    echo "|---|---|---|---|---|"
    echo "| FMA peak, own microbenchmark | $peak GFLOP/s | | | |"
    echo "| read bandwidth | $(num read_bw_gbs) GB/s | | | |"
    awk -v peak="$peak" '$1 == "gemm" {
        printf "| GEMM T=%d, %dx%d | %.0f GFLOP/s (%.0f%% of peak) | OpenBLAS %.0f GFLOP/s | %.2f | >= 1.10, >= 80%% of peak |\n",
            $2, $3, $4, $6, 100 * $6 / peak, $8, $6 / $8 }' "$out"
    for T in 128 512; do
        a=$(num attn_capture_ms_$T); p=$(num torch_capture_ms_$T)
        [ -n "$a" ] && echo "| forward + capture, GPT-2-small shape, T=$T | $a ms | PyTorch $p ms | $(ratio "$p" "$a") | >= 3 |"
    done
    a=$(num attn_ablate_ms_128); p=$(num torch_ablate_ms_128)
    [ -n "$a" ] && echo "| ablate every head (144 forwards + losses), GPT-2-small shape, T=128 | $a ms | PyTorch $p ms | $(ratio "$p" "$a") | >= 3 |"
    a=$(num attn_stories_toks); p=$(num runc_stories_toks)
    [ -n "$a" ] && echo "| decode, stories15M shape | $a tok/s | llama2.c run.c $p tok/s | $(ratio "$a" "$p") | >= 2 |"
    for q in f16 q8_0; do
        a=$(num attn_tl_${q}_toks); p=$(num tl_${q}_bound_toks)
        [ -n "$a" ] || continue
        tgt=-; [ $q = f16 ] && tgt=">= 0.80"
        echo "| decode, TinyLlama-1.1B shape, $q | $a tok/s | bound $p tok/s (read bandwidth / bytes per token) | $(ratio "$a" "$p") | $tgt |"
        echo "| peak RSS, TinyLlama-1.1B shape, $q | $(num attn_tl_${q}_rss_mb) MB | weights $(num tl_${q}_weights_mb) MB |" \
            "$(awk -v a="$(num attn_tl_${q}_rss_mb)" -v w="$(num tl_${q}_weights_mb)" 'BEGIN { printf "%+d", a - w }') MB | <= +300 MB |"
    done
    awk '$1 == "gemm" && ($10 > 1e-4) { print "\nwarning: OpenBLAS and attn differ by " $10 " (relative) on " $2 "x" $3 "x" $4 }' "$out"
} | tee "$D/table.md"
