#!/bin/sh
# tools/readme.sh - makes every picture and table the README shows, with the
# built-in model, exactly by the commands the README prints next to them.
# Pictures go to tools/readme/, text outputs to tools/readme/*.txt.
# usage: tools/readme.sh   (after make; the report screenshot needs Chromium
# and tests/node_modules, else it is left as it is)
set -e
cd "$(dirname "$0")/.."
O=tools/readme
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
S="The cat sat on the mat. The cat sat on the mat."
./attn maps -p "$S" -o "$T/maps" >/dev/null 2>&1
cp "$T/maps/grid.png" $O/grid.png
./attn maps -p "$S" --layers 0 --heads 1 --no-grid -o "$T/one" >/dev/null 2>&1
cp "$T/one/L00_H01.png" $O/one-head.png
./attn compare --init random -p "$S" --layers 1 --heads 0 -o "$T/cmp" >$O/compare.txt 2>/dev/null
cp "$T/cmp/compare_L01_H00.png" $O/before-after.png
./attn compare -m tests/data/ckpt_0.gguf -m tests/data/ckpt_200.gguf -m tests/data/ckpt_1000.gguf \
    -p "$S" >$O/timeline.txt 2>/dev/null
./attn trace -p "The jury said it did not" -n 6 -k 3 >$O/trace.txt 2>/dev/null
./attn heads -p "$S" --by previous --top 6 >$O/heads.txt 2>/dev/null
./attn explain -p "$S" --layer 1 --head 0 --query 13 >$O/explain.txt 2>/dev/null
./attn heads --induction-test --by induction --top 4 >$O/induction.txt 2>/dev/null
./attn run -p "$S" --lens -o "$T/lens" >/dev/null 2>&1
cp "$T/lens/lens.png" $O/lens.png
./attn ablate --induction-test >$O/ablate-all.txt 2>/dev/null
./attn ablate --induction-test --heads 1.0 -k 3 >$O/ablate.txt 2>/dev/null
C="Mary met John at the station. Later that day, Mary met"
X="Mary met James at the station. Later that day, Mary met"
./attn patch --clean "$C" --corrupt "$X" --target " John" --against " James" -o "$T/patch" >$O/patch.txt 2>/dev/null
cp "$T/patch/heads.png" $O/patch-heads.png
cp "$T/patch/resid.png" $O/patch-resid.png
./attn attribute -p "$C" --target " John" --against " James" -o "$T/attr" >$O/attribute.txt 2>/dev/null
cp "$T/attr/attribute.png" $O/attribute.png
./attn report -p "$S" -o "$T/report.html" >/dev/null 2>&1
if [ -d tests/node_modules/puppeteer-core ] && [ -x /usr/bin/chromium ]; then
    node tests/report/t_report.js "$T/report.html" 2 4 16 $O/report.png >/dev/null || true
fi
ls -la $O
