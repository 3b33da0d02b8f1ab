#!/usr/bin/python3
"""tests/unit/t_deflate.py - attn's own deflate (the zlib stream of every PNG,
attn_render.c) inflated by Python's zlib, nobody's here: test_render
--png-cases writes pictures whose streams reach its edges (4 bytes in all,
incompressible noise stored, 258-byte matches, matches exactly 32768 bytes
back (found: the file under half the pixels' bytes), rows equal 49152 bytes
back (beyond the window: never a match), runs of every length); each must
inflate, with a good Adler-32 and CRCs, to the pixels made here by the same
formula."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from testlib import ROOT, done, png_read, result, scratch  # noqa: E402

M32 = 0xFFFFFFFF


def mix(a):
    a &= M32
    a ^= a >> 16
    a = a * 0x7FEB352D & M32
    a ^= a >> 15
    a = a * 0x846CA68B & M32
    return a ^ a >> 16


def px(which, x, y, c):
    """Channel c of pixel (x, y) of case `which`, as px_case in tests/unit/test_render.c."""
    if which == 0: return mix(c) & 255
    if which == 1: return mix(y * 1000003 + x * 3 + c) & 255
    if which == 2: return (17, 99, 201)[c]
    if which == 3: return mix((y % 2) * 7919 + x * 3 + c) & 255
    if which == 4: return mix((y % 3) * 7919 + x * 3 + c) & 255
    return mix(x // (1 + mix(y) % 97) * 31 + y // 3) >> 8 * c & 255


# name, width, height, largest file / bytes of pixels (rows with their filter byte)
CASES = [("one", 1, 1, 99), ("noise", 200, 150, 1.01), ("flat", 3000, 40, 0.05), ("window", 5461, 6, 0.5),
         ("far", 5461, 6, 1.01), ("runs", 700, 60, 0.5)]

B = os.environ.get("B", "build")
prog = os.path.join(ROOT, B, "tests", "unit", "test_render")
d = scratch("attn_deflate_")
r = subprocess.run([prog, "--png-cases", d], capture_output=True, text=True)
result("deflate cases written", [] if r.returncode == 0 else ["exit %d: %s" % (r.returncode, r.stderr.strip())])
for i, (name, w, h, most) in enumerate(CASES):
    errs, path = [], os.path.join(d, name + ".png")
    try:
        pw, ph, rows = png_read(path)
        if (pw, ph) != (w, h):
            errs.append("%dx%d, want %dx%d" % (pw, ph, w, h))
        for y in range(min(h, ph)):
            want = bytes(px(i, x, y, c) for x in range(w) for c in range(3))
            if rows[y] != want:
                x = next(k for k in range(len(want)) if k >= len(rows[y]) or rows[y][k] != want[k]) // 3
                errs.append("row %d differs from pixel %d" % (y, x))
                break
        raw, size = h * (1 + 3 * w), os.path.getsize(path)
        if size > most * raw:
            errs.append("%d bytes for %d of pixels, more than %g of them" % (size, raw, most))
        detail = "%d bytes of pixels in %d" % (raw, size)
    except (OSError, ValueError) as e:
        errs, detail = [e], ""
    result("deflate %s inflates to its pixels" % name, errs, detail)
done()
