"""The book chapter's own model (../shared/seeds/003_*, section 4): a GPTMini
written from the chapter's attn_extract.py (tok_emb, blocks[i].norm1,
attn.qkv split in three, RoPE from the model.cos / model.sin buffers,
attn.proj, norm2, ffn, a final norm and a head), random weights, saved as the
chapter saves it (torch.save({'model': state_dict, ...}, 'final.pt')).
tools/convert.py must convert every variant WITHOUT options (naming forks,
RoPE halves and pairs, GELU and SwiGLU MLPs, LayerNorm with and without bias,
RMSNorm, tied and untied heads), and attn's attention must equal the
chapter's get_attention() run here in float64 within 1e-5, its logits
within 1e-4 of the largest. Also: --keymap, the refusal that lists names it
cannot place, --rope override, the step and name, tokenizer.json beside it;
`attn explain` (q, k, dot, score, softmax of one row) and `run --export
scores` (pre-softmax, masked = -1e30) against the same reference, 1e-5.
Needs torch + numpy (/usr/bin/python3); SKIP without them.
"""
import dataclasses
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ROOT, attn, convert, done, read_npy, result, scratch, skip

NAME = "convert gptmini"
IDS = [5, 17, 3, 17, 42, 9, 5, 17, 3, 60, 1, 33]


def define_rope(torch):
    """RoPE as the chapter writes it: the tables and the two layouts."""
    def rope_tables(T, hd, layout, theta, half_width=False):
        inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)  # (T, hd/2)
        if half_width:
            return ang.cos().float(), ang.sin().float()
        if layout == "halves":
            ang = torch.cat([ang, ang], dim=-1)
        else:
            ang = ang.repeat_interleave(2, dim=-1)
        return ang.cos().float(), ang.sin().float()

    def apply_rope_halves(x, cos, sin):
        if cos.shape[-1] != x.shape[-1]:
            cos, sin = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    def apply_rope_pairs(x, cos, sin):
        c, s = (cos[..., 0::2], sin[..., 0::2]) if cos.shape[-1] == x.shape[-1] else (cos, sin)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).flatten(-2)

    return rope_tables, apply_rope_halves, apply_rope_pairs


