#!/bin/sh
# Tokenizer parity with the references and the `attn tokenize` contract.
# The vocabularies in ../shared/models are converted with tools/convert.py
# --vocab-only; build/tests/unit/test_tok compares ids, round trips, labels and
# sentencepiece's handling of invalid UTF-8 with the goldens in tests/data/
# (made from sentencepiece and gpt-3-encoder by tools/gen_tok_goldens.py);
# then the CLI is checked on the same files.
# Env (tests/run.sh): ATTN binary, B build dir, PY python.
ATTN=${ATTN:-./attn}
B=${B:-build}
PY=${PY:-/usr/bin/python3}
S=../shared/models
D=tests/data
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# convert SRC NAME: $T/NAME.gguf, or a SKIP line
convert() {
    if [ ! -e "$1" ]; then echo "SKIP tok_$2: $1 not found"; return 1; fi
    if ! "$PY" tools/convert.py "$1" --vocab-only -o "$T/$2.gguf" >"$T/$2.log" 2>&1; then
        fail "tok_$2_convert" "tools/convert.py $1 --vocab-only: $(tail -1 "$T/$2.log")"
        return 1
    fi
    echo "$2=$T/$2.gguf"
}

set --
for pair in "$S/gpt2-tokenizer gpt2" "$S/tokenizer.model llama" "$S/tokenizer.bin llama2c"; do
    # shellcheck disable=SC2086
    arg=$(convert $pair) && set -- "$@" "$arg" || echo "$arg"
done
[ $# -gt 0 ] && "$B/tests/unit/test_tok" "$D" "$@"

# --ids-only prints exactly the goldens (one line per input line)
cli_ids() { # NAME GOLDEN [options]
    name=$1 gold=$2
    shift 2
    [ -f "$T/$name.gguf" ] || return 0
    if "$ATTN" tokenize -m "$T/$name.gguf" --ids-only -f $D/tokenizer_corpus.txt "$@" >"$T/out" 2>"$T/err" &&
        cmp -s "$T/out" "$gold"; then
        pass "tok_cli_ids_only_$name$(echo "$@" | tr -d ' -')"
    else
        fail "tok_cli_ids_only_$name$(echo "$@" | tr -d ' -')" "output differs from $gold ($(head -c 200 "$T/err"))"
    fi
}
# (the references encode special-token text such as <s> as plain text)
cli_ids gpt2 $D/tok_gpt2.golden --no-special
cli_ids llama $D/tok_llama.golden --no-special
sed 's/^1 \{0,1\}//' $D/tok_llama.golden >"$T/llama_nobos.golden"
cli_ids llama "$T/llama_nobos.golden" --no-bos --no-special

# --ids-only -f streams, one line at a time: its memory is a line's, not the
# file's (a 12 MB file of short lines takes at most 4 MB more than a 1 MB one;
# reading the whole file first would take 11 MB more). The built-in model.
rss_kb() { /usr/bin/time -f %M "$ATTN" tokenize --ids-only -f "$1" 2>&1 >/dev/null | tail -1; }
if [ -n "$ATTN_SANITIZE" ]; then echo "SKIP tok_cli_ids_only_streams: memory growth is not measured under sanitizers"
elif ! /usr/bin/time -f %M true >/dev/null 2>&1; then echo "SKIP tok_cli_ids_only_streams: no GNU time (/usr/bin/time -f %M)"
else
    awk 'BEGIN { for (i = 0; i < 20000; i++) print "the cat sat on the mat and the dog ran " i }' >"$T/small.txt"
    for i in 1 2 3 4 5 6 7 8 9 10 11 12; do cat "$T/small.txt"; done >"$T/big.txt"
    a=$(rss_kb "$T/small.txt")
    b=$(rss_kb "$T/big.txt")
    if [ -n "$a" ] && [ -n "$b" ] && [ "$a" -gt 0 ] && [ $((b - a)) -lt 4096 ]; then pass tok_cli_ids_only_streams
    else fail tok_cli_ids_only_streams "max RSS $a KB for $(wc -c <"$T/small.txt") bytes, $b KB for $(wc -c <"$T/big.txt")"; fi
    echo "   --ids-only max RSS: $a KB (1 MB file), $b KB (12 MB file)"
fi

[ -f "$T/llama.gguf" ] || exit 0
M="$T/llama.gguf"
out=$("$ATTN" tokenize -m "$M" --ids-only -p "Hello world
a")
[ "$out" = "1 15043 3186
1 263" ] && pass tok_cli_prompt_lines || fail tok_cli_prompt_lines "got '$out'"
out=$(printf 'Hello world\n' | "$ATTN" tokenize -m "$M" --ids-only -f -)
[ "$out" = "1 15043 3186" ] && pass tok_cli_stdin || fail tok_cli_stdin "got '$out'"
out=$("$ATTN" tokenize -m "$M" --ids 1,15043,3186 --ids-only)
[ "$out" = "1 15043 3186" ] && pass tok_cli_ids || fail tok_cli_ids "got '$out'"

out=$("$ATTN" tokenize -m "$M" -p "Hi 기" --format tsv)
want=$(printf 'pos\tid\tpiece\tlabel\tspecial\n0\t1\t<s>\t<s>\t1\n1\t6324\t\342\226\201Hi\t\302\267Hi\t0\n2\t29871\t\342\226\201\t\302\267\t0\n3\t30827\t\352\270\260\t\352\270\260\t0')
[ "$out" = "$want" ] && pass tok_cli_tsv || fail tok_cli_tsv "got '$out'"
out=$("$ATTN" tokenize -m "$M" -p "a" --no-bos)
want=$(printf '  pos       id  piece  label\n    0      263  \342\226\201a     \302\267a')
[ "$out" = "$want" ] && pass tok_cli_table || fail tok_cli_table "got '$out'"
"$ATTN" tokenize -m "$M" -p "x 
y" --format json >"$T/j" &&
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["tokens"]; assert d["n_tokens"]==len(t)
assert [x["id"] for x in t][:1]==[1] and [x["label"] for x in t][-2:]==["\\n", "y"], t' "$T/j" &&
    pass tok_cli_json || fail tok_cli_json "$(cat "$T/j")"

# bad input: exit status 2 and one line "attn: ..."
bad() { # NAME args...
    name=$1
    shift
    "$ATTN" tokenize "$@" >/dev/null 2>"$T/err"
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q '^attn: ' "$T/err"; then pass "$name"
    else fail "$name" "exit $rc, stderr '$(cat "$T/err")'"; fi
}
bad tok_cli_bad_option -m "$M" -p x --bogus
bad tok_cli_no_text -m "$M"
bad tok_cli_two_texts -m "$M" -p x --ids 1
bad tok_cli_id_range -m "$M" --ids 32000
bad tok_cli_bad_ids -m "$M" --ids 1,x
bad tok_cli_missing_file -m "$M" -f "$T/nope.txt"
bad tok_cli_missing_model -m "$T/nope.gguf" -p x
bad tok_cli_bad_format -m "$M" -p x --format xml
exit 0
