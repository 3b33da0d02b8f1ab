#!/usr/bin/python3
"""SentencePiece unigram vocabularies with a precompiled charsmap: a model
trained here with sentencepiece (nmt_nfkc normalization, a user-defined
piece) on tests/data/tokenizer_corpus.txt, then
  - tok_t5_lcpp: written as llama.cpp's convert_hf_to_gguf.py writes a T5
    vocabulary (tokenizer.ggml.model "t5", precompiled_charsmap), with
    llama.cpp's gguf-py; every corpus line tokenized by llama.cpp's own
    tokenizer (tests/tok/lcpp_tok_lines.c on libllama, one line at a time as
    attn's --ids-only does: llama.cpp keeps path scores as float, so a whole
    text would tie-break differently from its lines) and by attn: 100%;
  - tok_precompiled_hf: a tokenizer.json as Hugging Face's converter
    writes one for it (Precompiled normalizer, Replace, WhitespaceSplit +
    Metaspace, Unigram), through tools/convert.py: each line identical to
    @huggingface/transformers, or, where transformers.js departs (its
    Precompiled does not read the charsmap: it runs NFKC and a few
    replacements), to sentencepiece's own encode of the line (attn with
    --no-special: sentencepiece reads "<s>" as text). Lines holding U+0085 or
    U+FEFF are left out: Rust's WhitespaceSplit drops them, JavaScript's \s
    and sentencepiece keep them.
Needs python3 sentencepiece; llama.cpp parts need LCPP_BIN/libllama.so,
../shared/ref/llama.cpp (headers, gguf-py)."""
import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ATTN, ROOT, SHARED, convert, done, result, skip

LCPP = os.environ.get("LCPP_BIN") or "/work/lcpp/bin"
CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer_corpus.txt")
LLAMA = os.path.join(SHARED, "ref", "llama.cpp")
USER = "<sep>"


def spm_model(tmp):
    """Trains (or reuses) build/tok-t5/m.model; returns its normalizer spec."""
    import sentencepiece as spm
    model = os.path.join(tmp, "m.model")
    if not os.path.exists(model) or os.path.getmtime(model) < max(os.path.getmtime(CORPUS), os.path.getmtime(__file__)):
        spm.SentencePieceTrainer.train(input=CORPUS, model_prefix=os.path.join(tmp, "m"), vocab_size=3000,
                                       model_type="unigram", normalization_rule_name="nmt_nfkc", num_threads=1,
                                       minloglevel=2, user_defined_symbols=[USER], character_coverage=0.995)
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import convert as cv  # its protobuf reader
    data = open(model, "rb").read()
    ns = {"add_dummy_prefix": True, "remove_extra_whitespaces": True, "charsmap": b""}
    for f, wt, v in cv._pb_fields(data, model):
        for f2, w2, v2 in cv._pb_fields(v, model) if f == 3 and wt == 2 else ():  # NormalizerSpec
            if f2 == 2 and w2 == 2:
                ns["charsmap"] = v2
            elif f2 in (3, 4) and w2 == 0:
                ns["add_dummy_prefix" if f2 == 3 else "remove_extra_whitespaces"] = bool(v2)
    return model, spm.SentencePieceProcessor(model_file=model), ns


