#!/usr/bin/python3
"""Tokenizer pipelines of one's own tokenizer.json: files built here (small
BPE vocabularies trained on a slice of tests/data/tokenizer_corpus.txt by the
plain algorithm below; the merges are just data) with each normalizer and
pre-tokenizer attn runs, converted with tools/convert.py --vocab-only, and
every corpus line tokenized by attn and by @huggingface/transformers
(tests/tok/tok_hf_ref.mjs): 100% identical ids.

Where transformers.js departs from the Rust `tokenizers` library that users
train with, attn follows Rust, and the reference is transformers.js given
the Rust behaviour spelled as a construct it runs the same way (a Split
regex); each such case names the departure:
  - Whitespace: transformers.js matches \\w+|[^\\w\\s]+ with JavaScript's
    ASCII-only \\w; Rust (Oniguruma) \\w takes letters of every script, so
    Korean words are words. Reference: a Split with that regex (invert),
    which transformers.js rewrites to Oniguruma's classes.
  - Split with a String pattern and Removed: transformers.js keeps the
    delimiters (its split regex captures them); Rust removes them. Checked
    with a Regex pattern; String patterns with Isolated.
  - Metaspace split: transformers.js never splits; Rust splits before each
    replacement (MergedWithNext). Reference: Metaspace without split, then
    Split ▁[^▁]*|[^▁]+ (invert).
  - Punctuation: transformers.js groups runs of punctuation; Rust isolates
    each character. Reference: Split [\\p{P}!-/:-@\\[-`{-~] (Isolated).
  - Digits: transformers.js's \\d is ASCII 0-9; Rust's char::is_numeric is
    every N category (², ¼, ٣). Reference: Split \\p{N} or \\p{N}+ (Isolated).
Needs node and tests/node_modules (npm ci)."""
import collections
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: testlib
from testlib import ATTN, ROOT, convert, done, result, skip

CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer_corpus.txt")
NODE_MODULES = os.path.join(ROOT, "tests", "node_modules")

RUST_W = r"\w+|[^\w\s]+"  # in a Split Regex transformers.js runs \w as Oniguruma's
PUNCT = r"[\p{P}!-/:-@\[-`{-~]"
GPT2_BYTES = [c for c in range(33, 127)] + [c for c in range(161, 173)] + [c for c in range(174, 256)]


def byte_char(b):
    """GPT-2's bytes_to_unicode."""
    if b in GPT2_BYTES:
        return chr(b)
    return chr(256 + sorted(set(range(256)) - set(GPT2_BYTES)).index(b))


_TRAINED = {}


def train_bpe(words, n_merges):
    """Plain BPE: the most frequent adjacent pair (ties: the smallest), n times."""
    key = (tuple(words), n_merges)
    if key not in _TRAINED:
        _TRAINED[key] = _train_bpe(words, n_merges)
    return _TRAINED[key]


def _train_bpe(words, n_merges):
    seqs = collections.Counter(tuple(w) for w in words if w)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for s, c in seqs.items():
            for a, b in zip(s, s[1:]):
                pairs[a, b] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        new = collections.Counter()
        for s, c in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            new[tuple(out)] += c
        seqs = new
    return merges


# (content, special, lstrip, rstrip)
ADDED = [("[UNK]", True, False, False), ("<s>", True, False, False), ("</s>", True, False, False),
         ("<|im_start|>", True, False, True), ("<|im_end|>", True, True, False), ("<user>", False, True, True)]


def tokenizer_json(words, normalizer, pre, decoder=None, byte_level=False, n_merges=120):
    """A BPE tokenizer.json whose vocabulary is the training words' characters
    plus the merges' results, then the added tokens."""
    if byte_level:
        words = ["".join(byte_char(b) for b in w.encode("utf-8")) for w in words]
    merges = train_bpe(words, n_merges)
    vocab = {}
    for ch in sorted({c for w in words for c in w} | ({byte_char(b) for b in range(256)} if byte_level else set())):
        vocab.setdefault(ch, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    added = []
    for content, special, lstrip, rstrip in ADDED:
        added.append({"id": len(vocab) + len(added), "content": content, "single_word": False, "lstrip": lstrip,
                      "rstrip": rstrip, "normalized": False, "special": special})
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": None, "decoder": decoder,
            "model": {"type": "BPE", "dropout": None, "unk_token": None if byte_level else "[UNK]",
                      "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": False,
                      "byte_fallback": False, "ignore_merges": False, "vocab": vocab,
                      "merges": [a + " " + b for a, b in merges]}}


