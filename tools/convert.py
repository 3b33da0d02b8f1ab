#!/usr/bin/env python3
"""convert.py - write attn's GGUF v3 files from checkpoints and tokenizers.

Python standard library only (no torch, numpy or safetensors): pickles are read
with a restricted unpickler that never runs code from the file, tensors are
converted with struct/array. The file format and key names are described in
README.md ("The file format") and follow llama.cpp.

Sections: errors and helpers | number formats (f16, bf16, q8_0) | GGUF writer |
source files (safetensors, torch pickles, llama2.c .bin) | tokenizers |
model mappers (nanoGPT, llama2.c, Hugging Face GPT-2 / LLaMA) | main.
"""
import argparse
import base64
import collections
import json
import math
import os
import pickle
import pickletools
import re
import signal
import stat
import struct
import sys
import zipfile
from array import array

LITTLE = sys.byteorder == "little"

# ---------------------------------------------------------------- errors and helpers


class ConvertError(Exception):
    """Bad input: printed as one line 'convert.py: <what>: <why>', exit 2."""


def fail(what, why):
    raise ConvertError("%s: %s" % (what, why))


def error_line(msg):
    """The one stderr line of an error: 'convert.py: <msg>', newlines escaped."""
    print("convert.py: " + str(msg).replace("\r", "\\r").replace("\n", "\\n"), file=sys.stderr)


def warn(msg):
    print("convert.py: warning: %s" % msg, file=sys.stderr)


def prod(xs):
    n = 1
    for x in xs:
        n *= x
    return n


def f32_from_le(b):
    a = array("f")
    a.frombytes(b)
    if not LITTLE:
        a.byteswap()
    return a


def f32_to_le(a):
    if not LITTLE:
        a = array("f", a)
        a.byteswap()
    return a.tobytes()


def read_json(path):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        fail(path, "not valid JSON (%s)" % e)


# ---------------------------------------------------------------- number formats

CHUNK = 1 << 20  # elements converted per step, to bound temporary memory


def f16_bytes(a):
    """float32 values -> IEEE half, round to nearest even; too large -> +-inf."""
    out = []
    for i in range(0, len(a), CHUNK):
        part = a[i:i + CHUNK]
        try:
            out.append(struct.pack("<%de" % len(part), *part))
        except OverflowError:
            out.append(b"".join(_f16_one(x) for x in part))
    return b"".join(out)


def _f16_one(x):
    try:
        return struct.pack("<e", x)
    except OverflowError:
        return struct.pack("<e", math.copysign(math.inf, x))


def bf16_bytes(a):
    """float32 values -> bfloat16, round to nearest even (as torch and ggml do).

    Done on all lanes at once with Python's big integers: each 32-bit lane
    gets 0x7fff + (bit 16) added and keeps its top 16 bits. No lane can carry
    into the next unless it is a NaN, and NaNs take the slow path."""
    out = bytearray()
    for i in range(0, len(a), CHUNK):
        b = f32_to_le(a[i:i + CHUNK])
        n = len(b) // 4
        x = int.from_bytes(b, "little")
        ones = int.from_bytes(b"\x01\x00\x00\x00" * n, "little")
        nan = ((x & (ones * 0x7FFFFFFF)) + ones * 0x007FFFFF) & (ones * 0x80000000)
        if nan:
            for (u,) in struct.iter_unpack("<I", b):
                if (u & 0x7FFFFFFF) > 0x7F800000:
                    out += struct.pack("<H", (u >> 16) | 0x40)
                else:
                    out += struct.pack("<H", (u + 0x7FFF + ((u >> 16) & 1)) >> 16)
            continue
        x += ((x >> 16) & ones) + ones * 0x7FFF
        r = x.to_bytes(4 * n, "little")
        h = bytearray(2 * n)
        h[0::2] = r[2::4]
        h[1::2] = r[3::4]
        out += h
    return bytes(out)


Q8_BLOCK = 32
_Q8 = struct.Struct("<e32b")


def q8_0_bytes(a):
    """ggml Q8_0: per block of 32, f16 d = max|x|/127 then 32 int8 round(x/d)."""
    out = bytearray()
    for i in range(0, len(a), Q8_BLOCK):
        blk = a[i:i + Q8_BLOCK]
        d = max(max(blk), -min(blk)) / 127.0
        inv = 1.0 / d if d else 0.0
        q = [int(v * inv + 0.5) if v >= 0 else int(v * inv - 0.5) for v in blk]
        out += _Q8.pack(d, *q)
    return bytes(out)


def f32_unpack(b, size, code):
    """Little-endian values of `size` bytes (struct code) -> array of float32, CHUNK at a time."""
    a = array("f")
    for i in range(0, len(b) // size, CHUNK):
        part = b[size * i:size * (i + CHUNK)]
        a.extend(struct.unpack("<%d%s" % (len(part) // size, code), part))
    return a


def f32_from_f16(b):
    return f32_unpack(b, 2, "e")


def f32_from_bf16(b):
    w = bytearray(2 * len(b))
    w[2::4] = b[0::2]
    w[3::4] = b[1::2]
    return f32_from_le(bytes(w))


def f32_from_f64(b):
    return f32_unpack(b, 8, "d")


# source dtype -> (bytes per element, converter to float32 or None if not a float)
DTYPES = {
    "F32": (4, f32_from_le), "F16": (2, f32_from_f16), "BF16": (2, f32_from_bf16),
    "F64": (8, f32_from_f64), "I64": (8, None), "I32": (4, None), "I16": (2, None),
    "I8": (1, None), "U8": (1, None), "BOOL": (1, None),
}

# --dtype -> (ggml type of 2-D weights, general.file_type, bytes per element / block)
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
OUT_DTYPES = {"f32": (GGML_F32, 0), "f16": (GGML_F16, 1), "bf16": (GGML_BF16, 32), "q8_0": (GGML_Q8_0, 7)}
GGML_NAMES = {GGML_F32: "F32", GGML_F16: "F16", GGML_Q8_0: "Q8_0", GGML_BF16: "BF16"}


def ggml_nbytes(gtype, n):
    if gtype == GGML_F32:
        return 4 * n
    if gtype == GGML_Q8_0:
        return n // Q8_BLOCK * _Q8.size
    return 2 * n


def encode(gtype, a):
    if gtype == GGML_F32:
        return f32_to_le(a)
    if gtype == GGML_F16:
        return f16_bytes(a)
    if gtype == GGML_BF16:
        return bf16_bytes(a)
    return q8_0_bytes(a)


# ---------------------------------------------------------------- GGUF writer

G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64 = range(13)
_SCALAR = {G_U8: "<B", G_I8: "<b", G_U16: "<H", G_I16: "<h", G_U32: "<I", G_I32: "<i",
           G_F32: "<f", G_BOOL: "<?", G_U64: "<Q", G_I64: "<q", G_F64: "<d"}
ALIGN = 32


def _gstr(s):
    b = s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")
    return struct.pack("<Q", len(b)) + b


def _gvalue(t, v):
    if t == G_STR:
        return _gstr(v)
    return struct.pack(_SCALAR[t], v)


class KV:
    """GGUF metadata in insertion order: key -> (type, value) or (G_ARR, elem type, list)."""

    def __init__(self):
        self.items = collections.OrderedDict()

    def set(self, key, t, v):
        self.items[key] = (t, v)

    def arr(self, key, t, vs):
        self.items[key] = (G_ARR, (t, list(vs)))

    def encode(self):
        out = []
        for key, (t, v) in self.items.items():
            out.append(_gstr(key) + struct.pack("<I", t))
            if t == G_ARR:
                et, vs = v
                out.append(struct.pack("<IQ", et, len(vs)))
                if et == G_STR:
                    out.extend(_gstr(s) for s in vs)
                else:
                    out.append(struct.pack("<%d%s" % (len(vs), _SCALAR[et][1]), *vs))
            else:
                out.append(_gvalue(t, v))
        return b"".join(out)


class OutTensor:
    """A tensor to write: GGUF name, shape in torch order (rows, cols), ggml type,
    and produce() -> float32 array of the row-major values."""

    def __init__(self, name, shape, gtype, produce, src_desc):
        self.name, self.shape, self.gtype = name, tuple(shape), gtype
        self.produce, self.src_desc = produce, src_desc

    def nbytes(self):
        return ggml_nbytes(self.gtype, prod(self.shape))


def pad_to(n, align=ALIGN):
    return (align - n % align) % align


# The smallest magnitude that rounds to inf in each 2-D weight type (round to
# nearest even: f16's largest finite is 65504 and 65520 is the half-way point
# to the next step; bf16 likewise; Q8_0 keeps its scale max|x| / 127 in f16).
TYPE_INF = {GGML_F32: math.inf, GGML_F16: 65520.0, GGML_BF16: 3.3895313892515355e38 + 2.0 ** 119,
            GGML_Q8_0: 65520.0 * 127}


def check_values(t, a):
    """Warns (naming the tensor) about NaN/Inf values, which attn reports where
    they reach the activations; refuses finite values that would become inf in
    the target type (torch's .half() would make them inf: a broken model)."""
    if not a:
        return
    if not math.isfinite(sum(a)):  # a NaN or +-inf anywhere makes the sum non-finite
        bad = sum(1 for x in a if not math.isfinite(x))
        warn("tensor '%s' has %d non-finite values (NaN/Inf); attn reports where they reach the activations"
             % (t.name, bad))
        a = [x for x in a if math.isfinite(x)] or [0.0]
    if t.gtype == GGML_F32:  # finite float32 values stay as they are
        return
    big = max(max(a), -min(a))
    if big >= TYPE_INF[t.gtype]:
        fail(t.name, "value %g becomes inf in %s (from %g on); convert with --dtype bf16 or f32"
             % (big, GGML_NAMES[t.gtype], TYPE_INF[t.gtype]))


class output_file:
    """The output GGUF: a new file made O_CREAT|O_EXCL (never following a
    planted name) beside the target and renamed onto it when complete; an
    existing character device or FIFO is written through; a directory, socket
    or block device is refused, never replaced."""

    def __init__(self, path):
        self.path, self.tmp, self.f = path, None, None

    def __enter__(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        except OSError as e:
            fail(self.path, e.strerror)
        if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            self.f = open(self.path, "wb")
            return self.f
        if st is not None and not stat.S_ISREG(st.st_mode):
            fail(self.path, "is %s, not replaced (give a file name)" % (
                "a directory" if stat.S_ISDIR(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a block device" if stat.S_ISBLK(st.st_mode) else "not a regular file"))
        if os.path.islink(self.path):  # a link to a regular file: replace the file it names
            self.path = os.path.realpath(self.path)
        d, base = os.path.split(os.path.abspath(self.path))
        for _ in range(100):
            tmp = os.path.join(d, ".%s.tmp.%d.%s" % (base, os.getpid(), os.urandom(8).hex()))
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) |
                             getattr(os, "O_CLOEXEC", 0), 0o666)
            except FileExistsError:
                continue
            self.tmp = tmp
            _TEMPS.add(tmp)
            self.f = os.fdopen(fd, "wb")
            return self.f
        fail(self.path, "cannot make a temporary file beside it")

    def __exit__(self, kind, value, tb):
        try:
            self.f.close()
            if self.tmp and kind is None:
                os.replace(self.tmp, self.path)
        finally:
            if self.tmp:
                if os.path.lexists(self.tmp):
                    os.unlink(self.tmp)
                _TEMPS.discard(self.tmp)
        return False


_TEMPS = set()  # temporary files open now, removed when a signal ends the process


def _on_signal(sig, frame):
    for t in list(_TEMPS):
        try:
            os.unlink(t)
        except OSError:
            pass
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)


def catch_signals():
    """Signals that end the process remove the temporary file first (SIGINT:
    KeyboardInterrupt does). A handler already installed (a caller's) is kept."""
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGXFSZ", "SIGALRM", "SIGUSR1", "SIGUSR2"):
        s = getattr(signal, name, None)
        if s is not None and signal.getsignal(s) == signal.SIG_DFL:
            signal.signal(s, _on_signal)


def write_gguf(path, kv, tensors):
    """Writes to a temporary name in the same folder, then renames."""
    kv.set("general.alignment", G_U32, ALIGN)
    head = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(kv.items)), kv.encode()]
    offset = 0
    for t in tensors:
        ne = list(reversed(t.shape))  # ne[0] = columns
        head.append(_gstr(t.name) + struct.pack("<I%dQIQ" % len(ne), len(ne), *ne, t.gtype, offset))
        offset += t.nbytes() + pad_to(t.nbytes())
    head = b"".join(head)
    with output_file(path) as f:
        f.write(head + b"\0" * pad_to(len(head)))
        for t in tensors:
            a = t.produce()
            if len(a) != prod(t.shape):
                fail(t.name, "produced %d values for shape %s" % (len(a), t.shape))
            check_values(t, a)
            data = encode(t.gtype, a)
            f.write(data + b"\0" * pad_to(len(data)))
    return os.path.getsize(path) if os.path.isfile(path) else offset + len(head)


# ---------------------------------------------------------------- source files


class Src:
    """A tensor inside a source file, read on demand.

    shape is in torch order; read() returns its contiguous row-major bytes in
    dtype; ident says where it lives (two names with one ident are tied)."""

    def __init__(self, name, shape, dtype, read, ident):
        self.name, self.shape, self.dtype, self._read, self.ident = name, tuple(shape), dtype, read, ident

    def f32(self):
        size, conv = DTYPES[self.dtype]
        if conv is None:
            fail(self.name, "dtype %s is not a floating-point type" % self.dtype)
        b = self._read()
        if len(b) != size * prod(self.shape):
            fail(self.name, "data is truncated")
        return conv(b)


class FileRange:
    """Reads byte ranges of one file, checked against its size."""

    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)

    def read(self, off, n, what):
        if off < 0 or n < 0 or off + n > self.size:
            fail(self.path, "%s lies past the end of the file" % what)
        with open(self.path, "rb") as f:
            f.seek(off)
            b = f.read(n)
        if len(b) != n:
            fail(self.path, "%s is truncated" % what)
        return b


def load_safetensors(path):
    fr = FileRange(path)
    if fr.size < 8:
        fail(path, "too short for a safetensors file")
    (n,) = struct.unpack("<Q", fr.read(0, 8, "header length"))
    if n > fr.size - 8 or n > 100 << 20:
        fail(path, "header length %d is larger than the file" % n)
    try:
        hdr = json.loads(fr.read(8, n, "header").decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        fail(path, "safetensors header is not valid JSON")
    if not isinstance(hdr, dict):
        fail(path, "safetensors header is not a JSON object")
    base = 8 + n
    out = collections.OrderedDict()
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (b, e) = info["dtype"], [int(x) for x in info["shape"]], info["data_offsets"]
            b, e = int(b), int(e)
        except (KeyError, TypeError, ValueError):
            fail(path, "tensor '%s' has a malformed header entry" % name)
        if dtype not in DTYPES:
            fail(path, "tensor '%s' has unsupported dtype %s" % (name, dtype))
        if min(shape + [0]) < 0 or e - b != DTYPES[dtype][0] * prod(shape) or b < 0 or base + e > fr.size:
            fail(path, "tensor '%s': data offsets disagree with its shape or the file size" % name)
        out[name] = Src(name, shape, dtype,
                        lambda b=b, e=e, name=name: fr.read(base + b, e - b, "tensor '%s'" % name),
                        (path, b))
    return out


# ---- torch pickles (zip format of torch.save >= 1.6, and the legacy format)

TORCH_STORAGES = {
    "FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16", "DoubleStorage": "F64",
    "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
    "ByteStorage": "U8", "BoolStorage": "BOOL",
}


class StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class Storage:
    """A torch storage: dtype, element count, and how to read a byte range of it."""

    def __init__(self, dtype, numel, read, ident):
        self.dtype, self.numel, self.read, self.ident = dtype, numel, read, ident


class TorchTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def src(self, name):
        st, es = self.storage, DTYPES[self.storage.dtype][0]
        n = prod(self.size)
        if min(self.size + (0,)) < 0 or len(self.stride) != len(self.size):
            fail(name, "tensor has a negative size or a stride per dimension missing")
        if n > st.numel:  # e.g. stride 0 over one element: more values than the storage holds
            fail(name, "shape %s claims %d values, its storage holds %d" % (list(self.size), n, st.numel))
        if n == 0:
            return Src(name, self.size, st.dtype, lambda: b"", (st.ident, self.offset))
        extent = 1 + sum((d - 1) * s for d, s in zip(self.size, self.stride))
        if self.offset < 0 or min(self.stride + (0,)) < 0 or self.offset + extent > st.numel:
            fail(name, "tensor lies outside its storage")
        contiguous = all(s == prod(self.size[i + 1:]) for i, s in enumerate(self.stride) if self.size[i] > 1)
        if contiguous:
            read = lambda: st.read(self.offset * es, n * es)
        else:
            read = lambda: _gather(st.read(self.offset * es, extent * es), es, self.size, self.stride)
        return Src(name, self.size, st.dtype, read, (st.ident, self.offset, self.stride))


def _gather(raw, es, size, stride):
    """Strided view -> contiguous bytes (copies the last dimension with a stepped slice)."""
    mv = memoryview(raw).cast({1: "B", 2: "H", 4: "I", 8: "Q"}[es])
    out = []
    idx = [0] * (len(size) - 1)
    while True:
        base = sum(i * s for i, s in zip(idx, stride))
        out.append(mv[base:base + size[-1] * stride[-1]:stride[-1]].tobytes() if stride[-1] else
                   mv[base:base + 1].tobytes() * size[-1])
        k = len(idx) - 1
        while k >= 0:
            idx[k] += 1
            if idx[k] < size[k]:
                break
            idx[k] = 0
            k -= 1
        if k < 0:
            return b"".join(out)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    if not isinstance(storage, Storage):
        raise pickle.UnpicklingError("tensor without storage")
    return TorchTensor(storage, int(offset), [int(x) for x in size], [int(x) for x in stride])


def _rebuild_parameter(data, *unused):
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor, _rebuild_parameter):
        return Inert()
    return func(*args)


def _codecs_encode(s, enc="utf-8"):
    if enc not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError("unexpected encoding %r" % enc)
    return s.encode(enc)


class Inert:
    """Stands in for any class or function not on the whitelist: accepts any
    arguments and state and does nothing, so no code from the file runs."""

    state = None  # what BUILD gave it: a pickled dataclass's fields (a config)

    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        return Inert()

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.state = state

    def __setitem__(self, k, v):
        pass

    def append(self, v):
        pass

    def extend(self, vs):
        pass


PICKLE_WHITELIST = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Size"): tuple,
    ("torch", "device"): str,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("_codecs", "encode"): _codecs_encode,
}


def check_memo(f):
    """Reads one pickle's opcodes (to its STOP) and refuses a memo index larger
    than the number of opcodes before it: CPython's unpickler grows its memo
    array to the index, so a 9 KB file asking for index 174,417,761 made it
    allocate 1.4 GB and spend seconds (fuzzing finding #36). A real pickle
    numbers its memo entries 0, 1, 2, ... as it goes."""
    for n, (op, arg, _) in enumerate(pickletools.genops(f)):
        if op.name in MEMO_OPS and isinstance(arg, int) and arg > n:
            raise pickle.UnpicklingError("memo index %d after %d opcodes" % (arg, n))


MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


class SafeUnpickler(pickle.Unpickler):
    """Restricted unpickler: whitelisted constructors build plain data; any
    other global becomes Inert; storages come from load_storage (or none)."""

    def __init__(self, f, load_storage=None, allow_globals=True):
        super().__init__(f, encoding="utf-8")
        self.f = f
        self.load_storage = load_storage
        self.allow_globals = allow_globals

    def find_class(self, module, name):
        if not self.allow_globals:
            raise pickle.UnpicklingError("unexpected object %s.%s" % (module, name))
        if module == "torch" and name in TORCH_STORAGES:
            return StorageType(TORCH_STORAGES[name])
        return PICKLE_WHITELIST.get((module, name), Inert)

    def load(self):
        pos = self.f.tell()
        check_memo(self.f)
        self.f.seek(pos)
        # CPython reports a huge BYTEARRAY8 that failed to allocate with a second
        # SystemError through sys.excepthook; errors must stay one line
        hook = sys.excepthook
        sys.excepthook = lambda t, v, tb: None if issubclass(t, SystemError) else hook(t, v, tb)
        try:
            return super().load()
        finally:
            sys.excepthook = hook

    def persistent_load(self, pid):
        if self.load_storage is None or not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError("unexpected persistent id")
        if not isinstance(pid[1], StorageType):
            raise pickle.UnpicklingError("unsupported storage type")
        return self.load_storage(pid)


PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                 AttributeError, struct.error, UnicodeDecodeError, RecursionError, OverflowError,
                 MemoryError, ImportError)