def t5_gguf(path, sp, ns):
    """As convert_hf_to_gguf.py's T5Model.set_vocab, vocabulary only."""
    import gguf
    toks, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        p = sp.IdToPiece(i)
        toks.append(p.encode("utf-8")), scores.append(sp.GetScore(i))
        types.append(2 if sp.IsUnknown(i) else 3 if sp.IsControl(i) else 5 if sp.IsUnused(i) else
                     6 if sp.IsByte(i) else 4 if p == USER else 1)
    w = gguf.GGUFWriter(path, "t5")
    w.add_context_length(512), w.add_embedding_length(8), w.add_block_count(1), w.add_feed_forward_length(8)
    w.add_head_count(1), w.add_layer_norm_rms_eps(1e-6)
    w.add_tokenizer_model("t5"), w.add_tokenizer_pre("default")
    w.add_token_list(toks), w.add_token_scores(scores), w.add_token_types(types)
    w.add_add_space_prefix(ns["add_dummy_prefix"]), w.add_remove_extra_whitespaces(ns["remove_extra_whitespaces"])
    w.add_precompiled_charsmap(ns["charsmap"])
    w.add_unk_token_id(sp.unk_id()), w.add_eos_token_id(sp.eos_id())
    w.add_add_bos_token(False), w.add_add_eos_token(True)
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file()
    w.close()


def attn_lines(gguf_path, corpus, special=True):
    r = subprocess.run([ATTN, "tokenize", "-m", gguf_path, "--ids-only", "--no-bos", "-f", corpus] +
                       ([] if special else ["--no-special"]), capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError("attn tokenize: " + r.stderr.strip()[-300:])
    return r.stdout.split("\n")[:-1]


def compare(test, lines, have, want, who, extra=""):
    bad = [i for i in range(len(lines)) if i >= len(have) or have[i] != want[i]]
    errs = ["line %d %r: attn [%s] %s [%s]" % (i + 1, lines[i][:60], have[i][:100] if i < len(have) else "", who,
                                               want[i][:100]) for i in bad[:3]]
    result(test, errs, "%d/%d lines identical to %s%s" % (len(lines) - len(bad), len(lines), who, extra))


def lcpp_check(tmp, sp, ns, lines, corpus):
    test = "tok_t5_lcpp"
    lib = os.path.join(LCPP, "libllama.so")
    if not os.path.exists(lib) or not os.path.exists(os.path.join(LLAMA, "include", "llama.h")):
        return skip(test, "%s or ../shared/ref/llama.cpp/include/llama.h not found (set LCPP_BIN)" % lib)
    sys.path.insert(0, os.path.join(LLAMA, "gguf-py"))
    try:
        import gguf  # noqa: F401
    except ImportError as e:
        return skip(test, "llama.cpp's gguf-py cannot be imported (%s)" % e)
    tool = os.path.join(tmp, "lcpp_tok_lines")
    src = os.path.join(ROOT, "tests", "tok", "lcpp_tok_lines.c")
    if not os.path.exists(tool) or os.path.getmtime(tool) < os.path.getmtime(src):
        r = subprocess.run(["cc", "-O1", "-D_GNU_SOURCE", src, "-I" + os.path.join(LLAMA, "include"),
                            "-I" + os.path.join(LLAMA, "ggml", "include"), "-L" + LCPP, "-lllama",
                            "-Wl,-rpath," + LCPP, "-o", tool], capture_output=True, text=True)
        if r.returncode:
            return result(test, ["building lcpp_tok_lines: " + r.stderr.strip()[-300:]])
    path = os.path.join(tmp, "t5.gguf")
    t5_gguf(path, sp, ns)
    r = subprocess.run([tool, path, corpus], capture_output=True, text=True)
    if r.returncode:
        return result(test, ["lcpp_tok_lines: " + r.stderr.strip()[-300:]])
    try:
        have = attn_lines(path, corpus)
    except RuntimeError as e:
        return result(test, [str(e)])
    compare(test, lines, have, r.stdout.split("\n")[:-1], "llama.cpp's tokenizer", " (t5 vocabulary, one line at a time)")


def hf_json(sp, ns):
    """tokenizer.json as transformers' SpmConverter writes it for a T5-style model."""
    vocab = [[sp.IdToPiece(i), sp.GetScore(i)] for i in range(sp.vocab_size())]
    added = [{"id": i, "content": sp.IdToPiece(i), "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(sp.vocab_size()) if sp.IsControl(i) or sp.IsUnknown(i)]
    norm = {"type": "Sequence", "normalizers": [
        {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(ns["charsmap"]).decode()},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]}
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}]}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": norm,
            "pre_tokenizer": pre, "post_processor": None,
            "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
            "model": {"type": "Unigram", "unk_id": sp.unk_id(), "vocab": vocab, "byte_fallback": False}}