def wordpiece_json(words, normalizer, pre):
    """A WordPiece tokenizer.json: [UNK] [CLS] [SEP] [PAD], each character
    alone and as "##" continuation, and the BPE merges' results both ways."""
    merges = train_bpe([w.lower() for w in words], 200)
    vocab = {}
    for t in ["[UNK]", "[CLS]", "[SEP]", "[PAD]"]:
        vocab[t] = len(vocab)
    pieces = sorted({c for w in words for c in w.lower()}) + [a + b for a, b in merges]
    for p in pieces:
        vocab.setdefault(p, len(vocab))
        vocab.setdefault("##" + p, len(vocab))
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in ["[UNK]", "[CLS]", "[SEP]", "[PAD]"]]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": None,
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab}}


def unigram_json(words, normalizer, pre, decoder):
    """A Unigram tokenizer.json: <unk>, every character and the BPE merges'
    results (with and without a leading ▁), scored by -log of their counts."""
    import math
    merges = train_bpe(["\u2581" + w for w in words], 200)
    count = collections.Counter()
    text = " ".join(words)
    cands = {c for w in words for c in w} | {a + b for a, b in merges} | {"\u2581"}
    for p in cands:
        count[p] = text.replace(" ", "\u2581").count(p) + 1
    total = sum(count.values())
    vocab = [["<unk>", 0.0]] + [[p, -math.log(count[p] / total)] for p in sorted(cands)]
    added = [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True}]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": None, "decoder": decoder,
            "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": False}}


def seq(kind, items):
    key = "normalizers" if kind == "n" else "pretokenizers"
    return {"type": "Sequence", key: items}


def split(pattern, behavior, invert=False, string=False):
    return {"type": "Split", "pattern": {"String" if string else "Regex": pattern}, "behavior": behavior,
            "invert": invert}


