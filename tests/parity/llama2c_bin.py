"""llama2.c .bin files written with the standard library (no torch), in the
layout of llama2.c export.py's version1_export, for tests that run without
torch."""
import struct


def write_llama2c_v1(path, dim, hidden, L, H, Hkv, V, seq, shared, rng):
    """Values from rng (random.Random); returns {name: list of floats} with names
    as in llama2.c's model.py without '.weight' (layers.N.wq, norm, output, ...)."""
    hd = dim // H
    vals = {}
    order = ([("layers.%d.attention_norm" % i, dim) for i in range(L)] + [("layers.%d.ffn_norm" % i, dim) for i in range(L)]
             + [("norm", dim), ("tok_embeddings", V * dim)])
    for w, n in (("wq", dim * dim), ("wk", Hkv * hd * dim), ("wv", Hkv * hd * dim), ("wo", dim * dim),
                 ("w1", hidden * dim), ("w2", dim * hidden), ("w3", hidden * dim)):
        order += [("layers.%d.%s" % (i, w), n) for i in range(L)]
    if not shared:
        order.append(("output", V * dim))
    with open(path, "wb") as f:
        hdr = struct.pack("<Ii7iB", 0x616B3432, 1, dim, hidden, L, H, Hkv, V, seq, int(shared))
        f.write(hdr + b"\0" * (256 - len(hdr)))
        for name, n in order:
            vals[name] = [rng.uniform(-1, 1) for _ in range(n)]
            f.write(struct.pack("<%df" % n, *vals[name]))
    return vals
