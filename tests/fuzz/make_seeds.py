"""Seed corpora of the fuzz harnesses, and models for the limit/output tests.

    make_seeds.py                writes tests/fuzz/corpus_gguf/ (small valid
                                 models, a few KB each), corpus_tok/ (texts)
                                 and corpus_cli/ (command lines)
    make_seeds.py --big FILE     one larger ids-only gpt2 model (context 1024,
                                 about 4 MB) whose forward takes a moment, for
                                 the Ctrl-C test in tests/cli/t_output.sh
    make_seeds.py --wide FILE    a llama model of 8 layers of d_model 1024 (MLP
                                 4096, SentencePiece vocabulary), its matrices
                                 Q4_0 zeros (72 MB, written at once): a random
                                 init of it is 512 MB of float32 layers, for
                                 tests/cli/t_random_mem.sh

Written with the standard library from the GGUF v3 spec and llama.cpp's key
and tensor names; weights come from a fixed PRNG so the files are the same
on every run. The models cover both architectures, fused and separate Q/K/V,
GQA, RoPE pairs/halves, the three tokenizer kinds, ids-only, and the tensor
types F32, F16, BF16, Q8_0 and every quantized type llama-quantize writes
(Q4_0 .. Q6_K, IQ4_NL, IQ4_XS; blocks made from the PRNG, scales 2^-6).
"""
import os, struct, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from bpe_train import bytes_to_unicode  # noqa: E402

U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9
T_F32, T_F16, T_Q8_0, T_BF16 = 0, 1, 8, 30
# the other quantized types: ggml type -> (weights per block, bytes per block, offsets of f16 scales)
QUANT = {2: (32, 18, [0]), 3: (32, 20, [0, 2]), 6: (32, 22, [0]), 7: (32, 24, [0, 2]), 10: (256, 84, [80, 82]),
         11: (256, 110, [108]), 12: (256, 144, [0, 2]), 13: (256, 176, [0, 2]), 14: (256, 210, [208]),
         20: (32, 18, [0]), 23: (256, 136, [0])}


def gstr(s):
    b = s if isinstance(s, bytes) else s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, t, v):
    out = gstr(key) + struct.pack("<I", t)
    if t == STR:
        return out + gstr(v)
    if t == ARR:
        et, vs = v
        out += struct.pack("<IQ", et, len(vs))
        if et == STR:
            return out + b"".join(gstr(x) for x in vs)
        return out + struct.pack("<%d%s" % (len(vs), {I32: "i", F32: "f", U32: "I"}[et]), *vs)
    return out + struct.pack({U32: "<I", I32: "<i", F32: "<f", BOOL: "<?"}[t], v)


class Rng:
    """xorshift64*: uniform floats in [-1, 1)."""

    def __init__(self, seed):
        self.s = seed or 1

    def f(self):
        x = self.s
        x ^= (x >> 12)
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= (x >> 27)
        self.s = x
        return ((x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF) / 2.0 ** 63 - 1.0


def f16(x):
    return struct.pack("<e", x)


def encode(gtype, vals):
    if gtype == T_F32:
        return struct.pack("<%df" % len(vals), *vals)
    if gtype == T_F16:
        return b"".join(f16(v) for v in vals)
    if gtype == T_BF16:
        return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0] >> 16)[:2] for v in vals)
    if gtype == T_Q8_0:
        out = b""
        for i in range(0, len(vals), 32):
            blk = vals[i:i + 32]
            d = max(abs(v) for v in blk) / 127 or 1.0
            out += f16(d) + bytes((round(v / d) & 0xFF) for v in blk)
        return out
    if gtype in QUANT:  # blocks of bytes made from the values, scales 2^-6
        blk, nb, scales = QUANT[gtype]
        out = bytearray()
        for i in range(0, len(vals), blk):
            b = bytearray(int((v + 1) * 127.5) & 255 for v in vals[i:i + nb])
            for o in scales:
                b[o:o + 2] = f16(2.0 ** -6)
            out += b
        return bytes(out)
    raise ValueError(gtype)