def define_blocks(torch):
    """The norm maker and the transformer block of the chapter's variants."""
    nn, F = torch.nn, torch.nn.functional

    class RMSNorm(nn.Module):
        def __init__(self, d, eps=1e-5):
            super().__init__()
            self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    def make_norm(c):
        if c["norm"] == "rms":
            return RMSNorm(c["d"])
        ln = nn.LayerNorm(c["d"])
        if c["norm"] == "ln_nobias":  # LayerNorm(bias=False) of torch >= 2.1
            ln.register_parameter("bias", None)
        return ln

    class SwiGLU(nn.Module):
        def __init__(self, d, f):
            super().__init__()
            self.w1, self.w2, self.w3 = nn.Linear(d, f, bias=False), nn.Linear(f, d, bias=False), nn.Linear(d, f, bias=False)

        def forward(self, x):
            return self.w2(F.silu(self.w1(x)) * self.w3(x))

    class FcMLP(nn.Module):
        def __init__(self, d, f):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(d, f), nn.Linear(f, d)

        def forward(self, x):
            return self.fc2(F.gelu(self.fc1(x)))

    class Attn(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.n_head, self.head_dim = h, d // h
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            norm = lambda: make_norm(c)
            self.norm1, self.attn, self.norm2 = norm(), Attn(c["d"], c["h"]), norm()
            f = 4 * c["d"]
            if c["ffn"] == "seq":
                self.ffn = nn.Sequential(nn.Linear(c["d"], f), nn.GELU(), nn.Linear(f, c["d"]))
            elif c["ffn"] == "fc":
                self.ffn = FcMLP(c["d"], f)
            else:
                self.ffn = SwiGLU(c["d"], f)

    return make_norm, Block


def define_get_attention(torch):
    F = torch.nn.functional

    @torch.no_grad()
    def get_attention(model, x):
        """The chapter's section 4 procedure (returns the maps and the logits)."""
        cos, sin = model.cos.double(), model.sin.double()
        h = model.tok_emb(x)
        maps = []
        model.qks = []  # per layer (q, k, scores) of batch 0, for explain and --export scores
        for block in model.blocks:
            attn = block.attn
            B, T, D = h.shape
            normed = block.norm1(h)
            q, k, v = attn.qkv(normed).split(D, dim=-1)
            q = q.view(B, T, attn.n_head, attn.head_dim).transpose(1, 2)
            k = k.view(B, T, attn.n_head, attn.head_dim).transpose(1, 2)
            v = v.view(B, T, attn.n_head, attn.head_dim).transpose(1, 2)
            q = model.apply_rope(q, cos[:T], sin[:T])
            k = model.apply_rope(k, cos[:T], sin[:T])
            scores = (q @ k.transpose(-2, -1)) / (attn.head_dim ** 0.5)
            mask = torch.triu(torch.ones(T, T), 1).bool()
            scores = scores.masked_fill(mask, float('-inf'))
            model.qks.append((q[0], k[0], scores[0]))
            att = F.softmax(scores, dim=-1)
            maps.append(att[0])
            out = att @ v
            out = out.transpose(1, 2).contiguous().view(B, T, D)
            h = h + attn.proj(out)
            h = h + block.ffn(block.norm2(h))
        return torch.stack(maps), model.final(h)[0]

    return get_attention


def define(torch):
    """The chapter's GPTMini class and its get_attention (torch passed in: this
    file is read without torch too)."""
    nn = torch.nn
    rope_tables, apply_rope_halves, apply_rope_pairs = define_rope(torch)
    make_norm, Block = define_blocks(torch)

    class GPTMini(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c
            self.tok_emb = nn.Embedding(c["V"], c["d"])
            self.blocks = nn.ModuleList(Block(c) for _ in range(c["L"]))
            setattr(self, c["norm_f"], make_norm(c))
            setattr(self, c["head"], nn.Linear(c["d"], c["V"], bias=False))
            if c["tied"]:
                getattr(self, c["head"]).weight = self.tok_emb.weight
            cos, sin = rope_tables(c["ctx"], c["d"] // c["h"], c["rope"], c["theta"], c.get("half_width", False))
            self.register_buffer("cos", cos, persistent=c["buffers"])
            self.register_buffer("sin", sin, persistent=c["buffers"])
            self.apply_rope = apply_rope_halves if c["rope"] == "halves" else apply_rope_pairs
            with torch.no_grad():
                for p in self.parameters():
                    p.normal_(0, 0.5 if p.dim() == 1 else 0.15)

        def final(self, h):
            return getattr(self, self.c["head"])(getattr(self, self.c["norm_f"])(h))

    return GPTMini, define_get_attention(torch)


BASE = dict(V=96, d=64, h=8, L=3, ctx=64, theta=10000.0, norm="ln", ffn="seq", norm_f="norm_f", head="head",
            tied=False, rope="halves", buffers=True)
VARIANTS = [  # (file, config changes, extra checkpoint entries, convert options)
    ("final.pt", {}, {}, []),
    ("step5000.pt", dict(rope="pairs", ffn="fc", norm_f="ln_f", head="lm_head", tied=True, theta=500.0), {}, []),
    ("ckpt.pt", dict(norm="rms", ffn="swiglu", norm_f="norm", buffers=False), {"iter_num": 12000, "config": "dc"}, []),
    ("final.pt", dict(norm="ln_nobias", rope="pairs", buffers=False), {"config": "dict"}, ["--rope", "pairs"]),
    ("final.pt", dict(rope="pairs", half_width=True, h=4), {"config": "dict"}, ["--rope", "pairs"]),
]


@dataclasses.dataclass
class GPTConfig:  # the reader's config class, pickled by reference
    n_layer: int
    n_head: int
    d_model: int
    block_size: int
    vocab_size: int
    rope_theta: float


def save(torch, model, c, path, extra):
    obj = {"model": model.state_dict(), "optimizer": {}, "step": None}
    obj.pop("step")
    cfg = {"n_layer": c["L"], "n_head": c["h"], "d_model": c["d"], "block_size": c["ctx"], "vocab_size": c["V"],
           "rope_theta": c["theta"]}
    for k, v in extra.items():
        if k == "config" and v == "dc":  # a dataclass, pickled by reference (the reader's GPTConfig)
            obj[k] = GPTConfig(**cfg)
        elif k == "config":
            obj[k] = cfg
        else:
            obj[k] = v
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(obj, path)


def compare(torch, model, get_attention, gguf, out, errs):
    import numpy as np
    model = model.double()
    want_a, want_l = get_attention(model, torch.tensor([IDS]))
    attn("run", "-m", gguf, "--ids", ",".join(map(str, IDS)), "--no-bos", "--export", "npy,scores", "-o", out, rc=0)
    sa, a = read_npy(os.path.join(out, "attention.npy"))
    sl, lg = read_npy(os.path.join(out, "logits.npy"))
    a, lg = np.array(a).reshape(sa), np.array(lg).reshape(sl)
    if a.shape != tuple(want_a.shape) or lg.shape != tuple(want_l.shape):
        errs.append("shapes %s %s, expected %s %s" % (a.shape, lg.shape, tuple(want_a.shape), tuple(want_l.shape)))
        return 0, 0
    da = float(np.abs(a - want_a.numpy()).max())
    dl = float(np.abs(lg - want_l.numpy()).max() / np.abs(want_l.numpy()).max())
    if not da <= 1e-5:
        errs.append("attention differs by %.3g" % da)
    if not dl <= 1e-4:
        errs.append("logits differ by %.3g of the largest" % dl)
    ss, sc = read_npy(os.path.join(out, "scores.npy"))
    sc = np.array(sc).reshape(ss)
    ref = torch.stack([t[2] for t in model.qks]).numpy()
    masked = np.isinf(ref)
    if not ((sc[masked] == np.float32(-1e30)).all() and np.isfinite(sc).all()):
        errs.append("scores.npy: masked entries are not -1e30")
    ds = float(np.abs(sc[~masked] - ref[~masked]).max() / max(1.0, np.abs(ref[~masked]).max()))
    if not ds <= 1e-5:
        errs.append("scores.npy differs by %.3g" % ds)
    return max(da, ds), dl


def check_explain(model, gguf, errs):
    """attn explain --format json: q, every k, dot, score and softmax of one row
    against the reference's own (get_attention's q, k, scores, softmax)."""
    import numpy as np
    L, H, I = len(model.qks) - 1, 2, 7
    got = json.loads(attn("explain", "-m", gguf, "--ids", ",".join(map(str, IDS)), "--no-bos", "--layer", "last",
                          "--head", str(H), "--query", str(I), "--format", "json", rc=0).stdout)
    q, k, sc = (t.numpy() for t in model.qks[L])
    p = np.exp(sc[H, I, :I + 1] - sc[H, I, :I + 1].max())
    p /= p.sum()
    d = [float(np.abs(np.array(got["q"]) - q[H, I]).max())]
    for j, key in enumerate(got["keys"]):
        if j > I:
            if not key.get("masked"):
                errs.append("explain: key %d after the query is not masked" % j)
            continue
        d += [float(np.abs(np.array(key["k"]) - k[H, j]).max()), abs(key["score"] - sc[H, I, j]),
              abs(key["dot"] - sc[H, I, j] * np.sqrt(q.shape[-1])) / np.sqrt(q.shape[-1]), abs(key["softmax"] - p[j])]
    if got["top"][0]["pos"] != int(np.argmax(p)):
        errs.append("explain: top key %d, reference %d" % (got["top"][0]["pos"], int(np.argmax(p))))
    if not max(d) <= 1e-5:
        errs.append("explain differs from the reference by %.3g" % max(d))
    return max(d)


def tokenizer_json(tmp, folder):
    """A byte-level BPE tokenizer.json as HF tokenizers saves one, trained by tools/bpe_train.py."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import bpe_train
    text = "Once upon a time, there was a little girl named Lily. She liked the sun. " * 20
    vocab = bpe_train.build(text, 300, os.path.join(tmp, "bpe"))
    merges = open(os.path.join(tmp, "bpe", "merges.txt"), encoding="utf-8").read().split("\n")[1:]
    tj = {"version": "1.0", "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "special": True}],
          "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                                "use_regex": True},
          "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": vocab, "merges": [m for m in merges if m]}}
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f)
    return len(vocab)


def main():
    try:
        import numpy  # noqa: F401
        import torch
    except ImportError as e:
        skip(NAME, "%s (needs torch + numpy: /usr/bin/python3)" % e)
        return
    torch.manual_seed(0)
    GPTMini, get_attention = define(torch)
    tmp = scratch("t_gptmini_")
    worst = [0.0, 0.0]
    for n, (fname, ch, extra, opts) in enumerate(VARIANTS):
        c = dict(BASE, **ch)
        errs = []
        model = GPTMini(c).eval()
        folder = os.path.join(tmp, "v%d" % n, "runs", "exp1")
        path = os.path.join(folder, fname)
        save(torch, model, c, path, extra)
        gguf = os.path.join(tmp, "v%d.gguf" % n)
        try:
            r = convert(path, "-o", gguf, *opts)
            da, dl = compare(torch, model, get_attention, gguf, os.path.join(tmp, "o%d" % n), errs)
            de = check_explain(model, gguf, errs)
            worst = [max(worst[0], da, de), max(worst[1], dl)]
            want_note = "RoPE %s (%s" % (c["rope"], "--rope" if opts else
                                         "cos/sin tables repeat in " + c["rope"] if c["buffers"] else "no cos/sin")
            if want_note not in r.stdout:
                errs.append("no note %r in: %s" % (want_note, r.stdout[:300]))
            info = json.loads(attn("info", "-m", gguf, "--format", "json", rc=0).stdout)
            norm = "RMSNorm" if c["norm"] == "rms" else "LayerNorm"
            mlp = "SwiGLU" if c["ffn"] == "swiglu" else "GELU (erf)"
            pos = "RoPE (split halves)" if c["rope"] == "halves" else "RoPE (interleaved pairs)"
            if (info["norm"], info["mlp"], info["positions"], info["tied_head"]) != \
                    (norm, mlp, pos, c["tied"]) or abs(info["rope_theta"] - c["theta"]) > 1e-3:
                errs.append("info says %s" % {k: info[k] for k in ("norm", "mlp", "positions", "tied_head", "rope_theta")})
            step = {"step5000.pt": 5000, "ckpt.pt": 12000}.get(fname)
            if step is not None and "training step %d" % step not in r.stdout:
                errs.append("step %d not written: %s" % (step, r.stdout[:200]))
            want_name = {"final.pt": "exp1/final", "ckpt.pt": "exp1/ckpt"}.get(fname, "step5000")
            if info["model"] != want_name:
                errs.append("model name %r, expected %r" % (info["model"], want_name))
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            errs.append(str(e))
        result("%s %s %s" % (NAME, fname, " ".join("%s=%s" % kv for kv in sorted(ch.items()))), errs)
    print("  worst difference of attention, scores, explain %.3g; logits %.3g of the largest" % tuple(worst))
    check_keymap(torch, GPTMini, get_attention, tmp)
    check_tokenizer(torch, GPTMini, tmp)
    check_meta_pkl(torch, GPTMini, tmp)


def check_keymap(torch, GPTMini, get_attention, tmp):
    """Foreign names: refused listing them; converted with --keymap."""
    model = GPTMini(dict(BASE)).eval()
    ren = {"tok_emb": "embed.tokens", "norm_f": "final_ln", "head": "unembed"}
    sd = {}
    for k, v in model.state_dict().items():
        top = k.split(".")[0]
        k = k.replace("blocks.", "trunk.").replace(".norm1.", ".pre.").replace(".attn.qkv.", ".mix.wqkv.")
        sd[ren.get(top, top) + k[len(top):] if top in ren else k] = v
    folder = os.path.join(tmp, "km")
    os.makedirs(folder)
    path = os.path.join(folder, "final.pt")
    torch.save({"model": sd}, path)
    errs = []
    try:
        r = convert(path, "-o", os.path.join(tmp, "km.gguf"), rc=2)
        for n in ("embed.tokens.weight", "trunk.0.pre.weight", "trunk.0.mix.wqkv.bias", "--keymap"):
            if n not in r.stderr:
                errs.append("refusal does not name %s: %s" % (n, r.stderr.strip()[:300]))
        km = os.path.join(folder, "keymap.txt")
        with open(km, "w") as f:
            f.write("# theirs  ours\nembed.tokens tok_emb\nfinal_ln norm_f\nunembed head\n"
                    "trunk.{N}.pre blocks.{N}.norm1\ntrunk.{N}.mix.wqkv   blocks.{N}.attn.qkv\n"
                    "trunk.{N} blocks.{N}\n")
        convert(path, "-o", os.path.join(tmp, "km.gguf"), "--keymap", km)
        compare(torch, model, get_attention, os.path.join(tmp, "km.gguf"), os.path.join(tmp, "okm"), errs)
    except (RuntimeError, OSError, ValueError) as e:
        errs.append(str(e))
    result(NAME + " --keymap", errs)


def check_meta_pkl(torch, GPTMini, tmp):
    """A character vocabulary in data/<dataset>/meta.pkl of the project root
    (root/runs/exp1/final.pt), found with the config's dataset and, without one,
    as the only data/*/meta.pkl."""
    import pickle
    errs = []
    for n, extra in enumerate(({"config": {"dataset": "tiny_char", "n_head": 8}}, {})):
        root = os.path.join(tmp, "meta%d" % n)
        os.makedirs(os.path.join(root, "data", "tiny_char"))
        chars = [chr(32 + i) for i in range(BASE["V"])]
        with open(os.path.join(root, "data", "tiny_char", "meta.pkl"), "wb") as f:
            pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)),
                         "stoi": {c: i for i, c in enumerate(chars)}}, f)
        path = os.path.join(root, "runs", "exp1", "final.pt")
        save(torch, GPTMini(dict(BASE)).eval(), dict(BASE), path, {})
        obj = torch.load(path)
        obj.update(extra)
        torch.save(obj, path)
        try:
            r = convert(path)
            line = [x for x in r.stdout.splitlines() if x.startswith("tokenizer:")]
            if not line or "meta.pkl" not in line[0]:
                errs.append("%s: meta.pkl not attached: %s" % ("dataset" if extra else "no dataset", line))
        except (RuntimeError, OSError, ValueError) as e:
            errs.append(str(e))
    result(NAME + " data/<dataset>/meta.pkl above runs/exp1", errs)


def check_tokenizer(torch, GPTMini, tmp):
    """runs/exp1/tokenizer.json beside final.pt is attached; the text round-trips."""
    folder = os.path.join(tmp, "tok", "runs", "exp1")
    os.makedirs(folder)
    n = tokenizer_json(tmp, folder)
    model = GPTMini(dict(BASE, V=n)).eval()
    path = os.path.join(folder, "final.pt")
    save(torch, model, dict(BASE, V=n), path, {})
    errs = []
    try:
        r = convert(path)
        if "from tokenizer.json" not in r.stdout:
            errs.append("tokenizer not attached: %s" % r.stdout[-300:])
        text = "Once upon a time, there was a little girl named"
        out = attn("tokenize", "-m", os.path.join(folder, "final.gguf"), "-p", text, "--format", "json", rc=0).stdout
        if "little" not in out:
            errs.append("tokenize: %s" % out[:200])
    except (RuntimeError, OSError, ValueError) as e:
        errs.append(str(e))
    result(NAME + " tokenizer.json beside", errs)


if __name__ == "__main__":
    main()
    done()
