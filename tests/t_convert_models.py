"""tools/convert.py checkpoints: every tensor it writes, compared with the
weights of the reference model it came from (../shared/ref nanoGPT / llama2.c
model.py, saved by their own code or in HF layout), and --dtype encodings
compared with torch's own conversions and llama2.c export.py's quantize_q80.
Needs torch + numpy (/usr/bin/python3); prints SKIP without them.
"""
import os
import pickle
import shutil

from testlib import MODELS, convert, done, guarded, reference_models, result, scratch, skip
from gguf_read import dequant, read_gguf  # tests/parity/, on the path testlib sets


def load(path):
    kv, _, tensors = read_gguf(path)
    return kv, {n: (t, ne, dequant(t, ne, raw)) for n, (t, ne, _, raw) in tensors.items()}


def expect_tensors(tensors, want, errs, gtype=0):
    """want: {gguf name: torch tensor in torch order}; exact float32 equality."""
    if set(tensors) != set(want):
        errs.append("tensors: extra %s, missing %s" % (sorted(set(tensors) - set(want))[:4],
                                                      sorted(set(want) - set(tensors))[:4]))
    for n, w in want.items():
        if n not in tensors:
            continue
        t, ne, a = tensors[n]
        w = w.detach().float().numpy().astype("float64")
        if a.shape != w.shape or (t != gtype and w.ndim == 2) or (w.ndim == 1 and t != 0):
            errs.append("%s: shape %s type %d, expected %s" % (n, a.shape, t, w.shape))
        elif not (a == w).all():
            errs.append("%s: values differ (max %g)" % (n, abs(a - w).max()))


def nanogpt_expect(m):
    want = {"token_embd.weight": m.transformer.wte.weight, "output_norm.weight": m.transformer.ln_f.weight}
    if hasattr(m.transformer.wpe, "weight"):
        want["position_embd.weight"] = m.transformer.wpe.weight
    # a tied head is written again as output.weight, as llama.cpp's converter does (llama.cpp needs it)
    want["output.weight"] = m.lm_head.weight
    if m.transformer.ln_f.bias is not None:
        want["output_norm.bias"] = m.transformer.ln_f.bias
    for i, b in enumerate(m.transformer.h):
        for mod, g in ((b.ln_1, "attn_norm"), (b.attn.c_attn, "attn_qkv"), (b.attn.c_proj, "attn_output"),
                       (b.ln_2, "ffn_norm"), (b.mlp.c_fc, "ffn_up"), (b.mlp.c_proj, "ffn_down")):
            want["blk.%d.%s.weight" % (i, g)] = mod.weight
            if mod.bias is not None:
                want["blk.%d.%s.bias" % (i, g)] = mod.bias
    return want


def llama_expect(m):
    want = {"token_embd.weight": m.tok_embeddings.weight, "output_norm.weight": m.norm.weight}
    if m.output.weight is not m.tok_embeddings.weight:
        want["output.weight"] = m.output.weight
    for i, l in enumerate(m.layers):
        for mod, g in ((l.attention_norm, "attn_norm"), (l.attention.wq, "attn_q"), (l.attention.wk, "attn_k"),
                       (l.attention.wv, "attn_v"), (l.attention.wo, "attn_output"), (l.ffn_norm, "ffn_norm"),
                       (l.feed_forward.w1, "ffn_gate"), (l.feed_forward.w3, "ffn_up"),
                       (l.feed_forward.w2, "ffn_down")):
            want["blk.%d.%s.weight" % (i, g)] = mod.weight
    return want


def expect_kv(kv, want, errs):
    for k, v in want.items():
        got = kv.get(k)
        if v is None:
            if k in kv:
                errs.append("%s should be absent, is %r" % (k, got))
        elif got != v and not (isinstance(v, float) and got is not None and abs(got - v) <= 1e-6 * abs(v)):
            errs.append("%s = %r, expected %r" % (k, got, v))


