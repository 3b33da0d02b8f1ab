#!/bin/sh
# tests/platform/t_aarch64.sh - cross-build for AArch64 (make CROSS=aarch64-linux-gnu-)
# and run the C tests under qemu-aarch64, so the NEON path and the portable
# code are checked on an x86 machine. SKIP when the tools are missing.
# Debian: gcc-aarch64-linux-gnu, qemu-user.
CROSS=aarch64-linux-gnu-
if [ "$(uname -m)" = aarch64 ]; then echo "SKIP aarch64: this machine is aarch64, the native tests cover it"; exit 0; fi
if ! command -v ${CROSS}gcc >/dev/null 2>&1; then echo "SKIP aarch64: ${CROSS}gcc not installed"; exit 0; fi
QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)
if [ -z "$QEMU" ]; then echo "SKIP aarch64: qemu-aarch64 not installed"; exit 0; fi
export QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}
BA=build-aarch64
# Each program or script under qemu gets LIMIT seconds (all of them together
# take 1-2 minutes here): a hang fails with its name, not with CI's whole time.
LIMIT=${AARCH64_LIMIT:-300}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Only the C tests: nice, so the cross-build does not crowd a shared machine.
if ! nice make -s CROSS=$CROSS $(ls tests/unit/test_*.c | sed "s|^tests/unit/\(.*\)\.c$|$BA/tests/unit/\1|") >"$log" 2>&1; then
    echo "FAIL aarch64 build: $(grep -m1 -i error "$log")"
    exit 1
fi
echo "PASS aarch64 cross-build"
rc=0
for t in $BA/tests/unit/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    # each line of the test, marked as the aarch64 run
    timeout -k 10 "$LIMIT" "$QEMU" "$t" >"$log" 2>&1
    st=$?
    [ $st -eq 124 ] && echo "FAIL aarch64 $name: still running after $LIMIT s under qemu, killed" >>"$log"
    sed -n 's/^\(PASS\|FAIL\|SKIP\) /\1 aarch64 /p' "$log"
    if [ $st -ne 0 ] && ! grep -q '^FAIL ' "$log"; then
        echo "FAIL aarch64 $name: exit status $st under qemu"
        tail -3 "$log"
        rc=1
    fi
    grep -q '^FAIL ' "$log" && rc=1
done
# The AArch64 attn binary through the CLI and script tests (parity with the
# references on the NEON path, bad files, limits, outputs, tokenizers, views,
# head scores, the built-in model's claims), run under qemu by a wrapper.
if ! nice make -s CROSS=$CROSS $BA/attn >"$log" 2>&1; then
    echo "FAIL aarch64 attn build: $(grep -m1 -i error "$log")"
    exit 1
fi
wrap=$(mktemp)
trap 'rm -f "$log" "$wrap"' EXIT
printf '#!/bin/sh\nexec "%s" "%s/%s/attn" "$@"\n' "$QEMU" "$(pwd)" "$BA" >"$wrap"
chmod +x "$wrap"
for t in tests/parity/t_parity.py tests/cli/t_badfiles.py tests/cli/t_limits.sh tests/cli/t_output.sh tests/tok/t_tok.sh \
         tests/cli/t_trace.py tests/cli/t_views.py tests/cli/t_heads.py tests/cli/t_lens.py; do
    case "$t" in *.sh) run="sh $t" ;; *) run="${PY:-python3} $t" ;; esac
    ATTN=$wrap ATTN_EMULATED=qemu timeout -k 10 "$LIMIT" $run >"$log" 2>&1
    st=$?
    [ $st -eq 124 ] && echo "FAIL aarch64 $t: still running after $LIMIT s under qemu, killed" >>"$log"
    sed -n 's/^\(PASS\|FAIL\|SKIP\) /\1 aarch64 /p' "$log"
    if [ $st -ne 0 ] && ! grep -q '^FAIL ' "$log"; then
        echo "FAIL aarch64 $t: exit status $st under qemu"
        rc=1
    fi
    grep -q '^FAIL ' "$log" && rc=1
done
exit $rc
