#!/usr/bin/python3
"""bench_torch.py - the PyTorch peer of `make bench`: forward with every layer's and
head's attention probabilities captured, nanoGPT's own model (../shared/ref/nanoGPT)
loaded from the same ckpt.pt that attn's GGUF was converted from.

usage: bench_torch.py CKPT.pt THREADS T [T ...]   prints "torch_capture_ms T MS"

Capture: nanoGPT's explicit-softmax attention path (the one torch 1.13 runs) passes
the (B, H, T, T) probabilities through attn_dropout, an identity in eval mode; a
forward hook keeps a reference to each, so capturing costs PyTorch no copy. The
time is the best of 5 forwards of T random ids (logits of the last position, as
attn bench), float32, torch.inference_mode, torch.set_num_threads(THREADS).
"""
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "ref", "nanoGPT"))
from model import GPT, GPTConfig  # noqa: E402


def main():
    ckpt_path, threads, Ts = sys.argv[1], int(sys.argv[2]), [int(t) for t in sys.argv[3:]]
    torch.set_num_threads(threads)
    ck = torch.load(ckpt_path, map_location="cpu")
    m = GPT(GPTConfig(**ck["model_args"]))
    m.load_state_dict(ck["model"])
    m.eval()
    captured = []
    for blk in m.transformer.h:
        blk.attn.attn_dropout.register_forward_hook(lambda mod, inp, out: captured.append(out))
    g = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for T in Ts:
            ids = torch.randint(0, ck["model_args"]["vocab_size"], (1, T), generator=g)
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