def gguf(kvs, tensors, align=32):
    """tensors: (name, shape with ne[0] first, type, values or their bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    off, blobs = 0, []
    for name, shape, t, vals in tensors:
        head += gstr(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        head += struct.pack("<IQ", t, off)
        b = vals if isinstance(vals, bytes) else encode(t, vals)
        b += b"\0" * (-len(b) % align)
        blobs.append(b)
        off += len(b)
    head += b"\0" * (-len(head) % align)
    return head + b"".join(blobs)


def model(arch, D, H, L, F, V, ctx, seed, kv_heads=None, fused=False, biases=False, wtype=T_F32, vtype=T_F32,
          extra_kvs=(), untied=False, rope_dims=None):
    """(key/values, tensors) of a random model; 2-D weights of wtype, vectors of vtype."""
    r = Rng(seed)
    KV = kv_heads or H
    hd = D // H
    kvs = [kv("general.architecture", STR, arch), kv("general.name", STR, "seed-" + arch),
           kv(arch + ".block_count", U32, L), kv(arch + ".embedding_length", U32, D),
           kv(arch + ".attention.head_count", U32, H), kv(arch + ".attention.head_count_kv", U32, KV),
           kv(arch + ".feed_forward_length", U32, F), kv(arch + ".context_length", U32, ctx)]
    if rope_dims:
        kvs.append(kv(arch + ".rope.dimension_count", U32, rope_dims))
    kvs += list(extra_kvs)
    ts = []

    def mat(name, rows, cols, scale=0.5):  # wtype: a type, or a function of the name
        t = wtype(name) if callable(wtype) else wtype
        ts.append((name, [cols, rows], t, [scale * r.f() for _ in range(rows * cols)]))

    def vec(name, n, base):
        ts.append((name, [n], vtype, [base + 0.1 * r.f() for _ in range(n)]))

    mat("token_embd.weight", V, D)
    vec("output_norm.weight", D, 1.0)
    if arch == "gpt2":
        vec("output_norm.bias", D, 0.0)
    if untied:
        mat("output.weight", V, D)
    if arch == "gpt2" and not any(b"attn.positions" in k for k in extra_kvs):
        mat("position_embd.weight", ctx, D)
    for l in range(L):
        p = "blk.%d." % l
        vec(p + "attn_norm.weight", D, 1.0)
        vec(p + "ffn_norm.weight", D, 1.0)
        if fused:
            mat(p + "attn_qkv.weight", D + 2 * KV * hd, D)
        else:
            mat(p + "attn_q.weight", D, D)
            mat(p + "attn_k.weight", KV * hd, D)
            mat(p + "attn_v.weight", KV * hd, D)
        mat(p + "attn_output.weight", D, D)
        mat(p + "ffn_up.weight", F, D)
        mat(p + "ffn_down.weight", D, F)
        if arch == "llama":
            mat(p + "ffn_gate.weight", F, D)
        if biases:
            vec(p + "attn_norm.bias", D, 0.0)
            vec(p + "ffn_norm.bias", D, 0.0)
            vec(p + ("attn_qkv.bias" if fused else "attn_q.bias"), D + 2 * KV * hd if fused else D, 0.0)
            vec(p + "attn_output.bias", D, 0.0)
            vec(p + "ffn_up.bias", F, 0.0)
            vec(p + "ffn_down.bias", D, 0.0)
    return kvs, ts


def gpt2_vocab():
    """256 byte symbols, a few merges, <|endoftext|> last."""
    bu = dict(bytes_to_unicode())  # GPT-2's byte -> printable character table
    tokens = [bu[b] for b in range(256)]
    merges = []
    for a, b in [("t", "h"), ("th", "e"), ("Ġ", "t"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"),
                 ("o", "n"), ("Ġ", "the"), ("a", "n"), ("Ġa", "n"), ("in", "g"), ("Ġ", "ĊĊ"[0])]:
        merges.append(a + " " + b)
        tokens.append(a + b)
    tokens.append("<|endoftext|>")
    types = [1] * (len(tokens) - 1) + [3]
    eos = len(tokens) - 1
    return tokens, [kv("tokenizer.ggml.model", STR, "gpt2"), kv("tokenizer.ggml.pre", STR, "gpt-2"),
                    kv("tokenizer.ggml.tokens", ARR, (STR, tokens)), kv("tokenizer.ggml.token_type", ARR, (I32, types)),
                    kv("tokenizer.ggml.merges", ARR, (STR, merges)), kv("tokenizer.ggml.bos_token_id", U32, eos),
                    kv("tokenizer.ggml.eos_token_id", U32, eos), kv("tokenizer.ggml.add_bos_token", BOOL, False)]


def spm_vocab():
    """<unk> <s> </s>, the 256 byte-fallback tokens, then scored pieces."""
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    pieces = ["▁", "e", "t", "a", "o", "h", "▁t", "he", "▁the", "▁a", "in", "▁H", "ll", "o,", "▁w", "or", "ld",
              "é", "日", "本", "▁日本"]
    tokens += pieces
    types += [1] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, [kv("tokenizer.ggml.model", STR, "llama"), kv("tokenizer.ggml.tokens", ARR, (STR, tokens)),
                    kv("tokenizer.ggml.scores", ARR, (F32, scores)), kv("tokenizer.ggml.token_type", ARR, (I32, types)),
                    kv("tokenizer.ggml.unknown_token_id", U32, 0), kv("tokenizer.ggml.bos_token_id", U32, 1),
                    kv("tokenizer.ggml.eos_token_id", U32, 2), kv("tokenizer.ggml.add_bos_token", BOOL, True),
                    kv("tokenizer.ggml.add_space_prefix", BOOL, True)]


def char_vocab():
    tokens = list("\n !,.?abcdefghijklmnopqrstuvwxyzé")
    return tokens, [kv("tokenizer.ggml.model", STR, "char"), kv("tokenizer.ggml.tokens", ARR, (STR, tokens)),
                    kv("tokenizer.ggml.token_type", ARR, (I32, [1] * len(tokens))),
                    kv("tokenizer.ggml.add_bos_token", BOOL, False)]


def seeds():
    out = {}
    toks, tkv = gpt2_vocab()
    k, t = model("gpt2", 8, 2, 1, 16, len(toks), 16, 1, fused=True, biases=True, extra_kvs=tkv)
    out["gpt2_bpe.gguf"] = gguf(k, t)
    toks, tkv = spm_vocab()
    k, t = model("llama", 8, 4, 1, 16, len(toks), 16, 2, kv_heads=2, extra_kvs=tkv)
    out["llama_spm_gqa.gguf"] = gguf(k, t)
    toks, tkv = char_vocab()
    k, t = model("gpt2", 8, 2, 2, 16, len(toks), 32, 3, fused=True, biases=True, untied=True,
                 extra_kvs=tkv + [kv("attn.positions", STR, "rope_halves"), kv("attn.mlp", STR, "gelu_erf")])
    out["nanogpt_rope_char.gguf"] = gguf(k, t)
    k, t = model("llama", 32, 2, 1, 32, 12, 8, 4, kv_heads=1, wtype=T_Q8_0, vtype=T_F16, untied=True, rope_dims=8)
    out["llama_q8_0_ids.gguf"] = gguf(k, t)
    k, t = model("llama", 8, 2, 1, 8, 10, 8, 5, wtype=T_BF16, vtype=T_BF16,
                 extra_kvs=[kv("attn.positions", STR, "rope_halves"), kv("general.alignment", U32, 64)])
    out["llama_bf16_align64.gguf"] = gguf(k, t, align=64)
    k, t = model("gpt2", 8, 1, 1, 8, 6, 4, 6, wtype=T_F16, vtype=T_F16,
                 extra_kvs=[kv("attn.norm", STR, "rmsnorm"), kv("attn.positions", STR, "none")])
    out["gpt2_f16_nopos.gguf"] = gguf(k, t)
    # every quantized type llama-quantize writes, mixed as in its files (K-quants need rows of 256)
    kmix = {"token_embd": 14, "output": 12, "attn_q": 10, "attn_k": 11, "attn_v": 23, "attn_output": 10,
            "ffn_up": 13, "ffn_gate": 12, "ffn_down": 2}
    k, t = model("llama", 256, 4, 1, 32, 6, 4, 7, kv_heads=1, untied=True, rope_dims=64,
                 wtype=lambda n: kmix[n.split(".")[-2]])
    out["llama_kquant_mix.gguf"] = gguf(k, t)
    lmix = {"token_embd": 3, "output": 6, "attn_q": 7, "attn_k": 20, "attn_v": 2, "attn_output": 3,
            "ffn_up": 6, "ffn_gate": 7, "ffn_down": 20}
    k, t = model("llama", 32, 2, 1, 32, 12, 8, 8, kv_heads=1, untied=True, rope_dims=8,
                 wtype=lambda n: lmix[n.split(".")[-2]])
    out["llama_legacy_quant_mix.gguf"] = gguf(k, t)
    toks, tkv = spm_vocab()
    out["vocab_only_spm.gguf"] = gguf([kv("general.architecture", STR, "llama")] + tkv, [])
    # non-finite numbers (issue 13): a NaN and an inf weight (the forward runs;
    # attn reports where they appear), a NaN epsilon and an inf RoPE base
    # (refused at load), an F64 epsilon that is 0 as float32
    k, t = model("gpt2", 8, 2, 1, 16, 10, 8, 8, fused=True)
    t = [(n, s, ty, [float("nan") if n == "blk.0.attn_qkv.weight" and i == 3 else
                     float("inf") if n == "blk.0.ffn_down.weight" and i == 7 else v for i, v in enumerate(vs)])
         for n, s, ty, vs in t]
    out["gpt2_nan_inf_weights.gguf"] = gguf(k, t)
    k, t = model("llama", 8, 2, 1, 8, 10, 8, 9, extra_kvs=[kv("llama.attention.layer_norm_rms_epsilon", F32, float("nan")),
                                                        kv("llama.rope.freq_base", F32, float("inf"))])
    out["llama_nan_eps_inf_theta.gguf"] = gguf(k, t)
    k, t = model("gpt2", 8, 2, 1, 8, 10, 8, 10, extra_kvs=[gstr("gpt2.attention.layer_norm_epsilon") +
                                                        struct.pack("<Id", 12, 1e-300)])
    out["gpt2_f64_eps_underflow.gguf"] = gguf(k, t)
    return out


def big():
    k, t = model("gpt2", 128, 4, 4, 512, 64, 1024, 7, fused=True, wtype=T_F16)
    return gguf(k, t)


def wide():
    D, L, F, H = 1024, 8, 4096, 8
    toks, tkv = spm_vocab()
    kvs, _ = model("llama", 8, 1, 0, 8, len(toks), 64, 1, extra_kvs=tkv)  # the keys, of one shape
    kvs = [k for k in kvs if b".block_count" not in k and b".embedding_length" not in k and
           b".head_count" not in k and b".feed_forward_length" not in k]
    kvs += [kv("llama.block_count", U32, L), kv("llama.embedding_length", U32, D),
            kv("llama.attention.head_count", U32, H), kv("llama.attention.head_count_kv", U32, H),
            kv("llama.feed_forward_length", U32, F)]
    q4 = lambda rows, cols: bytes(rows * cols // 32 * 18)  # Q4_0 blocks of scale 0
    ones = struct.pack("<f", 1.0) * D
    ts = [("token_embd.weight", [D, len(toks)], 2, q4(len(toks), D)), ("output_norm.weight", [D], T_F32, ones)]
    for l in range(L):
        p = "blk.%d." % l
        ts += [(p + "attn_norm.weight", [D], T_F32, ones), (p + "ffn_norm.weight", [D], T_F32, ones)]
        ts += [(p + n, [D, D], 2, q4(D, D)) for n in ("attn_q.weight", "attn_k.weight", "attn_v.weight",
                                                     "attn_output.weight")]
        ts += [(p + "ffn_up.weight", [D, F], 2, q4(F, D)), (p + "ffn_gate.weight", [D, F], 2, q4(F, D)),
               (p + "ffn_down.weight", [F, D], 2, q4(D, F))]
    return gguf(kvs, ts)


# fuzz_tok: first byte = tokenizer slot (0 tiny GPT-2, 1 tiny SentencePiece,
# 2 tiny char, 3 GPT-2, 4 Llama 2; +128: add BOS), then the text.
TEXTS = ["Hello world, the cat sat on the mat.", "  leading spaces and\ttabs\n\nnew lines  ",
         "日本語のテキスト é ü ß ñ 😀 👍🏽", "it's we'll they're I'M 123 4567 3.14 $$$ --- ...",
         "<|endoftext|><s></s><unk> [PAD] \u2581x", "\x00\x01\x7f\x80\xff", "hello, world. a b c?"]


def tok_seeds():
    out = {}
    for slot in range(5):
        for i, t in enumerate(TEXTS):
            b = t.encode("utf-8", "surrogateescape") if i != 5 else bytes([0, 1, 0x7F, 0x80, 0xFF, 0xC3, 0x28, 0xE2, 0x82])
            out["s%d_%d" % (slot, i)] = bytes([slot + (128 if i % 2 else 0)]) + b
    return out


# fuzz_cli: arguments separated by NUL; models m.gguf (GPT-2 BPE), l.gguf
# (Llama SentencePiece), c.gguf (char) in the working directory.
CLI = [["info", "-m", "m.gguf"], ["info", "-m", "l.gguf", "--format", "json"], ["--help"], ["run", "--help"],
       ["run", "-m", "m.gguf", "-p", "the cat", "-k", "3"],
       ["run", "-m", "l.gguf", "-p", "Hello world", "--per-token", "--format", "json"],
       ["run", "-m", "c.gguf", "-p", "hello", "--export", "npy,json", "-o", "out", "-t", "2"],
       ["run", "-m", "m.gguf", "--ids", "1,2,3", "--format", "tsv", "--per-token"],
       ["run", "-m", "l.gguf", "-f", "m.gguf", "--no-bos"],
       ["tokenize", "-m", "m.gguf", "-p", "the theater"], ["tokenize", "-m", "l.gguf", "-p", "a\nb", "--ids-only"],
       ["maps", "-m", "m.gguf", "-p", "the cat sat", "-o", "maps", "--layers", "0", "--heads", "0,1"],
       ["trace", "-m", "l.gguf", "-p", "Hello", "-n", "4", "--temp", "0.8", "--seed", "3"],
       ["heads", "-m", "m.gguf", "-p", "the cat the cat", "--by", "previous", "--top", "2"],
       ["heads", "-m", "c.gguf", "--induction-test", "--len", "5", "--format", "json"],
       ["compare", "-m", "m.gguf", "-m", "m.gguf", "-p", "the cat"], ["compare", "-m", "l.gguf", "--init", "random", "-p", "a"],
       ["report", "-m", "c.gguf", "-p", "hello world", "-o", "r.html", "-k", "2"],
       ["maps", "-m", "l.gguf", "-p", "a b a b", "--max-mem", "0", "--drop-first", "-o", "maps"],
       ["compare", "-m", "m.gguf", "--init", "random", "-p", "the cat", "--max-mem", "0", "-o", "cmp"],
       ["trace", "-m", "c.gguf", "-p", "hel", "-n", "3", "--attn", "tr", "--max-mem", "0"]]


def recorded(L, H, T):
    """attention.npy (float32 [L,H,T,T], causal rows) and tokens.json as `run --export` writes them."""
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }" % (L, H, T, T)
    hdr += " " * (-(10 + len(hdr) + 1) % 64) + "\n"
    vals = []
    for _ in range(L * H):
        for i in range(T):
            vals += [1.0 / (i + 1)] * (i + 1) + [0.0] * (T - i - 1)
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack("<%df" % len(vals), *vals)
    labels = ", ".join('"%s"' % x for x in ["the", "\\u00e9\\n", "\\ud83d\\ude00", "·cat"][:T])
    tok = ('{"model": "seed", "ids": [%s], "labels": [%s], "n_layer": %d, "n_head": %d}\n'
           % (", ".join(str(i) for i in range(T)), labels, L, H)).encode()
    return b"\xff" + struct.pack("<H", len(npy)) + npy + struct.pack("<H", len(tok)) + tok


FROM = [["maps", "--from", "rec", "-o", "out"], ["maps", "--from", "rec", "--term", "--scale", "log"],
        ["maps", "--from", "rec", "--layers", "0", "--heads", "1", "--format", "svg", "--drop-first", "-o", "out",
         "--max-mem", "0"]]


# 0xFE inputs: a prompt file p.txt of the given size (issue 13: prompt files
# of every size), then the command line
PROMPT_FILES = [(0, ["run", "-m", "m.gguf", "-f", "p.txt"]), (1, ["run", "-m", "c.gguf", "-f", "p.txt"]),
                (2, ["tokenize", "-m", "l.gguf", "-f", "p.txt"]), (17, ["heads", "-m", "m.gguf", "-f", "p.txt"]),
                (300, ["tokenize", "-m", "m.gguf", "--ids-only", "-f", "p.txt"]),
                (1000, ["run", "-m", "l.gguf", "-f", "p.txt", "-k", "2"]),
                (3000, ["tokenize", "-m", "c.gguf", "-f", "p.txt"])]


def prompt_file(n):
    b = ("the cat sat on the mat.\nhello world é 日本\t" * (n // 20 + 1)).encode()[:n]
    return b"\xfe" + struct.pack("<H", n) + b


def cli_seeds():
    out = {"%02d_%s" % (i, a[0].strip("-")): "\0".join(a).encode() for i, a in enumerate(CLI)}
    for i, (a, (L, H, T)) in enumerate(zip(FROM, [(1, 2, 3), (2, 1, 4), (1, 2, 2)])):
        out["%02d_from" % (len(CLI) + i)] = recorded(L, H, T) + "\0".join(a).encode()
    base = len(CLI) + len(FROM)
    for i, (n, a) in enumerate(PROMPT_FILES):
        out["%02d_pfile%d" % (base + i, n)] = prompt_file(n) + "\0".join(a).encode()
    # tokens.json of many sizes: the labels padded with spaces (valid JSON) to n bytes
    for j, n in enumerate((0, 8, 64, 1024, 3500)):
        rec = recorded(1, 1, 2)
        k = struct.unpack("<H", rec[1:3])[0]
        tok = rec[3 + k + 2:]
        tok = (tok[:-2] + b" " * max(0, n - len(tok)) + tok[-2:]) if n >= len(tok) else tok[:n]
        data = rec[:3 + k] + struct.pack("<H", len(tok)) + tok
        out["%02d_from_tokens%d" % (base + len(PROMPT_FILES) + j, n)] = data + "\0".join(FROM[0]).encode()
    return out


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("--big", "--wide"):
        write(sys.argv[2], big() if sys.argv[1] == "--big" else wide())
    elif len(sys.argv) == 1:
        here = os.path.dirname(os.path.abspath(__file__))
        for kind, files in (("gguf", seeds()), ("tok", tok_seeds()), ("cli", cli_seeds())):
            d = os.path.join(here, "corpus_" + kind)
            os.makedirs(d, exist_ok=True)
            for name, data in files.items():
                write(os.path.join(d, name), data)
    else:
        sys.exit("usage: make_seeds.py [--big FILE | --wide FILE]")
