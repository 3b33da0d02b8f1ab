"""tests/testlib.py - shared by the tests/<kind>/t_*.py scripts (not a test itself):
the paths, the PASS/FAIL/SKIP protocol of tests/run.sh with a failure count,
runners for ./attn and tools/convert.py, a scratch directory, readers for
the .npy and .png files attn writes, and the reference models of tests/parity/."""
import atexit
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATTN = os.path.abspath(os.path.join(ROOT, os.environ.get("ATTN") or "attn"))  # ATTN may be relative to the root
PY = os.environ.get("PY") or sys.executable
CONVERT = os.path.join(ROOT, "tools", "convert.py")
SHARED = os.path.join(ROOT, "..", "shared")
MODELS = os.path.join(SHARED, "models")
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))  # gguf_read, llama2c_bin, refmodels

ERRORS = (RuntimeError, OSError, ValueError, KeyError)  # what a failing case raises; FAIL, not a traceback
failures = 0


def result(name, errs, detail=""):
    """PASS name (": detail" when given) if errs is empty, else FAIL name with the first errors."""
    global failures
    if errs:
        failures += 1
        print("FAIL %s: %s" % (name, "; ".join(str(e) for e in errs[:5])))
    else:
        print("PASS %s%s" % (name, ": " + detail if detail else ""))


def check(ok, name, why=""):
    result(name, [] if ok else [why])


def skip(name, why):
    print("SKIP %s: %s" % (name, why))


def guarded(name, fn, *args):
    """fn(*args); an error of ERRORS it raises is FAIL name."""
    try:
        return fn(*args)
    except ERRORS as e:
        result(name, [e])


def done():
    sys.exit(1 if failures else 0)


def _run(what, cmd, rc, text, **kw):
    r = subprocess.run(cmd, capture_output=True, text=text, **kw)
    if rc is not None and r.returncode != rc:
        err = r.stderr if text else r.stderr.decode("utf-8", "replace")
        raise RuntimeError("%s: exit %d (expected %d): %s" % (what, r.returncode, rc, err.strip()[-300:]))
    return r


def attn(*args, rc=None, text=True, **kw):
    """./attn ARGS, output captured (str, or bytes with text=False); RuntimeError
    unless it exits rc (None: any status)."""
    return _run("attn " + args[0], [ATTN] + list(args), rc, text, **kw)


def convert(*args, rc=0):
    """tools/convert.py ARGS, output captured as str; RuntimeError unless it exits rc (None: any status)."""
    return _run("convert.py " + " ".join(args), [PY, CONVERT] + list(args), rc, True)


def scratch(prefix):
    """A new temporary directory, removed when the test exits."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, tmp, True)
    return tmp


def read_npy(path):
    """float32 .npy (version 1/2/3, C order) -> (shape, list of floats), standard library only."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise RuntimeError("%s: not a .npy file" % path)
    if data[6] == 1:
        (hl,) = struct.unpack("<H", data[8:10])
        start = 10
    else:
        (hl,) = struct.unpack("<I", data[8:12])
        start = 12
    header = data[start:start + hl].decode("latin1")
    if "'<f4'" not in header or "'fortran_order': False" not in header:
        raise RuntimeError("%s: not little-endian float32 in C order: %s" % (path, header.strip()))
    shape = tuple(int(x) for x in header.split("'shape':")[1].split("(")[1].split(")")[0].split(",") if x.strip())
    body = data[start + hl:]
    n = 1
    for s in shape:
        n *= s
    return shape, list(struct.unpack("<%df" % n, body[:4 * n]))


def png_read(path):
    """(width, height, rows of RGB bytes) of an 8-bit RGB PNG: every chunk's CRC
    checked, IDAT inflated by Python's zlib (which checks the Adler-32), the
    rows' filters undone. ValueError if any of that fails."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG" % path)
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("%s: bad CRC in %s" % (path, kind))
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            if (depth, ctype) != (8, 2):
                raise ValueError("%s: depth %d colour type %d, not 8-bit RGB" % (path, depth, ctype))
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    try:
        raw = zlib.decompress(idat)
    except zlib.error as e:
        raise ValueError("%s: zlib: %s" % (path, e))
    stride, rows, prev = w * 3, [], bytearray(w * 3)
    if len(raw) != h * (stride + 1):
        raise ValueError("%s: %d bytes of pixels for %dx%d" % (path, len(raw), w, h))
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f > 4:
            raise ValueError("%s: row %d: filter %d" % (path, y, f))
        for x in range(stride) if f else ():
            a = line[x - 3] if x >= 3 else 0
            b, c = prev[x], prev[x - 3] if x >= 3 else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows


def reference_models(*names):
    """tests/parity/refmodels.py (the models of ../shared/ref, with torch and
    numpy), or None after `SKIP name: why` for each of names."""
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import refmodels
    except ImportError as e:  # refmodels raises one too when ../shared/ref lacks a file
        why = "%s (needs torch + numpy: /usr/bin/python3 with python3-torch)" % e \
            if isinstance(e, ModuleNotFoundError) else str(e)
        for name in names:
            skip(name, why)
        return None
    return refmodels
