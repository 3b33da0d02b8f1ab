#!/bin/sh
# Runs the tests and ends with one line "N passed, N failed, N skipped".
# A test is a C program build/tests/unit/test_* (from tests/unit/test_*.c) or a
# script tests/<kind>/t_*.{sh,py}. Each prints lines "PASS <name>",
# "FAIL <name>: <why>" or "SKIP <name>: <why>"; anything else it prints is
# shown as it is. A test that exits non-zero without a FAIL line counts as one
# failure. Each test's time, wall and CPU, is printed after it, the run's
# before the last line.
#
# sh tests/run.sh             every test except the slow ones (make test)
# sh tests/run.sh --slow      the slow ones (SLOW below; make test-slow)
# sh tests/run.sh TEST...     only the tests named (make test-aarch64 names
#                             tests/platform/t_aarch64.sh: cross-build + qemu)
# Tests run $J at a time (default 2; J=1 for one by one), in this order; the
# output of each stays together, printed as soon as it and those before it
# are done. A test still running after $TEST_TIMEOUT seconds (default 600;
# the slowest, make test-aarch64, takes about 2 minutes) is killed, with all
# it started, and fails: a hang costs minutes and names itself, not CI's
# whole time.
cd "$(dirname "$0")/.." || exit 1
B=${B:-build}
ATTN=${ATTN:-./attn}
J=${J:-2}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
export ATTN B
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export PY
# The slow suites (13-26 s each on 2 cores, measured 2026-12-02): make
# test-slow, which CI runs too. t_tok_hf: three large real tokenizers through
# node and llama.cpp; t_convert_bad: a converter run per bad input;
# t_builtin: the README's first command in a clean clone, built from scratch;
# t_accuracy: four dim-576 models built and run in float64 by torch (~20 s);
# t_random_mem: the random init's 512 MB of layers under memory limits, ten
# runs of it (13-22 s; it made make test 84 s under CI, 2026-12-04).
SLOW="tests/tok/t_tok_hf.sh tests/convert/t_convert_bad.py tests/cli/t_builtin.py tests/parity/t_accuracy.py tests/cli/t_random_mem.sh"
# Own targets, never in the default run: make test-aarch64.
OWN="tests/platform/t_aarch64.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
is_in() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

stray=
elsewhere=
if [ "$1" = --slow ]; then
    set -- $SLOW
elif [ $# -eq 0 ]; then
    # a test left in the flat tests/ folder would silently not run: say so
    stray=$(ls tests/t_*.sh tests/t_*.py tests/test_*.c 2>/dev/null)
    for t in "$B"/tests/unit/test_* tests/*/t_*.sh tests/*/t_*.py; do
        [ -e "$t" ] || continue
        if is_in "$t" "$SLOW $OWN"; then elsewhere="$elsewhere $t"; else set -- "$@" "$t"; fi
    done
fi

# A test run in the background (&) by a shell without job control would
# inherit SIGINT and SIGQUIT ignored, and the tests that send them would
# fail: env --default-signal (GNU coreutils 8.31+) restores them; without it
# the tests run one by one in the foreground.
if env --default-signal=INT,QUIT true 2>/dev/null; then DFL="env --default-signal=INT,QUIT"; else DFL=; J=1; fi

# run_one N TEST (in a subshell of its own): output to $tmp/N.out, then
# "status seconds cpu-seconds" to $tmp/N.rc; the CPU time (user + system, the
# test and all it ran) is the subshell's children's, from the builtin `times`.
# timeout(1) kills the test's whole process group when the time is up.
run_one() {
    start=$(date +%s)
    case "$2" in
        *.sh) cmd="sh $2" ;;
        *.py) cmd="$PY $2" ;;
        *) cmd=$2 ;;
    esac
    $DFL timeout -k 10 "$TEST_TIMEOUT" $cmd >"$tmp/$1.out" 2>&1 </dev/null
    rc=$?
    [ $rc -eq 124 ] && echo "FAIL $(basename "$2"): still running after $TEST_TIMEOUT s (TEST_TIMEOUT), killed" >>"$tmp/$1.out"
    times >"$tmp/$1.cpu"
    cpu=$(sed -n 2p "$tmp/$1.cpu" | tr 'ms' '  ' | awk '{ printf "%.1f", $1 * 60 + $2 + $3 * 60 + $4 }')
    echo "$rc $(( $(date +%s) - start )) $cpu" >"$tmp/$1.rc.new"
    mv "$tmp/$1.rc.new" "$tmp/$1.rc"
}

# show N TEST: prints one finished test as it always was printed
show() {
    echo "== $2"
    out=$tmp/$1.out
    read -r rc secs cpu <"$tmp/$1.rc"
    sed -n '/^\(PASS\|SKIP\) /!p' "$out"
    grep '^SKIP ' "$out" | sed 's/^/   /'
    n_fail=$(grep -c '^FAIL ' "$out")
    if [ "$rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
        echo "FAIL $2: exit status $rc"
        n_fail=1
    fi
    echo "$(grep -c '^PASS ' "$out") $n_fail $(grep -c '^SKIP ' "$out")" >>"$tmp/counts"
    echo "   (${secs}s, ${cpu:-0} s CPU)"
    echo "${cpu:-0}" >>"$tmp/cpus"
}

n=$#
t0=$(date +%s)
started=0
printed=0
print_ready() {
    while [ "$printed" -lt "$n" ] && [ -f "$tmp/$((printed + 1)).rc" ]; do
        printed=$((printed + 1))
        show "$printed" "$(cat "$tmp/$printed.name")"
    done
}
# n_done: how many tests have finished (no process started: the shell's glob)
n_done() {
    c=0
    for f in "$tmp"/*.rc; do [ -e "$f" ] && c=$((c + 1)); done
    echo "$c"
}
for t in "$@"; do
    i=$((started + 1))
    echo "$t" >"$tmp/$i.name"
    if [ ! -e "$t" ]; then
        echo "FAIL $t: no such test" >"$tmp/$i.out"
        echo "127 0" >"$tmp/$i.rc"
    elif [ "$J" -gt 1 ]; then
        run_one "$i" "$t" &
    else
        (run_one "$i" "$t")
    fi
    started=$((started + 1))
    # wait for a free slot, printing what is finished in order meanwhile
    while [ $((started - $(n_done))) -ge "$J" ]; do
        print_ready
        sleep 0.5
    done
    print_ready
done
while [ "$printed" -lt "$n" ]; do
    print_ready
    [ "$printed" -lt "$n" ] && sleep 0.5
done
wait

# what this run left out, each as one SKIP or FAIL line
for t in $elsewhere; do
    case " $SLOW " in *" $t "*) why="slow, make test-slow" ;; *) why="its own target, make test-aarch64" ;; esac
    echo "== $t"
    echo "   SKIP $(basename "$t"): $why"
    echo "0 0 1" >>"$tmp/counts"
done
for t in $stray; do
    echo "FAIL $t: not in a tests/<kind>/ folder, so not run (see tests/run.sh)"
    echo "0 1 0" >>"$tmp/counts"
done
echo "time: $(( $(date +%s) - t0 )) s for $n tests, $J at a time; $(awk '{ s += $1 } END { printf "%.0f", s }' "$tmp/cpus" 2>/dev/null || echo 0) s CPU"
touch "$tmp/counts"
awk '{ p += $1; f += $2; s += $3 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s; exit (f > 0) }' "$tmp/counts"
