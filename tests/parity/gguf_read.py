"""Minimal GGUF v3 reader for the tests (standard library; dequant() needs numpy).
Its structure is cross-checked against npm @huggingface/gguf in t_convert_interop."""
import struct

FMTS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def nbytes(t, n):
    return {0: 4 * n, 1: 2 * n, 30: 2 * n, 8: n // 32 * 34}[t]


def read_gguf(path):
    """GGUF file -> (kv {key: value}, kv types {key: type}, tensors {name: (ggml type, ne, file offset, raw)})."""
    data = open(path, "rb").read()
    pos = [4]

    def take(fmt):
        v = struct.unpack_from("<" + fmt, data, pos[0])[0]
        pos[0] += struct.calcsize("<" + fmt)
        return v

    def string():
        n = take("Q")
        s = data[pos[0]:pos[0] + n]
        pos[0] += n
        return s.decode("utf-8", "surrogateescape")

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(FMTS[t])

    assert data[:4] == b"GGUF", path
    version, nt, nkv = take("I"), take("Q"), take("Q")
    assert version == 3
    kv, types = {}, {}
    for _ in range(nkv):
        k = string()
        types[k] = take("I")
        kv[k] = value(types[k])
    infos = []
    for _ in range(nt):
        name = string()
        ne = [take("Q") for _ in range(take("I"))]
        infos.append((name, ne, take("I"), take("Q")))
    align = kv.get("general.alignment", 32)
    base = pos[0] + (align - pos[0] % align) % align
    tensors = {}
    for name, ne, t, off in infos:
        n = 1
        for x in ne:
            n *= x
        tensors[name] = (t, ne, base + off, data[base + off:base + off + nbytes(t, n)])
    return kv, types, tensors


def dequant(t, ne, raw):
    """ggml tensor bytes -> float64 numpy array shaped (ne[-1], ..., ne[0])."""
    import numpy as np
    shape = tuple(reversed(ne))
    if t == 0:
        a = np.frombuffer(raw, "<f4")
    elif t == 1:
        a = np.frombuffer(raw, "<f2")
    elif t == 30:
        a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view("<f4")
    else:
        blk = np.frombuffer(raw, np.dtype([("d", "<f2"), ("q", "i1", 32)]))
        a = blk["d"].astype(np.float64)[:, None] * blk["q"]
    return a.astype(np.float64).reshape(shape)