def load_torch(path):
    """torch.save file -> its object, with tensors as TorchTensor."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PK\x03\x04":
        return _load_torch_zip(path)
    return _load_torch_legacy(path)


def _stored_entry_offset(path, zf, info):
    """Byte offset of a stored (uncompressed) zip entry's data in the file."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        h = f.read(30)
    if len(h) != 30 or h[:4] != b"PK\x03\x04":
        fail(path, "zip entry %s has a bad local header" % info.filename)
    n, m = struct.unpack("<HH", h[26:30])
    return info.header_offset + 30 + n + m


def _load_torch_zip(path):
    try:
        zf = zipfile.ZipFile(path)
        names = zf.namelist()
    except Exception as e:  # BadZipFile, OSError, NotImplementedError (zip version), ...
        fail(path, "not a readable zip file (%s)" % (str(e) or type(e).__name__))
    pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
    if not pkl:
        fail(path, "zip file without data.pkl: not a torch.save checkpoint")
    prefix = pkl[0][:-len("data.pkl")]
    fr = FileRange(path)

    def load_storage(pid):
        dtype, key, numel = pid[1].dtype, str(pid[2]), int(pid[4])
        name = prefix + "data/" + key
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise pickle.UnpicklingError("storage %s is missing from the zip" % name)
        es = DTYPES[dtype][0]
        if info.file_size < numel * es:
            raise pickle.UnpicklingError("storage %s is shorter than its %d elements" % (name, numel))
        if info.compress_type == zipfile.ZIP_STORED:
            base = _stored_entry_offset(path, zf, info)
            read = lambda off, n: fr.read(base + off, n, "storage " + name)
        else:
            def read(off, n, name=name):
                try:
                    return zf.read(name)[off:off + n]
                except Exception as e:  # a corrupt member: unknown compression, bad deflate data, ...
                    fail(path, "storage %s cannot be read (%s)" % (name, str(e) or type(e).__name__))
        return Storage(dtype, numel, read, (path, key))

    try:
        with zf.open(pkl[0]) as f:
            return SafeUnpickler(f, load_storage).load()
    except ConvertError:
        raise
    except Exception as e:  # anything the corrupt zip or pickle raises (OSError: a bad offset, zlib.error, ...)
        fail(path, "cannot read the checkpoint's pickle (%s)" % (str(e) or type(e).__name__))


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load_torch_legacy(path):
    """The pre-1.6 torch.save format: pickles of magic, protocol, sys info, the
    object (storages as persistent ids), the storage key list, then per key an
    int64 element count and the raw data."""
    fr = FileRange(path)
    views = []
    storages = {}

    def load_storage(pid):
        dtype, key, numel = pid[1].dtype, str(pid[2]), int(pid[4])
        st = storages.setdefault(key, Storage(dtype, numel, None, (path, key)))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # (view key, element offset, element count)
            v = Storage(dtype, int(view[2]), None, (path, key, int(view[1])))
            views.append((v, st, int(view[1])))
            return v
        return st

    try:
        with open(path, "rb") as f:
            if SafeUnpickler(f, allow_globals=False).load() != LEGACY_MAGIC:
                fail(path, "not a torch checkpoint (bad magic number)")
            SafeUnpickler(f, allow_globals=False).load()  # protocol version
            SafeUnpickler(f, allow_globals=False).load()  # sys info
            obj = SafeUnpickler(f, load_storage).load()
            keys = SafeUnpickler(f, allow_globals=False).load()
            pos = f.tell()
    except ConvertError:
        raise
    except PICKLE_ERRORS as e:
        fail(path, "cannot read the checkpoint's pickle (%s)" % (str(e) or type(e).__name__))
    if not isinstance(keys, list):
        fail(path, "malformed storage key list")
    for key in keys:
        key = str(key)
        (numel,) = struct.unpack("<q", fr.read(pos, 8, "storage %s header" % key))
        st = storages.get(key)
        if st is None or numel != st.numel:
            fail(path, "storage %s does not match the pickle" % key)
        es = DTYPES[st.dtype][0]
        if pos + 8 + numel * es > fr.size:
            fail(path, "storage %s lies past the end of the file" % key)
        st.read = (lambda base: lambda off, n: fr.read(base + off, n, "storage"))(pos + 8)
        pos += 8 + numel * es
    for v, st, off in views:
        es = DTYPES[st.dtype][0]
        if st.read is None or off + v.numel > st.numel:
            fail(path, "storage view outside its storage")
        v.read = (lambda st, base: lambda o, n: st.read(base + o, n))(st, off * es)
    if any(st.read is None for st in storages.values()):
        fail(path, "a storage has no data")
    return obj


def state_dict_srcs(sd, path):
    """A state dict (name -> TorchTensor) -> name -> Src; non-tensors are skipped."""
    if not isinstance(sd, dict):
        fail(path, "no state dict found")
    out = collections.OrderedDict()
    for k, v in sd.items():
        if isinstance(v, TorchTensor):
            out[str(k)] = v.src(str(k))
    if not out:
        fail(path, "state dict holds no tensors")
    return out


# ---- llama2.c .bin

LLAMA2C_MAGIC = 0x616B3432  # "ak42"


