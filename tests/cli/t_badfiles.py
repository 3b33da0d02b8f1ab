"""Bad GGUF files: each gives one line `attn: <file>: <why>` on stderr, exit
status 2, no crash and no huge allocation (run under a 1 GB address-space
limit). The valid file is written here with the standard library, following
the GGUF v3 spec; every case then breaks one thing in it."""
import atexit, os, shutil, struct, subprocess, sys, tempfile, resource

ATTN = os.environ.get("ATTN", "./attn")
tmp = tempfile.mkdtemp(prefix="attn_bad_")
atexit.register(shutil.rmtree, tmp, True)


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv_u32(k, v):
    return s(k) + struct.pack("<II", 4, v)


def kv_str(k, v):
    return s(k) + struct.pack("<I", 8) + s(v)


def gguf(kvs, tensors, version=3, align=32, n_tensors=None, n_kv=None, pad=True):
    """tensors: list of (name, shape (ne0 first), type, data bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs)
    off, infos, blobs = 0, b"", b""
    for name, shape, typ, data in tensors:
        infos += s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        infos += struct.pack("<IQ", typ, off)
        blob = data + b"\0" * ((-len(data)) % align)
        blobs += blob
        off += len(blob)
    out = head + infos
    if pad:
        out += b"\0" * ((-len(out)) % align)
    return out + blobs


D, H, V, L, CTX, F = 8, 2, 10, 1, 8, 16


def f32(n, v=0.01):
    return struct.pack("<%df" % n, *([v] * n))


def model_tensors(skip=None, override=None):
    t = [("token_embd.weight", [D, V], 0, f32(D * V)), ("position_embd.weight", [D, CTX], 0, f32(D * CTX)),
         ("output_norm.weight", [D], 0, f32(D, 1)), ("output_norm.bias", [D], 0, f32(D))]
    for name, shape in [("attn_norm.weight", [D]), ("attn_qkv.weight", [D, 3 * D]), ("attn_output.weight", [D, D]),
                        ("ffn_norm.weight", [D]), ("ffn_up.weight", [D, F]), ("ffn_down.weight", [F, D])]:
        n = 1
        for x in shape:
            n *= x
        t.append(("blk.0." + name, shape, 0, f32(n, 1.0 if "norm" in name else 0.01)))
    t = [x for x in t if x[0] != skip]
    if override:
        t = [override if x[0] == override[0] else x for x in t]
    return t


def model_kvs(arch="gpt2", **extra):
    k = [kv_str("general.architecture", arch), kv_u32(arch + ".block_count", L), kv_u32(arch + ".embedding_length", D),
         kv_u32(arch + ".attention.head_count", H), kv_u32(arch + ".feed_forward_length", F),
         kv_u32(arch + ".context_length", CTX)]
    for key, v in extra.items():
        k.append(kv_u32(key, v))
    return k


good = gguf(model_kvs(), model_tensors())
failed = 0


def run_case(name, data, expect_rc=2, args=("info",)):
    global failed
    path = os.path.join(tmp, name + ".gguf")
    with open(path, "wb") as f:
        f.write(data)

    def limit():
        # (under `make check-sanitize` ASan needs a huge address space; its
        # max_allocation_size_mb catches huge allocations there instead)
        if not os.environ.get("ATTN_SANITIZE"):
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    p = subprocess.run([ATTN, *args, "-m", path] + (["--ids", "1,2,3"] if args[0] == "run" else []),
                       capture_output=True, text=True, preexec_fn=limit, timeout=60)
    lines = p.stderr.strip().splitlines()
    ok = p.returncode == expect_rc
    if expect_rc:
        ok = ok and len(lines) == 1 and lines[0].startswith("attn: " + path + ": ")
    if ok:
        print("PASS badfile %s" % name)
    else:
        failed += 1
        print("FAIL badfile %s: rc %d, stderr %r" % (name, p.returncode, p.stderr[:300]))


run_case("valid_info", good, expect_rc=0)
run_case("valid_run", good, expect_rc=0, args=("run",))
run_case("empty", b"")
run_case("wrong_magic", b"GGUX" + good[4:])
run_case("version_1", gguf(model_kvs(), model_tensors(), version=1))
run_case("version_99", gguf(model_kvs(), model_tensors(), version=99))
run_case("absurd_kv_count", gguf(model_kvs(), model_tensors(), n_kv=1 << 60))
run_case("absurd_tensor_count", gguf(model_kvs(), model_tensors(), n_tensors=1 << 60))
# a string whose length runs past the end of the file
k = model_kvs()
k[0] = s("general.architecture") + struct.pack("<I", 8) + struct.pack("<Q", 1 << 50) + b"gpt2"
run_case("string_past_end", gguf(k, model_tensors()))
# array claiming more elements than the file holds
arr = s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1 << 40)
run_case("array_past_end", gguf(model_kvs() + [arr], model_tensors()))
run_case("tensor_data_past_end", good[:-64])
# misaligned tensor offset
bad = bytearray(good)
i = bad.find(b"position_embd.weight") + len("position_embd.weight") + 4 + 16 + 4
struct.pack_into("<Q", bad, i, struct.unpack_from("<Q", bad, i)[0] + 4)
run_case("misaligned_offset", bytes(bad))
run_case("shape_disagrees", gguf(model_kvs(), model_tensors(override=("blk.0.attn_output.weight", [D, D + 1], 0, f32(D * (D + 1))))))
run_case("unsupported_type", gguf(model_kvs(), model_tensors(override=("blk.0.ffn_up.weight", [D, F], 12, b"\0" * 4096))))
run_case("missing_tensor", gguf(model_kvs(), model_tensors(skip="blk.0.ffn_down.weight")))
run_case("wrong_arch", gguf([kv_str("general.architecture", "mamba")] + model_kvs()[1:], model_tensors()))
# the refusal names the architecture and the ones attn reads (the architecture table)
r = subprocess.run([ATTN, "info", "-m", os.path.join(tmp, "wrong_arch.gguf")], capture_output=True, text=True)
if "'mamba' is not supported (attn reads gpt2, llama, gptneox, qwen2, gemma, gemma2, phi2, phi3, olmo2)" in r.stderr:
    print("PASS badfile wrong_arch names the architectures")
else:
    failed += 1
    print("FAIL badfile wrong_arch names the architectures: %r" % r.stderr[:300])
run_case("rope_scaling_yarn", gguf(model_kvs() + [kv_str("gpt2.rope.scaling.type", "yarn")], model_tensors()))
run_case("longrope_factors", gguf(model_kvs(), model_tensors() + [("rope_factors_long.weight", [D // H // 2], 0,
                                                                   f32(D // H // 2))]))
run_case("key_value_length_differ", gguf(model_kvs(**{"gpt2.attention.key_length": 4,
                                                      "gpt2.attention.value_length": 8}), model_tensors()))
run_case("heads_disagree", gguf(model_kvs(**{"gpt2.attention.head_count": 3})[:3] + model_kvs()[4:] +
                               [kv_u32("gpt2.attention.head_count", 3)], model_tensors()))
run_case("overflow_shape", gguf(model_kvs(), model_tensors(override=("blk.0.ffn_up.weight", [1 << 40, 1 << 40, 1 << 40], 0, b""))))
run_case("bad_alignment", gguf(model_kvs() + [kv_u32("general.alignment", 3)], model_tensors()))
run_case("huge_context", gguf(model_kvs()[:5] + [kv_u32("gpt2.context_length", 0xFFFFFFFF)], model_tensors()))
# limits (issue 9): byte sizes that overflow 64 bits, metadata larger than the file,
# dimensions that disagree, counts beyond what the file can hold
run_case("bytes_overflow_64bit", gguf(model_kvs(), model_tensors(override=("blk.0.ffn_up.weight", [1 << 32, 1 << 31], 0, b""))))
run_case("five_dims", gguf(model_kvs(), model_tensors(override=("blk.0.ffn_up.weight", [D, F, 1, 1, 1], 0, f32(D * F)))))
bad = bytearray(good)
i = bad.find(b"blk.0.ffn_down.weight") + len("blk.0.ffn_down.weight") + 4 + 16 + 4
struct.pack_into("<Q", bad, i, (1 << 64) - 32)
run_case("offset_near_2_64", bytes(bad))
k = model_kvs()
k[0] = struct.pack("<Q", 1 << 60) + b"general.architecture" + struct.pack("<I", 8) + s("gpt2")
run_case("key_name_past_end", gguf(k, model_tensors()))
arr = s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + struct.pack("<Q", 1 << 40) + b"b"
run_case("array_string_element_past_end", gguf(model_kvs() + [arr], model_tensors()))
arr = s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 10, (1 << 61) + 1) + b"\0" * 16
run_case("array_count_times_size_overflows", gguf(model_kvs() + [arr], model_tensors()))
arr = s("x.nested") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 4, 1) + b"\0" * 4
run_case("array_of_arrays", gguf(model_kvs() + [arr], model_tensors()))
run_case("unknown_value_type", gguf(model_kvs() + [s("x.y") + struct.pack("<II", 13, 0)], model_tensors()))
bad = bytearray(gguf(model_kvs(), model_tensors()))
i = bad.find(b"blk.0.ffn_down.weight") - 8
struct.pack_into("<Q", bad, i, 1 << 62)
run_case("tensor_name_past_end", bytes(bad))
t = model_tensors()
t.append(("blk.0.ffn_up.weight", [D, F], 0, f32(D * F)))
run_case("duplicate_tensor", gguf(model_kvs(), t))
run_case("huge_alignment", gguf(model_kvs() + [kv_u32("general.alignment", 1 << 31)], model_tensors()))
run_case("block_count_huge", gguf(model_kvs()[:1] + [kv_u32("gpt2.block_count", 1 << 24)] + model_kvs()[2:], model_tensors()))
run_case("kv_heads_not_dividing", gguf(model_kvs(**{"gpt2.attention.head_count_kv": 3}), model_tensors()))
run_case("kv_heads_more_than_heads", gguf(model_kvs(**{"gpt2.attention.head_count_kv": 4}), model_tensors()))
run_case("rope_dims_odd", gguf(model_kvs(**{"gpt2.rope.dimension_count": 3}), model_tensors()))
run_case("rope_dims_past_head", gguf(model_kvs(**{"gpt2.rope.dimension_count": 6}), model_tensors()))
run_case("context_disagrees_with_positions", gguf(model_kvs()[:5] + [kv_u32("gpt2.context_length", CTX + 1)], model_tensors()))
run_case("embedding_disagrees", gguf(model_kvs(), model_tensors(override=("token_embd.weight", [D + 1, V], 0, f32((D + 1) * V)))))
run_case("q8_0_row_not_multiple_of_32", gguf(model_kvs(), model_tensors(override=("blk.0.ffn_up.weight", [D, F], 8, b"\0" * 1024))))
eps = s("gpt2.attention.layer_norm_epsilon") + struct.pack("<If", 6, -1.0)
run_case("negative_norm_eps", gguf(model_kvs() + [eps], model_tensors()))
arr = s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, V + 1) + b"".join(s("t%d" % j) for j in range(V + 1))
run_case("more_tokens_than_embeddings", gguf(model_kvs() + [kv_str("tokenizer.ggml.model", "char"), arr], model_tensors()))
toks = s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, V) + b"".join(s("t%d" % j) for j in range(V))
def num_arr(key, typ, vals):  # typ 6 = f32, 5 = i32
    return s(key) + struct.pack("<IIQ", 9, typ, len(vals)) + b"".join(struct.pack("<f" if typ == 6 else "<i", v) for v in vals)
run_case("scores_shorter_than_tokens", gguf(model_kvs() + [kv_str("tokenizer.ggml.model", "llama"), toks,
                                                           num_arr("tokenizer.ggml.scores", 6, [0.0] * (V - 1))], model_tensors()))
run_case("token_type_longer_than_tokens", gguf(model_kvs() + [kv_str("tokenizer.ggml.model", "llama"), toks,
                                                              num_arr("tokenizer.ggml.scores", 6, [0.0] * V),
                                                              num_arr("tokenizer.ggml.token_type", 5, [1] * (V + 1))], model_tensors()))
run_case("scores_are_strings", gguf(model_kvs() + [kv_str("tokenizer.ggml.model", "llama"), toks,
                                                   s("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 8, V) + b"".join(s("x") for j in range(V))],
                                    model_tensors()))
run_case("sentencepiece_without_scores", gguf(model_kvs() + [kv_str("tokenizer.ggml.model", "llama"), toks], model_tensors()))
run_case("unknown_tokenizer_model", gguf(model_kvs() + [kv_str("tokenizer.ggml.model", "bert")], model_tensors()))
run_case("unknown_switch_value", gguf(model_kvs() + [kv_str("attn.positions", "alibi")], model_tensors()))
run_case("no_tensors", gguf(model_kvs(), []))
# 100k tensors in a 4 MB file: refused (no block_count) in well under a second, not after
# minutes of pairwise name comparisons
import time
many = b"GGUF" + struct.pack("<IQQ", 3, 100000, 1) + kv_str("general.architecture", "gpt2") + b"".join(
    s("t%d" % j) + struct.pack("<IQIQ", 1, 8, 0, 0) for j in range(100000))
t0 = time.time()
run_case("hundred_thousand_tensors", many + b"\0" * (32 + (-len(many)) % 32))
if time.time() - t0 > 10:
    failed += 1
    print("FAIL badfile hundred_thousand_tensors is fast: %.1f s" % (time.time() - t0))

# truncated anywhere: every cut of the header region and a spread of cuts in the data
cuts = sorted(set(list(range(0, 700, 7)) + list(range(700, len(good), 97))))
bad_cuts = []
for c in cuts:
    path = os.path.join(tmp, "trunc.gguf")
    with open(path, "wb") as f:
        f.write(good[:c])
    p = subprocess.run([ATTN, "info", "-m", path], capture_output=True, text=True, timeout=60)
    if p.returncode != 2 or len(p.stderr.strip().splitlines()) != 1:
        bad_cuts.append((c, p.returncode, p.stderr[:200]))
if bad_cuts:
    failed += 1
    print("FAIL badfile truncated_anywhere: %d of %d cuts wrong, first %r" % (len(bad_cuts), len(cuts), bad_cuts[0]))
else:
    print("PASS badfile truncated_anywhere (%d cuts)" % len(cuts))
sys.exit(1 if failed else 0)
