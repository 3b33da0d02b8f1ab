#!/bin/sh
# Runs every test and ends with one line "N passed, N failed, N skipped".
# A test is a C program build/tests/test_* or a script tests/t_*.{sh,py}. Each
# prints lines "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>";
# anything else it prints is shown as it is. A test that exits non-zero
# without a FAIL line counts as one failure.
#
# sh tests/run.sh TEST...  runs only the tests named. tests/t_aarch64.sh
# (cross-build, then the tests under qemu: minutes) runs only when named, as
# `make test-aarch64` does; otherwise it is reported as SKIP.
cd "$(dirname "$0")/.." || exit 1
B=${B:-build}
ATTN=${ATTN:-./attn}
export ATTN B
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export PY
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ $# -gt 0 ]; then named=1; else named=; set -- "$B"/tests/test_* tests/t_*.sh tests/t_*.py; fi
for t in "$@"; do
    [ -e "$t" ] || { [ -n "$named" ] && echo "FAIL $t: no such test" && echo 1 >>"$log.f"; continue; }
    if [ "$t" = tests/t_aarch64.sh ] && [ -z "$named" ]; then
        echo "== $t"
        echo "   SKIP aarch64: its own target, make test-aarch64"
        echo 1 >>"$log.s"
        continue
    fi
    case "$t" in
        *.sh) cmd="sh $t" ;;
        *.py) cmd="$PY $t" ;;
        *) cmd="$t" ;;
    esac
    echo "== $t"
    start=$(date +%s)
    $cmd >"$log.out" 2>&1
    rc=$?
    sed -n '/^\(PASS\|SKIP\) /!p' "$log.out"
    grep -c '^PASS ' "$log.out" >>"$log.p" || true
    grep '^SKIP ' "$log.out" | sed 's/^/   /'
    n_fail=$(grep -c '^FAIL ' "$log.out")
    if [ "$rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
        echo "FAIL $t: exit status $rc"
        n_fail=1
    fi
    echo "$n_fail" >>"$log.f"
    grep -c '^SKIP ' "$log.out" >>"$log.s" || true
    echo "   ($(( $(date +%s) - start ))s)"
done
sum() { [ -f "$1" ] && awk '{s+=$1} END {print s+0}' "$1" || echo 0; }
p=$(sum "$log.p"); f=$(sum "$log.f"); s=$(sum "$log.s")
rm -f "$log.out" "$log.p" "$log.f" "$log.s"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
