#!/bin/sh
# Output is never half-written, and the same command writes the same bytes.
# - every file goes to a temporary name and is renamed: none is left behind
# - Ctrl-C (SIGINT) in the middle of `run --export` and of `maps` leaves the
#   files completed before it (complete) and no partial or temporary file
# - a full disk (writes failing with EFBIG under `ulimit -f`, and stdout on
#   /dev/full) and a directory that cannot be made or written: one line
#   "attn: ..." and exit status 1, no partial file
# - determinism: byte-identical outputs across runs and -t 1/2/3
cd "$(dirname "$0")/../.." || exit 1
ATTN=${ATTN:-./attn}
PY=${PY:-/usr/bin/python3}
S=tests/fuzz/corpus_gguf
G=$S/gpt2_bpe.gguf
L=$S/llama_spm_gqa.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS output $1"; }
fail() { echo "FAIL output $1: $2"; }
# no_tmp DIR: no temporary file of ours left under DIR
no_tmp() { [ -z "$(find "$1" -name '.*.tmp.*' 2>/dev/null | head -1)" ]; }
# npy_ok FILE BYTES: exists with exactly the size a complete file has
size_is() { [ -f "$1" ] && [ "$(wc -c <"$1")" -eq "$2" ]; }
# png_ok FILE: ends with the IEND chunk
png_ok() { [ "$(tail -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "49454e44ae426082" ]; }

# ---- atomic files: a normal export leaves only the final names
$ATTN run -m $G -p "the cat sat" --export npy,json -o $tmp/a >/dev/null 2>&1
if [ -f $tmp/a/attention.npy ] && [ -f $tmp/a/logits.npy ] && [ -f $tmp/a/tokens.json ] && no_tmp $tmp/a &&
    [ "$(ls -A $tmp/a | wc -l)" -eq 3 ]; then pass "run --export writes exactly its three files"
else fail "run --export writes exactly its three files" "$(ls -A $tmp/a)"; fi

# ---- a model slow enough to interrupt: context 1024, 4 layers x 4 heads
if ! $PY tests/fuzz/make_seeds.py --big $tmp/big.gguf; then
    fail "big model" "tests/fuzz/make_seeds.py --big failed"
    exit 1
fi
ids512=$(seq -s, 0 511 | awk -F, '{for (i = 1; i <= NF; i++) printf "%s%d", (i > 1 ? "," : ""), $i % 64}')
att_bytes=$((128 + 4 * 4 * 512 * 512 * 4))

# wait_for PATTERN PID: until a file matching the glob exists (up to 20 s) while PID runs
wait_for() {
    i=0
    while [ $i -lt 2000 ]; do
        for f in $1; do [ -e "$f" ] && return 0; done
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.01
        i=$((i + 1))
    done
    return 1
}

# run --export: a complete export, then an interrupted one into the same folder
$ATTN run -m $tmp/big.gguf --ids $ids512 --export npy,json -o $tmp/r >/dev/null 2>&1
cp $tmp/r/attention.npy $tmp/att.before
ATTN_SIMD=scalar $ATTN run -m $tmp/big.gguf --ids $ids512 -t 1 --export npy,json -o $tmp/r >/dev/null 2>$tmp/err &
pid=$!
if wait_for "$tmp/r/.attention.npy.tmp.*" $pid; then
    kill -INT $pid
    wait $pid
    rc=$?
    if [ $rc -ne 0 ] && no_tmp $tmp/r && cmp -s $tmp/r/attention.npy $tmp/att.before && size_is $tmp/r/attention.npy $att_bytes; then
        pass "Ctrl-C in run --export: earlier files intact, no partial or temporary file"
    else
        fail "Ctrl-C in run --export" "rc $rc, files: $(ls -A $tmp/r | tr '\n' ' ')"
    fi
else
    wait $pid
    fail "Ctrl-C in run --export" "the temporary attention.npy never appeared (finished too fast?)"
fi

# maps: interrupted after a few pictures; those are complete, the one being written is gone,
# and so is the scratch file holding the captured attention (--max-mem 0)
$ATTN maps -m $tmp/big.gguf --ids $ids512 -t 1 --max-mem 0 -o $tmp/m >/dev/null 2>&1 &
pid=$!
if wait_for "$tmp/m/L00_H02.png" $pid; then
    kill -INT $pid
    wait $pid
    rc=$?
    n=0 bad=
    for f in $tmp/m/*.png; do
        n=$((n + 1))
        png_ok "$f" || bad="$bad $f"
    done
    if [ $rc -ne 0 ] && no_tmp $tmp/m && [ $n -ge 3 ] && [ -z "$bad" ]; then
        pass "Ctrl-C in maps: $n complete pictures, no partial, temporary or scratch file"
    else
        fail "Ctrl-C in maps" "rc $rc, $n pictures, incomplete:$bad, left: $(ls -A $tmp/m | grep tmp | head -3)"
    fi
else
    wait $pid
    fail "Ctrl-C in maps" "no picture appeared"
fi

# ---- captured attention above --max-mem goes to a scratch file on disk
# same_files A B: every file of folder A is in B with the same bytes, and B has no other
same_files() {
    [ "$(ls -A "$1")" = "$(ls -A "$2")" ] || return 1
    for f in "$1"/*; do cmp -s "$f" "$2/$(basename "$f")" || return 1; done
}
$ATTN maps -m $tmp/big.gguf --ids $ids512 --layers 0,3 --heads 1-2 -o $tmp/sm >/dev/null 2>&1
$ATTN maps -m $tmp/big.gguf --ids $ids512 --layers 0,3 --heads 1-2 --max-mem 0 -o $tmp/sd >/dev/null 2>$tmp/err
rc=$?
mb=$(awk 'BEGIN { printf "%.1f", 4 * 512 * 512 * 4 / 1e6 }') # 4 heads x 512 x 512 floats
if [ $rc -eq 0 ] && grep -q "^attn: maps: 4 heads of 512 x 512 attention: $mb MB, over --max-mem 0 MB: kept in a scratch file in $tmp/sd" $tmp/err &&
    same_files $tmp/sm $tmp/sd; then pass "maps --max-mem 0: estimate printed ($mb MB), scratch file on disk, the same pictures, nothing left"
else fail "maps --max-mem 0" "rc $rc: $(head -c 300 $tmp/err); files: $(ls -A $tmp/sd | head -5 | tr '\n' ' ')"; fi
$ATTN run -m $tmp/big.gguf --ids $ids512 --export npy,json -o $tmp/rx >/dev/null 2>&1
$ATTN maps --from $tmp/rx --layers 0,3 --heads 1-2 --drop-first -o $tmp/fm >/dev/null 2>&1
$ATTN maps --from $tmp/rx --layers 0,3 --heads 1-2 --drop-first --max-mem 1 -o $tmp/fd >/dev/null 2>$tmp/err
rc=$?
if [ $rc -eq 0 ] && grep -q "over --max-mem 1 MB: kept in a scratch file" $tmp/err && same_files $tmp/fm $tmp/fd; then
    pass "maps --from --drop-first --max-mem 1: the same pictures from a scratch file"
else fail "maps --from --max-mem 1" "rc $rc: $(head -c 300 $tmp/err)"; fi
$ATTN trace -m $L -p "the cat" -n 8 --attn $tmp/tm >$tmp/tm.out 2>/dev/null
$ATTN trace -m $L -p "the cat" -n 8 --attn $tmp/td --max-mem 0 >$tmp/td.out 2>$tmp/err
rc=$?
if [ $rc -eq 0 ] && grep -q "kept in a scratch file in $tmp/td" $tmp/err && cmp -s $tmp/tm.out $tmp/td.out && same_files $tmp/tm $tmp/td; then
    pass "trace --attn --max-mem 0: the same table and files"
else fail "trace --attn --max-mem 0" "rc $rc: $(head -c 300 $tmp/err)"; fi
# a data-size limit of 60 MB (ulimit -d, in KB) below the 134 MB that compare captures at 1024 tokens
ids1024=$(seq -s, 0 1023 | awk -F, '{for (i = 1; i <= NF; i++) printf "%s%d", (i > 1 ? "," : ""), $i % 64}')
if [ -n "$ATTN_SANITIZE" ] || [ -n "$ATTN_EMULATED" ]; then
    echo "SKIP output compare under ulimit -d: ASan's shadow memory or qemu's own does not fit a data limit"
else
    $ATTN compare -m $tmp/big.gguf --init random --ids $ids1024 >$tmp/cm.out 2>/dev/null
    sh -c "ulimit -d 60000; exec $ATTN compare -m $tmp/big.gguf --init random --ids $ids1024" >$tmp/cl.out 2>$tmp/err
    rc1=$? e1=$(cat $tmp/err)
    sh -c "ulimit -d 60000; exec $ATTN compare -m $tmp/big.gguf --init random --ids $ids1024 --max-mem 0" >$tmp/cd.out 2>$tmp/err
    rc2=$?
    if [ $rc1 -eq 0 ]; then echo "SKIP output compare under ulimit -d: the data limit is not enforced here (Linux < 4.7?)"
    elif [ $rc1 -eq 1 ] && [ "$(echo "$e1" | wc -l)" -eq 1 ] && echo "$e1" | grep -q "^attn: compare: .*out of memory.*--max-mem" &&
        [ $rc2 -eq 0 ] && [ "$(grep -c 'attention: .*kept in a scratch file' $tmp/err)" -eq 2 ] && [ -s $tmp/cm.out ] && cmp -s $tmp/cm.out $tmp/cd.out; then
        pass "compare under a 60 MB data limit: in memory one line and exit 1; --max-mem 0 on disk, the same table"
    else fail "compare under ulimit -d" "in memory: rc $rc1: $e1; on disk: rc $rc2: $(head -c 300 $tmp/err)"; fi
fi
# a disk without room: checked before the capture (exit 2), or the reservation fails (exit 1)
if unshare -rm sh -c "mkdir -p $tmp/small && mount -t tmpfs -o size=2m tmpfs $tmp/small" 2>/dev/null; then
    unshare -rm sh -c "mount -t tmpfs -o size=2m tmpfs $tmp/small && exec $ATTN maps -m $tmp/big.gguf --ids $ids512 --max-mem 0 -o $tmp/small/out" >/dev/null 2>$tmp/err
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <$tmp/err)" -eq 1 ] &&
        grep -q "^attn: maps: 16 heads of 512 x 512 attention: 16.8 MB on disk: $tmp/small/out: not enough free space (2.1 MB free)" $tmp/err; then
        pass "maps --max-mem 0 on a 2 MB disk: the space is checked first, exit 2"
    else fail "maps --max-mem 0 on a 2 MB disk" "rc $rc: $(head -c 400 $tmp/err)"; fi
else echo "SKIP output scratch file on a small disk: cannot mount a tmpfs in a user namespace here"; fi

# ---- full disk and unwritable places: one line, exit 1, nothing left
# err1 NAME CMD...: exit 1, one "attn: " line, no files under $tmp/full
err1() {
    name=$1
    shift
    "$@" >/dev/null 2>$tmp/err
    rc=$?
    files=$(find $tmp/full -type f 2>/dev/null | head -3)
    if [ $rc -eq 1 ] && [ "$(wc -l <$tmp/err)" -eq 1 ] && grep -q "^attn: " $tmp/err && [ -z "$files" ]; then pass "$name"
    else fail "$name" "rc $rc, stderr: $(head -c 300 $tmp/err), files: $files"; fi
}
rm -rf $tmp/full
# a file size limit makes writes fail like a full disk (EFBIG; SIGXFSZ ignored)
err1 "disk full during run --export" sh -c "trap '' XFSZ; ulimit -f 4; exec $ATTN run -m $G --ids $(seq -s, 1 16) --export npy,json -o $tmp/full"
err1 "disk full during maps" sh -c "trap '' XFSZ; ulimit -f 4; exec $ATTN maps -m $G -p 'the cat sat on the mat' -o $tmp/full"
err1 "disk full for the scratch file of maps --max-mem 0" sh -c "trap '' XFSZ; ulimit -f 1000; exec $ATTN maps -m $tmp/big.gguf --ids $ids512 --max-mem 0 -o $tmp/full"
# an output name that is a symlink to /dev/full: a character device is written
# through (as -o /dev/stdout is), so the write fails like a full disk; the
# link is never replaced
mkdir -p $tmp/ln && ln -s /dev/full $tmp/ln/logits.npy
$ATTN run -m $G --ids 1,2,3 --export npy -o $tmp/ln >/dev/null 2>$tmp/err
rc=$?
if [ $rc -eq 1 ] && [ -L $tmp/ln/logits.npy ] && [ "$(wc -l <$tmp/err)" -eq 1 ] && no_tmp $tmp/ln; then
    pass "an output that is a symlink to /dev/full is written through: one line, exit 1, the link kept"
else fail "output symlink to /dev/full" "rc $rc: $(cat $tmp/err), $(ls -l $tmp/ln)"; fi
$ATTN run -m $G -p "the cat" >/dev/full 2>$tmp/err
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <$tmp/err)" -eq 1 ] && grep -q "^attn: standard output" $tmp/err; then pass "table to /dev/full"
else fail "table to /dev/full" "rc $rc: $(cat $tmp/err)"; fi
$ATTN tokenize -m $G -p "the cat" >/dev/full 2>$tmp/err
rc=$?
if [ $rc -eq 1 ] && grep -q "^attn: " $tmp/err; then pass "tokenize to /dev/full"
else fail "tokenize to /dev/full" "rc $rc: $(cat $tmp/err)"; fi
: >$tmp/file
err1 "-o below a regular file (cannot make the directory)" $ATTN run -m $G --ids 1,2 --export npy -o $tmp/file/sub
err1 "-o in /proc (cannot write there)" $ATTN run -m $G --ids 1,2 --export npy -o /proc/self
err1 "maps -o below a regular file" $ATTN maps -m $G --ids 1,2 -o $tmp/file/sub
$ATTN run -m $G --ids 1,2 --export npy -o $tmp/file >/dev/null 2>$tmp/err
rc=$?
if [ $rc -eq 2 ] && grep -q "not a directory" $tmp/err; then pass "-o naming a regular file is bad input"
else fail "-o naming a regular file is bad input" "rc $rc: $(cat $tmp/err)"; fi

# ---- determinism: the same bytes across runs and thread counts
d_ok=1 why=
for t in 1 2 3; do
    $ATTN run -m $L -p "the cat the hello world" --per-token --format json -t $t --export npy,json -o $tmp/d$t >$tmp/d$t.out 2>/dev/null || d_ok=0
    $ATTN run -m $L -p "the cat the hello world" --per-token --format json -t $t --export npy,json -o $tmp/e$t >$tmp/e$t.out 2>/dev/null || d_ok=0
    for f in attention.npy logits.npy tokens.json; do
        cmp -s $tmp/d1/$f $tmp/d$t/$f || { d_ok=0; why="$why $f(-t $t)"; }
        cmp -s $tmp/d1/$f $tmp/e$t/$f || { d_ok=0; why="$why $f(rerun -t $t)"; }
    done
    cmp -s $tmp/d1.out $tmp/d$t.out && cmp -s $tmp/d1.out $tmp/e$t.out || { d_ok=0; why="$why stdout(-t $t)"; }
done
[ $d_ok -eq 1 ] && pass "run --export and table byte-identical across runs and -t 1/2/3" ||
    fail "run byte-identical across runs and -t 1/2/3" "differs:$why"
d_ok=1 why=
for t in 1 2 3; do
    $ATTN maps -m $L -p "the cat the hello world" -t $t --format png,svg -o $tmp/mp$t >/dev/null 2>&1 || d_ok=0
    for f in $tmp/mp1/*; do cmp -s "$f" $tmp/mp$t/$(basename "$f") || { d_ok=0; why="$why $(basename "$f")(-t $t)"; }; done
    $ATTN trace -m $L -p "the cat" -n 6 --temp 0.9 --seed 7 -t $t --format json >$tmp/tr$t.out 2>/dev/null || d_ok=0
    cmp -s $tmp/tr1.out $tmp/tr$t.out || { d_ok=0; why="$why trace(-t $t)"; }
    $ATTN heads -m $L -p "the cat the cat" -t $t --format json >$tmp/h$t.out 2>/dev/null || d_ok=0
    cmp -s $tmp/h1.out $tmp/h$t.out || { d_ok=0; why="$why heads(-t $t)"; }
done
[ $d_ok -eq 1 ] && pass "maps, trace --seed, heads byte-identical across -t 1/2/3" ||
    fail "maps, trace, heads byte-identical across -t 1/2/3" "differs:$why"
$ATTN trace -m $L -p "the cat" -n 6 --temp 0.9 --seed 8 --format json >$tmp/tr8.out 2>/dev/null
$ATTN trace -m $L -p "the cat" -n 3 --temp 0.9 --seed 7 >$tmp/trs.out 2>&1
if ! cmp -s $tmp/tr1.out $tmp/tr8.out && grep -q "seed 7" $tmp/trs.out; then pass "trace: the seed is printed and changes the sample"
else fail "trace: the seed is printed and changes the sample" "$(head -3 $tmp/trs.out)"; fi