def load_llama2c_bin(path):
    """llama2.c model.bin (v0 legacy, v1 float32, v2 int8 groups) -> (hparams, name -> Src).

    Names are those of llama2.c's model.py state dict."""
    fr = FileRange(path)
    if fr.size < 28:
        fail(path, "too short for a llama2.c checkpoint")
    magic, version = struct.unpack("<Ii", fr.read(0, 8, "header"))
    group = 0
    if magic == LLAMA2C_MAGIC:
        if version not in (1, 2):
            fail(path, "unsupported llama2.c .bin version %d" % version)
        dims = struct.unpack("<7i", fr.read(8, 28, "header"))
        shared = fr.read(36, 1, "header")[0]
        if version == 2:
            (group,) = struct.unpack("<i", fr.read(37, 4, "header"))
        pos = 256
    else:
        version = 0
        dims = struct.unpack("<7i", fr.read(0, 28, "header"))
        shared = dims[5] > 0
        dims = dims[:5] + (abs(dims[5]),) + dims[6:]
        pos = 28
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = dims
    if not (0 < dim <= 1 << 16 and 0 < hidden <= 1 << 18 and 0 < n_layers <= 1024 and 0 < n_heads <= dim
            and 0 < n_kv <= n_heads and 0 < vocab <= 1 << 24 and 0 < seq <= 1 << 24
            and dim % n_heads == 0 and n_heads % n_kv == 0 and (dim // n_heads) % 2 == 0):
        fail(path, "header is not a llama2.c checkpoint (dim %d hidden %d layers %d heads %d kv %d "
             "vocab %d seq %d)" % (dim, hidden, n_layers, n_heads, n_kv, vocab, seq))
    if version == 2 and (group <= 0 or dim % group):
        fail(path, "bad quantization group size %d" % group)
    hd = dim // n_heads
    kvd = n_kv * hd
    L = n_layers
    att = [("layers.%d.attention_norm.weight", (dim,))]
    ffn = [("layers.%d.ffn_norm.weight", (dim,))]
    mats = [("layers.%d.attention.wq.weight", (dim, dim)), ("layers.%d.attention.wk.weight", (kvd, dim)),
            ("layers.%d.attention.wv.weight", (kvd, dim)), ("layers.%d.attention.wo.weight", (dim, dim))]
    mlp = [("layers.%d.feed_forward.w1.weight", (hidden, dim)), ("layers.%d.feed_forward.w2.weight", (dim, hidden)),
           ("layers.%d.feed_forward.w3.weight", (hidden, dim))]

    def per_layer(groups):
        return [(n % i, s) for n, s in groups for i in range(L)]

    emb = [("tok_embeddings.weight", (vocab, dim))]
    head = [] if shared else [("output.weight", (vocab, dim))]
    if version == 0:
        order = (emb + per_layer(att) + per_layer(mats[:1]) + per_layer(mats[1:2]) + per_layer(mats[2:3])
                 + per_layer(mats[3:]) + per_layer(ffn) + per_layer(mlp[:1]) + per_layer(mlp[1:2])
                 + per_layer(mlp[2:]) + [("norm.weight", (dim,)), ("#freq_cis", (2 * seq, hd // 2))] + head)
    else:
        order = (per_layer(att) + per_layer(ffn) + [("norm.weight", (dim,))] + emb
                 + [g for m in mats + mlp for g in per_layer([m])] + head)
    out = collections.OrderedDict()
    for name, shape in order:
        n = prod(shape)
        if version == 2 and len(shape) == 2:
            nb = n + 4 * (n // group)
            read = (lambda p, n: lambda: _dequant_llama2c(fr.read(p, n + 4 * (n // group), "weights"), n, group))(pos, n)
        else:
            nb = 4 * n
            read = (lambda p, nb, name: lambda: fr.read(p, nb, "tensor " + name))(pos, nb, name)
        if not name.startswith("#"):
            out[name] = Src(name, shape, "F32", read, (path, pos))
        pos += nb
    if pos != fr.size:
        fail(path, "file size %d does not match its header (expected %d bytes for v%d, %s classifier)"
             % (fr.size, pos, version, "shared" if shared else "separate"))
    hp = dict(dim=dim, hidden=hidden, n_layers=L, n_heads=n_heads, n_kv_heads=n_kv, vocab=vocab,
              seq=seq, version=version)
    return hp, out


def _dequant_llama2c(b, n, group):
    """llama2.c v2: n int8 then n/group float32 scales -> float32 bytes."""
    q = array("b")
    q.frombytes(b[:n])
    s = f32_from_le(b[n:])
    a = array("f", bytes(4 * n))
    for g in range(n // group):
        d = s[g]
        a[g * group:(g + 1) * group] = array("f", [x * d for x in q[g * group:(g + 1) * group]])
    return f32_to_le(a)


# ---------------------------------------------------------------- tokenizers

T_NORMAL, T_UNKNOWN, T_CONTROL, T_USER, T_UNUSED, T_BYTE = 1, 2, 3, 4, 5, 6
BYTE_TOKEN = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


class Vocab:
    """A tokenizer as llama.cpp stores it: model ("llama" | "gpt2" | "char"),
    tokens in id order (str or bytes), scores, types, merges, special ids."""

    def __init__(self, model, tokens, types, source, scores=None, merges=None, bos=None, eos=None,
                 unk=None, pad=None, add_bos=False, add_space_prefix=False, pre=None):
        self.model, self.tokens, self.types, self.source = model, list(tokens), list(types), source
        if not self.tokens:
            fail(source, "the vocabulary has no tokens")
        self.scores, self.merges = scores, merges
        self.bos, self.eos, self.unk, self.pad = bos, eos, unk, pad
        self.add_bos, self.add_space_prefix, self.pre = add_bos, add_space_prefix, pre
        self.normalizer = None  # ["NFC", ...]: attn.tokenizer.normalizer steps (tokenizer.json's)
        self.pre_steps = None  # attn.tokenizer.pre steps
        self.ignore_merges = False
        self.decode_space = None  # attn.tokenizer.decode_space
        self.wordpiece = None  # (prefix, max chars): attn.tokenizer.wordpiece_*
        self.charsmap = None  # bytes: tokenizer.ggml.precompiled_charsmap (a Precompiled normalizer's)

    def pad_to(self, n):
        """Pads to a model's vocab rows (e.g. nanoGPT's 50304) with unused tokens."""
        for i in range(len(self.tokens), n):
            self.tokens.append("[PAD%d]" % i)
            self.types.append(T_UNUSED)
            if self.scores is not None:
                self.scores.append(-1000.0)

    def added_flags(self, tj):
        """lstrip/rstrip/single_word/normalized of tokenizer.json's added tokens ->
        attn.tokenizer.added_strip ("ID\tFLAGS", FLAGS of l r w n). normalized
        defaults to not special, as in Hugging Face's AddedToken."""
        self.added_strip = []
        for a in tj.get("added_tokens") or []:
            if not isinstance(a, dict) or not isinstance(a.get("id"), int):
                continue
            flags = "".join(c for c, on in (("l", a.get("lstrip")), ("r", a.get("rstrip")),
                                              ("w", a.get("single_word")),
                                              ("n", a.get("normalized", not a.get("special")))) if on)
            if flags:
                self.added_strip.append("%d\t%s" % (a["id"], flags))
        return self

    def write(self, kv):
        kv.set("tokenizer.ggml.model", G_STR, self.model)
        if self.pre:
            kv.set("tokenizer.ggml.pre", G_STR, self.pre)
        kv.arr("tokenizer.ggml.tokens", G_STR, self.tokens)
        if self.scores is not None:
            kv.arr("tokenizer.ggml.scores", G_F32, self.scores)
        kv.arr("tokenizer.ggml.token_type", G_I32, self.types)
        if self.merges is not None:
            kv.arr("tokenizer.ggml.merges", G_STR, self.merges)
        for key, v in (("bos", self.bos), ("eos", self.eos), ("unknown", self.unk), ("padding", self.pad)):
            if v is not None and 0 <= v < len(self.tokens):
                kv.set("tokenizer.ggml.%s_token_id" % key, G_U32, v)
        kv.set("tokenizer.ggml.add_bos_token", G_BOOL, bool(self.add_bos))
        kv.set("tokenizer.ggml.add_space_prefix", G_BOOL, bool(self.add_space_prefix))
        if self.normalizer:
            kv.arr("attn.tokenizer.normalizer", G_STR, self.normalizer)
        if self.charsmap:
            kv.arr("tokenizer.ggml.precompiled_charsmap", G_U8, self.charsmap)
        if self.pre_steps is not None:
            kv.arr("attn.tokenizer.pre", G_STR, self.pre_steps)
        if self.ignore_merges:
            kv.set("attn.tokenizer.ignore_merges", G_BOOL, True)
        if self.decode_space:
            kv.set("attn.tokenizer.decode_space", G_STR, self.decode_space)
        if getattr(self, "added_strip", None):
            kv.arr("attn.tokenizer.added_strip", G_STR, self.added_strip)
        if getattr(self, "hf_json", None):  # the whole tokenizer.json, as the GGUF spec names it
            kv.set("tokenizer.huggingface.json", G_STR, self.hf_json)
        if self.wordpiece:
            kv.set("attn.tokenizer.wordpiece_prefix", G_STR, self.wordpiece[0])
            kv.set("attn.tokenizer.wordpiece_max_chars", G_U32, int(self.wordpiece[1]))

    def describe(self):
        return "%s, %d tokens%s, from %s" % (self.model, len(self.tokens),
                                             ", %d merges" % len(self.merges) if self.merges else "", self.source)


def _pb_fields(b, what):
    """Protobuf wire format -> list of (field number, wire type, value)."""
    out = []
    i, n = 0, len(b)

    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            if i >= n or shift > 63:
                fail(what, "malformed protobuf (truncated varint)")
            c = b[i]
            i += 1
            v |= (c & 0x7F) << shift
            shift += 7
            if c < 0x80:
                return v

    while i < n:
        key = varint()
        field, wt = key >> 3, key & 7
        if wt == 0:
            out.append((field, wt, varint()))
        elif wt == 1:
            if i + 8 > n:
                fail(what, "malformed protobuf (truncated field)")
            out.append((field, wt, b[i:i + 8]))
            i += 8
        elif wt == 2:
            ln = varint()
            if i + ln > n:
                fail(what, "malformed protobuf (length past the end)")
            out.append((field, wt, b[i:i + ln]))
            i += ln
        elif wt == 5:
            if i + 4 > n:
                fail(what, "malformed protobuf (truncated field)")
            out.append((field, wt, b[i:i + 4]))
            i += 4
        else:
            fail(what, "malformed protobuf (wire type %d)" % wt)
    return out


def is_count(v):
    """A positive int; true and false are ints to Python but not counts."""
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _int32(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def vocab_from_sentencepiece(path):
    """SentencePiece tokenizer.model (ModelProto: pieces=1, trainer_spec=2, normalizer_spec=3)."""
    with open(path, "rb") as f:
        data = f.read()
    tokens, scores, types = [], [], []
    spec = {"model_type": 1, "unk": 0, "bos": 1, "eos": 2, "pad": -1, "add_dummy_prefix": True}
    for field, wt, v in _pb_fields(data, path):
        if field == 1 and wt == 2:  # SentencePiece {piece=1, score=2, type=3}
            piece, score, typ = b"", 0.0, T_NORMAL
            for f2, w2, v2 in _pb_fields(v, path):
                if f2 == 1 and w2 == 2:
                    piece = v2
                elif f2 == 2 and w2 == 5:
                    (score,) = struct.unpack("<f", v2)
                elif f2 == 3 and w2 == 0:
                    typ = v2
            try:
                tokens.append(piece.decode("utf-8"))
            except UnicodeDecodeError:
                fail(path, "piece %d is not UTF-8" % len(tokens))
            scores.append(score)
            types.append(typ)
        elif field == 2 and wt == 2:  # TrainerSpec
            names = {3: "model_type", 40: "unk", 41: "bos", 42: "eos", 43: "pad"}
            for f2, w2, v2 in _pb_fields(v, path):
                if f2 in names and w2 == 0:
                    spec[names[f2]] = _int32(v2)
        elif field == 3 and wt == 2:  # NormalizerSpec
            for f2, w2, v2 in _pb_fields(v, path):
                if f2 == 3 and w2 == 0:
                    spec["add_dummy_prefix"] = bool(v2)
    if not tokens:
        fail(path, "no pieces: not a SentencePiece model")
    if spec["model_type"] != 2:
        kind = {1: "unigram", 3: "word", 4: "char"}.get(spec["model_type"], str(spec["model_type"]))
        fail(path, "SentencePiece model type %s is not supported (only BPE)" % kind)
    return Vocab("llama", tokens, types, "SentencePiece " + os.path.basename(path), scores=scores,
                 bos=spec["bos"], eos=spec["eos"], unk=spec["unk"], pad=spec["pad"] if spec["pad"] >= 0 else None,
                 add_bos=True, add_space_prefix=spec["add_dummy_prefix"], pre="default")


def vocab_from_llama2c(path):
    """llama2.c tokenizer.bin: i32 max_token_length, then per token f32 score,
    i32 length, bytes. Pieces are SentencePiece's with '▁' written as ' ' and
    BOS/EOS as '\\n<s>\\n' / '\\n</s>\\n'; this undoes both."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        fail(path, "too short for a llama2.c tokenizer")
    (maxlen,) = struct.unpack("<i", data[:4])
    if not 0 < maxlen < 1 << 16:
        fail(path, "not a llama2.c tokenizer (max token length %d)" % maxlen)
    tokens, scores, types = [], [], []
    i = 4
    while i < len(data):
        if i + 8 > len(data):
            fail(path, "truncated after %d tokens" % len(tokens))
        score, n = struct.unpack("<fi", data[i:i + 8])
        if n < 0 or n > maxlen or i + 8 + n > len(data):
            fail(path, "token %d has a bad length %d" % (len(tokens), n))
        piece = data[i + 8:i + 8 + n]
        i += 8 + n
        piece = {b"\n<s>\n": b"<s>", b"\n</s>\n": b"</s>"}.get(piece, piece).replace(b" ", "\u2581".encode())
        try:
            piece = piece.decode("utf-8")
        except UnicodeDecodeError:
            pass  # written as raw bytes
        text = piece if isinstance(piece, str) else ""
        if BYTE_TOKEN.match(text):
            types.append(T_BYTE)
        elif text == "<unk>":
            types.append(T_UNKNOWN)
        elif text in ("<s>", "</s>"):
            types.append(T_CONTROL)
        else:
            types.append(T_NORMAL)
        tokens.append(piece)
        scores.append(score)
    return Vocab("llama", tokens, types, "llama2.c " + os.path.basename(path), scores=scores,
                 bos=1, eos=2, unk=0, add_bos=True, add_space_prefix=True, pre="default")


def _bpe_merges_file(path):
    """vocab.bpe / merges.txt: optional '#version' line, then one 'a b' per line."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    merges = []
    for i, line in enumerate(text.split("\n")):
        line = line.rstrip("\r")
        if not line or (i == 0 and line.startswith("#version")):
            continue
        if len(line.split(" ")) != 2:
            fail(path, "line %d is not a merge 'a b'" % (i + 1))
        merges.append(line)
    return merges


def _vocab_order(vocab, what):
    """{token: id} -> tokens in id order (ids must be 0..n-1)."""
    if not isinstance(vocab, dict):
        fail(what, "vocabulary is not a JSON object")
    n = len(vocab)
    tokens = [None] * n
    for tok, i in vocab.items():
        if not isinstance(i, int) or not 0 <= i < n or tokens[i] is not None:
            fail(what, "token %r has a bad or repeated id %r" % (tok, i))
        tokens[i] = tok
    return tokens


def vocab_from_gpt2_files(enc_path, merges_path):
    """encoder.json + vocab.bpe (OpenAI) or vocab.json + merges.txt (HF): same data."""
    tokens = _vocab_order(read_json(enc_path), enc_path)
    merges = _bpe_merges_file(merges_path)
    types = [T_CONTROL if t == "<|endoftext|>" else T_NORMAL for t in tokens]
    eot = tokens.index("<|endoftext|>") if "<|endoftext|>" in tokens else None
    return Vocab("gpt2", tokens, types, "%s + %s" % (os.path.basename(enc_path), os.path.basename(merges_path)),
                 merges=merges, bos=eot, eos=eot, add_bos=False, pre="gpt-2")


def _vocab_from_tokenizer_json(path, config=None):
    """HF tokenizer.json with a BPE model: byte-level (GPT-2) or SentencePiece-style
    (byte_fallback / Metaspace; scores = -rank of the merge that makes each token)."""
    tj = read_json(path)
    model = tj.get("model") if isinstance(tj, dict) else None
    if isinstance(model, dict) and model.get("type") == "WordPiece":
        return _vocab_wordpiece(path, tj, model, config)
    if isinstance(model, dict) and model.get("type") == "Unigram":
        return _vocab_unigram(path, tj, model)
    if not isinstance(model, dict) or model.get("type") != "BPE":
        fail(path, "tokenizer model %s is not supported (BPE, WordPiece)" % (model or {}).get("type"))
    tokens = _vocab_order(model.get("vocab"), path)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    added = {}
    for a in tj.get("added_tokens") or []:
        i, content = a.get("id"), a.get("content")
        if isinstance(i, int) and isinstance(content, str):
            while len(tokens) <= i:
                tokens.append("[PAD%d]" % len(tokens))
            tokens[i] = content
            added[i] = a.get("special", False)
    here = os.path.dirname(path)
    cfg = config
    if cfg is None and os.path.exists(os.path.join(here, "config.json")):
        cfg = read_json(os.path.join(here, "config.json"))
    cfg = cfg if isinstance(cfg, dict) else {}
    tc_path = os.path.join(here, "tokenizer_config.json")
    tc = read_json(tc_path) if os.path.exists(tc_path) else {}
    tc = tc if isinstance(tc, dict) else {}

    def special_id(name, default=None):
        if isinstance(cfg.get(name + "_token_id"), int):
            return cfg[name + "_token_id"]
        t = tc.get(name + "_token", default)
        t = t.get("content") if isinstance(t, dict) else t
        return tokens.index(t) if isinstance(t, str) and t in tokens else None

    blob = json.dumps([tj.get("pre_tokenizer"), tj.get("decoder"), tj.get("normalizer")])
    byte_level = '"ByteLevel"' in json.dumps([tj.get("pre_tokenizer"), tj.get("decoder")])
    # byte_fallback: converted from SentencePiece (Llama, Gemma): its BPE by scores
    spm = not byte_level and bool(model.get("byte_fallback"))
    if not byte_level and not spm:
        return _vocab_bpe_chars(path, tj, model, tokens, merges, added, special_id, tc)
    types = []
    unk = model.get("unk_token")
    for i, t in enumerate(tokens):
        if i in added:
            types.append(T_CONTROL if added[i] else T_USER)
        elif t.startswith("[PAD") and i not in added and t == "[PAD%d]" % i:
            types.append(T_UNUSED)
        elif spm and BYTE_TOKEN.match(t):
            types.append(T_BYTE)
        elif t == unk:
            types.append(T_UNKNOWN)
        else:
            types.append(T_NORMAL)
    name = "tokenizer.json"
    if spm:
        rank = {}
        for r, m in enumerate(merges):
            rank.setdefault(m.replace(" ", ""), r)
        scores = [-float(rank[t]) if t in rank else 0.0 for t in tokens]
        prepend = "Prepend" in blob or '"add_prefix_space": true' in blob or '"prepend_scheme": "always"' in blob \
            or '"prepend_scheme": "first"' in blob
        return Vocab("llama", tokens, types, name, scores=scores, bos=special_id("bos"), eos=special_id("eos"),
                     unk=tokens.index(unk) if unk in tokens else None, pad=special_id("pad"),
                     add_bos=tc.get("add_bos_token", True), add_space_prefix=prepend, pre="default")
    pre = _byte_level_pre(tj.get("pre_tokenizer") or {}, path)
    bos = special_id("bos", "<|endoftext|>")
    add_bos = tc.get("add_bos_token", _template_adds(tj, bos))
    v = Vocab("gpt2", tokens, types, name, merges=merges, bos=bos, eos=special_id("eos", "<|endoftext|>"),
              unk=special_id("unk"), pad=special_id("pad"), add_bos=add_bos, pre=pre or "attn-pipeline")
    v.normalizer, v.charsmap = _norm_steps(tj.get("normalizer"), path)
    if not pre:
        v.pre_steps = _pre_steps(tj.get("pre_tokenizer"), path)
    if model.get("ignore_merges") and pre != "llama-bpe":
        v.ignore_merges = True
    return v



def vocab_from_tokenizer_json(path, config=None):
    """Any supported tokenizer.json -> Vocab, with its added tokens' flags and the
    file itself (the GGUF spec's tokenizer.huggingface.json)."""
    v = _vocab_from_tokenizer_json(path, config).added_flags(read_json(path))
    with open(path, "rb") as f:
        v.hf_json = f.read().decode("utf-8")
    return v

def _vocab_wordpiece(path, tj, model, config):
    """WordPiece (BERT-style): tokenizer.ggml.model "wordpiece" and the pipeline in attn.tokenizer.*."""
    tokens = _vocab_order(model.get("vocab"), path)
    added = {}
    for a in tj.get("added_tokens") or []:
        if isinstance(a.get("id"), int) and isinstance(a.get("content"), str):
            while len(tokens) <= a["id"]:
                tokens.append("[PAD%d]" % len(tokens))
            tokens[a["id"]] = a["content"]
            added[a["id"]] = a.get("special", False)
    unk = model.get("unk_token", "[UNK]")
    types = [T_CONTROL if added.get(i) else T_USER if i in added else T_UNKNOWN if t == unk else T_NORMAL
             for i, t in enumerate(tokens)]
    ids = {t: i for i, t in reversed(list(enumerate(tokens)))}
    v = Vocab("wordpiece", tokens, types, "tokenizer.json", unk=ids.get(unk), bos=ids.get("[CLS]"),
              eos=ids.get("[SEP]"), pad=ids.get("[PAD]"), add_bos=False, pre="attn-pipeline")
    v.normalizer, v.charsmap = _norm_steps(tj.get("normalizer"), path)
    v.pre_steps = _pre_steps(tj.get("pre_tokenizer"), path)
    v.wordpiece = (model.get("continuing_subword_prefix", "##"), model.get("max_input_chars_per_word", 100))
    return v


def _vocab_unigram(path, tj, model):
    """Unigram (SentencePiece unigram as Hugging Face runs it): tokenizer.ggml.model
    "unigram" with the pieces' scores, the pipeline in attn.tokenizer.*."""
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(v, list) and len(v) == 2 for v in vocab):
        fail(path, "Unigram vocab is not a list of [piece, score]")
    tokens, scores = [v[0] for v in vocab], [float(v[1]) for v in vocab]
    added = {a["id"]: a.get("special", False) for a in tj.get("added_tokens") or []
             if isinstance(a.get("id"), int) and a["id"] < len(tokens)}
    unk = model.get("unk_id")
    types = [T_CONTROL if added.get(i) else T_USER if i in added else T_UNKNOWN if i == unk else
             T_BYTE if model.get("byte_fallback") and BYTE_TOKEN.match(t) else T_NORMAL for i, t in enumerate(tokens)]
    ids = {t: i for i, t in reversed(list(enumerate(tokens)))}
    v = Vocab("unigram", tokens, types, "tokenizer.json", scores=scores, unk=unk, bos=ids.get("<s>"),
              eos=ids.get("</s>"), add_bos=False, pre="attn-pipeline")
    v.normalizer, v.charsmap = _norm_steps(tj.get("normalizer"), path)
    v.pre_steps = _pre_steps(tj.get("pre_tokenizer"), path)
    v.decode_space = _decode_space(tj.get("decoder"))
    return v


def _vocab_bpe_chars(path, tj, model, tokens, merges, added, special_id, tc):
    """A BPE on characters (no ByteLevel), as users train with Hugging Face
    tokenizers: tokenizer.ggml.model "bpe" and the pipeline in attn.tokenizer.*."""
    for k in ("continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(k):
            fail(path, "BPE %s %r is not supported" % (k, model[k]))
    unk = model.get("unk_token")
    types = []
    for i, t in enumerate(tokens):
        types.append(T_CONTROL if added.get(i) else T_USER if i in added else
                     T_BYTE if model.get("byte_fallback") and BYTE_TOKEN.match(t) else
                     T_UNKNOWN if t == unk else T_NORMAL)
    bos = special_id("bos")
    v = Vocab("bpe", tokens, types, "tokenizer.json", merges=merges, bos=bos, eos=special_id("eos"),
              unk=tokens.index(unk) if unk in tokens else None, pad=special_id("pad"),
              add_bos=tc.get("add_bos_token", _template_adds(tj, bos)), pre="attn-pipeline")
    v.normalizer, v.charsmap = _norm_steps(tj.get("normalizer"), path)
    v.pre_steps = _pre_steps(tj.get("pre_tokenizer"), path)
    v.ignore_merges = bool(model.get("ignore_merges"))
    v.decode_space = _decode_space(tj.get("decoder"))
    return v


_SPLIT_BEHAVIOR = {"Removed": "removed", "Isolated": "isolated", "MergedWithPrevious": "merged_with_previous",
                   "MergedWithNext": "merged_with_next", "Contiguous": "contiguous"}
_GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_PUNCT_RE = r"[\p{P}!-/:-@\[-`{-~]"  # Rust: char::is_ascii_punctuation || Unicode P*


def _re_escape(s):
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}-/" else c for c in s)


def _field(s, path, what):
    """A tab-separated step field: a tab or newline in a regex is written as an escape."""
    s = s.replace("\t", "\\t").replace("\n", "\\n") if what == "regex" else s
    if "\t" in s or "\n" in s:
        fail(path, "%s %r holds a tab or newline, which attn's step keys cannot carry" % (what, s))
    return s


def _pattern(p, path):
    p = p if isinstance(p, dict) else {}
    if isinstance(p.get("Regex"), str):
        return _field(p["Regex"], path, "regex")
    if isinstance(p.get("String"), str) and p["String"]:
        return _field(_re_escape(p["String"]), path, "regex")
    fail(path, "Split/Replace pattern %s is not supported" % json.dumps(p)[:80])


def _flat(x, key):
    if isinstance(x, dict) and x.get("type") == "Sequence":
        return [y for s in x.get(key) or [] for y in _flat(s, key)]
    return [] if x is None else [x]


def _norm_steps(norm, path):
    """tokenizer.json normalizer -> (attn.tokenizer.normalizer steps, the
    Precompiled normalizer's SentencePiece charsmap or None)."""
    out, charsmap = [], None
    for n in _flat(norm, "normalizers"):
        t = n.get("type") if isinstance(n, dict) else None
        if t in ("NFC", "NFD", "NFKC", "NFKD"):
            out.append(t)
        elif t == "Lowercase":
            out.append("lowercase")
        elif t == "StripAccents":
            out.append("strip_accents")
        elif t == "BertNormalizer":  # Rust's order: clean, chinese, strip accents (NFD, Mn), lowercase
            lower = n.get("lowercase", True)
            out += ["bert_clean"] * bool(n.get("clean_text", True)) + \
                ["bert_chinese"] * bool(n.get("handle_chinese_chars", True))
            strip = n.get("strip_accents")
            if strip or (strip is None and lower):
                out += ["NFD", "strip_mn"]
            out += ["lowercase"] * bool(lower)
        elif t == "Strip":
            out.append("strip\t%d\t%d" % (bool(n.get("left", True)), bool(n.get("right", True))))
        elif t == "Replace":
            out.append("replace\t%s\t%s" % (_pattern(n.get("pattern"), path), _field(n.get("content", ""), path, "content")))
        elif t == "Prepend":
            out.append("prepend\t%s" % _field(n.get("prepend", ""), path, "prepend"))
        elif t == "Precompiled" and not n.get("precompiled_charsmap"):
            pass  # an empty charsmap changes nothing
        elif t == "Precompiled":
            try:
                blob = base64.b64decode(n["precompiled_charsmap"], validate=True)
            except (ValueError, TypeError):
                fail(path, "Precompiled precompiled_charsmap is not base64")
            if charsmap is not None and blob != charsmap:
                fail(path, "two Precompiled normalizers with different charsmaps are not supported")
            charsmap = blob
            out.append("precompiled")
        else:
            fail(path, "normalizer %s is not supported" % t)
    return out, charsmap


def _pre_steps(pre, path):
    """tokenizer.json pre_tokenizer -> attn.tokenizer.pre steps (Rust tokenizers' semantics)."""
    out = []
    for p in _flat(pre, "pretokenizers"):
        t = p.get("type") if isinstance(p, dict) else None
        if t == "Split":
            b = _SPLIT_BEHAVIOR.get(p.get("behavior"))
            if not b:
                fail(path, "Split behavior %s is not supported" % p.get("behavior"))
            out.append("split\t%s\t%d\t%s" % (b, bool(p.get("invert")), _pattern(p.get("pattern"), path)))
        elif t == "Whitespace":
            out.append("split\tremoved\t1\t\\w+|[^\\w\\s]+")
        elif t == "WhitespaceSplit":
            out.append("split\tremoved\t0\t\\s+")
        elif t == "BertPreTokenizer":
            out += ["split\tremoved\t0\t\\s+", "split\tisolated\t0\t" + _PUNCT_RE]
        elif t == "Punctuation":
            out.append("split\t%s\t0\t%s" % (_SPLIT_BEHAVIOR.get(p.get("behavior"), "isolated"), _PUNCT_RE))
        elif t == "Digits":
            out.append("split\tisolated\t0\t" + ("\\p{N}" if p.get("individual_digits") else "\\p{N}+"))
        elif t == "Metaspace":
            scheme = p.get("prepend_scheme") or ("always" if p.get("add_prefix_space", True) else "never")
            out.append("metaspace\t%s\t%s\t%d" % (p.get("replacement", "\u2581"), scheme, bool(p.get("split", True))))
        elif t == "ByteLevel":
            if p.get("add_prefix_space"):
                out.append("prepend\t ")
            if p.get("use_regex", True):
                out.append("split\tisolated\t0\t" + _GPT2_RE)
        else:
            fail(path, "pre-tokenizer %s is not supported" % t)
    return out


def _decode_space(dec):
    """(replacement, strip_first) of a Metaspace decoder or Replace(repl -> " "), else None."""
    for d in _flat(dec, "decoders"):
        if isinstance(d, dict) and d.get("type") == "Metaspace":
            scheme = d.get("prepend_scheme") or ("always" if d.get("add_prefix_space", True) else "never")
            return d.get("replacement", "\u2581") + ("\tstrip_first" if scheme != "never" else "")
        if isinstance(d, dict) and d.get("type") == "Replace" and d.get("content") == " ":
            s = (d.get("pattern") or {}).get("String")
            if s:
                return s
    return None


# tokenizer.ggml.pre names of the byte-level pre-tokenizers attn runs, by the
# Split regex of tokenizer.json's Sequence [Split(regex), ByteLevel(no regex)].
_SPLIT_PRE = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
}


def _byte_level_pre(pre, path):
    """tokenizer.ggml.pre for a byte-level BPE's pre_tokenizer, or None."""
    t = pre.get("type")
    if t == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space"):
        return "gpt-2"
    steps = pre.get("pretokenizers") if t == "Sequence" else None
    if isinstance(steps, list) and len(steps) == 2 and isinstance(steps[0], dict) and isinstance(steps[1], dict):
        a, b = steps
        if a.get("type") == "Split" and b.get("type") == "ByteLevel" and not b.get("use_regex", True) \
                and a.get("behavior") == "Isolated" and not a.get("invert"):
            name = _SPLIT_PRE.get((a.get("pattern") or {}).get("Regex"))
            if name:
                return name
            return None
        if a.get("type") == "Digits" and a.get("individual_digits") and b.get("type") == "ByteLevel" \
                and b.get("use_regex", True):
            return "smollm"
    return None  # not one llama.cpp names: attn.tokenizer.pre steps


def _template_adds(tj, bos):
    """Whether tokenizer.json's post-processor puts token id bos first."""
    pp = tj.get("post_processor") or {}
    procs = pp.get("processors", []) if pp.get("type") == "Sequence" else [pp]
    for p in procs:
        single = p.get("single") if isinstance(p, dict) and p.get("type") == "TemplateProcessing" else None
        if single and isinstance(single[0], dict) and "SpecialToken" in single[0]:
            sid = single[0]["SpecialToken"].get("id")
            ids = ((p.get("special_tokens") or {}).get(sid) or {}).get("ids") or []
            return bos is not None and ids[:1] == [bos]
    return False


def vocab_from_meta_pkl(path):
    """nanoGPT data/*/meta.pkl: {'vocab_size': n, 'itos': {id: char}, 'stoi': ...}."""
    try:
        with open(path, "rb") as f:
            meta = SafeUnpickler(f, allow_globals=False).load()
    except PICKLE_ERRORS as e:
        fail(path, "not a readable pickle (%s)" % (str(e) or type(e).__name__))
    itos = meta.get("itos") if isinstance(meta, dict) else None
    if not isinstance(itos, dict) or not itos:
        fail(path, "no 'itos' character table (is this a nanoGPT meta.pkl?)")
    n = len(itos)
    tokens = []
    for i in range(n):
        t = itos.get(i)
        if not isinstance(t, str):
            fail(path, "itos has no string for id %d" % i)
        tokens.append(t)
    return Vocab("char", tokens, [T_NORMAL] * n, "nanoGPT " + os.path.basename(path), add_bos=False)


def find_tokenizer(folder):
    """The tokenizer file a folder holds, in order of preference, or None."""
    for name in ("tokenizer.model", "tokenizer.json", "vocab.json", "encoder.json", "meta.pkl", "tokenizer.bin"):
        p = os.path.join(folder, name)
        pair = {"vocab.json": "merges.txt", "encoder.json": "vocab.bpe"}.get(name)
        if os.path.isfile(p) and (pair is None or os.path.isfile(os.path.join(folder, pair))):
            return p
    return None


def load_vocab(path, config=None):
    """Any tokenizer file or folder -> Vocab."""
    if os.path.isdir(path):
        p = find_tokenizer(path)
        if p is None:
            fail(path, "no tokenizer found (tokenizer.model, tokenizer.json, vocab.json+merges.txt, "
                 "encoder.json+vocab.bpe, meta.pkl, tokenizer.bin)")
        return load_vocab(p, config)
    if not os.path.isfile(path):
        fail(path, "no such file")
    base = os.path.basename(path)
    d = os.path.dirname(path)
    if base in ("encoder.json", "vocab.json", "vocab.bpe", "merges.txt"):
        pair = {"encoder.json": ("encoder.json", "vocab.bpe"), "vocab.bpe": ("encoder.json", "vocab.bpe"),
                "vocab.json": ("vocab.json", "merges.txt"), "merges.txt": ("vocab.json", "merges.txt")}[base]
        pa, pb = os.path.join(d, pair[0]), os.path.join(d, pair[1])
        if not (os.path.exists(pa) and os.path.exists(pb)):
            fail(path, "needs %s and %s side by side" % pair)
        return vocab_from_gpt2_files(pa, pb)
    with open(path, "rb") as f:
        head = f.read(16)
    if base.endswith(".pkl") or head[:1] == b"\x80":
        return vocab_from_meta_pkl(path)
    if base.endswith(".json") or head.lstrip()[:1] == b"{":
        return vocab_from_tokenizer_json(path, config)
    if base.endswith(".model") or head[:1] == b"\x0a":
        return vocab_from_sentencepiece(path)
    return vocab_from_llama2c(path)


# ---------------------------------------------------------------- model mappers


class Model:
    """What a mapper produces: architecture, hyper-parameters, extension keys,
    and the GGUF tensors with their sources."""

    def __init__(self, arch, source, name, path):
        self.arch, self.source, self.name, self.path = arch, source, name, path
        self.hp = {}
        self.ext = collections.OrderedDict()  # attn.* keys
        self.tensors = []  # (gguf name, Src, transform, note)
        self.used = set()
        self.ignored = []

    def add(self, gname, src, transform=None, note=""):
        self.tensors.append((gname, src, transform, note))
        self.used.add(src.name)


def same_tensor(a, b):
    """One storage, or equal values (as llama2.c's export.py decides tying)."""
    return a.ident == b.ident or (a.shape == b.shape and a.dtype == b.dtype and a._read() == b._read())


def check_shape(src, shape):
    if tuple(src.shape) != tuple(shape):
        fail(src.name, "shape %s does not match the config (expected %s)" % (list(src.shape), list(shape)))


def transpose(src):
    """Conv1D weight [in, out] -> [out, in] (torch order), float32."""
    a = src.f32()
    rows, cols = src.shape
    out = array("f")
    for j in range(cols):
        out.extend(a[j::cols])
    return out


def unpermute_rows(a, shape, n_head):
    """HF LLaMA rotate-half Q/K rows -> interleaved pairs, as llama.cpp's
    converter: reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)."""
    rows = shape[0]
    cols = prod(shape[1:])
    hd = rows // n_head
    half = hd // 2
    out = array("f")
    for h in range(n_head):
        for i in range(half):
            for j in range(2):
                r = h * hd + j * half + i
                out.extend(a[r * cols:(r + 1) * cols])
    return out


def map_gpt2_blocks(m, sd, pfx, names, L, D, F, conv1d):
    """GPT-2 block tensors (nanoGPT or HF names, same layout up to Conv1D)."""
    for i in range(L):
        p = "%sh.%d." % (pfx, i)
        for sname, gname, shape in (
                ("ln_1.weight", "attn_norm.weight", (D,)), ("ln_1.bias", "attn_norm.bias", (D,)),
                ("attn.c_attn.weight", "attn_qkv.weight", (3 * D, D)), ("attn.c_attn.bias", "attn_qkv.bias", (3 * D,)),
                ("attn.c_proj.weight", "attn_output.weight", (D, D)), ("attn.c_proj.bias", "attn_output.bias", (D,)),
                ("ln_2.weight", "ffn_norm.weight", (D,)), ("ln_2.bias", "ffn_norm.bias", (D,)),
                ("mlp.c_fc.weight", "ffn_up.weight", (F, D)), ("mlp.c_fc.bias", "ffn_up.bias", (F,)),
                ("mlp.c_proj.weight", "ffn_down.weight", (D, F)), ("mlp.c_proj.bias", "ffn_down.bias", (D,))):
            s = sd.get(p + sname)
            if s is None:
                if sname.endswith(".bias"):
                    continue
                fail(names, "missing tensor '%s'" % (p + sname))
            if conv1d and len(shape) == 2:
                check_shape(s, shape[::-1])
                m.add("blk.%d.%s" % (i, gname), s, "T", "Conv1D transposed")
            else:
                check_shape(s, shape)
                m.add("blk.%d.%s" % (i, gname), s)


def map_nanogpt(sd, margs, path, rope):
    """nanoGPT state dict (prefix '_orig_mod.' stripped) -> Model (arch gpt2)."""
    if "tok_embeddings.weight" in sd:
        return map_llama2c_ckpt(sd, margs, path)
    if "transformer.wte.weight" not in sd:
        fail(path, "not a nanoGPT or llama2.c state dict (no transformer.wte.weight / tok_embeddings.weight)")
    wte = sd["transformer.wte.weight"]
    V, D = wte.shape
    L = 1 + max([int(k.split(".")[2]) for k in sd if k.startswith("transformer.h.")] or [-1])
    H = margs.get("n_head")
    if not is_count(H) or D % H:
        fail(path, "model_args has no usable n_head (%r) for n_embd %d" % (H, D))
    if margs.get("n_layer", L) != L or margs.get("n_embd", D) != D:
        fail(path, "model_args (n_layer %s, n_embd %s) disagree with the tensors (%d layers, width %d)"
             % (margs.get("n_layer"), margs.get("n_embd"), L, D))
    fc = sd.get("transformer.h.0.mlp.c_fc.weight")
    F = fc.shape[0] if fc is not None else 4 * D
    m = Model("gpt2", "nanoGPT " + os.path.basename(path), checkpoint_name(path), path)
    ctx = margs.get("block_size")
    m.add("token_embd.weight", wte)
    wpe = sd.get("transformer.wpe.weight")
    if wpe is not None:
        ctx = ctx or wpe.shape[0]
        check_shape(wpe, (ctx, D))
        m.add("position_embd.weight", wpe)
    else:
        m.ext["attn.positions"] = "rope_" + rope[0]
        m.hp["rope.freq_base"] = float(rope[1] or margs.get("rope_theta") or margs.get("rope_base") or 10000.0)
        m.hp["rope.dimension_count"] = D // H
    if not is_count(ctx):
        fail(path, "model_args has no block_size")
    map_gpt2_blocks(m, sd, "transformer.", path, L, D, F, conv1d=False)
    for n in ("weight", "bias"):
        s = sd.get("transformer.ln_f." + n)
        if s is None and n == "weight":
            fail(path, "missing tensor 'transformer.ln_f.weight'")
        if s is not None:
            check_shape(s, (D,))
            m.add("output_norm." + n, s)
    head = sd.get("lm_head.weight")
    if head is not None:
        check_shape(head, (V, D))
        if not same_tensor(head, wte):
            m.add("output.weight", head)
        else:
            m.used.add(head.name)
    m.ext["attn.mlp"] = "gelu_erf"  # nn.GELU() default: exact erf
    m.hp.update(context_length=ctx, embedding_length=D, block_count=L, feed_forward_length=F,
                head_count=H, layer_norm_epsilon=1e-5, vocab_size=V)
    for k in sd:
        if re.match(r"transformer\.h\.\d+\.attn\.bias$", k) or re.search(r"(inv_freq|freqs_cis|freqs_cos|freqs_sin|"
                                                                       r"cos_cached|sin_cached)$", k):
            m.used.add(k)
            m.ignored.append(k)
    return m


def map_llama(m, sd, names, L, D, H, Hkv, hd, F, V, prefix, permute_heads):
    """LLaMA tensors with one naming scheme (names: dict of role -> source name pattern)."""
    def get(role, i=None):
        n = names[role] % i if i is not None else names[role]
        s = sd.get(prefix + n)
        if s is None:
            fail(m.path, "missing tensor '%s'" % (prefix + n))
        return s

    emb = get("emb")
    check_shape(emb, (V, D))
    m.add("token_embd.weight", emb)
    for i in range(L):
        for role, gname, shape, perm in (
                ("attn_norm", "attn_norm", (D,), 0), ("q", "attn_q", (H * hd, D), H), ("k", "attn_k", (Hkv * hd, D), Hkv),
                ("v", "attn_v", (Hkv * hd, D), 0), ("o", "attn_output", (D, H * hd), 0),
                ("ffn_norm", "ffn_norm", (D,), 0), ("gate", "ffn_gate", (F, D), 0), ("up", "ffn_up", (F, D), 0),
                ("down", "ffn_down", (D, F), 0)):
            s = get(role, i)
            check_shape(s, shape)
            if perm and permute_heads:
                m.add("blk.%d.%s.weight" % (i, gname), s, ("P", perm), "rotate-half -> pairs")
            else:
                m.add("blk.%d.%s.weight" % (i, gname), s)
            if role in ("attn_norm", "ffn_norm") or "bias" not in names:
                continue
            b = sd.get(prefix + (names[role] % i)[:-len("weight")] + "bias")
            if b is not None:
                check_shape(b, shape[:1])
                if perm and permute_heads:
                    m.add("blk.%d.%s.bias" % (i, gname), b, ("P", perm), "rotate-half -> pairs")
                else:
                    m.add("blk.%d.%s.bias" % (i, gname), b)
    norm = get("norm")
    check_shape(norm, (D,))
    m.add("output_norm.weight", norm)
    return emb


def _llama_head(m, sd, name, emb, tied):
    head = sd.get(name)
    if head is None:
        return
    check_shape(head, emb.shape)
    if tied or same_tensor(head, emb):
        m.used.add(head.name)
    else:
        m.add("output.weight", head)


LLAMA2C_NAMES = {
    "emb": "tok_embeddings.weight", "norm": "norm.weight", "attn_norm": "layers.%d.attention_norm.weight",
    "q": "layers.%d.attention.wq.weight", "k": "layers.%d.attention.wk.weight", "v": "layers.%d.attention.wv.weight",
    "o": "layers.%d.attention.wo.weight", "ffn_norm": "layers.%d.ffn_norm.weight",
    "gate": "layers.%d.feed_forward.w1.weight", "down": "layers.%d.feed_forward.w2.weight",
    "up": "layers.%d.feed_forward.w3.weight",
}


def _llama_hp(m, ctx, D, L, F, H, Hkv, eps, theta, V, hd):
    m.hp.update(context_length=ctx, embedding_length=D, block_count=L, feed_forward_length=F, head_count=H,
                head_count_kv=Hkv, layer_norm_rms_epsilon=eps, vocab_size=V)
    m.hp["rope.freq_base"] = float(theta)
    m.hp["rope.dimension_count"] = hd


def map_llama2c(hp, sd, path, source):
    D, L, H, Hkv, V = hp["dim"], hp["n_layers"], hp["n_heads"], hp["n_kv_heads"], hp["vocab"]
    F = hp["hidden"]
    m = Model("llama", source, os.path.splitext(os.path.basename(path))[0], path)
    emb = map_llama(m, sd, LLAMA2C_NAMES, L, D, H, Hkv, D // H, F, V, "", False)
    _llama_head(m, sd, "output.weight", emb, False)
    _llama_hp(m, hp["seq"], D, L, F, H, Hkv, hp.get("norm_eps", 1e-5), 10000.0, V, D // H)
    return m


def map_llama2c_ckpt(sd, margs, path):
    """llama2.c train.py ckpt.pt: model.py state dict + model_args."""
    emb = sd["tok_embeddings.weight"]
    V, D = emb.shape
    L = 1 + max([int(k.split(".")[1]) for k in sd if k.startswith("layers.")] or [-1])
    H = margs.get("n_heads")
    if not is_count(H) or D % H:
        fail(path, "model_args has no usable n_heads (%r)" % H)
    Hkv = margs.get("n_kv_heads") or H
    w1 = sd.get("layers.0.feed_forward.w1.weight")
    hp = dict(dim=D, hidden=w1.shape[0] if w1 is not None else 0, n_layers=L, n_heads=H, n_kv_heads=Hkv, vocab=V,
              seq=margs.get("max_seq_len") or 2048, norm_eps=margs.get("norm_eps", 1e-5))
    m = map_llama2c(hp, sd, path, "llama2.c " + os.path.basename(path))
    for k in sd:
        if re.search(r"(freqs_cos|freqs_sin|\.mask)$", k):
            m.used.add(k)
            m.ignored.append(k)
    return m


# ---- GPTMini-style checkpoints (the book chapter's model and its forks)

# A source name (without .weight/.bias) -> role; {N} is the layer number.
# Forks name the same module differently; every spelling here is one role.
BLOCK = r"(?:blocks|layers|h|transformer\.h|transformer\.blocks)\.(\d+)\."
GPTMINI_TOP = (
    (r"(?:tok_emb|token_emb|tok_embedding|token_embedding|wte|embed|embedding|embed_tokens|transformer\.wte)", "emb"),
    (r"(?:pos_emb|pos_embedding|wpe|transformer\.wpe)", "pos"),
    (r"(?:norm_f|ln_f|norm|final_norm|ln_out|transformer\.ln_f)", "norm_f"),
    (r"(?:head|lm_head|out_head|output)", "head"),
)
GPTMINI_BLOCK = (
    (r"(?:norm1|norm_1|ln1|ln_1|attn_norm|ln_attn)", "attn_norm"),
    (r"(?:norm2|norm_2|ln2|ln_2|ffn_norm|mlp_norm|ln_mlp)", "ffn_norm"),
    (r"(?:attn|attention|sa)\.(?:qkv|c_attn|in_proj|wqkv|qkv_proj)", "qkv"),
    (r"(?:attn|attention|sa)\.(?:q|q_proj|wq|query)", "q"),
    (r"(?:attn|attention|sa)\.(?:k|k_proj|wk|key)", "k"),
    (r"(?:attn|attention|sa)\.(?:v|v_proj|wv|value)", "v"),
    (r"(?:attn|attention|sa)\.(?:proj|out_proj|c_proj|o_proj|wo|o|out)", "o"),
    (r"(?:ffn|mlp|ff|feed_forward)\.(?:net\.)?(?:w1|gate|gate_proj)", "w1"),
    (r"(?:ffn|mlp|ff|feed_forward)\.(?:net\.)?(?:w3|up_proj)", "w3"),
    (r"(?:ffn|mlp|ff|feed_forward)\.(?:net\.)?(?:w2|down_proj)", "w2"),
    (r"(?:ffn|mlp|ff|feed_forward)\.(?:net\.)?(?:0|fc1|c_fc|up|fc|lin1|linear1|fc_in)", "up"),
    (r"(?:ffn|mlp|ff|feed_forward)\.(?:net\.)?(?:2|fc2|c_proj|down|proj|lin2|linear2|fc_out)", "down"),
)
# RoPE tables and causal masks: buffers, not weights.
GPTMINI_BUFFER = re.compile(r"^(?:(?:rope|rotary|rotary_emb|pos)\.)?(?:cos|sin|freqs_cos|freqs_sin|cos_cached|sin_cached|"
                            r"rope_cos|rope_sin|inv_freq|freqs_cis)$|(?:^|\.)(?:mask|causal_mask|attn\.bias|tril)$")
CONFIG_KEYS = {
    "n_layer": ("n_layer", "n_layers", "num_layers", "layers"),
    "n_head": ("n_head", "n_heads", "num_heads", "heads"),
    "n_embd": ("n_embd", "d_model", "dim", "n_embed", "hidden_size", "emb_dim"),
    "ctx": ("block_size", "max_seq_len", "context_length", "ctx_len", "seq_len", "max_len", "n_ctx", "max_position_embeddings"),
    "theta": ("rope_theta", "rope_base", "theta", "base"),
    "eps": ("norm_eps", "eps", "layer_norm_eps", "rms_norm_eps", "ln_eps"),
    "norm": ("norm", "norm_type", "norm_kind"),
}


def checkpoint_config(obj):
    """The config dict a checkpoint holds (dict, or a pickled dataclass's
    fields), keys lower-case; {} when none."""
    for key in ("config", "model_args", "cfg", "model_config", "hparams", "args", "hyper_parameters"):
        c = obj.get(key)
        if isinstance(c, Inert):
            c = c.state
        if isinstance(c, dict):
            return {str(k).lower(): v for k, v in c.items()}
    return {}


def config_get(cfg, what, kind):
    for k in CONFIG_KEYS[what]:
        v = cfg.get(k)
        if isinstance(v, kind) and not isinstance(v, bool) and (kind is str or v > 0):
            return v
    return None


def read_keymap(path):
    """--keymap FILE: lines 'THEIR_NAME OUR_NAME' (see HELP_EPILOG) -> [(regex, template)]."""
    rules = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or parts[0].count("{N}") != parts[1].count("{N}") or parts[0].count("{N}") > 1:
                fail(path, "line %d: expected 'THEIR_NAME OUR_NAME' (with {N} in both or neither)" % no)
            pat = re.escape(parts[0]).replace(re.escape("{N}"), r"(\d+)")
            rules.append((re.compile("^" + pat + r"(\..*)?$"), parts[1]))
    if not rules:
        fail(path, "no mapping lines")
    return rules


def apply_keymap(sd, rules):
    """Rename the state dict's keys by the first rule each matches."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        for rx, to in rules:
            mt = rx.match(k)
            if mt:
                groups = mt.groups()
                n = to.replace("{N}", groups[0]) if "{N}" in to else to
                k = n + (groups[-1] or "")
                break
        out[k] = v
    return out


def gptmini_roles(sd):
    """name -> Src  =>  ({(layer or None, role, 'weight'|'bias'): Src}, buffers, unplaced names)."""
    top = [(re.compile("^%s\\.(weight|bias|scale|g|b)$" % rx), role) for rx, role in GPTMINI_TOP]
    blk = [(re.compile("^%s%s\\.(weight|bias|scale|g|b)$" % (BLOCK, rx)), role) for rx, role in GPTMINI_BLOCK]
    roles, buffers, unplaced = {}, {}, []
    for k, s in sd.items():
        if GPTMINI_BUFFER.search(k):
            buffers[k.rsplit(".", 1)[-1]] = s
            continue
        for rx, role in top + blk:
            mt = rx.match(k)
            if mt:
                layer = int(mt.group(1)) if mt.lastindex == 2 else None
                param = {"scale": "weight", "g": "weight", "b": "bias"}.get(mt.group(mt.lastindex), mt.group(mt.lastindex))
                if (layer, role, param) in roles:
                    fail(k, "is the same %s as '%s'" % (role, roles[(layer, role, param)].name))
                roles[(layer, role, param)] = s
                break
        else:
            unplaced.append(k)
    return roles, buffers, unplaced


def rope_from_buffers(buffers):
    """RoPE layout, theta, head dim and table length from saved cos/sin tables,
    or None. Full-width tables (hd columns) repeat each angle: in halves
    (rotate_half, columns i and i + hd/2) or in pairs (columns 2i and 2i+1).
    Half-width tables cannot tell: halves is assumed, with a note."""
    cos, sin = buffers.get("cos") or buffers.get("freqs_cos") or buffers.get("cos_cached") or buffers.get("rope_cos"), \
        buffers.get("sin") or buffers.get("freqs_sin") or buffers.get("sin_cached") or buffers.get("rope_sin")
    if cos is None or sin is None or cos.shape != sin.shape or len(cos.shape) < 2:
        return None
    w = cos.shape[-1]
    rows = prod(cos.shape[:-1])
    if rows < 2 or w < 1:
        return None
    c, s = cos.f32(), sin.f32()
    ang = [math.atan2(s[w + j], c[w + j]) for j in range(w)]  # position 1: the frequencies
    close = lambda a, b: abs(a - b) <= 1e-4 * max(1.0, abs(a))
    if w >= 2 and w % 2 == 0 and all(close(ang[j], ang[j + w // 2]) for j in range(w // 2)):
        layout, hd, freqs, note = "halves", w, ang[:w // 2], "cos/sin tables repeat in halves"
    elif w >= 2 and w % 2 == 0 and all(close(ang[2 * j], ang[2 * j + 1]) for j in range(w // 2)):
        layout, hd, freqs, note = "pairs", w, ang[0::2], "cos/sin tables repeat in pairs"
    else:
        layout, hd, freqs, note = "halves", 2 * w, ang, "half-width cos/sin tables do not show the layout; halves assumed"
    theta = None
    if len(freqs) >= 2 and 0 < freqs[1] < freqs[0] and close(freqs[0], 1.0):
        theta = (1.0 / freqs[1]) ** (hd / 2.0)  # freqs[i] = theta^(-2i/hd)
        theta = float(round(theta)) if abs(theta - round(theta)) < 1e-3 * theta else theta
    return layout, hd, theta, rows, note


def gptmini_ffn(roles, i, D, path):
    """Layer i's MLP: 'swiglu' (gate w1/gate_proj, up w3/up_proj, down w2/down_proj)
    or 'gelu' (up then down) -> (kind, {gguf role: (Src, bias Src)})."""
    g = lambda r, p="weight": roles.get((i, r, p))
    if g("w1") is not None and g("w3") is not None and g("w2") is not None:
        if g("w1", "bias") is not None:
            fail(path, "layer %d: a bias on the SwiGLU gate is not supported" % i)
        return "swiglu", {"ffn_gate": ("w1",), "ffn_up": ("w3",), "ffn_down": ("w2",)}
    up = "up" if g("up") is not None else "w1" if g("w1") is not None else None
    down = "down" if g("down") is not None else "w2" if g("w2") is not None else None
    if up is None or down is None:
        fail(path, "layer %d: no MLP found (ffn.0/ffn.2, ffn.fc1/ffn.fc2, ffn.w1/w2/w3, ...); "
             "name yours with --keymap" % i)
    return "gelu", {"ffn_up": (up,), "ffn_down": (down,)}


def gptmini_dims(roles, buffers, cfg, path, args):
    """(V, D, L, H, hd, ctx, rope info or None) from the tensors, the config dict and the RoPE tables."""
    emb = roles.get((None, "emb", "weight"))
    if emb is None or len(emb.shape) != 2:
        fail(path, "no token embedding (tok_emb.weight)")
    V, D = emb.shape
    L = 1 + max([k[0] for k in roles if k[0] is not None] or [-1])
    if L == 0:
        fail(path, "no transformer blocks (blocks.N....)")
    for what, have in (("n_layer", L), ("n_embd", D)):
        want = config_get(cfg, what, int)
        if want is not None and want != have:
            fail(path, "config %s = %d disagrees with the tensors (%d)" % (what, want, have))
    rope = None if (None, "pos", "weight") in roles else rope_from_buffers(buffers)
    H = args.n_head or config_get(cfg, "n_head", int)
    if H is None and rope is not None and D % rope[1] == 0:
        H = D // rope[1]
    if H is None:
        fail(path, "cannot tell the head count: no config dict with n_head and no cos/sin buffers; pass --n-head N")
    if D % H:
        fail(path, "width %d is not a multiple of the head count %d" % (D, H))
    if rope is not None and rope[1] != D // H:
        fail(path, "cos/sin tables are for head size %d, but %d heads of width %d make %d" % (rope[1], H, D, D // H))
    pos = roles.get((None, "pos", "weight"))
    ctx = config_get(cfg, "ctx", int) or (pos.shape[0] if pos is not None else None) or (rope[3] if rope else None)
    if ctx is None:
        fail(path, "cannot tell the context length: no config dict with block_size and no cos/sin buffers")
    return V, D, L, H, ctx, rope


def gptmini_norm(roles, cfg, mlp):
    """Norm kind from the tensors: a bias means LayerNorm; weight only is RMSNorm
    when the config says so or the MLP is SwiGLU (LLaMA-style), else LayerNorm
    without bias -> (kind, note)."""
    if any(k[1] in ("attn_norm", "ffn_norm", "norm_f") and k[2] == "bias" for k in roles):
        return "layernorm", "LayerNorm (norm biases present)"
    said = (config_get(cfg, "norm", str) or "").lower().replace("_", "")
    if "rms" in said or (not said and mlp == "swiglu"):
        return "rmsnorm", "RMSNorm (no norm biases, %s)" % ("config norm = %s" % said if said else "SwiGLU MLP")
    return "layernorm", "LayerNorm without bias (no norm biases%s; --norm rmsnorm if it is RMSNorm)" % (
        ", config norm = %s" % said if said else "")


def gptmini_positions(m, roles, cfg, rope, args, ctx, D):
    """Learned position embeddings, or RoPE: layout from --rope, else the cos/sin
    buffers, else halves (each said in m.notes); theta from --rope-theta, the
    config, the buffers, else 10000."""
    pos = roles.get((None, "pos", "weight"))
    if pos is not None:
        check_shape(pos, (ctx, D))
        m.add("position_embd.weight", pos)
        m.ext["attn.positions"] = "learned"
        return
    layout, theta = args.rope, args.rope_theta or config_get(cfg, "theta", (int, float))
    if layout:
        m.notes.append("RoPE %s (--rope)" % layout)
    elif rope is not None:
        layout = rope[0]
        m.notes.append("RoPE %s (%s)" % (layout, rope[4]))
    else:
        layout = "halves"
        m.notes.append("RoPE halves (no cos/sin buffers saved: rotate-half assumed; --rope pairs if not)")
    if theta is None and rope is not None and rope[2]:
        theta = rope[2]
    m.ext["attn.positions"] = "rope_" + layout
    m.hp["rope.freq_base"] = float(theta or 10000.0)
    m.hp["rope.dimension_count"] = D // m.n_head


def map_gptmini(sd, cfg, path, args):
    """A GPTMini-style state dict (tok_emb, blocks.N.norm1/attn.qkv/attn.proj/norm2/ffn, norm_f, head)
    -> Model (arch gpt2 with attn.norm / attn.mlp / attn.positions)."""
    roles, buffers, unplaced = gptmini_roles(sd)
    if unplaced:
        fail(path, "cannot place %d tensor name%s: %s; map them with --keymap FILE (see --help)"
             % (len(unplaced), "s" if len(unplaced) > 1 else "", ", ".join(unplaced[:12]) +
                (", ..." if len(unplaced) > 12 else "")))
    V, D, L, H, ctx, rope = gptmini_dims(roles, buffers, cfg, path, args)
    m = Model("gpt2", "GPTMini-style " + os.path.basename(path), checkpoint_name(path), path)
    m.notes, m.n_head = [], H
    g = lambda i, r, p="weight": roles.get((i, r, p))
    m.add("token_embd.weight", roles[(None, "emb", "weight")])
    gptmini_positions(m, roles, cfg, rope, args, ctx, D)
    mlp = None
    F = g(0, gptmini_ffn(roles, 0, D, path)[1]["ffn_up"][0]).shape[0]
    for i in range(L):
        kind, ffn = gptmini_ffn(roles, i, D, path)
        if mlp not in (None, kind):
            fail(path, "layer %d has a %s MLP, layer 0 a %s one" % (i, kind, mlp))
        mlp = kind
        if g(i, "qkv") is not None:
            attn = (("attn_qkv", "qkv", (3 * D, D)),)
        else:
            attn = tuple(("attn_" + r, r, (D, D)) for r in "qkv")
        for gname, role, shape in attn + (("attn_output", "o", (D, D)), ("attn_norm", "attn_norm", (D,)),
                                          ("ffn_norm", "ffn_norm", (D,))) + tuple(
                (gn, r[0], (D, F) if gn == "ffn_down" else (F, D)) for gn, r in ffn.items()):
            w = g(i, role)
            if w is None:
                fail(path, "layer %d: missing %s weight" % (i, role))
            check_shape(w, shape)
            m.add("blk.%d.%s.weight" % (i, gname), w)
            b = g(i, role, "bias")
            if b is not None:
                check_shape(b, shape[:1])
                m.add("blk.%d.%s.bias" % (i, gname), b)
    norm, note = (args.norm, "%s (--norm)" % args.norm) if args.norm else gptmini_norm(roles, cfg, mlp)
    m.notes.append(note)
    for p in ("weight", "bias"):
        s = g(None, "norm_f", p)
        if s is None and p == "weight":
            fail(path, "no final norm (norm_f / ln_f / norm)")
        if s is not None:
            check_shape(s, (D,))
            m.add("output_norm." + p, s)
    head, emb = g(None, "head"), roles[(None, "emb", "weight")]
    if head is not None:
        check_shape(head, (V, D))
        if same_tensor(head, emb):
            m.used.add(head.name)
        else:
            m.add("output.weight", head)
    if g(None, "head", "bias") is not None:
        fail(path, "a bias on the output head is not supported")
    m.ext["attn.norm"] = norm
    m.ext["attn.mlp"] = "swiglu" if mlp == "swiglu" else "gelu_erf"  # nn.GELU() default: exact erf
    m.hp.update(context_length=ctx, embedding_length=D, block_count=L, feed_forward_length=F,
                head_count=H, vocab_size=V)
    eps = float(config_get(cfg, "eps", (int, float)) or 1e-5)
    m.hp["layer_norm_rms_epsilon" if norm == "rmsnorm" else "layer_norm_epsilon"] = eps
    for k, s in sd.items():
        if GPTMINI_BUFFER.search(k):
            m.used.add(s.name)
            m.ignored.append(k)
    return m


def checkpoint_step(obj, path):
    """Training step: iter_num / step / global_step in the checkpoint, else stepN / ckptN / iterN in its name."""
    for k in ("iter_num", "step", "global_step", "iteration", "steps"):
        v = obj.get(k) if isinstance(obj, dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return v
    mt = re.search(r"(?:step|ckpt|iter|checkpoint)[-_]?(\d+)", os.path.basename(path), re.I)
    return int(mt.group(1)) if mt else None


GENERIC_NAMES = ("ckpt", "final", "model", "checkpoint", "last", "best", "latest", "pytorch_model", "state")


def checkpoint_name(path):
    """Model name from the file name; a generic one (ckpt, final, ...) gets its folder: exp1/final."""
    base = os.path.splitext(os.path.basename(path))[0]
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return "%s/%s" % (folder, base) if base.lower() in GENERIC_NAMES and folder else base


def load_hf_weights(folder):
    """Every tensor of an HF folder: safetensors (single or sharded) or pytorch_model.bin."""
    j = os.path.join
    for index, loader in (("model.safetensors.index.json", load_safetensors),
                          ("pytorch_model.bin.index.json", load_torch_sd)):
        if os.path.exists(j(folder, index)):
            wm = read_json(j(folder, index)).get("weight_map")
            if not isinstance(wm, dict):
                fail(j(folder, index), "no weight_map")
            sd = collections.OrderedDict()
            for shard in sorted(set(wm.values())):
                if not isinstance(shard, str) or "/" in shard or shard.startswith("."):
                    fail(j(folder, index), "bad shard name %r" % shard)
                p = j(folder, shard)
                if not os.path.exists(p):
                    fail(p, "shard listed in %s is missing" % index)
                sd.update(loader(p))
            missing = [n for n in wm if n not in sd]
            if missing:
                fail(j(folder, index), "tensor '%s' is not in its shard" % missing[0])
            return sd, index
    for name, loader in (("model.safetensors", load_safetensors), ("pytorch_model.bin", load_torch_sd)):
        if os.path.exists(j(folder, name)):
            return loader(j(folder, name)), name
    fail(folder, "no model.safetensors, sharded safetensors index or pytorch_model.bin")


def load_torch_sd(path):
    obj = load_torch(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    return state_dict_srcs(obj, path)


# ---------------------------------------------------------------- HF families llama.cpp names


def f32_round(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def llama3_rope_factors(cfg, rs, hd):
    """rope_freqs.weight as llama.cpp's converter computes it (float32 steps)."""
    base = float(cfg.get("rope_theta", 10000.0))
    factor, lo, hi = float(rs.get("factor", 8.0)), float(rs.get("low_freq_factor", 1.0)), \
        float(rs.get("high_freq_factor", 4.0))
    old = float(rs.get("original_max_position_embeddings", 8192))
    lo_wl, hi_wl = old / lo, old / hi
    if lo_wl == hi_wl:
        fail("rope_scaling", "low_freq_factor and high_freq_factor must differ")
    out = array("f")
    for i in range(0, hd, 2):
        freq = f32_round(1.0 / f32_round(base ** f32_round(i / hd)))
        wl = f32_round(f32_round(2 * math.pi) / freq)
        if wl < hi_wl:
            out.append(1.0)
        elif wl > lo_wl:
            out.append(factor)
        else:
            sm = f32_round(f32_round(f32_round(old / wl) - lo) / f32_round(hi - lo))
            out.append(1 / f32_round(f32_round(f32_round(1 - sm) / factor) + sm))
    return out


def synthetic(name, values):
    """A Src holding computed float32 values."""
    b = f32_to_le(values)
    return Src(name, (len(values),), "F32", lambda: b, ("synthetic", name))


def neox_qkv(H):
    """GPT-NeoX query_key_value rows per head [q; k; v] -> [all q; all k; all v], as llama.cpp's converter."""
    def fn(a):
        n = len(a) // (3 * H)  # hd * cols (or hd for the bias)
        out = array("f")
        for part in range(3):
            for h in range(H):
                out.extend(a[(h * 3 + part) * n:(h * 3 + part + 1) * n])
        return out
    return fn


def add_one(a):
    """Gemma's RMSNorm scales by (1 + w); llama.cpp's converter stores 1 + w."""
    return array("f", (f32_round(x + 1.0) for x in a))


# Per family: HF layer tensor (after 'PREFIX.N.') -> GGUF suffix; top-level names; model prefix
FAMILY_LAYER = {
    "llama-like": {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
                   "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
                   "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
                   "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.weight": "attn_output.weight",
                   "self_attn.qkv_proj.weight": "attn_qkv.weight", "self_attn.q_norm.weight": "attn_q_norm.weight",
                   "self_attn.k_norm.weight": "attn_k_norm.weight",
                   "post_attention_layernorm.weight": "ffn_norm.weight",
                   "pre_feedforward_layernorm.weight": "ffn_norm.weight",
                   "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
                   "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                   "mlp.gate_up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"},
    "phi": {"input_layernorm.weight": "attn_norm.weight", "input_layernorm.bias": "attn_norm.bias",
            "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
            "self_attn.v_proj.weight": "attn_v.weight", "self_attn.q_proj.bias": "attn_q.bias",
            "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
            "self_attn.dense.weight": "attn_output.weight", "self_attn.dense.bias": "attn_output.bias",
            "mlp.fc1.weight": "ffn_up.weight", "mlp.fc1.bias": "ffn_up.bias",
            "mlp.fc2.weight": "ffn_down.weight", "mlp.fc2.bias": "ffn_down.bias"},
    "gpt_neox": {"input_layernorm.weight": "attn_norm.weight", "input_layernorm.bias": "attn_norm.bias",
                 "post_attention_layernorm.weight": "ffn_norm.weight",
                 "post_attention_layernorm.bias": "ffn_norm.bias",
                 "attention.query_key_value.weight": "attn_qkv.weight",
                 "attention.query_key_value.bias": "attn_qkv.bias", "attention.dense.weight": "attn_output.weight",
                 "attention.dense.bias": "attn_output.bias", "mlp.dense_h_to_4h.weight": "ffn_up.weight",
                 "mlp.dense_h_to_4h.bias": "ffn_up.bias", "mlp.dense_4h_to_h.weight": "ffn_down.weight",
                 "mlp.dense_4h_to_h.bias": "ffn_down.bias"},
}
FAMILY_TOP = {
    "llama-like": {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                   "lm_head.weight": "output.weight"},
    "phi": {"model.embed_tokens.weight": "token_embd.weight", "model.final_layernorm.weight": "output_norm.weight",
            "model.final_layernorm.bias": "output_norm.bias", "lm_head.weight": "output.weight",
            "lm_head.bias": "output.bias"},
    "gpt_neox": {"gpt_neox.embed_in.weight": "token_embd.weight",
                 "gpt_neox.final_layer_norm.weight": "output_norm.weight",
                 "gpt_neox.final_layer_norm.bias": "output_norm.bias", "embed_out.weight": "output.weight"},
}
# model_type -> (llama.cpp architecture, naming scheme)
FAMILIES = {"gpt_neox": ("gptneox", "gpt_neox"), "qwen2": ("qwen2", "llama-like"), "gemma": ("gemma", "llama-like"),
            "gemma2": ("gemma2", "llama-like"), "phi": ("phi2", "phi"), "phi3": ("phi3", "llama-like"),
            "olmo2": ("olmo2", "llama-like")}


def family_hp(arch, cfg, need, D, H, Hkv, hd, F, L, V):
    """The GGUF hyper-parameter keys llama.cpp's converter writes for arch."""
    hp = {"context_length": need("max_position_embeddings", "n_positions"), "embedding_length": D,
          "block_count": L, "feed_forward_length": F, "head_count": H, "head_count_kv": Hkv, "vocab_size": V}
    if "head_dim" in cfg or arch in ("gemma", "gemma2"):
        hp["attention.key_length"] = hp["attention.value_length"] = hd
    if arch in ("gptneox", "phi2"):
        hp["layer_norm_epsilon"] = float(cfg.get("layer_norm_eps", cfg.get("layer_norm_epsilon", 1e-5)))
        pct = cfg.get("rotary_pct", cfg.get("partial_rotary_factor", 1.0))
        hp["rope.dimension_count"] = int(pct * hd) if arch == "gptneox" else int(pct * D) // H
        hp["rope.freq_base"] = float(cfg.get("rotary_emb_base", cfg.get("rope_theta", 10000.0)))
    else:
        hp["layer_norm_rms_epsilon"] = float(cfg.get("rms_norm_eps", 1e-6))
        hp["rope.freq_base"] = float(cfg.get("rope_theta", 10000.0))
    if arch == "gptneox":
        hp["use_parallel_residual"] = bool(cfg.get("use_parallel_residual", True))
    if arch == "gemma2":
        hp["attn_logit_softcapping"] = float(cfg.get("attn_logit_softcapping") or 50.0)
        hp["final_logit_softcapping"] = float(cfg.get("final_logit_softcapping") or 30.0)
        hp["attention.sliding_window"] = int(cfg.get("sliding_window") or 4096)
        if cfg.get("query_pre_attn_scalar", hd) != hd:
            fail("config.json", "query_pre_attn_scalar %r != head_dim %d is not supported"
                 % (cfg["query_pre_attn_scalar"], hd))
    if arch == "phi3":
        if cfg.get("rope_scaling"):
            fail("config.json", "rope_scaling %s (LongRoPE) is not supported" % json.dumps(cfg["rope_scaling"]))
        hp["attention.sliding_window"] = int(cfg.get("sliding_window") or 0)
        hp["rope.dimension_count"] = D // H
    return hp


def family_act(arch, cfg, folder):
    act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "gelu_new"
    ok = {"gptneox": ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh"), "phi2": ("gelu_new", "gelu", "gelu_fast"),
          "gemma": ("gelu_pytorch_tanh", "gelu"), "gemma2": ("gelu_pytorch_tanh", "gelu")}.get(arch, ("silu",))
    if act not in ok:
        fail(os.path.join(folder, "config.json"), "hidden_act %s is not supported for %s" % (act, arch))
    # llama.cpp's graphs use the tanh GELU for every GELU variant; attn follows them


def map_family(folder, cfg, sd, fname, mt, name, need):
    """An HF folder of one of FAMILIES -> Model, with llama.cpp's tensor names and layouts."""
    arch, scheme = FAMILIES[mt]
    m = Model(arch, "Hugging Face %s (%s)" % (mt, fname), name, folder)
    D, L, H = need("hidden_size"), need("num_hidden_layers"), need("num_attention_heads")
    Hkv = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or D // H
    F = need("intermediate_size")
    if H % Hkv:
        fail(folder, "num_attention_heads %d is not a multiple of num_key_value_heads %d" % (H, Hkv))
    family_act(arch, cfg, folder)
    top, lay = FAMILY_TOP[scheme], FAMILY_LAYER[scheme]
    pfx = "gpt_neox.layers." if scheme == "gpt_neox" else "model.layers."
    emb = sd.get([k for k, v in top.items() if v == "token_embd.weight"][0])
    if emb is None:
        fail(folder, "missing the token embedding (%s)" % " or ".join(k for k, v in top.items() if v == "token_embd.weight"))
    V = emb.shape[0]
    tied = arch in ("gemma", "gemma2") or cfg.get("tie_word_embeddings", False)
    for k, src in sd.items():
        mm = re.match(re.escape(pfx) + r"(\d+)\.(.+)$", k)
        if mm and int(mm.group(1)) < L:
            g = lay.get(mm.group(2))
            if arch in ("gemma2", "olmo2") and mm.group(2) == "post_attention_layernorm.weight":
                g = "post_attention_norm.weight"
            if g is None:
                if scheme == "gpt_neox" and re.match(r"attention\.(bias|masked_bias|rotary_emb\.inv_freq)$",
                                                     mm.group(2)):
                    m.used.add(k)
                    m.ignored.append(k)
                continue
            gname = "blk.%s.%s" % (mm.group(1), g)
            if g.startswith("attn_qkv") and scheme == "gpt_neox":
                m.add(gname, src, ("F", neox_qkv(H)), "per-head q,k,v -> q,k,v")
            elif arch in ("gemma", "gemma2") and k.endswith("norm.weight"):
                m.add(gname, src, ("F", add_one), "1 + w")
            else:
                m.add(gname, src)
        elif k in top:
            if top[k] == "output.weight" and (tied or same_tensor(src, emb)):
                m.used.add(k)
                continue
            if arch in ("gemma", "gemma2") and k.endswith("norm.weight"):
                m.add(top[k], src, ("F", add_one), "1 + w")
            else:
                m.add(top[k], src)
        elif k.endswith("rotary_emb.inv_freq"):
            m.used.add(k)
            m.ignored.append(k)
    m.hp.update(family_hp(arch, cfg, need, D, H, Hkv, hd, F, L, V))
    check_family_shapes(m, sd, arch, D, Q=H * hd, KV=Hkv * hd, F=F, V=V)
    return m


def check_family_shapes(m, sd, arch, D, Q, KV, F, V):
    """Every mapped tensor has the shape attn (and llama.cpp) expect from the config."""
    want = {"attn_q": (Q, D), "attn_k": (KV, D), "attn_v": (KV, D), "attn_qkv": (Q + 2 * KV, D),
            "attn_output": (D, Q), "ffn_gate": (F, D), "ffn_up": (2 * F if arch == "phi3" else F, D),
            "ffn_down": (D, F), "token_embd": (V, D), "output": (V, D), "attn_q_norm": (Q,), "attn_k_norm": (KV,)}
    for gname, src, tr, note in m.tensors:
        base, kind = gname.split(".")[-2], gname.split(".")[-1]
        shape = want.get(base, (D,))
        if kind == "bias":
            shape = shape[:1] if base in want else (D,)
            if base == "output":
                shape = (V,)
        check_shape(src, shape)


def llama_rope_scaling(m, cfg, folder, hd):
    """Llama 3 (rope_freqs.weight) and linear rope scaling, as llama.cpp writes them."""
    rs = cfg.get("rope_scaling")
    if not rs:
        return
    kind = str(rs.get("rope_type") or rs.get("type") or "").lower()
    if kind == "llama3":
        m.add("rope_freqs.weight", synthetic("rope_scaling (llama3)", llama3_rope_factors(cfg, rs, hd)))
    elif kind == "linear" and isinstance(rs.get("factor"), (int, float)) and rs["factor"] > 0:
        m.hp["rope.scaling.type"] = "linear"
        m.hp["rope.scaling.factor"] = float(rs["factor"])
    else:
        fail(folder, "rope_scaling %s is not supported (llama3, linear)" % json.dumps(rs))


def map_hf_gpt2(folder, cfg, sd, fname, name, need):
    """A Hugging Face GPT-2 folder's config and tensors -> Model."""
    m = Model("gpt2", "Hugging Face GPT-2 (%s)" % fname, name, folder)
    D, L, H = need("n_embd", "hidden_size"), need("n_layer", "num_hidden_layers"), need("n_head", "num_attention_heads")
    if D % H:
        fail(os.path.join(folder, "config.json"), "n_embd %d is not a multiple of n_head %d" % (D, H))
    ctx = need("n_positions", "n_ctx", "max_position_embeddings")
    F = cfg.get("n_inner") or 4 * D
    act = cfg.get("activation_function", "gelu_new")
    if act in ("gelu", "gelu_python"):
        m.ext["attn.mlp"] = "gelu_erf"
    elif act not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        fail(folder, "activation_function %s is not supported" % act)
    if cfg.get("scale_attn_by_inverse_layer_idx") or cfg.get("scale_attn_weights") is False:
        fail(folder, "non-standard attention scaling is not supported")
    pfx = "transformer." if "transformer.wte.weight" in sd else ""
    wte = sd.get(pfx + "wte.weight")
    if wte is None:
        fail(folder, "missing tensor 'wte.weight'")
    V = wte.shape[0]
    check_shape(wte, (V, D))
    m.add("token_embd.weight", wte)
    wpe = sd.get(pfx + "wpe.weight")
    if wpe is None:
        fail(folder, "missing tensor 'wpe.weight'")
    check_shape(wpe, (ctx, D))
    m.add("position_embd.weight", wpe)
    map_gpt2_blocks(m, sd, pfx, folder, L, D, F, conv1d=True)
    for n in ("weight", "bias"):
        s = sd.get(pfx + "ln_f." + n)
        if s is None:
            fail(folder, "missing tensor '%sln_f.%s'" % (pfx, n))
        check_shape(s, (D,))
        m.add("output_norm." + n, s)
    head = sd.get("lm_head.weight")
    if head is not None:
        check_shape(head, (V, D))
        if cfg.get("tie_word_embeddings", True) or same_tensor(head, wte):
            m.used.add(head.name)
        else:
            m.add("output.weight", head)
    m.hp.update(context_length=ctx, embedding_length=D, block_count=L, feed_forward_length=F, head_count=H,
                layer_norm_epsilon=float(cfg.get("layer_norm_epsilon", 1e-5)), vocab_size=V)
    for k in sd:
        if re.match(r"(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$", k):
            m.used.add(k)
            m.ignored.append(k)
    return m


def map_hf_llama(folder, cfg, sd, fname, mt, name, need):
    """A Hugging Face LLaMA or Mistral folder's config and tensors -> Model."""
    m = Model("llama", "Hugging Face LLaMA (%s)" % fname, name, folder)
    D, L, H = need("hidden_size"), need("num_hidden_layers"), need("num_attention_heads")
    Hkv = cfg.get("num_key_value_heads") or H
    F, ctx = need("intermediate_size"), need("max_position_embeddings")
    hd = cfg.get("head_dim") or D // H
    if cfg.get("hidden_act", "silu") != "silu":
        fail(folder, "hidden_act %s is not supported (only silu)" % cfg.get("hidden_act"))
    if H % Hkv or hd % 2:
        fail(folder, "num_attention_heads %d / num_key_value_heads %d / head dim %d do not fit" % (H, Hkv, hd))
    names = {"emb": "embed_tokens.weight", "norm": "norm.weight",
             "attn_norm": "layers.%d.input_layernorm.weight", "q": "layers.%d.self_attn.q_proj.weight",
             "k": "layers.%d.self_attn.k_proj.weight", "v": "layers.%d.self_attn.v_proj.weight",
             "o": "layers.%d.self_attn.o_proj.weight", "ffn_norm": "layers.%d.post_attention_layernorm.weight",
             "gate": "layers.%d.mlp.gate_proj.weight", "up": "layers.%d.mlp.up_proj.weight",
             "down": "layers.%d.mlp.down_proj.weight", "bias": True}
    pfx = "model." if "model.embed_tokens.weight" in sd else ""
    if pfx + "embed_tokens.weight" not in sd:
        fail(folder, "missing tensor '%sembed_tokens.weight'" % pfx)
    V = sd[pfx + "embed_tokens.weight"].shape[0]
    emb = map_llama(m, sd, names, L, D, H, Hkv, hd, F, V, pfx, True)
    _llama_head(m, sd, "lm_head.weight", emb, cfg.get("tie_word_embeddings", False))
    if mt == "mistral" and cfg.get("sliding_window") and cfg["sliding_window"] < ctx:
        warn("sliding_window %d ignored: attention is full-context" % cfg["sliding_window"])
    _llama_hp(m, ctx, D, L, F, H, Hkv, float(cfg.get("rms_norm_eps", 1e-6)), cfg.get("rope_theta", 10000.0), V, hd)
    if "head_dim" in cfg:
        m.hp["attention.key_length"] = m.hp["attention.value_length"] = hd
    llama_rope_scaling(m, cfg, folder, hd)
    for k in sd:
        if k.endswith("rotary_emb.inv_freq"):
            m.used.add(k)
            m.ignored.append(k)
    return m


def map_hf(folder):
    """HF folder -> (Model, tokenizer path, config, every source tensor name)."""
    cfg = read_json(os.path.join(folder, "config.json"))
    if not isinstance(cfg, dict):
        fail(folder, "config.json is not an object")
    sd, fname = load_hf_weights(folder)
    mt = cfg.get("model_type")
    name = cfg.get("_name_or_path") or os.path.basename(os.path.abspath(folder))

    def need(*keys):
        for k in keys:
            if is_count(cfg.get(k)):
                return cfg[k]
        fail(os.path.join(folder, "config.json"), "missing %s" % keys[0])

    if mt == "gpt2":
        return map_hf_gpt2(folder, cfg, sd, fname, name, need), find_tokenizer(folder), cfg, list(sd)
    if mt in ("llama", "mistral"):
        return map_hf_llama(folder, cfg, sd, fname, mt, name, need), find_tokenizer(folder), cfg, list(sd)
    if mt in FAMILIES:
        return map_family(folder, cfg, sd, fname, mt, name, need), find_tokenizer(folder), cfg, list(sd)
    fail(os.path.join(folder, "config.json"), "model_type %r is not supported (gpt2, llama, mistral, %s)"
         % (mt, ", ".join(sorted(FAMILIES))))


# ---------------------------------------------------------------- main


def load_checkpoint(path, args):
    """SRC that is a model -> (Model, tokenizer found beside it or None, config dict,
    every source tensor name)."""
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            fail(path, "folder without config.json (not a Hugging Face model folder)")
        return map_hf(path)
    if not os.path.isfile(path):
        fail(path, "no such file")
    base = os.path.basename(path)
    d = os.path.dirname(path) or "."
    if base.endswith(".safetensors") or base in ("pytorch_model.bin", "config.json"):
        if os.path.exists(os.path.join(d, "config.json")):
            return load_checkpoint(d, args)
        fail(path, "needs config.json beside it (pass the Hugging Face folder)")
    with open(path, "rb") as f:
        head = f.read(8)
    # a pickle: PROTO 2..5 then an opcode (never 0); a llama2.c header whose dim
    # is 0x..80 (384, 640, 896) starts with 0x80 too, but its third byte is 0
    pickle = len(head) > 2 and head[0] == 0x80 and 2 <= head[1] <= 5 and head[2] != 0
    if base.endswith((".pt", ".pth", ".ckpt")) and head[:4] != b"PK\x03\x04" and not pickle:
        fail(path, "not a torch.save checkpoint (neither a zip nor a pickle)")
    if head[:4] == b"PK\x03\x04" or pickle:
        obj = load_torch(path)
        if not isinstance(obj, dict):
            fail(path, "checkpoint is not a dict")
        sd = obj.get("model", obj)
        margs = obj.get("model_args") if isinstance(obj.get("model_args"), dict) else {}
        if not isinstance(sd, dict):
            fail(path, "checkpoint['model'] is not a state dict")
        sd = strip_prefixes(sd)
        if args.keymap:
            sd = apply_keymap(sd, read_keymap(args.keymap))
        srcs = state_dict_srcs(sd, path)
        if "transformer.wte.weight" in srcs or "tok_embeddings.weight" in srcs:
            m = map_nanogpt(srcs, margs, path, (args.rope or "halves", args.rope_theta))
        else:
            m = map_gptmini(srcs, checkpoint_config(obj), path, args)
        m.steps = checkpoint_step(obj, path)
        return m, tokenizer_beside(path, checkpoint_config(obj)), {}, list(srcs)
    hp, srcs = load_llama2c_bin(path)
    m = map_llama2c(hp, srcs, path, "llama2.c %s (v%d)" % (base, hp["version"]))
    return m, None, {}, list(srcs)


def strip_prefixes(sd):
    """torch.compile's '_orig_mod.' and DDP's 'module.' on each key; 'model.' when every key has it."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        for p in ("_orig_mod.", "module."):
            if isinstance(k, str) and k.startswith(p):
                k = k[len(p):]
        out[k] = v
    if out and all(isinstance(k, str) and k.startswith("model.") for k in out):
        out = collections.OrderedDict((k[len("model."):], v) for k, v in out.items())
    return out


def tokenizer_beside(path, config):
    """The tokenizer of a .pt checkpoint: meta.pkl or tokenizer.json beside it,
    else data/<dataset>/meta.pkl (dataset from the checkpoint's config, as
    nanoGPT's sample.py looks; without one, the only data/*/meta.pkl) in the
    checkpoint's folder or the two above it (out-x/ckpt.pt, runs/exp1/final.pt)."""
    d = os.path.dirname(os.path.abspath(path))
    for name in ("meta.pkl", "tokenizer.json"):
        if os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    ds = config.get("dataset") if isinstance(config, dict) else None
    ok = isinstance(ds, str) and re.match(r"^[\w.-]+$", ds) and ds not in (".", "..")
    for up in (d, os.path.dirname(d), os.path.dirname(os.path.dirname(d))):
        data = os.path.join(up, "data")
        if ok:
            p = os.path.join(data, ds, "meta.pkl")
            if os.path.isfile(p):
                return p
        elif os.path.isdir(data):
            found = [os.path.join(data, n, "meta.pkl") for n in sorted(os.listdir(data))
                     if os.path.isfile(os.path.join(data, n, "meta.pkl"))]
            if len(found) == 1:
                return found[0]
    return None


def tensor_plan(m, dtype):
    """Model -> OutTensors (1-D: F32; 2-D: dtype, Q8_0 falls back to F16 when cols % 32)."""
    gtype = OUT_DTYPES[dtype][0]
    out = []
    fallbacks = []
    for gname, src, tr, note in m.tensors:
        shape = src.shape[::-1] if tr == "T" else src.shape
        t = GGML_F32 if len(shape) == 1 else gtype
        if t == GGML_Q8_0 and shape[-1] % Q8_BLOCK:
            t = GGML_F16
            fallbacks.append(gname)
        if tr == "T":
            produce = (lambda s: lambda: transpose(s))(src)
        elif tr and tr[0] == "P":
            produce = (lambda s, n: lambda: unpermute_rows(s.f32(), s.shape, n))(src, tr[1])
        elif tr and tr[0] == "F":  # a function of the float32 values
            produce = (lambda s, fn: lambda: fn(s.f32()))(src, tr[1])
        else:
            produce = src.f32
        out.append(OutTensor(gname, shape, t, produce, "%s%s" % (src.name, " (%s)" % note if note else "")))
        if gname == "token_embd.weight" and m.arch == "gpt2" and not any(x[0] == "output.weight" for x in m.tensors):
            # llama.cpp's gpt2 needs output.weight; its own converter writes the tied head again
            out.append(OutTensor("output.weight", shape, t, produce, "%s (tied head, again)" % src.name))
    if fallbacks:
        warn("%d matrices have a column count that is not a multiple of 32, written as F16 instead of Q8_0 (%s)"
             % (len(fallbacks), ", ".join(fallbacks[:4]) + (", ..." if len(fallbacks) > 4 else "")))
    return out


def print_plan(tensors):
    """One line per tensor group: layer numbers folded into {a-b}."""
    groups = collections.OrderedDict()
    for t in tensors:
        key = (re.sub(r"\.\d+\.", ".{N}.", t.name), re.sub(r"\.\d+\.", ".{N}.", t.src_desc), t.shape, t.gtype)
        layer = re.search(r"\.(\d+)\.", t.name)
        groups.setdefault(key, []).append(int(layer.group(1)) if layer else None)
    for (gname, sname, shape, gtype), layers in groups.items():
        if layers[0] is not None:
            rng = "%d-%d" % (min(layers), max(layers)) if len(layers) > 1 else str(layers[0])
            gname, sname = gname.replace("{N}", "{%s}" % rng), sname.replace("{N}", "{%s}" % rng)
        print("  %-28s <- %-44s %-14s %s" % (gname, sname, "x".join(map(str, shape)), GGML_NAMES[gtype]))


def _f32(v):
    """v as the float32 the file stores (inf when too large, 0 when too small)."""
    try:
        return struct.unpack("<f", struct.pack("<f", v))[0]
    except OverflowError:
        return math.inf


def model_kv(m, file_type):
    kv = KV()
    kv.set("general.architecture", G_STR, m.arch)
    kv.set("general.name", G_STR, str(m.name))
    kv.set("general.file_type", G_U32, file_type)
    a = m.arch
    for k, v in m.hp.items():
        if k == "head_count_kv" and a == "gpt2":
            continue
        if isinstance(v, (bool, str)):
            kv.set("%s.%s" % (a, k), G_BOOL if isinstance(v, bool) else G_STR, v)
            continue
        if isinstance(v, float) and not 0 < _f32(v) < math.inf:  # norm epsilon, RoPE base: attn refuses others
            fail(m.path, "%s = %r must be a positive number that float32 holds (not 0 or inf there)" % (k, v))
        key = "%s.%s" % (a, k.replace("head_count", "attention.head_count").replace(
            "layer_norm", "attention.layer_norm"))
        kv.set(key, G_F32 if isinstance(v, float) else G_U32, v)
    for k, v in m.ext.items():
        kv.set(k, G_STR, v)
    kv.set("attn.source", G_STR, m.source)
    return kv


# attn's defaults per architecture (attn_arch.c), for the summary line
FAMILY_DEFAULTS = {"gpt2": ("learned", "gelu_tanh"), "llama": ("rope_pairs", "swiglu"),
                   "gptneox": ("rope_halves", "gelu_tanh"), "gemma": ("rope_halves", "geglu"),
                   "gemma2": ("rope_halves", "geglu"), "phi2": ("rope_halves", "gelu_tanh"),
                   "phi3": ("rope_halves", "swiglu_fused")}


def describe(m):
    hp = m.hp
    D, H = hp["embedding_length"], hp["head_count"]
    dpos, dmlp = FAMILY_DEFAULTS.get(m.arch, ("rope_halves", "swiglu"))
    pos = m.ext.get("attn.positions", dpos)
    mlp = m.ext.get("attn.mlp", dmlp)
    hd = hp.get("attention.key_length", D // H)
    tied = not any(t[0] == "output.weight" for t in m.tensors)
    biases = any(t[0].endswith(".bias") and t[0].startswith("blk.") for t in m.tensors)
    return ("arch %s: %d layers, width %d, %d heads (kv %d, head dim %d), ffn %d, vocab %d, context %d; "
            "positions %s%s, mlp %s, biases %s, head %s"
            % (m.arch, hp["block_count"], D, H, hp.get("head_count_kv", H), hd, hp["feed_forward_length"],
               hp["vocab_size"], hp["context_length"], pos,
               " (theta %g)" % hp["rope.freq_base"] if "rope.freq_base" in hp else "", mlp,
               "yes" if biases else "no", "tied" if tied else "separate"))


def default_out(src):
    src = os.path.normpath(src)
    base = os.path.splitext(os.path.basename(src))[0] if os.path.isfile(src) else os.path.basename(src)
    return os.path.join(os.path.dirname(src), base + ".gguf")


def convert(args):
    out = args.output or default_out(args.src)
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        fail(out, "its folder does not exist")
    if os.path.exists(args.src) and os.path.exists(out) and os.path.samefile(args.src, out):
        fail(out, "output would overwrite the input")
    if args.vocab_only:
        if args.tokenizer:
            fail("--tokenizer", "not used with --vocab-only (SRC is the tokenizer)")
        v = load_vocab(args.src)
        kv = KV()
        kv.set("general.architecture", G_STR, "llama" if v.model == "llama" else "gpt2")
        kv.set("general.name", G_STR, os.path.basename(os.path.normpath(args.src)))
        kv.set("attn.source", G_STR, v.source)
        v.write(kv)
        size = write_gguf(out, kv, [])
        print("tokenizer: %s" % v.describe())
        print("wrote %s: vocab only, %.2f MB" % (out, size / 1e6))
        return
    m, beside, cfg, names = load_checkpoint(args.src, args)
    unmapped = [k for k in names if k not in m.used]
    if unmapped:
        fail(args.src, "cannot map tensor%s %s; map them with --keymap FILE (see --help)"
             % ("s" if len(unmapped) > 1 else "", ", ".join("'%s'" % k for k in unmapped[:12]) +
                (" (and %d more)" % (len(unmapped) - 12) if len(unmapped) > 12 else "")))
    V = m.hp["vocab_size"]
    vocab = None
    if args.tokenizer:
        vocab = load_vocab(args.tokenizer, cfg)
    elif beside:
        try:
            vocab = load_vocab(beside, cfg)
        except ConvertError as e:
            warn("tokenizer beside the model not used: %s" % e)
    if vocab is not None and len(vocab.tokens) > V:
        msg = "tokenizer has %d tokens but the model only %d rows" % (len(vocab.tokens), V)
        if args.tokenizer:
            fail(args.tokenizer, msg)
        warn(msg + "; not attached")
        vocab = None
    kv = model_kv(m, OUT_DTYPES[args.dtype][1])
    if getattr(m, "steps", None) is not None:
        kv.set("attn.training.steps", G_U32, m.steps)
    step = re.match(r"^step(\d+)$", os.path.basename(os.path.normpath(args.src)))
    if step and m.arch == "gptneox" and not any(k == "attn.training.steps" for k, _, _ in args.set):
        print("attn.training.steps = %s (from the folder name)" % step.group(1))
        args.set.append(("attn.training.steps", G_U32, int(step.group(1))))
    for key, t, v in args.set:
        kv.set(key, t, v)
    if vocab is not None:
        if len(vocab.tokens) < V:
            print("tokenizer padded from %d to %d tokens" % (len(vocab.tokens), V))
            vocab.pad_to(V)
        vocab.write(kv)
    else:
        hint = " (nanoGPT without meta.pkl uses GPT-2's tokenizer: pass --tokenizer DIR with encoder.json and " \
               "vocab.bpe)" if m.source.startswith("nanoGPT") and V >= 50257 else ""
        warn("no tokenizer: writing an ids-only model; add one with --tokenizer PATH" + hint)
    tensors = tensor_plan(m, args.dtype)
    print("source: %s" % m.source)
    print(describe(m))
    for note in getattr(m, "notes", []):
        print("  %s" % note)
    if getattr(m, "steps", None) is not None:
        print("  training step %d (attn.training.steps)" % m.steps)
    print_plan(tensors)
    for k in m.ignored[:3]:
        print("  (skipped buffer %s%s)" % (k, ", ..." if len(m.ignored) > 3 and k == m.ignored[2] else ""))
    if vocab is not None:
        print("tokenizer: %s" % vocab.describe())
    size = write_gguf(out, kv, tensors)
    n_params = sum(prod(t.shape) for t in tensors)
    print("wrote %s: %d tensors, %.2fM parameters, %s, %.2f MB" % (out, len(tensors), n_params / 1e6, args.dtype,
                                                                   size / 1e6))


SET_TYPES = {"attn.training.steps": (G_U32, int), "attn.training.heldout_loss": (G_F32, float)}


def set_arg(text):
    """--set KEY=VALUE -> (key, GGUF type, value)."""
    key, eq, value = text.partition("=")
    if not eq or not re.match(r"^(attn|general)\.[A-Za-z0-9_.]+$", key):
        raise argparse.ArgumentTypeError("%r is not attn.KEY=VALUE or general.KEY=VALUE" % text)
    t, conv = SET_TYPES.get(key, (G_STR, str))
    try:
        return key, t, conv(value)
    except ValueError:
        raise argparse.ArgumentTypeError("%s needs a number, not %r" % (key, value))


HELP_EPILOG = """\
SRC kinds:
  Hugging Face folder     config.json + model.safetensors | model.safetensors.index.json + shards |
                          pytorch_model.bin (F32, F16, BF16); model_type gpt2, llama (also Llama 3
                          rope_scaling; mistral without sliding window), gpt_neox (Pythia), qwen2,
                          gemma, gemma2, phi (Phi-2), phi3, olmo2: the same tensors and layouts as
                          llama.cpp's convert_hf_to_gguf.py writes. Its tokenizer (tokenizer.model,
                          tokenizer.json, vocab.json+merges.txt) is attached automatically. A
                          gpt_neox folder named stepN (a Pythia revision) gets attn.training.steps=N.
  nanoGPT ckpt.pt         {'model': state_dict, 'model_args': ...}, '_orig_mod.' prefix allowed, biases
                          optional, any vocab size; attn.mlp = gelu_erf (nn.GELU), LayerNorm eps 1e-5.
                          meta.pkl beside it (or data/<dataset>/meta.pkl in its folder or the two
                          above, where nanoGPT's sample.py looks; without a dataset in the config, the
                          only data/*/meta.pkl there) is attached automatically. A RoPE variant (no
                          transformer.wpe.weight) gets attn.positions from --rope.
  GPTMini-style .pt       {'model': state_dict, ...} with tok_emb, blocks.N.norm1, blocks.N.attn.qkv (or
                          attn.q/k/v), blocks.N.attn.proj, blocks.N.norm2, blocks.N.ffn.*, a final
                          norm (norm_f, ln_f, norm) and a head (head, lm_head; tied or not). Read
                          from the tensors: MLP (ffn.0/ffn.2, fc1/fc2: GELU, exact erf; w1/w2/w3:
                          SwiGLU), norm (biases: LayerNorm; none: RMSNorm with SwiGLU or a config
                          norm naming rms, else LayerNorm without bias; --norm overrides), RoPE
                          layout and theta from saved cos/sin buffers (full-width tables repeat
                          in halves or pairs; none or half-width: halves, printed; --rope
                          overrides). Head count, context, eps, theta from a config dict in the
                          checkpoint (config, model_args, cfg, ...: n_head, block_size, norm_eps,
                          rope_theta) when there is one, else from the buffers.
                          tokenizer.json beside the checkpoint is attached automatically.
  any .pt                 the step (iter_num, step, global_step, or stepN / ckptN / iterN in the
                          file name) is written as attn.training.steps; the model name is the
                          file name (a generic one, ckpt/final/model/..., with its folder: exp1/final).
  llama2.c ckpt.pt        train.py checkpoints (tok_embeddings.weight, layers.N.attention.wq.weight, ...).
  llama2.c model.bin      v0 (legacy_export), v1 and v2 ("ak42" header; v2 int8 groups are dequantized).
  --vocab-only            SRC is a tokenizer: tokenizer.json, tokenizer.model (SentencePiece BPE),
                          llama2.c tokenizer.bin, vocab.json+merges.txt or encoder.json+vocab.bpe
                          (file or folder), nanoGPT meta.pkl (character vocabulary, model "char").
--keymap FILE: one rename a line, 'THEIR_NAME OUR_NAME', '#' starts a comment; {N} stands for
  the layer number (in both or neither); a rule renames the name and everything below it
  (THEIR.weight, THEIR.bias). Our names are the GPTMini ones above, e.g.
    embed.tokens            tok_emb
    trunk.{N}.pre_norm      blocks.{N}.norm1
    trunk.{N}.mix.wqkv      blocks.{N}.attn.qkv
  A checkpoint with names none of these place is refused, listing them.
--rope (checkpoints without position embeddings):
  halves  rotate_half: dims i and i+hd/2 form a pair (GPT-NeoX / Hugging Face style, the usual
          way nanoGPT forks add RoPE) -> attn.positions = rope_halves (default)
  pairs   dims 2i and 2i+1 form a pair (Meta / llama2.c style) -> attn.positions = rope_pairs
Errors are one line 'convert.py: <what>: <why>'; exit 2 for bad input, 1 otherwise.
"""


def main(argv=None):
    ap = argparse.ArgumentParser(prog="convert.py", description="Convert a checkpoint or tokenizer to attn's GGUF.",
                                 epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", metavar="SRC", help="model folder or file, or with --vocab-only a tokenizer")
    ap.add_argument("-o", "--output", metavar="OUT.gguf", help="default: SRC with .gguf (beside it)")
    ap.add_argument("--tokenizer", metavar="PATH", help="attach this tokenizer (any kind --vocab-only reads)")
    ap.add_argument("--dtype", choices=sorted(OUT_DTYPES), default="f32",
                    help="type of 2-D weights (1-D tensors are always f32); default f32")
    ap.add_argument("--vocab-only", action="store_true", help="write only the tokenizer of SRC")
    ap.add_argument("--rope", choices=("halves", "pairs"), default=None,
                    help="RoPE layout of a checkpoint without position embeddings (see below)")
    ap.add_argument("--n-head", type=int, default=None, metavar="N",
                    help="head count of a GPTMini-style checkpoint without a config dict or cos/sin buffers")
    ap.add_argument("--norm", choices=("layernorm", "rmsnorm"), default=None,
                    help="norm kind of a GPTMini-style checkpoint whose norms have no bias (default: inferred)")
    ap.add_argument("--keymap", metavar="FILE", default=None,
                    help="rename a checkpoint's tensors before mapping (format below)")
    ap.add_argument("--rope-theta", type=float, default=None, metavar="THETA",
                    help="RoPE base for such a checkpoint (default: model_args rope_theta, else 10000)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", type=set_arg,
                    help="add an attn.* or general.* key, e.g. attn.training.corpus=TinyStories; "
                         "attn.training.steps is written as u32, attn.training.heldout_loss as f32, others as "
                         "strings (repeatable)")

    def usage_error(msg):
        error_line("usage: %s" % msg)
        sys.exit(2)

    ap.error = usage_error
    args = ap.parse_args(argv)
    catch_signals()
    try:
        convert(args)
    except ConvertError as e:
        error_line(e)
        return 2
    except (OSError, MemoryError) as e:
        where = getattr(e, "filename", None)
        error_line("%s: %s" % (where or args.src, getattr(e, "strerror", None) or e))
        return 2 if isinstance(e, FileNotFoundError) else 1
    except (struct.error, ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError, RecursionError,
            OverflowError, zipfile.BadZipFile) as e:
        error_line("%s: malformed input (%s: %s)" % (args.src, type(e).__name__, e))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
