#!/usr/bin/python3
"""bench_torch.py - the PyTorch peer of `make bench`: forward with every layer's and
head's attention probabilities captured, nanoGPT's own model (../shared/ref/nanoGPT)
loaded from the same ckpt.pt that attn's GGUF was converted from.

usage: bench_torch.py CKPT.pt THREADS T [T ...]   prints "torch_capture_ms T MS"
       bench_torch.py --ablate CKPT.pt THREADS T    prints "torch_ablate_ms T MS"

Capture: nanoGPT's explicit-softmax attention path (the one torch 1.13 runs) passes
the (B, H, T, T) probabilities through attn_dropout, an identity in eval mode; a
forward hook keeps a reference to each, so capturing costs PyTorch no copy. The
time is the best of 5 forwards of T random ids (logits of the last position, as
attn bench), float32, torch.inference_mode, torch.set_num_threads(THREADS).

--ablate: what `attn ablate` does for every head, the way a user writes it in
PyTorch: one forward of T random ids per (layer, head) with a forward pre-hook
on that layer's attn.c_proj zeroing the head's slice of its input (z), logits
of every position and the mean next-token loss (cross_entropy); the time of
the whole loop (after one warm-up forward), float32, inference_mode.
"""
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "ref", "nanoGPT"))
from model import GPT, GPTConfig  # noqa: E402


def load(ckpt_path, threads):
    torch.set_num_threads(threads)
    ck = torch.load(ckpt_path, map_location="cpu")
    m = GPT(GPTConfig(**ck["model_args"]))
    m.load_state_dict(ck["model"])
    m.eval()
    return m, ck["model_args"]


def ablate(ckpt_path, threads, T):
    m, args = load(ckpt_path, threads)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, args["vocab_size"], (1, T), generator=g)
    targets = torch.cat([ids[:, 1:], torch.full((1, 1), -1)], dim=1)  # position T-1 predicts nothing
    hd = args["n_embd"] // args["n_head"]
    with torch.inference_mode():
        m(ids, targets)  # warm-up
        t = time.perf_counter()
        for blk in m.transformer.h:
            for h in range(args["n_head"]):
                def zero(mod, inp, h=h):
                    z = inp[0].clone()
                    z[..., h * hd:(h + 1) * hd] = 0
                    return (z,)
                hook = blk.attn.c_proj.register_forward_pre_hook(zero)
                m(ids, targets)  # logits of every position, mean loss
                hook.remove()
        print("torch_ablate_ms %d %.3f" % (T, (time.perf_counter() - t) * 1e3), flush=True)


def main():
    if sys.argv[1] == "--ablate":
        return ablate(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    ckpt_path, threads, Ts = sys.argv[1], int(sys.argv[2]), [int(t) for t in sys.argv[3:]]
    m, args = load(ckpt_path, threads)
    captured = []
    for blk in m.transformer.h:
        blk.attn.attn_dropout.register_forward_hook(lambda mod, inp, out: captured.append(out))
    g = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for T in Ts:
            ids = torch.randint(0, args["vocab_size"], (1, T), generator=g)
            best = 1e30
            for _ in range(5):
                captured.clear()
                t = time.perf_counter()
                m(ids)
                best = min(best, time.perf_counter() - t)
            L, H = len(m.transformer.h), m.config.n_head
            if len(captured) != L or tuple(captured[0].shape) != (1, H, T, T):
                sys.exit("bench_torch.py: captured %d tensors of %s, expected %d of (1, %d, %d, %d)"
                         % (len(captured), tuple(captured[0].shape) if captured else None, L, H, T, T))
            print("torch_capture_ms %d %.3f" % (T, best * 1e3), flush=True)


if __name__ == "__main__":
    main()
