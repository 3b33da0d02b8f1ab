"""tests/data/quant_blocks.gguf: blocks of every quantized type attn reads,
each beside llama.cpp's own reference decoding (gguf-py gguf.quants.dequantize),
for build/tests/unit/test_kernels (bit-identical dequantization and matmul on every
SIMD path). Part of `make parity`; needs numpy and ../shared/ref/llama.cpp/gguf-py.

  python3 tests/parity/make_quant.py [REAL.gguf ...]

For each type T the file holds tensors, each `T.<what>` (quantized, rows of K)
next to `T.<what>.f32` (the reference's F32 decoding):
  T.rand   random bytes with finite f16 scales (4 rows)
  T.real   the first rows of a tensor of type T from the REAL files, which
           llama-quantize wrote (omitted when none is given or none has T)
  T.special  random blocks whose f16 scales are NaN, Inf or subnormal: for
           dequantization only (a matmul over NaN says nothing)
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "ref", "llama.cpp", "gguf-py"))
import numpy as np  # noqa: E402
import gguf  # noqa: E402

OUT = os.path.join(ROOT, "tests", "data", "quant_blocks.gguf")
# name, ggml type, weights per block, bytes per block, offsets of the f16 scales in a block
TYPES = [
    ("Q4_0", 2, 32, 18, [0]), ("Q4_1", 3, 32, 20, [0, 2]), ("Q5_0", 6, 32, 22, [0]),
    ("Q5_1", 7, 32, 24, [0, 2]), ("Q8_0", 8, 32, 34, [0]), ("Q2_K", 10, 256, 84, [80, 82]),
    ("Q3_K", 11, 256, 110, [108]), ("Q4_K", 12, 256, 144, [0, 2]), ("Q5_K", 13, 256, 176, [0, 2]),
    ("Q6_K", 14, 256, 210, [208]), ("IQ4_NL", 20, 32, 18, [0]), ("IQ4_XS", 23, 256, 136, [0]),
]


def rand_blocks(rng, blk, nbytes, scales, nblocks, special):
    b = rng.integers(0, 256, size=(nblocks, nbytes), dtype=np.uint8)
    for o in scales:  # f16 scales: finite, about 2^-12 .. 2^-4 (or NaN/Inf/subnormal)
        if special:
            h = rng.choice(np.array([0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x0001, 0x83ff, 0x0000, 0x8000], dtype=np.uint16),
                           size=nblocks)
        else:
            h = ((rng.integers(0, 2, nblocks) << 15) | (rng.integers(3, 11, nblocks) << 10)
                 | rng.integers(0, 1024, nblocks)).astype(np.uint16)
        b[:, o:o + 2] = h.view(np.uint8).reshape(nblocks, 2)
    return b


def real_rows(paths, gtype, blk, nbytes, max_rows=3, max_k=1024):
    """(rows, K) quantized bytes from the first tensor of gtype in the files."""
    for p in paths:
        r = gguf.GGUFReader(p)
        for t in r.tensors:
            if int(t.tensor_type) != gtype or len(t.shape) < 2:
                continue
            raw = np.asarray(t.data).view(np.uint8)
            K = int(t.shape[0])
            rows = raw.reshape(-1, K // blk * nbytes)[:max_rows]
            kb = min(K, max_k) // blk
            return rows[:, :kb * nbytes].copy(), kb * blk, "%s:%s" % (os.path.basename(p), t.name)
    return None, 0, None


def write_gguf(path, tensors):
    """tensors: [(name, ggml type, ne list, bytes)] -> minimal GGUF v3, alignment 32."""
    head = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 1))
    key = b"general.source"
    val = b"tests/parity/make_quant.py: gguf.quants.dequantize beside each quantized tensor"
    head += struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(val)) + val
    off = 0
    for name, gtype, ne, data in tensors:
        nb = name.encode()
        head += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(ne))
        head += b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", gtype, off)
        off += (len(data) + 31) // 32 * 32
    head += b"\0" * (-len(head) % 32)
    body = bytearray()
    for _, _, _, data in tensors:
        body += data + b"\0" * (-len(data) % 32)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head + body)
    os.replace(tmp, path)


def main(argv):
    rng = np.random.default_rng(20261202)
    tensors, notes = [], []
    for name, gtype, blk, nbytes, scales in TYPES:
        qt = gguf.GGMLQuantizationType(gtype)
        sets = []
        K = 2 * 256 if blk == 256 else 7 * 32  # a few blocks per row
        sets.append(("rand", rand_blocks(rng, blk, nbytes, scales, 4 * K // blk, False).reshape(4, -1), K))
        rows, Kr, src = real_rows(argv, gtype, blk, nbytes)
        if rows is not None:
            sets.append(("real", rows, Kr))
            notes.append("%s.real from %s" % (name, src))
        sets.append(("special", rand_blocks(rng, blk, nbytes, scales, 2 * K // blk, True).reshape(2, -1), K))
        for what, q, k in sets:
            with np.errstate(invalid="ignore", over="ignore"):
                f = gguf.quants.dequantize(q, qt).astype(np.float32).reshape(q.shape[0], k)
            tensors.append(("%s.%s" % (name, what), gtype, [k, q.shape[0]], q.tobytes()))
            tensors.append(("%s.%s.f32" % (name, what), 0, [k, q.shape[0]], f.tobytes()))
    write_gguf(OUT, tensors)
    print("wrote %s (%d tensors, %d bytes)" % (os.path.relpath(OUT, ROOT), len(tensors), os.path.getsize(OUT)))
    for n in notes:
        print("  " + n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