# characters that sentencepiece's nmt_nfkc keeps and Rust's WhitespaceSplit (char::is_whitespace)
# drops, and JavaScript's \s misses: lines holding them are left out
NOT_JS_SPACE = ("\u0085", "\ufeff")


def hf_check(tmp, sp, ns, all_lines):
    lines = [l for l in all_lines if not any(c in l for c in NOT_JS_SPACE)]
    n_ws = len(all_lines) - len(lines)
    corpus = os.path.join(tmp, "corpus_hf.txt")
    with open(corpus, "w", encoding="utf-8", newline="") as f:
        f.write("".join(l + "\n" for l in lines))
    d = os.path.join(tmp, "hf")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, "tokenizer.json")
    with open(src, "w", encoding="utf-8") as f:
        json.dump(hf_json(sp, ns), f, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast"}, f)
    path = os.path.join(tmp, "hf.gguf")
    try:
        convert(src, "--vocab-only", "-o", path)
        have, literal = attn_lines(path, corpus), attn_lines(path, corpus, special=False)
    except RuntimeError as e:
        return result("tok_precompiled_hf", [str(e)])
    want = [" ".join(map(str, sp.encode(l))) for l in lines]  # sentencepiece reads "<s>" as text: --no-special
    test = "tok_precompiled_hf"
    if not shutil.which("node") or not os.path.isdir(os.path.join(ROOT, "tests", "node_modules", "@huggingface")):
        return skip(test, "node or tests/node_modules/@huggingface/transformers missing")
    ref = os.path.join(tmp, "hf.ref")
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "tok", "tok_hf_ref.mjs"), "hf", corpus, d, ref],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        return result(test, ["tok_hf_ref.mjs: " + r.stderr.strip()[-300:]])
    js = open(ref).read().split("\n")[:-1]
    # each line: transformers.js's ids; where its Precompiled stand-in (NFKC and a
    # few replacements, not the charsmap) departs, sentencepiece's own encode
    spm_only = [i for i in range(len(lines)) if i < len(have) and have[i] != js[i] and literal[i] == want[i]]
    bad = [i for i in range(len(lines)) if (i >= len(have) or have[i] != js[i]) and i not in spm_only]
    errs = ["line %d %r: attn [%s] transformers [%s] sentencepiece [%s]" % (
        i + 1, lines[i][:60], have[i][:80] if i < len(have) else "", js[i][:80], want[i][:80]) for i in bad[:3]]
    result(test, errs, "%d/%d lines identical to @huggingface/transformers, %d where it departs identical to "
           "sentencepiece (e.g. line %s; %d lines left out hold U+0085 or U+FEFF, which Rust's WhitespaceSplit drops, "
           "JavaScript's \\s and sentencepiece keep)" % (len(lines) - len(bad) - len(spm_only), len(lines), len(spm_only),
                                                      spm_only[0] + 1 if spm_only else "-", n_ws))


def main():
    if importlib.util.find_spec("sentencepiece") is None:
        return skip("tok_t5", "python3 sentencepiece is not installed")
    tmp = os.path.join(ROOT, os.environ.get("B") or "build", "tok-t5")
    os.makedirs(tmp, exist_ok=True)
    lines = open(CORPUS, encoding="utf-8", newline="").read().split("\n")[:-1]
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8", newline="") as f:
        f.write("".join(l + "\n" for l in lines))
    model, sp, ns = spm_model(tmp)
    lcpp_check(tmp, sp, ns, lines, corpus)
    hf_check(tmp, sp, ns, lines)


if __name__ == "__main__":
    main()
    done()
