#!/bin/sh
# Limits: each refused with exit status 2, one line "attn: ..." on stderr that
# says which limit, and no output file (not even a partial or temporary one).
# Prompt longer than the context, ids out of range, -n past the context,
# layer/head selections out of range, option values out of range, unreadable
# prompt and model files. (Limits inside GGUF files - shapes whose byte size
# overflows, metadata larger than the file, dimensions that disagree - are
# tests/cli/t_badfiles.py.) Models: the fuzz seeds in tests/fuzz/corpus_gguf/.
cd "$(dirname "$0")/../.." || exit 1
ATTN=${ATTN:-./attn}
S=tests/fuzz/corpus_gguf
G=$S/gpt2_bpe.gguf   # gpt2, context 16, 270 ids, 1 layer, 2 heads
L=$S/llama_spm_gqa.gguf # llama, context 16, 280 ids, adds BOS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# limit NAME EXPECTED-TEXT CMD...: exit 2, one line with the text, no files in $tmp/out
limit() {
    name=$1 want=$2
    shift 2
    rm -rf "$tmp/out"
    "$@" >/dev/null 2>"$tmp/err"
    rc=$?
    lines=$(wc -l <"$tmp/err")
    files=$(find "$tmp/out" -type f 2>/dev/null | head -3)
    if [ $rc -eq 2 ] && [ "$lines" -eq 1 ] && grep -q "^attn: .*$want" "$tmp/err" && [ -z "$files" ]; then
        echo "PASS limit $name"
    else
        echo "FAIL limit $name: rc $rc, $lines lines: $(head -c 300 "$tmp/err"), files: $files"
    fi
}
# ok NAME CMD...: the value just inside the limit works
ok() {
    name=$1
    shift
    if "$@" >/dev/null 2>"$tmp/err"; then echo "PASS limit $name"
    else echo "FAIL limit $name: rc $?: $(head -c 300 "$tmp/err")"; fi
}

ids() { # ids N: "1,2,...,N"
    seq -s, 1 "$1"
}

# prompt longer than the context (16 positions)
# out_args CMD: the arguments that make CMD write its files into $tmp/out
out_args() {
    case $1 in
        run) echo "--export npy,json -o $tmp/out" ;;
        maps) echo "-o $tmp/out" ;;
        trace) echo "-n 1 --attn $tmp/out" ;;
        report) echo "-o $tmp/out/r.html" ;;
        compare) echo "--init random -o $tmp/out" ;;
    esac
}
for cmd in run maps trace heads report compare; do
    extra=$(out_args $cmd)
    limit "$cmd: --ids longer than the context" "17 tokens, longer than the model's context of 16" \
        $ATTN $cmd -m $G --ids "$(ids 17)" $extra
done
ok "run: --ids exactly the context" $ATTN run -m $G --ids "$(ids 16)"
limit "run: -p text longer than the context" "longer than the model's context of 16" \
    $ATTN run -m $G -p "the cat the cat the cat the cat the cat the cat the cat the cat the cat" --export npy -o $tmp/out
printf 'the cat the cat the cat the cat the cat the cat the cat the cat\n' >"$tmp/long.txt"
limit "run: -f file longer than the context" "longer than the model's context of 16" $ATTN run -m $G -f "$tmp/long.txt"
# with BOS added the limit counts the BOS: "the" x 15 is 15 tokens "▁the" + BOS = 16
the15="the the the the the the the the the the the the the the the"
ok "run: llama prompt + BOS exactly the context" $ATTN run -m $L -p "$the15"
limit "run: llama prompt + BOS past the context" "17 tokens, longer than the model's context of 16" \
    $ATTN run -m $L -p "$the15 the" --export npy -o $tmp/out
ok "run: llama prompt --no-bos exactly the context" $ATTN run -m $L -p "$the15 the" --no-bos

# ids out of range (270 ids: 0..269)
for cmd in run maps trace heads report; do
    extra=$(out_args $cmd)
    limit "$cmd: id past the vocabulary" "token id 270 is out of range" $ATTN $cmd -m $G --ids 1,270,3 $extra
done
ok "run: the last id of the vocabulary" $ATTN run -m $G --ids 0,269
limit "run: negative id" "--ids" $ATTN run -m $G --ids 1,-1
limit "run: id beyond 32 bits" "--ids" $ATTN run -m $G --ids 99999999999999999999
limit "run: ids that are not numbers" "--ids" $ATTN run -m $G --ids 1,two
limit "run: empty --ids" "empty" $ATTN run -m $G --ids ""
limit "run: empty prompt (no BOS)" "empty" $ATTN run -m $G -p ""