def metaspace(scheme, do_split):
    return {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": do_split}


# name: (normalizer, pre-tokenizer for attn, the same for transformers.js
# (None: the same object), decoder, byte-level, departure named)
PIPELINES = {
    "whitespace_nfkc": ({"type": "NFKC"}, {"type": "Whitespace"}, split(RUST_W, "Removed", True), None, False,
                        "Whitespace \\w (JS ASCII-only)"),
    "whitespacesplit_lower_strip": (seq("n", [{"type": "Lowercase"}, {"type": "Strip", "left": True, "right": True}]),
                                    {"type": "WhitespaceSplit"}, None, None, False, ""),
    "metaspace_always_split": ({"type": "Replace", "pattern": {"String": "\t"}, "content": " "},
                               metaspace("always", True),
                               seq("p", [metaspace("always", False), split("\u2581[^\u2581]*|[^\u2581]+", "Removed", True)]),
                               {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
                               False, "Metaspace split (JS never splits)"),
    "metaspace_first_nfc": ({"type": "NFC"}, metaspace("first", False), None, None, False, ""),
    "digits_punctuation_seq": (seq("n", [{"type": "NFD"}, {"type": "Prepend", "prepend": "^"}]),
                               seq("p", [{"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": True},
                                         {"type": "Punctuation", "behavior": "Isolated"}]),
                               seq("p", [{"type": "WhitespaceSplit"}, split(r"\p{N}", "Isolated"),
                                         split(PUNCT, "Isolated")]),
                               None, False, "Punctuation (JS groups runs), Digits (JS: ASCII digits only)"),
    "split_digits_replace": ({"type": "Replace", "pattern": {"Regex": "[0-9]{4,}"}, "content": "#"},
                             seq("p", [split(" ", "Removed"), {"type": "Digits", "individual_digits": False},
                                       split("e", "Isolated", string=True)]),
                             seq("p", [split(" ", "Removed"), split(r"\p{N}+", "Isolated"),
                                       split("e", "Isolated", string=True)]),
                             None, False, "Digits (JS: ASCII digits only)"),
    "bytelevel_nfkd": ({"type": "NFKD"}, {"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}, None,
                       {"type": "ByteLevel"}, True, ""),
    "unigram_metaspace": ({"type": "NFKC"}, metaspace("always", True),
                          seq("p", [metaspace("always", False), split("\u2581[^\u2581]*|[^\u2581]+", "Removed", True)]),
                          {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
                          "unigram", "Metaspace split (JS never splits)"),
    "wordpiece_bert": (seq("n", [{"type": "NFD"}, {"type": "Lowercase"}, {"type": "StripAccents"}]),
                       {"type": "BertPreTokenizer"}, None, None, "wordpiece", ""),
}

# characters where JavaScript's \s and Oniguruma's (Rust's) differ: not in the lines compared
JS_RUST_SPACE = ("\u0085", "\ufeff")


def main():
    if not shutil.which("node"):
        skip("tok_pipelines", "node not found")
        return
    if not os.path.isdir(os.path.join(NODE_MODULES, "@huggingface", "transformers")):
        skip("tok_pipelines", "tests/node_modules/@huggingface/transformers missing (npm ci in tests/)")
        return
    # the tokenizer.json files and transformers' ids are kept in $B/tok-pipelines,
    # made again when this script, the corpus or tok_hf_ref.mjs is newer
    tmp = os.path.join(ROOT, os.environ.get("B") or "build", "tok-pipelines")
    stamp = os.path.join(tmp, "stamp")
    inputs = [os.path.abspath(__file__), CORPUS, os.path.join(ROOT, "tests", "tok", "tok_hf_ref.mjs")]
    cached = os.path.exists(stamp) and all(os.path.getmtime(stamp) > os.path.getmtime(i) for i in inputs)
    if not cached:
        shutil.rmtree(tmp, True)
        os.makedirs(tmp)
    with open(CORPUS, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")[:-1]
    lines = [l for l in lines if not any(c in l for c in JS_RUST_SPACE)]
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8", newline="") as f:
        f.write("".join(l + "\n" for l in lines))
    words = " ".join(lines[::8]).split()  # training slice: other lines meet characters it lacks
    refs = []
    for name, (norm, pre, ref_pre, dec, byte_level, _) in PIPELINES.items() if not cached else ():
        for who, p in (("attn", pre), ("ref", ref_pre or pre)):
            d = os.path.join(tmp, "%s_%s" % (name, who))
            os.makedirs(d)
            tj = wordpiece_json(words, norm, p) if byte_level == "wordpiece" else \
                unigram_json(words, norm, p, dec) if byte_level == "unigram" else \
                tokenizer_json(words, norm, p, dec, byte_level)
            with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
                json.dump(tj, f, ensure_ascii=False)
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "PreTrainedTokenizerFast"}, f)
        refs += [os.path.join(tmp, name + "_ref"), os.path.join(tmp, name + ".ref")]
    if not cached:
        r = subprocess.run(["node", os.path.join(ROOT, "tests", "tok", "tok_hf_ref.mjs"), "hf", corpus] + refs,
                           capture_output=True, text=True, cwd=ROOT)
        if r.returncode:
            result("tok_pipelines_reference", ["tok_hf_ref.mjs: " + r.stderr.strip()[-300:]])
            return
        open(stamp, "w").close()
    for name, (_, _, _, _, _, departure) in PIPELINES.items():
        test = "tok_pipeline_" + name
        errs = []
        try:
            gguf = os.path.join(tmp, name + ".gguf")
            convert(os.path.join(tmp, name + "_attn", "tokenizer.json"), "--vocab-only", "-o", gguf)
            got = subprocess.run([ATTN, "tokenize", "-m", gguf, "--ids-only", "--no-bos", "-f", corpus],
                                 capture_output=True, text=True)
            if got.returncode:
                raise RuntimeError("attn tokenize: " + got.stderr.strip())
            want = open(os.path.join(tmp, name + ".ref")).read().split("\n")[:-1]
            have = got.stdout.split("\n")[:-1]
            bad = [i for i in range(len(lines)) if i >= len(have) or have[i] != want[i]]
            for i in bad[:3]:
                errs.append("line %d %r: attn [%s] transformers [%s]" % (i + 1, lines[i][:60],
                                                                           have[i][:120] if i < len(have) else "",
                                                                           want[i][:120]))
            detail = "%d/%d lines identical to @huggingface/transformers" % (len(lines) - len(bad), len(lines))
            if departure:
                detail += " (Rust behaviour where transformers.js departs: %s)" % departure
        except (RuntimeError, OSError) as e:
            errs.append(e)
            detail = ""
        result(test, errs, detail)


if __name__ == "__main__":
    main()
    done()
