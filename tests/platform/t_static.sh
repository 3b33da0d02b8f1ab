#!/bin/sh
# The static binary goes anywhere: no dynamic libraries, runs with an empty
# environment from an empty directory, picks a kernel path the CPU has (checked
# under qemu-x86_64 emulating CPUs without AVX2 and with AVX2 only).
cd "$(dirname "$0")/../.." || exit 1
if [ "$(uname -m)" != x86_64 ] || [ -n "$CROSS" ]; then
    echo "SKIP static: x86-64 host only"; exit 0
fi
make -s static >/dev/null 2>&1 || { echo "FAIL static build: make static failed"; exit 1; }
if ldd ./attn-static 2>&1 | grep -q "not a dynamic executable"; then
    echo "PASS static is not dynamic"
else
    echo "FAIL static is not dynamic: $(ldd ./attn-static 2>&1 | head -1)"
fi
bin=$(pwd)/attn-static
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
out=$(cd "$empty" && env -i "$bin" --version 2>&1)
case "$out" in "attn "*) echo "PASS static runs with env -i in an empty directory" ;;
    *) echo "FAIL static runs with env -i in an empty directory: $out" ;; esac
if "$bin" info >/dev/null 2>&1; then
    out=$(cd "$empty" && env -i "$bin" info 2>&1)
    case "$out" in *"simd"*) echo "PASS static built-in model info with env -i" ;;
        *) echo "FAIL static built-in model info with env -i: $out" ;; esac
    if command -v qemu-x86_64 >/dev/null 2>&1; then
        for cpu in qemu64:scalar Haswell:avx2; do
            got=$(qemu-x86_64 -cpu "${cpu%%:*}" "$bin" info 2>&1 | awk '/^simd/ {print $2}')
            if [ "$got" = "${cpu#*:}" ]; then echo "PASS static on a ${cpu%%:*} CPU uses ${cpu#*:}"
            else echo "FAIL static on a ${cpu%%:*} CPU uses ${cpu#*:}: got '$got'"; fi
        done
        # ATTN_SIMD naming a path the CPU lacks is a clear error (exit 2)
        qemu-x86_64 -cpu qemu64 -E ATTN_SIMD=avx2 "$bin" info >/dev/null 2>"$empty/err"
        rc=$?
        if [ $rc -eq 2 ] && grep -q "^attn: " "$empty/err"; then echo "PASS ATTN_SIMD=avx2 on a CPU without AVX2 is refused"
        else echo "FAIL ATTN_SIMD=avx2 on a CPU without AVX2 is refused: rc $rc $(cat "$empty/err")"; fi
    else
        echo "SKIP static under other CPUs: qemu-x86_64 not installed (Debian qemu-user)"
    fi
else
    echo "SKIP static built-in model: this build has no built-in model"
fi
