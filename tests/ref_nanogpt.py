"""tests/ref_nanogpt.py - shared by t_heads.py, t_lens.py and t_report.py (not
a test itself): the reference nanoGPT model (../shared/ref/nanoGPT/model.py,
imported from there, never copied), and saving a model as nanoGPT's train.py
does, then converting it with tools/convert.py. The PASS/FAIL/SKIP protocol
and the paths are tests/testlib.py's."""
import contextlib
import importlib.util
import io
import os
import sys

from testlib import ERRORS, SHARED, check, convert, done, skip

REF = os.path.join(SHARED, "ref", "nanoGPT", "model.py")


def reference(name):
    """(torch, the nanoGPT model module), or SKIP the test `name` and exit."""
    try:
        import torch
    except ImportError:
        skip(name, "torch is not installed")
        sys.exit(0)
    if not os.path.exists(REF):
        skip(name, "reference %s not found" % REF)
        sys.exit(0)
    spec = importlib.util.spec_from_file_location("nanogpt_model", REF)
    ng = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ng)
    return torch, ng


def gpt(ng, **cfg):
    """A nanoGPT GPT(GPTConfig(**cfg)), dropout 0, without model.py's print."""
    with contextlib.redirect_stdout(io.StringIO()):
        m = ng.GPT(ng.GPTConfig(dropout=0.0, **cfg))
    m.eval()
    return m


def save_convert(torch, model, tmp, name):
    """ckpt.pt as nanoGPT's train.py writes it (a meta.pkl already in tmp is
    attached by the converter), converted to tmp/NAME.gguf; FAIL and exit if
    the converter fails."""
    c = model.config
    args = dict(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, block_size=c.block_size, bias=c.bias,
                vocab_size=c.vocab_size, dropout=0.0)
    ckpt = os.path.join(tmp, "ckpt.pt")
    torch.save({"model": model.state_dict(), "model_args": args, "iter_num": 0, "best_val_loss": 0.0,
                "config": {}}, ckpt)
    gguf = os.path.join(tmp, name + ".gguf")
    try:
        convert(ckpt, "-o", gguf)
    except ERRORS as e:
        check(False, "convert_" + name, e)
        done()
    return gguf
