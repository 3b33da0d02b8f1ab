"""Seeds of tests/fuzz/fuzz_convert.py: tiny valid inputs of tools/convert.py's
readers, written by the code their formats come from (../shared/ref: nanoGPT's
model.py and torch.save, llama2.c's model.py and export.py), not by us.

    /usr/bin/python3 tests/fuzz/make_convert_seeds.py     (needs torch)

writes tests/fuzz/corpus_convert/: llama2.c model.bin v0/v1/v2, nanoGPT
ckpt.pt (zip) and its legacy (pre-1.6) pickle, a Hugging Face GPT-2 folder
(config.json + model.safetensors written as the safetensors format says),
a nanoGPT meta.pkl and a llama2.c tokenizer.bin.
"""
import contextlib, io, json, os, pickle, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF = os.path.join(ROOT, "..", "shared", "ref")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus_convert")


def main():
    import torch
    sys.path.insert(0, os.path.join(REF, "llama2.c"))
    import export, model as lmodel
    sys.path.pop(0)
    sys.modules.pop("model")
    sys.path.insert(0, os.path.join(REF, "nanoGPT"))
    import model as gmodel
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    # llama2.c: dim 16 (GQA), and dim 64 for v2 so that its int8 groups of 64 fit
    small = lmodel.Transformer(lmodel.ModelArgs(dim=16, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=16,
                                                 hidden_dim=16, multiple_of=16, max_seq_len=8))
    big = lmodel.Transformer(lmodel.ModelArgs(dim=64, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=16,
                                               hidden_dim=64, multiple_of=32, max_seq_len=8))
    with contextlib.redirect_stdout(io.StringIO()):
        export.legacy_export(small, os.path.join(OUT, "llama2c_v0.bin"))
        export.version1_export(small, os.path.join(OUT, "llama2c_v1.bin"))
        export.version2_export(big, os.path.join(OUT, "llama2c_v2.bin"))

    # nanoGPT: as train.py saves it
    cfg = dict(n_layer=1, n_head=2, n_embd=8, block_size=16, bias=True, vocab_size=20, dropout=0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        gm = gmodel.GPT(gmodel.GPTConfig(**cfg))
    ckpt = {"model": gm.state_dict(), "model_args": cfg, "iter_num": 1, "best_val_loss": 2.0, "config": {}}
    torch.save(ckpt, os.path.join(OUT, "nanogpt_ckpt.pt"))
    torch.save(ckpt, os.path.join(OUT, "nanogpt_legacy.pt"), _use_new_zipfile_serialization=False)

    # Hugging Face GPT-2 folder: HF names, Conv1D layout (in, out), safetensors by its spec
    sd = gm.state_dict()
    hf = {}
    for k, v in sd.items():
        if k.endswith(".attn.bias") or k == "lm_head.weight":
            continue
        name = k.replace("transformer.", "")
        if any(name.endswith(s) for s in ("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            v = v.t()
        hf[name] = v.contiguous().float().numpy().tobytes(), list(v.shape)
    header, blobs, off = {}, [], 0
    for name, (b, shape) in hf.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    d = os.path.join(OUT, "hf_gpt2")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"model_type": "gpt2", "n_embd": 8, "n_head": 2, "n_layer": 1, "n_positions": 16,
                   "vocab_size": 20, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"}, f)

    # tokenizers: nanoGPT meta.pkl (characters) and llama2.c tokenizer.bin
    chars = sorted(set("hello world, the cat sat.\n"))
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": {c: i for i, c in enumerate(chars)}}
    with open(os.path.join(OUT, "meta.pkl"), "wb") as f:
        pickle.dump(meta, f)
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(4)] + ["▁", "a", "b", "▁a", "ab"]
    with open(os.path.join(OUT, "tokenizer.bin"), "wb") as f:  # as llama2.c's tokenizer.py writes it
        f.write(struct.pack("I", max(len(p.encode()) for p in pieces)))
        for i, p in enumerate(pieces):
            b = p.encode()
            f.write(struct.pack("fI", -float(i), len(b)) + b)


if __name__ == "__main__":
    main()