def main():
    R = reference_models("convert models")
    if R is None:
        return
    import numpy as np
    import torch
    torch.set_num_threads(1)
    tmp = scratch("t_convert_models.")
    T = lambda *p: os.path.join(tmp, *p)  # noqa: E731
    cases = []

    def case(fn):
        cases.append(fn)
        return fn

    @case
    def nanogpt_variants():
        errs = []
        for kw, save_kw, label in ((dict(bias=True), dict(orig_mod=True, with_optimizer=True), "bias, tied, _orig_mod"),
                                   (dict(bias=False, tied=False, vocab_size=301), {}, "no bias, untied, V=301")):
            m = R.make_nanogpt(seed=1, n_embd=48, n_head=4, block_size=8, **kw)
            R.save_nanogpt(m, T("ng.pt"), **save_kw)
            convert(T("ng.pt"), "-o", T("ng.gguf"))
            kv, tensors = load(T("ng.gguf"))
            expect_tensors(tensors, nanogpt_expect(m), errs)
            expect_kv(kv, {"general.architecture": "gpt2", "attn.mlp": "gelu_erf", "attn.positions": None,
                           "gpt2.context_length": 8, "gpt2.attention.head_count": 4, "gpt2.embedding_length": 48,
                           "gpt2.feed_forward_length": 192, "gpt2.attention.layer_norm_epsilon": 1e-5,
                           "gpt2.block_count": 2, "general.file_type": 0}, errs)
        result("convert nanoGPT ckpt.pt tensors (bias/no bias, tied/untied, _orig_mod, optimizer state)", errs)

    @case
    def nanogpt_rope():
        errs = []
        m = R.make_nanogpt(seed=2, n_embd=40, n_head=2, block_size=8, rope="halves")
        R.save_nanogpt(m, T("rope.pt"))
        for args, pos, theta in (([], "rope_halves", 10000.0), (["--rope", "pairs", "--rope-theta", "500"],
                                                                "rope_pairs", 500.0)):
            convert(T("rope.pt"), "-o", T("rope.gguf"), *args)
            kv, tensors = load(T("rope.gguf"))
            expect_tensors(tensors, nanogpt_expect(m), errs)
            expect_kv(kv, {"attn.positions": pos, "gpt2.rope.freq_base": theta, "gpt2.rope.dimension_count": 20},
                      errs)
        result("convert RoPE nanoGPT (no wpe): attn.positions from --rope, theta from --rope-theta", errs)

    @case
    def nanogpt_storage_kinds():
        """Non-contiguous tensors, the legacy (non-zip) torch.save format, and float16 weights."""
        errs = []
        m = R.make_nanogpt(seed=3, n_embd=32, n_head=2, block_size=8)
        sd = m.state_dict()
        w = sd["transformer.h.0.mlp.c_fc.weight"]
        sd["transformer.h.0.mlp.c_fc.weight"] = w.t().contiguous().t()  # strides (1, rows)
        ckpt = {"model": sd, "model_args": R.nanogpt_args(m)}
        torch.save(ckpt, T("strided.pt"))
        torch.save(ckpt, T("legacy.pt"), _use_new_zipfile_serialization=False)
        for f in ("strided.pt", "legacy.pt"):
            convert(T(f), "-o", T("s.gguf"))
            expect_tensors(load(T("s.gguf"))[1], nanogpt_expect(m), errs)
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in m.state_dict().items()}
        torch.save({"model": half, "model_args": R.nanogpt_args(m)}, T("half.pt"))
        convert(T("half.pt"), "-o", T("h.gguf"))
        want = {k: v.half().float() for k, v in nanogpt_expect(m).items()}
        expect_tensors(load(T("h.gguf"))[1], want, errs)
        result("convert torch pickles: strided tensor, legacy format, float16 storage", errs)

    @case
    def nanogpt_meta():
        errs = []
        m = R.make_nanogpt(seed=4, n_embd=32, n_head=2, block_size=8, vocab_size=5)
        meta = {"vocab_size": 5, "itos": dict(enumerate("\n abc")), "stoi": {c: i for i, c in enumerate("\n abc")}}
        os.makedirs(T("nano", "out-x"))
        os.makedirs(T("nano", "data", "shk"))
        for d in (T("nano", "data", "shk"), T("beside")):
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "meta.pkl"), "wb") as f:
                pickle.dump(meta, f)
        R.save_nanogpt(m, T("beside", "ckpt.pt"))
        ck = T("nano", "out-x", "ckpt.pt")
        R.save_nanogpt(m, ck)
        c = torch.load(ck)
        c["config"]["dataset"] = "shk"
        torch.save(c, ck)
        for src in (T("beside", "ckpt.pt"), ck):
            convert(src)  # default output: ckpt.gguf beside it
            kv, _ = load(os.path.join(os.path.dirname(src), "ckpt.gguf"))
            if kv.get("tokenizer.ggml.model") != "char" or kv.get("tokenizer.ggml.tokens") != list("\n abc"):
                errs.append("%s: meta.pkl not attached" % os.path.relpath(src, tmp))
        result("convert nanoGPT finds meta.pkl (beside, or data/<dataset>/ as sample.py does)", errs)

    @case
    def hf_gpt2():
        errs = []
        for fmt, tied in (("safetensors", True), ("bin", True), ("safetensors", False)):
            m = R.make_nanogpt(seed=5, n_embd=48, n_head=4, block_size=8, tied=tied)
            d = T("hfg_%s_%d" % (fmt, tied))
            R.save_hf_gpt2(m, d, fmt)
            convert(d, "-o", T("hfg.gguf"))
            kv, tensors = load(T("hfg.gguf"))
            expect_tensors(tensors, nanogpt_expect(m), errs)  # Conv1D [in,out] must come back as [out,in]
            expect_kv(kv, {"attn.mlp": "gelu_erf", "gpt2.context_length": 8}, errs)
        result("convert HF GPT-2 (safetensors, pytorch_model.bin; Conv1D transposed; tied/untied)", errs)

    @case
    def hf_llama():
        errs = []
        for kvh, shards, tied in ((2, 1, True), (1, 3, False), (4, 2, False)):
            m = R.make_llama(seed=6, dim=80, n_heads=4, n_kv_heads=kvh, max_seq_len=8, tied=tied)
            d = T("hfl_%d_%d" % (kvh, shards))
            R.save_hf_llama(m, d, shards)
            convert(d, "-o", T("hfl.gguf"))
            kv, tensors = load(T("hfl.gguf"))
            expect_tensors(tensors, llama_expect(m), errs)  # q/k un-permuted to llama2.c's (Meta) order
            expect_kv(kv, {"llama.attention.head_count": 4, "llama.attention.head_count_kv": kvh,
                           "llama.rope.freq_base": 10000.0, "llama.context_length": 8,
                           "llama.attention.layer_norm_rms_epsilon": 1e-5, "attn.positions": None}, errs)
        for dt, conv in (("F16", lambda w: w.half().float()), ("BF16", lambda w: w.bfloat16().float())):
            d = T("hfl_" + dt)
            R.save_hf_llama(m, d, 1, dt)
            convert(d, "-o", T("hfl.gguf"))
            want = {n: (conv(w) if w.dim() == 2 else w) for n, w in llama_expect(m).items()}
            expect_tensors(load(T("hfl.gguf"))[1], want, errs)
        result("convert HF LLaMA (rotate-half q/k un-permuted incl. GQA 4/2, 4/1; sharded; tied/untied; "
               "F16/BF16 safetensors)", errs)

    @case
    def hf_tokenizer_pickup():
        """An HF folder's own tokenizer is attached; one that does not fit is left out with a warning."""
        errs = []
        spm = os.path.join(MODELS, "tokenizer.model")
        if not os.path.exists(spm):
            skip("convert HF tokenizer pick-up", "../shared/models/tokenizer.model not found")
            return
        for V, attached in ((32000, True), (1000, False)):
            m = R.make_llama(seed=10, dim=16, n_heads=2, n_layers=1, max_seq_len=8, vocab_size=V, hidden_dim=32)
            d = T("hft%d" % V)
            R.save_hf_llama(m, d)
            shutil.copy(spm, d)
            r = convert(d, "-o", T("hft.gguf"))
            kv, _ = load(T("hft.gguf"))
            got = kv.get("tokenizer.ggml.model") == "llama" and len(kv.get("tokenizer.ggml.tokens", [])) == 32000
            if got != attached or (not attached and "warning" not in r.stderr):
                errs.append("V=%d: tokenizer.model %s attached; stderr %r" % (V, "not" if attached else "",
                                                                            r.stderr.strip()))
        result("convert HF folder picks up its tokenizer.model (and leaves out one larger than the model)", errs)

    @case
    def llama2c():
        errs = []
        m = R.make_llama(seed=7, dim=64, n_heads=4, n_kv_heads=2, max_seq_len=8, tied=False)
        for v in (0, 1):
            R.save_llama_bin(m, T("l.bin"), v)
            convert(T("l.bin"), "-o", T("l.gguf"))
            kv, tensors = load(T("l.gguf"))
            expect_tensors(tensors, llama_expect(m), errs)
            expect_kv(kv, {"llama.attention.head_count_kv": 2, "llama.context_length": 8,
                           "llama.feed_forward_length": m.layers[0].feed_forward.w1.weight.shape[0]}, errs)
        R.save_llama_ckpt(m, T("l.pt"))
        convert(T("l.pt"), "-o", T("l.gguf"))
        expect_tensors(load(T("l.gguf"))[1], llama_expect(m), errs)
        # v2: int8 groups dequantized exactly as export.py's quantize_q80 defines them
        R.save_llama_bin(m, T("l2.bin"), 2)
        convert(T("l2.bin"), "-o", T("l2.gguf"))
        want = {}
        for n, w in llama_expect(m).items():
            if w.dim() == 2:
                q, s, _ = R.export.quantize_q80(w.detach(), 64)
                w = (q.float() * s[:, None]).view(w.shape)
            want[n] = w
        expect_tensors(load(T("l2.gguf"))[1], want, errs)
        result("convert llama2.c .bin v0, v1, v2 and train.py ckpt.pt", errs)

    @case
    def dtypes():
        errs = []
        m = R.make_llama(seed=8, dim=64, n_heads=2, max_seq_len=8, hidden_dim=96, vocab_size=50)
        with torch.no_grad():  # a value that overflows f16 (torch's .half() makes it inf): refused, named
            m.layers[0].attention.wq.weight[0, :4] = torch.tensor([1e5, -7e4, 3e-8, 0.0])
        R.save_llama_bin(m, T("d.bin"), 1)
        r = convert(T("d.bin"), "-o", T("big.gguf"), "--dtype", "f16", rc=None)
        if r.returncode != 2 or "blk.0.attn_q.weight" not in r.stderr or os.path.exists(T("big.gguf")):
            errs.append("f16 overflow: want exit 2 naming blk.0.attn_q.weight, got %d %r"
                        % (r.returncode, r.stderr[-200:]))
        with torch.no_grad():  # f16's largest finite values and a subnormal that rounds to 0
            m.layers[0].attention.wq.weight[0, :4] = torch.tensor([6.5e4, -65519.0, 3e-8, 0.0])
        R.save_llama_bin(m, T("d.bin"), 1)
        want = llama_expect(m)
        for dtype, gt, conv in (("f16", 1, lambda w: w.half().float()), ("bf16", 30, lambda w: w.bfloat16().float())):
            convert(T("d.bin"), "-o", T("d.gguf"), "--dtype", dtype)
            kv, tensors = load(T("d.gguf"))
            expect_tensors(tensors, {n: (conv(w) if w.dim() == 2 else w) for n, w in want.items()}, errs, gtype=gt)
            expect_kv(kv, {"general.file_type": {"f16": 1, "bf16": 32}[dtype]}, errs)
        r = convert(T("d.bin"), "-o", T("d.gguf"), "--dtype", "q8_0")
        kv, _, raw = read_gguf(T("d.gguf"))
        expect_kv(kv, {"general.file_type": 7}, errs)
        for n, w in want.items():
            t, ne, _, b = raw[n]
            if w.dim() == 1:
                if t != 0:
                    errs.append("%s: 1-D tensor not F32" % n)
                continue
            if w.shape[1] % 32:  # ffn_down has 96 columns: a multiple; none falls back here
                errs.append("test model has %s with %d columns" % (n, w.shape[1]))
            q, s, _ = R.export.quantize_q80(w.detach(), 32)  # llama2.c's own Q8_0 (groups of 32)
            blk = np.frombuffer(b, np.dtype([("d", "<f2"), ("q", "i1", 32)]))
            if t != 8 or not (blk["q"] == q.numpy().reshape(-1, 32)).all() or \
                    not (blk["d"] == s.numpy().astype(np.float16)).all():
                bad = (blk["q"] != q.numpy().reshape(-1, 32)).sum()
                errs.append("%s: q8_0 blocks differ from quantize_q80 (%d values, type %d)" % (n, bad, t))
        m2 = R.make_llama(seed=9, dim=40, n_heads=2, max_seq_len=8, hidden_dim=64, vocab_size=50)
        R.save_llama_bin(m2, T("e.bin"), 1)
        r = convert(T("e.bin"), "-o", T("e.gguf"), "--dtype", "q8_0")
        _, _, raw = read_gguf(T("e.gguf"))
        if raw["blk.0.attn_q.weight"][0] != 1 or raw["blk.0.ffn_down.weight"][0] != 8 or "F16" not in r.stderr:
            errs.append("40-column matrices should fall back to F16 with a warning (64 columns stay Q8_0)")
        result("convert --dtype f16/bf16 (= torch's rounding; overflow to inf refused), q8_0 (= export.py quantize_q80 "
               "with groups of 32), 1-D stays F32, F16 fallback", errs)

    for c in cases:
        guarded("convert " + c.__name__, c)


if __name__ == "__main__":
    main()
    done()
