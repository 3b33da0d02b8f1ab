#!/bin/sh
# tests/platform/t_runner.sh - the test runner's own promises (tests/run.sh):
# a test that hangs is killed after TEST_TIMEOUT seconds with all it started
# and counts as a failure with its name; a test that exits non-zero without a
# FAIL line fails; the last line counts what happened.
cd "$(dirname "$0")/../.." || exit 1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cat >"$d/t_hang.sh" <<EOF
echo "PASS before the hang"
sleep 40 &
exec sleep 41
EOF
printf 'echo "PASS one"\nexit 3\n' >"$d/t_exit.sh"
printf 'echo "PASS one"\necho "PASS two"\n' >"$d/t_ok.sh"

start=$(date +%s)
TEST_TIMEOUT=2 sh tests/run.sh "$d/t_hang.sh" "$d/t_exit.sh" "$d/t_ok.sh" >"$d/out" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
if grep -q "^FAIL t_hang.sh: still running after 2 s (TEST_TIMEOUT), killed" "$d/out" && [ $secs -lt 30 ]; then
    echo "PASS runner kills a hanging test after TEST_TIMEOUT ($secs s) and names it"
else
    echo "FAIL runner hang: after $secs s: $(tr '\n' '|' <"$d/out")"
fi
sleep 1
if ps -eo args | grep -qx "sleep 4[01]"; then
    echo "FAIL runner hang: the hanging test's processes are still running"
    pkill -x -f "sleep 4[01]"
else
    echo "PASS runner leaves none of a killed test's processes running"
fi
if grep -q "^FAIL $d/t_exit.sh: exit status 3" "$d/out"; then
    echo "PASS runner fails a test that exits non-zero without a FAIL line"
else
    echo "FAIL runner exit status: $(tr '\n' '|' <"$d/out")"
fi
last=$(tail -1 "$d/out")
if [ "$last" = "4 passed, 2 failed, 0 skipped" ] && [ $rc -eq 1 ]; then
    echo "PASS runner counts: $last, exit status 1"
else
    echo "FAIL runner counts: '$last', exit status $rc (want 4 passed, 2 failed, 0 skipped; 1)"
fi
