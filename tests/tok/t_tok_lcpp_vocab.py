#!/usr/bin/python3
"""GGUF vocabularies as llama.cpp writes them for tokenizer.json models it
does not tokenize as BPE: tokenizer.ggml.model "bert" (WordPiece, as
convert_hf_to_gguf.py's BertModel.set_vocab writes it: "▁" before each
word-start piece, "##" dropped from continuations, [X] tokens kept), written
here with llama.cpp's own gguf-py. Reference: llama.cpp's llama-tokenize on
the same file (vocab only), the corpus as one text; attn must give the same
ids. Needs ../shared/ref/llama.cpp/gguf-py (numpy) and LCPP/llama-tokenize."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib

from testlib import ATTN, ROOT, SHARED, done, result, skip

LCPP = os.environ.get("LCPP_BIN") or "/work/lcpp/bin"
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer_corpus.txt")
sys.path.insert(0, os.path.join(ROOT, "tests"))


def bert_gguf(path, vocab):
    """vocab: WordPiece pieces in id order -> a vocab-only bert GGUF as llama.cpp's converter writes it."""
    import gguf
    phantom = [t if t.startswith("[") and t.endswith("]") else t[2:] if t.startswith("##") else "\u2581" + t
               for t in vocab]
    types = [3 if t.startswith("[") and t.endswith("]") else 1 for t in vocab]
    w = gguf.GGUFWriter(path, "bert")
    w.add_context_length(512), w.add_embedding_length(8), w.add_block_count(1), w.add_feed_forward_length(8)
    w.add_head_count(1), w.add_layer_norm_eps(1e-12), w.add_causal_attention(False)
    w.add_tokenizer_model("bert"), w.add_tokenizer_pre("default")
    w.add_token_list(phantom), w.add_token_types(types)
    ids = {t: i for i, t in enumerate(vocab)}
    w.add_bos_token_id(ids["[CLS]"]), w.add_sep_token_id(ids["[SEP]"]), w.add_unk_token_id(ids["[UNK]"])
    w.add_pad_token_id(ids["[PAD]"])
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file()
    w.close()


def lcpp_ids(gguf_path, text_path):
    r = subprocess.run([os.path.join(LCPP, "llama-tokenize"), "-m", gguf_path, "-f", text_path, "--ids", "--no-bos",
                        "--no-escape", "--log-disable"], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("llama-tokenize: " + r.stderr.strip()[-300:])
    return r.stdout.strip().split("\n")[-1].strip("[]").replace(",", " ").split()


def attn_ids(gguf_path, text_path):
    r = subprocess.run([ATTN, "tokenize", "-m", gguf_path, "--ids-only", "--no-bos", "-f", text_path],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("attn tokenize: " + r.stderr.strip()[-300:])
    return r.stdout.split()


def compare(test, gguf_path, text_path, what):
    try:
        want, have = lcpp_ids(gguf_path, text_path), attn_ids(gguf_path, text_path)
    except (RuntimeError, OSError) as e:
        return result(test, [str(e)])
    bad = next((i for i in range(min(len(want), len(have))) if want[i] != have[i]), None)
    errs = [] if bad is None and len(want) == len(have) and len(want) > 1000 else \
        ["%s: %d vs %d ids, first difference at id %s: attn %s llama-tokenize %s" % (
            what, len(have), len(want), bad, have[bad:bad + 8] if bad is not None else have[-4:],
            want[bad:bad + 8] if bad is not None else want[-4:])]
    result(test, errs, "%s: %d ids identical to llama-tokenize" % (what, len(want)))


def hf_json_check(tmp):
    """tools/convert.py stores the whole tokenizer.json under the GGUF spec's
    tokenizer.huggingface.json key, as llama.cpp's gguf-py reads it back."""
    import gguf
    from testlib import convert
    from t_tok_pipelines import tokenizer_json, ADDED_NORM
    src = os.path.join(tmp, "hf_json", "tokenizer.json")
    os.makedirs(os.path.dirname(src), exist_ok=True)
    added = [{"content": c, "special": sp, "lstrip": l, "rstrip": r, "normalized": n, "single_word": False}
             for c, sp, l, r, n in ADDED_NORM]
    with open(src, "w", encoding="utf-8") as f:
        import json
        json.dump(tokenizer_json(["caf\u00e9", "na\u00efve", "\ud55c\uad6d\uc5b4"], {"type": "NFKC"},
                                 {"type": "WhitespaceSplit"}, added_spec=added), f, ensure_ascii=False)
    out = os.path.join(tmp, "hf_json.gguf")
    convert(src, "--vocab-only", "-o", out)
    field = gguf.GGUFReader(out).fields.get("tokenizer.huggingface.json")
    got = bytes(field.parts[field.data[0]]) if field else b""
    want = open(src, "rb").read()
    result("tok_gguf_huggingface_json", [] if got == want else ["stored %d bytes, tokenizer.json has %d" % (
        len(got), len(want))], "%d bytes, identical to the tokenizer.json" % len(want))


def main():
    if not os.path.exists(os.path.join(LCPP, "llama-tokenize")):
        return skip("tok_lcpp_bert", "%s/llama-tokenize not found (set LCPP_BIN)" % LCPP)
    sys.path.insert(0, os.path.join(SHARED, "ref", "llama.cpp", "gguf-py"))
    try:
        import gguf  # noqa: F401
    except ImportError as e:
        return skip("tok_lcpp_bert", "llama.cpp's gguf-py cannot be imported (%s)" % e)
    from t_tok_pipelines import wordpiece_json
    tmp = os.path.join(ROOT, os.environ.get("B") or "build", "tok-lcpp-vocab")
    os.makedirs(tmp, exist_ok=True)
    with open(CORPUS, encoding="utf-8", newline="") as f:
        text = f.read()
    words = " ".join(text.split("\n")[::8]).split()
    vocab = wordpiece_json(words, None, None)["model"]["vocab"]
    path = os.path.join(tmp, "bert.gguf")
    bert_gguf(path, sorted(vocab, key=vocab.get))
    txt = os.path.join(tmp, "corpus.txt")
    with open(txt, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    compare("tok_lcpp_bert", path, txt, "bert (WordPiece) vocabulary, corpus as one text")
    hf_json_check(tmp)


if __name__ == "__main__":
    main()
    done()
