"""Regenerates tests/parity/goldens/ from the references (`make parity`).

Two tiny random models, built and saved with the reference code, and the
references' float64 attention and logits for one id sequence, so that
tests/parity/t_parity.py can check the converter and the forward pass with the
standard library alone (no torch):
  nanogpt.pt   nanoGPT ckpt.pt ('_orig_mod.' prefix), biases, tied head, hd 12
  llama2c.bin  llama2.c legacy_export (v0), GQA 2/1, separate head, hd 12
Needs torch + numpy (/usr/bin/python3 with Debian python3-torch).
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
OUT = os.path.join(HERE, "goldens")


def main():
    try:
        import refmodels as R
    except ImportError as e:
        print("make parity: needs torch and numpy (/usr/bin/python3, Debian python3-torch): %s" % e)
        return 1
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(20240601)
    cases = []
    m = R.make_nanogpt(seed=101, n_layer=2, n_head=2, n_embd=24, block_size=8, vocab_size=48, bias=True)
    R.save_nanogpt(m, os.path.join(OUT, "nanogpt.pt"), orig_mod=True)
    cases.append(("nanogpt", "nanogpt.pt", m, 48))
    m = R.make_llama(seed=102, dim=24, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=48, max_seq_len=8,
                     hidden_dim=48, tied=False)
    R.save_llama_bin(m, os.path.join(OUT, "llama2c.bin"), 0)
    cases.append(("llama2c", "llama2c.bin", m, 48))
    index = []
    for name, fname, model, V in cases:
        ids = [rng.randrange(V) for _ in range(8)]
        att, logits = R.reference_forward(model, ids)
        exp = {"ids": ids, "attention_shape": list(att.shape), "attention": [float("%.9g" % x) for x in att.ravel()],
               "logits_shape": list(logits.shape), "logits": [float("%.9g" % x) for x in logits.ravel()]}
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(exp, f, separators=(",", ":"))
            f.write("\n")
        index.append({"name": name, "file": fname, "expect": name + ".json"})
        print("wrote tests/parity/goldens/%s and %s.json" % (fname, name))
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