# trace -n: prompt + n - 1 positions must fit the context
ok "trace: prompt + n - 1 exactly the context" $ATTN trace -m $G --ids 1,2,3 -n 14
limit "trace: -n past the context" "context" $ATTN trace -m $G --ids 1,2,3 -n 15 --attn $tmp/out
limit "trace: -n 0" "-n" $ATTN trace -m $G --ids 1,2,3 -n 0
limit "trace: -n not a number" "-n" $ATTN trace -m $G --ids 1,2,3 -n 1e3
limit "trace: --temp nan" "--temp" $ATTN trace -m $G --ids 1,2,3 -n 2 --temp nan
limit "trace: --top-p 0" "--top-p" $ATTN trace -m $G --ids 1,2,3 -n 2 --top-p 0
limit "bench: -T past the context" "-T 17 is more than the model's context of 16" $ATTN bench -m $G -T 17 --repeat 1
limit "bench: -n past the context" "-n 16 is more than the model's context of 16" $ATTN bench -m $G -n 16 --repeat 1
ok "bench: -T and -n exactly the context" $ATTN bench -m $G -T 16 -n 15 --repeat 1
limit "heads: --induction-test longer than the context" "context" $ATTN heads -m $G --induction-test --len 9
ok "heads: --induction-test exactly the context" $ATTN heads -m $G --induction-test --len 8

# layer/head selections (1 layer, 2 heads)
limit "maps: --layers past the model" "out of range" $ATTN maps -m $G --ids 1,2,3 --layers 1 -o $tmp/out
limit "maps: --heads past the model" "out of range" $ATTN maps -m $G --ids 1,2,3 --heads 0,2 -o $tmp/out
limit "maps: --heads range past the model" "out of range" $ATTN maps -m $G --ids 1,2,3 --heads 0-5 -o $tmp/out
limit "maps: --layers negative" "--layers" $ATTN maps -m $G --ids 1,2,3 --layers -1 -o $tmp/out
limit "maps: --heads not a list" "--heads" $ATTN maps -m $G --ids 1,2,3 --heads x -o $tmp/out
ok "maps: the last layer and head" $ATTN maps -m $G --ids 1,2,3 --layers 0 --heads 1 -o $tmp/ok

# option values
limit "run: -k 0" "-k" $ATTN run -m $G --ids 1,2 -k 0
limit "run: -k past 1000" "-k" $ATTN run -m $G --ids 1,2 -k 1001
limit "run: -t 0" "-t" $ATTN run -m $G --ids 1,2 -t 0
limit "run: -t huge" "-t" $ATTN run -m $G --ids 1,2 -t 99999999999
limit "run: option without its value" "needs a value" $ATTN run -m $G --ids
limit "run: two prompts" "only one" $ATTN run -m $G --ids 1 -p x
limit "run: unknown --export kind" "--export" $ATTN run -m $G --ids 1 --export png -o $tmp/out
limit "run: unknown --format" "--format" $ATTN run -m $G --ids 1 --format xml

# files that cannot be read
limit "run: -f missing file" "No such file" $ATTN run -m $G -f "$tmp/none.txt"
limit "run: -f a directory" "$tmp" $ATTN run -m $G -f "$tmp"
limit "run: -f an endless file" "more than 64 MB" $ATTN run -m $G -f /dev/zero
limit "run: -m missing file" "No such file" $ATTN run -m "$tmp/none.gguf" --ids 1
limit "run: -m a directory" "not a regular file" $ATTN run -m "$tmp" --ids 1
limit "run: -m /dev/null" "not a regular file" $ATTN run -m /dev/null --ids 1
: >"$tmp/empty.gguf"
limit "run: -m an empty file" "empty file" $ATTN run -m "$tmp/empty.gguf" --ids 1
limit "run: vocabulary-only file" "no tensors" $ATTN run -m $S/vocab_only_spm.gguf --ids 1

# --help: exit 0, on stdout, every line within 80 columns (characters)
PY=${PY:-/usr/bin/python3}
for cmd in "" info tokenize run maps trace heads compare report bench explain ablate patch attribute; do
    $ATTN $cmd --help >"$tmp/help" 2>"$tmp/err"
    rc=$?
    long=$($PY -c 'import sys; print(max(len(l.rstrip("\n")) for l in open(sys.argv[1], encoding="utf-8")))' "$tmp/help" 2>/dev/null)
    if [ $rc -eq 0 ] && [ ! -s "$tmp/err" ] && [ -n "$long" ] && [ "$long" -le 80 ]; then echo "PASS limit attn ${cmd:+$cmd }--help fits 80 columns"
    else echo "FAIL limit attn ${cmd:+$cmd }--help: rc $rc, longest line ${long:-?}, stderr: $(head -c 200 "$tmp/err")"; fi
done
