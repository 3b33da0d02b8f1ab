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
import unicodedata

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


# the added tokens of the "added_normalized" pipeline: (content, special,
# lstrip, rstrip, normalized); matched after the normalizer when normalized
ADDED_NORM = [("[UNK]", True, False, False, False), ("<s>", True, False, False, False),
              ("ATTENTION", False, False, False, True), ("Model", False, False, False, False),
              ("[MASK]", True, True, False, True), ("<|IM_START|>", True, False, True, True)]


def tokenizer_json(words, normalizer, pre, decoder=None, byte_level=False, n_merges=120, added_spec=None):
    """A BPE tokenizer.json whose vocabulary is the training words' characters
    plus the merges' results, then the added tokens (ADDED, or added_spec:
    dicts of added-token fields without the id)."""
    if byte_level:
        words = ["".join(byte_char(b) for b in w.encode("utf-8")) for w in words]
    merges = train_bpe(words, n_merges)
    vocab = {}
    for ch in sorted({c for w in words for c in w} | ({byte_char(b) for b in range(256)} if byte_level else set())):
        vocab.setdefault(ch, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    added = []
    for content, special, lstrip, rstrip in ADDED if added_spec is None else ():
        added.append({"id": len(vocab) + len(added), "content": content, "single_word": False, "lstrip": lstrip,
                      "rstrip": rstrip, "normalized": False, "special": special})
    for a in added_spec or ():
        added.append(dict(a, id=len(vocab) + len(added)))
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
    "wordpiece_bertnormalizer": ({"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                                  "strip_accents": None, "lowercase": True},
                                 {"type": "BertPreTokenizer"}, None, None, "wordpiece", ""),
    "bertnormalizer_cased_accents": ({"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": False,
                                      "strip_accents": True, "lowercase": False},
                                     {"type": "WhitespaceSplit"}, None, None, False, ""),
    "added_normalized": (seq("n", [{"type": "Lowercase"}, {"type": "Replace", "pattern": {"String": "e"},
                                                           "content": "E"}]),
                         {"type": "WhitespaceSplit"}, None, None, "added_norm", ""),
}

# characters where JavaScript's \s and Oniguruma's (Rust's) differ: not in the lines compared
JS_RUST_SPACE = ("\u0085", "\ufeff")


# single_word: transformers.js reads the flag but never applies it, so the
# expectation is derived from the Rust library's AddedVocabulary
# (tokenizers/src/tokenizer/added_vocabulary.rs, find_matches and
# extract_and_normalize), spelled out below: the pieces between the added
# tokens are then tokenized by transformers.js with a file that has no such
# token. Tokens: (content, single_word, lstrip, rstrip, normalized).
SINGLE = [("in", True, False, False, False), ("At", True, False, True, True), ("<s>", True, True, False, False),
          ("ion", False, False, False, True)]
RUST_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
             "\u2028\u2029\u202f\u205f\u3000"


def rust_word(c):
    """Rust regex's \\w (regex-syntax perl_word: Alphabetic, M, Nd, Pc, Join_Control)."""
    cat = unicodedata.category(c)
    return cat[0] in "LM" or cat in ("Nd", "Nl", "Pc") or c in "\u200c\u200d" or "\u24b6" <= c <= "\u24e9"


def rust_find_matches(s, toks):
    """AddedVocabulary::find_matches: leftmost-longest (Aho-Corasick), a
    single_word match next to \\w skipped whole, lstrip/rstrip -> [(id|None, text)]."""
    out, start_off, i = [], 0, 0
    while i < len(s):
        hits = [t for t in toks if s.startswith(t[0], i)]
        if not hits:
            i += 1
            continue
        content, tid, single, lstrip, rstrip = max(hits, key=lambda t: len(t[0]))
        start, stop = i, i + len(content)
        i = stop
        if single and ((start > 0 and rust_word(s[start - 1])) or (stop < len(s) and rust_word(s[stop]))):
            continue
        if lstrip:
            start = max(len(s[:start].rstrip(RUST_SPACE)), start_off)
        if rstrip:
            stop += len(s[stop:]) - len(s[stop:].lstrip(RUST_SPACE))
        if start_off < start:
            out.append((None, s[start_off:start]))
        out.append((tid, s[start:stop]))
        start_off = stop
    if start_off < len(s):
        out.append((None, s[start_off:]))
    return out


def rust_extract(line, base):
    """AddedVocabulary::extract_and_normalize with the Lowercase normalizer
    (char by char, as NormalizedString::lowercase): ids of SINGLE's tokens
    (from base) and the normalized pieces between them."""
    raw = [(c, base + 1 + k, w, l, r) for k, (c, w, l, r, n) in enumerate(SINGLE) if not n]
    norm = [("".join(ch.lower() for ch in c), base + 1 + k, w, l, r) for k, (c, w, l, r, n) in enumerate(SINGLE) if n]
    out = []
    for tid, piece in rust_find_matches(line, raw):
        if tid is not None:
            out.append((tid, piece))
        else:
            out += rust_find_matches("".join(ch.lower() for ch in piece), norm)
    return out


def single_word_check(tmp, lines, words, cached):
    """attn on SINGLE's tokens against the Rust-derived splits."""
    test = "tok_added_single_word"
    d_attn, d_ref = os.path.join(tmp, "single_attn"), os.path.join(tmp, "single_ref")
    unk = {"content": "[UNK]", "special": True, "lstrip": False, "rstrip": False, "normalized": False,
           "single_word": False}
    spec = [unk] + [{"content": c, "special": c == "<s>", "single_word": w, "lstrip": l, "rstrip": r, "normalized": n}
                    for c, w, l, r, n in SINGLE]
    base = len(tokenizer_json(words, None, {"type": "WhitespaceSplit"}, added_spec=[])["model"]["vocab"])
    lines = [l for l in lines if "\u03a3" not in l]  # final sigma: Rust lowercases char by char
    split = [rust_extract(l, base) for l in lines]
    pieces = [p for sp in split for tid, p in sp if tid is None and p]
    pc = os.path.join(tmp, "single_pieces.txt")
    if not cached:
        for d, a, norm in ((d_attn, spec, {"type": "Lowercase"}), (d_ref, [unk], None)):
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
                json.dump(tokenizer_json(words, norm, {"type": "WhitespaceSplit"}, added_spec=a), f, ensure_ascii=False)
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump({"tokenizer_class": "PreTrainedTokenizerFast"}, f)
        with open(pc, "w", encoding="utf-8", newline="") as f:
            f.write("".join(p + "\n" for p in pieces))
        r = subprocess.run(["node", os.path.join(ROOT, "tests", "tok", "tok_hf_ref.mjs"), "hf", pc, d_ref,
                            os.path.join(tmp, "single.ref")], capture_output=True, text=True, cwd=ROOT)
        if r.returncode:
            return result(test, ["tok_hf_ref.mjs: " + r.stderr.strip()[-300:]])
    ref = iter(open(os.path.join(tmp, "single.ref")).read().split("\n")[:-1])
    want = [" ".join(str(tid) if tid is not None else next(ref) for tid, p in sp if tid is not None or p)
            for sp in split]
    want = [" ".join(w.split()) for w in want]
    corpus = os.path.join(tmp, "single_corpus.txt")
    with open(corpus, "w", encoding="utf-8", newline="") as f:
        f.write("".join(l + "\n" for l in lines))
    gguf = os.path.join(tmp, "single.gguf")
    convert(os.path.join(d_attn, "tokenizer.json"), "--vocab-only", "-o", gguf)
    got = subprocess.run([ATTN, "tokenize", "-m", gguf, "--ids-only", "--no-bos", "-f", corpus],
                         capture_output=True, text=True)
    have = got.stdout.split("\n")[:-1]
    bad = [i for i in range(len(lines)) if i >= len(have) or have[i] != want[i]]
    skipped = sum(1 for l in lines for c, w, _, _, n in SINGLE if w and (c.lower() if n else c) in (l.lower() if n else l))
    errs = ["attn tokenize: " + got.stderr.strip()] if got.returncode else []
    errs += ["line %d %r: attn [%s] Rust-derived [%s]" % (i + 1, lines[i][:60], have[i][:120] if i < len(have) else "",
                                                         want[i][:120]) for i in bad[:3]]
    result(test, errs, "%d/%d lines identical to the Rust library's splits + transformers.js (%d lines hold a "
           "single_word token's text; transformers.js ignores single_word)" % (len(lines) - len(bad), len(lines), skipped))


def repeated_char_check():
    """1 MB of one repeated character ("a", then "가") through a Unigram and a
    WordPiece vocabulary holding runs of that character (and their "##"
    forms) and one piece of 512 bytes, as real vocabularies have: under a
    second each in the issue's words. The limit is CPU seconds of the attn
    process and generous (2 s, 8 s under sanitizers): a trie walk takes
    about 0.2 s, hashing every prefix up to the longest piece's length
    (attn before the trie) over 10 s."""
    import math
    import resource
    tmp = os.path.join(ROOT, os.environ.get("B") or "build", "tok-repeated")
    os.makedirs(tmp, exist_ok=True)
    runs = ["a" * k for k in range(1, 17)] + ["\uac00" * k for k in range(1, 6)] + ["x" * 512]
    uni = [["<unk>", 0.0]] + [[r, -1.0 - 0.25 * len(r) - 0.5 * math.sin(len(r))] for r in runs]
    wp = {"[UNK]": 0}
    for r in runs:
        wp[r], wp["##" + r] = len(wp), len(wp) + 1
    models = {"unigram": {"type": "Unigram", "unk_id": 0, "vocab": uni, "byte_fallback": False},
              "wordpiece": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                            "max_input_chars_per_word": 1 << 21, "vocab": wp}}
    limit = 8.0 if os.environ.get("ATTN_SANITIZE") else 2.0
    texts = {"a": "a" * (1 << 20), "\uac00": "\uac00" * ((1 << 20) // 3)}
    for ch, text in texts.items():
        with open(os.path.join(tmp, "%04x.txt" % ord(ch)), "w", encoding="utf-8") as f:
            f.write(text)
    for name, model in models.items():
        test = "tok_repeated_char_1mb_" + name
        errs, times = [], []
        src = os.path.join(tmp, name, "tokenizer.json")
        os.makedirs(os.path.dirname(src), exist_ok=True)
        with open(src, "w", encoding="utf-8") as f:
            json.dump({"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
                       "post_processor": None, "decoder": None, "model": model}, f, ensure_ascii=False)
        gguf = os.path.join(tmp, name + ".gguf")
        convert(src, "--vocab-only", "-o", gguf)
        for ch in texts:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                r = subprocess.run([ATTN, "tokenize", "-m", gguf, "--ids-only", "--no-bos", "-f",
                                    os.path.join(tmp, "%04x.txt" % ord(ch))], capture_output=True, text=True,
                                   timeout=3 * limit)
            except subprocess.TimeoutExpired:
                r = subprocess.CompletedProcess([], 1, "", "killed after %.0f s" % (3 * limit))
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            times.append("%s %.2f s" % (ch, cpu))
            if r.returncode or not r.stdout.split():
                errs.append("attn tokenize on 1 MB of %r: %s" % (ch, r.stderr.strip()[-200:]))
            elif cpu > limit:
                errs.append("1 MB of %r took %.1f CPU s (limit %.0f)" % (ch, cpu, limit))
        result(test, errs, "1 MB of one character, CPU: " + ", ".join(times))


def gguf_without_attn_keys(src, dst):
    """A vocabulary-only GGUF (no tensors) without its attn.tokenizer.* keys:
    the pipeline is then only in tokenizer.huggingface.json."""
    import struct
    data = open(src, "rb").read()
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    assert data[:4] == b"GGUF" and n_tensors == 0
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def value_end(t, i):
        if t == 8:
            return i + 8 + struct.unpack_from("<Q", data, i)[0]
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, i)
            i += 12
            for _ in range(n):
                i = value_end(et, i)
            return i
        return i + sizes[t]

    i, kept = 24, []
    for _ in range(n_kv):
        a = i
        klen = struct.unpack_from("<Q", data, i)[0]
        key = data[i + 8:i + 8 + klen].decode()
        i = value_end(struct.unpack_from("<I", data, i + 8 + klen)[0], i + 12 + klen)
        if not key.startswith("attn.tokenizer."):
            kept.append(data[a:i])
    with open(dst, "wb") as f:
        f.write(data[:8] + struct.pack("<QQ", 0, len(kept)) + b"".join(kept))


def hf_json_only_check(tmp, lines, corpus):
    """tok_huggingface_json_only: each pipeline's GGUF without attn's keys."""
    bad, n = [], 0
    for name in PIPELINES:
        src, dst = os.path.join(tmp, name + ".gguf"), os.path.join(tmp, name + "_hfjson.gguf")
        gguf_without_attn_keys(src, dst)
        got = subprocess.run([ATTN, "tokenize", "-m", dst, "--ids-only", "--no-bos", "-f", corpus],
                             capture_output=True, text=True)
        want = open(os.path.join(tmp, name + ".ref")).read().split("\n")[:-1]
        have = got.stdout.split("\n")[:-1]
        if got.returncode:
            bad.append("%s: attn tokenize: %s" % (name, got.stderr.strip()[-200:]))
            continue
        diff = [i for i in range(len(lines)) if i >= len(have) or have[i] != want[i]]
        n += len(lines) - len(diff)
        bad += ["%s line %d %r: attn [%s] transformers [%s]" % (name, i + 1, lines[i][:40], have[i][:80] if i < len(
            have) else "", want[i][:80]) for i in diff[:1]]
    result("tok_huggingface_json_only", bad, "%d pipelines, %d/%d lines identical to @huggingface/transformers with "
           "the pipeline read from tokenizer.huggingface.json alone" % (len(PIPELINES), n, len(lines) * len(PIPELINES)))


def main():
    repeated_char_check()
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
            norm_added = [{"content": c, "special": sp, "lstrip": l, "rstrip": r, "normalized": nz,
                           "single_word": False} for c, sp, l, r, nz in ADDED_NORM]
            tj = tokenizer_json(words, norm, p, added_spec=norm_added) if byte_level == "added_norm" else \
                wordpiece_json(words, norm, p) if byte_level == "wordpiece" else \
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
    hf_json_only_check(tmp, lines, corpus)
    single_word_check(tmp, lines, words, cached)


if __name__ == "__main__":
    main()
    done()
