// attn.h - the public C API of attn: load a transformer LM from a GGUF file,
// tokenize text, run the forward pass with attention capture, analyse heads.
//
// A program can embed the library (every attn_*.c file and simd/) without the
// CLI in attn.c.
//
// Conventions
// - Every function that can fail returns 0 on success or an error code:
//   ATTN_EINPUT (2) for bad input (file, option, prompt, id out of range),
//   ATTN_EFAIL (1) for anything else (out of memory, I/O). The message of the
//   last error on the calling thread is attn_errmsg(): "<what>: <why>".
//   Nothing in the library prints or exits.
// - Ownership: a pointer returned through an out-parameter (`**out`) is owned
//   by the caller and released with the matching *_free function. Pointers
//   into a model (tensors, tokenizer pieces) live as long as the model.
// - Thread safety: a loaded attn_model is read-only after load and may be
//   shared by threads; an attn_session (activations, KV cache) belongs to one
//   thread at a time. Two models in one process are fully independent.
#ifndef ATTN_H
#define ATTN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ATTN_VERSION "0.1.0"

// ---------------------------------------------------------------- errors
enum { ATTN_OK = 0, ATTN_EFAIL = 1, ATTN_EINPUT = 2 };
const char *attn_errmsg(void);
// set the thread's error message (printf-style) and return code
int attn_err(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// ---------------------------------------------------------------- UTF-8
// attn_utf8.c. Decode: the length (1-4) of the well-formed character at
// s[0..n) (n >= 1) with its code point in *cp, or -1 if s[0] starts none
// (an overlong form, a surrogate, beyond U+10FFFF, a stray or missing
// continuation byte); then *cp = U+FFFD. A NUL-terminated string may pass
// strnlen(s, 4): NUL is never a continuation byte.
int attn_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
// Encode code point cp (at most U+10FFFF) as 1-4 bytes at out; returns how many.
int attn_utf8_encode(char *out, uint32_t cp);

// JSON (attn_json.c): a document parsed into nodes in one linear pass
// (nesting up to 128). A container's children are first, then each next;
// an object's children are key, value, key, value... s/len: the node's text
// in the document (a string with its quotes).
enum { ATTN_JSON_NULL, ATTN_JSON_BOOL, ATTN_JSON_NUM, ATTN_JSON_STR, ATTN_JSON_ARR, ATTN_JSON_OBJ };
typedef struct { uint8_t type; int32_t next, first; uint32_t n; const char *s; size_t len; } attn_json_node;
typedef struct { attn_json_node *node; size_t n, cap; } attn_json; // node 0: the document's value
int attn_json_parse(attn_json *j, const char *s, size_t n);
void attn_json_free(attn_json *j);
int32_t attn_json_get(const attn_json *j, int32_t obj, const char *key); // the member's value, -1 none
char *attn_json_string(const attn_json *j, int32_t node, size_t *len);     // unescaped (malloc), NULL: not a string
int attn_json_bool(const attn_json *j, int32_t node, int dflt);
int attn_json_is(const attn_json *j, int32_t node, const char *str);     // a string spelled exactly str
// Unescapes the n bytes of a JSON string's inside into out (at least n + 1 bytes): its length.
size_t attn_json_unescape(char *out, const char *p, size_t n);

// ---------------------------------------------------------------- GGUF v3
// Value types as in the GGUF spec.
enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4,
    GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8,
    GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
};
// Tensor types (ggml numbering) that attn reads, their block layouts and
// decoding: simd/quant.h.
#include "simd/quant.h"

typedef struct { const char *s; uint64_t len; } attn_gguf_str; // not NUL-terminated

typedef struct {
    attn_gguf_str key;
    uint32_t type;     // GGUF_*
    uint32_t arr_type; // element type when type == GGUF_ARRAY
    uint64_t n;        // number of elements when an array, else 1
    const uint8_t *data; // value (or first array element) inside the file
} attn_gguf_kv;

typedef struct {
    attn_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];     // ne[0] is the fastest-varying (columns), unused dims are 1
    uint32_t type;      // ATTN_* of simd/quant.h (others rejected at open)
    uint64_t offset;    // relative to the data section
    uint64_t nbytes;
    const uint8_t *data;
} attn_gguf_tensor;

typedef struct {
    const uint8_t *base; // whole file (mmapped or caller's memory)
    size_t size;
    int mapped;          // 1 if base must be munmapped at close
    uint32_t version;
    uint64_t n_kv, n_tensors;
    attn_gguf_kv *kv;
    attn_gguf_tensor *tensors;
    uint64_t *by_name;   // tensor indices in name order (attn_gguf_find_tensor's binary search)
    uint64_t alignment;
    char path[512];      // for messages
} attn_gguf_file;

// Open and validate: header, every key/value, tensor directory, offsets,
// alignment, types and sizes (no read past the end, no 64-bit overflow).
int attn_gguf_open(attn_gguf_file *f, const char *path);
int attn_gguf_open_mem(attn_gguf_file *f, const void *buf, size_t size, const char *name);
void attn_gguf_close(attn_gguf_file *f);
void attn_gguf_prefault(const attn_gguf_file *f); // whole mapping into page tables (a hint)
const attn_gguf_kv *attn_gguf_find(const attn_gguf_file *f, const char *key);
const attn_gguf_tensor *attn_gguf_find_tensor(const attn_gguf_file *f, const char *name);
// Typed getters: 0 and *out set if the key exists with a compatible type
// (any integer type for u32/i64, f32 or f64 for f32), ATTN_EINPUT otherwise.
int attn_gguf_get_i64(const attn_gguf_file *f, const char *key, int64_t *out);
int attn_gguf_get_f32(const attn_gguf_file *f, const char *key, float *out);
int attn_gguf_get_bool(const attn_gguf_file *f, const char *key, int *out);
int attn_gguf_get_str(const attn_gguf_file *f, const char *key, attn_gguf_str *out);
// Elements of an array value: strings filled into out[0..kv->n), numbers
// converted to float/int32 (out NULL: only check the element type). Return
// ATTN_EINPUT on a type mismatch.
int attn_gguf_arr_strs(const attn_gguf_kv *kv, attn_gguf_str *out);
int attn_gguf_arr_f32(const attn_gguf_kv *kv, float *out);
int attn_gguf_arr_i32(const attn_gguf_kv *kv, int32_t *out);
// Size in bytes of a row of n elements of a tensor type (0 if unsupported or n
// not a multiple of the block size).
uint64_t attn_type_row_bytes(uint32_t type, uint64_t n);
const char *attn_type_name(uint32_t type);

// ---------------------------------------------------------------- tokenizer
typedef enum {
    ATTN_TOK_NONE = 0, // ids only: the model has no vocabulary
    ATTN_TOK_GPT2,     // byte-level BPE, rank-ordered merges ("gpt2")
    ATTN_TOK_SPM,      // SentencePiece BPE, score-ordered, byte fallback ("llama")
    ATTN_TOK_CHAR,     // one token per character ("char", an attn extension)
    ATTN_TOK_BPE,      // BPE on characters, rank-ordered merges, unk/byte fallback
                       // (Hugging Face tokenizers without ByteLevel: "bpe", attn)
    ATTN_TOK_WORDPIECE, // greedy longest match, "##" continuations ("wordpiece", attn)
    ATTN_TOK_UNIGRAM,  // Unigram (Viterbi over piece scores, "unigram", attn)
} attn_tok_kind;

typedef struct attn_tokenizer attn_tokenizer;

// Build from the tokenizer.ggml.* keys of a GGUF file (pieces point into it).
// A file without tokenizer.ggml.model gives an ATTN_TOK_NONE tokenizer of
// n_vocab ids.
int attn_tokenizer_load(attn_tokenizer **out, const attn_gguf_file *f, int n_vocab);
void attn_tokenizer_free(attn_tokenizer *t);
attn_tok_kind attn_tokenizer_kind(const attn_tokenizer *t);
int attn_tokenizer_n_vocab(const attn_tokenizer *t);
int attn_tokenizer_bos(const attn_tokenizer *t); // -1 if none
int attn_tokenizer_eos(const attn_tokenizer *t); // -1 if none
int attn_tokenizer_adds_bos(const attn_tokenizer *t);
// 1 (the default): special-token text in the input becomes the token; 0: plain text.
void attn_tokenizer_parse_special(attn_tokenizer *t, int on);
// Encode len bytes of text. add_bos: 1 to prepend BOS when the model adds it
// (tokenizer.ggml.add_bos_token), 0 never. *ids is malloc'ed, owned by caller.
// The text of a control or unknown token ("<|endoftext|>", "<s>", <|im_start|>)
// becomes that token unless attn_tokenizer_parse_special(t, 0) was called (as
// llama.cpp's parse_special and Hugging Face do); user-defined tokens always
// do; the longest one wins. Invalid UTF-8 never crashes; each byte that does not
// start a well-formed sequence is: GPT-2: one "other" character, kept as its
// byte (so decode gives the input back exactly); SentencePiece: U+FFFD, as
// sentencepiece does; char: ATTN_EINPUT naming the byte. ids-only: ATTN_EINPUT.
int attn_tokenize(const attn_tokenizer *t, const char *text, size_t len, int add_bos,
                  int32_t **ids, int *n_ids);
// 1 if id is a control, user-defined or unknown token (what special-token
// parsing can produce; BOS/EOS are control tokens), else 0.
int attn_token_is_special(const attn_tokenizer *t, int32_t id);
// The raw vocabulary piece of an id (as stored, e.g. "Ġthe", "▁the", "<0x0A>").
attn_gguf_str attn_token_piece(const attn_tokenizer *t, int32_t id);
// Readable labels for a sequence of ids: the text each token stands for, not
// Ġ/▁. Every space (U+0020) is shown as "·" (U+00B7); \n \t \r are escaped
// as such, other C0 controls and DEL as \xNN, C1 controls and U+2028/U+2029 as
// \uNNNN, a byte that is not part of well-formed UTF-8 as \xNN. A character
// whose bytes are spread over several tokens (GPT-2 byte tokens, SentencePiece
// <0xNN> fallback) is shown on the token holding its first byte; a token made
// only of the rest of such a character is "…" (U+2026). Control/unknown tokens
// (<s>, </s>, <unk>, <|endoftext|> when typed control) show their piece; an id
// with no piece (ids-only models, padded vocabularies) is "[id]". Labels are
// valid UTF-8 without raw control characters. labels[i] is malloc'ed; free
// with attn_labels_free.
int attn_token_labels(const attn_tokenizer *t, const int32_t *ids, int n, char ***labels);
void attn_labels_free(char **labels, int n);
// Decode ids back to text (malloc'ed, NUL-terminated, *len set if non-NULL).
// GPT-2 and char: the tokens' bytes as they are. SentencePiece: as
// sentencepiece's decode (the first piece's "▁" dropped, control tokens empty,
// <unk> as " ⁇ ", <0xNN> bytes that are not well-formed UTF-8 as U+FFFD).
int attn_detokenize(const attn_tokenizer *t, const int32_t *ids, int n, char **text, size_t *len);

// The tokenizer's regex engine (attn_regex.c) for pre-tokenizer Split
// patterns: Oniguruma semantics on a subset (see attn_regex.c); a construct
// outside it is refused naming it (ATTN_EINPUT).
typedef struct attn_regex attn_regex;
int attn_regex_compile(attn_regex **out, const char *pat, size_t len);
void attn_regex_free(attn_regex *r);
// The first non-empty match in text[0..n) starting at or after byte pos:
// [*start, *end), or *start = *end = n when there is none. Returns 0, or
// ATTN_EINPUT (the pattern backtracks too much on this text) / ATTN_EFAIL.
int attn_regex_find(const attn_regex *r, const char *text, size_t n, size_t pos, size_t *start, size_t *end);

// ---------------------------------------------------------------- model
// Architectures: one row each in the table of attn_arch.c (attn_arch_info).
typedef enum {
    ATTN_ARCH_GPT2 = 0, ATTN_ARCH_LLAMA = 1, ATTN_ARCH_GPTNEOX, ATTN_ARCH_QWEN2, ATTN_ARCH_GEMMA,
    ATTN_ARCH_GEMMA2, ATTN_ARCH_PHI2, ATTN_ARCH_PHI3, ATTN_ARCH_OLMO2, ATTN_ARCH_N
} attn_arch;
typedef enum { ATTN_NORM_LAYER = 0, ATTN_NORM_RMS = 1 } attn_norm;
typedef enum {
    ATTN_POS_LEARNED = 0,   // position_embd table added to the token embedding
    ATTN_POS_ROPE_PAIRS = 1,  // RoPE on interleaved pairs (x0,x1),(x2,x3).. (llama.cpp "norm", Meta, llama2.c)
    ATTN_POS_ROPE_HALVES = 2, // RoPE on split halves (x_i, x_{i+d/2}) (GPT-NeoX, HF rotate_half)
    ATTN_POS_NONE = 3,
} attn_pos;
typedef enum {
    ATTN_MLP_GELU_TANH = 0, ATTN_MLP_GELU_ERF = 1, ATTN_MLP_SWIGLU = 2,
    ATTN_MLP_GEGLU = 3,       // gelu_tanh(gate) * up (Gemma)
    ATTN_MLP_SWIGLU_FUSED = 4, // ffn_up holds [gate; up] (2F rows), silu(gate) * up (Phi-3)
} attn_mlp;
typedef enum {
    ATTN_PAR_NONE = 0,   // x += attn(norm1(x)); x += mlp(norm2(x))
    ATTN_PAR_TWO = 1,    // x += attn(norm1(x)) + mlp(norm2(x)) (GPT-NeoX)
    ATTN_PAR_SHARED = 2, // x += attn(norm1(x)) + mlp(norm1(x)) (Phi-2)
} attn_parallel;

typedef struct {
    attn_arch arch;
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    attn_norm norm;
    float norm_eps;
    attn_pos pos;
    float rope_theta;
    int rope_dims;      // rotated dims per head (<= head_dim)
    float rope_scale;   // positions multiplied by this (1/rope.scaling.factor, linear)
    attn_mlp mlp;
    int fused_qkv;      // 1 if Q,K,V are one attn_qkv tensor
    attn_parallel parallel;
    int qk_norm;        // 1: RMSNorm over all of q (q_dim) and of k (kv_dim) before RoPE
    int post_norm;      // 1: each sub-block's output is normed before the residual add
    int pre_norm;       // 1: each sub-block's input is normed (0: OLMo-2)
    float embd_scale;   // token embeddings multiplied by this (1, or sqrt(n_embd) for Gemma)
    float attn_softcap; // scores become c tanh(s / c) before the softmax (0: off)
    float logit_softcap;// logits become c tanh(l / c) (0: off)
    int swa_window;     // sliding window: query i sees keys j > i - window (0: off)
    int swa_every;      // 1: every layer slides; 2: layers 0, 2, 4.. slide, the rest are global
    int rope_freqs;     // 1: rope_freqs.weight divides each frequency (Llama 3)
} attn_config;

// One row of the architecture table.
typedef struct {
    attn_arch id;
    const char *gguf;       // general.architecture as llama.cpp writes it
    const char *models;     // the public models of this family (for info and README)
    attn_norm norm;         // switch defaults (attn.* keys override norm, positions, mlp)
    attn_pos pos;
    attn_mlp mlp;
    attn_parallel parallel;
    int qkv;                // 0: fused or separate, 1: fused only, 2: separate only
    int embd_scale;         // 1: token embeddings times sqrt(n_embd)
    int swa_every;          // see attn_config; 0: the architecture has no sliding window
    uint32_t req, opt;      // bit i: attn_layer_tensors[i] required / optional
} attn_arch_info;

// Per-layer tensors "blk.N.<suffix>": shape codes for rows and cols.
enum { ATTN_DIM_1, ATTN_DIM_D, ATTN_DIM_Q, ATTN_DIM_KV, ATTN_DIM_QKV, ATTN_DIM_F, ATTN_DIM_UP };
// How a random init fills a tensor: N(0, 0.02), N(0, 0.02/sqrt(2L)), 1, 0.
enum { ATTN_INIT_NORMAL, ATTN_INIT_RESID, ATTN_INIT_ONE, ATTN_INIT_ZERO };
typedef struct {
    const char *suffix;     // "attn_norm.weight"
    int rows, cols;         // ATTN_DIM_*; rows ATTN_DIM_1: a vector of cols
    int init;               // ATTN_INIT_*
    size_t off;             // offsetof(attn_layer, the field)
} attn_tensor_spec;
extern const attn_tensor_spec attn_layer_tensors[];
extern const int attn_n_layer_tensors;
// The row of an architecture; attn_arch_find: by general.architecture (NULL if unknown).
const attn_arch_info *attn_arch_get(attn_arch a);
const attn_arch_info *attn_arch_find(const char *gguf, size_t len);
// The size a shape code stands for in a config.
int attn_dim(const attn_config *c, int code);

// A weight matrix (rows = outputs, cols = inputs, as GGUF ne = [cols, rows])
// or a vector (rows = 1). data of any type of simd/quant.h.
typedef struct {
    const void *data;
    uint32_t type;
    int rows, cols;
} attn_tensor;

typedef struct {
    attn_tensor attn_norm, attn_norm_b;          // (D)
    attn_tensor wqkv, bqkv;                      // fused: (q_dim + 2 kv_dim, D), or
    attn_tensor wq, wk, wv, bq, bk, bv;          // separate: (q_dim, D), (kv_dim, D) x2
    attn_tensor wo, bo;                          // (D, q_dim)
    attn_tensor ffn_norm, ffn_norm_b;            // (D)
    attn_tensor w_up, b_up, w_gate, w_down, b_down; // (F or 2F, D), (F, D), (D, F)
    attn_tensor q_norm, k_norm;                  // (q_dim), (kv_dim) QK-norm
    attn_tensor post_attn_norm, post_ffn_norm;   // (D) post-sub-block norms
} attn_layer;

typedef struct attn_pool attn_pool; // threads (below)

typedef struct attn_model {
    attn_config cfg;
    char name[128];        // general.name or the file name
    char path[512];
    attn_gguf_file file;
    attn_tensor tok_embd;  // (V, D)
    attn_tensor pos_embd;  // (n_ctx, D) when learned positions
    attn_tensor out_norm, out_norm_b; // (D)
    attn_tensor output;    // (V, D); equals tok_embd when the file has no output.weight
    attn_tensor output_b;  // (V) output bias (Phi-2) or absent
    attn_tensor rope_freqs; // (rope_dims / 2) frequency divisors (Llama 3) or absent
    attn_layer *layers;    // [n_layer]
    attn_tokenizer *tok;
    void *owned;           // memory owned by the model (converted or random weights)
    struct attn_lazy *lazy; // a random model's layer weights, made when first used (attn_model_layer)
    int64_t n_params;
} attn_model;

// Loading a model also chooses the SIMD kernels (attn_simd_init) unless a
// path was chosen already, so a program needs no init call of its own.
int attn_model_load(attn_model **out, const char *path);
int attn_model_load_mem(attn_model **out, const void *buf, size_t size, const char *name);
// A random init of the same architecture (GPT-2 init: N(0, 0.02), residual
// projections N(0, 0.02/sqrt(2L)), norms 1, biases 0), F32, same tokenizer;
// made on the pool's threads (an attn_pool, below; NULL: the calling thread),
// the same values either way. A layer's weight matrices are made when a
// forward reaches them (attn_model_layer): in one layer's memory shared by
// all on the first pass (a single forward touches one layer's, not a 7B
// model's 28 GB), kept from the second pass on (another prompt, a decode
// step), as many as fit in `resident` bytes (attn_model_random: half of
// MemAvailable or of what a memory cgroup's limit leaves, the less) and can
// be mapped; the others are made again on each pass. Its token embedding and output head are never held
// (tok_embd.data and output.data are NULL): rows are made when read.
int attn_model_random(attn_model **out, const attn_model *like, uint64_t seed, attn_pool *pool);
int attn_model_random_budget(attn_model **out, const attn_model *like, uint64_t seed, attn_pool *pool,
                             size_t resident);
// Layer l of m, a random model's weights made first (on the pool's threads;
// NULL: the calling thread; never from one of the pool's own threads). Its
// weights stay valid until another layer of m is asked for (one layer at a
// time: forwards of one random model must not run at once).
const attn_layer *attn_model_layer(const attn_model *m, int l, attn_pool *pool);
// Row v of the output head as D floats (a random model's made from its numbers).
void attn_model_out_row(const attn_model *m, int v, float *row);
void attn_model_free(attn_model *m);
// 1 if the output head is the token embedding: no output.weight, or one equal
// to token_embd byte for byte (compared on each call, 2 x V x D weights).
int attn_model_tied_head(const attn_model *m);
// The model compiled into the binary (NULL if the build has none).
const void *attn_builtin_data(size_t *size);

// ---------------------------------------------------------------- SIMD kernels
// The kernel path: the best this CPU runs (avx512, avx2, neon, else scalar)
// or the one $ATTN_SIMD names. attn_simd_init chooses it once (loading a
// model calls it; a path chosen before is kept): 0, or ATTN_EINPUT when
// $ATTN_SIMD names an unknown path or one this CPU lacks. attn_simd_select
// forces a path by name; attn_simd_name is the path in use. Choose before
// starting threads that run the forward.
int attn_simd_init(void);
int attn_simd_select(const char *name);
const char *attn_simd_name(void);
// Exact mode (on = 1): every matmul and attention score summed in double, as
// the scalar path sums them, so with its bits, on whichever path is in use
// (the name gets ", exact"); prefill takes 2-3x as long on AVX-512. The
// default float sums are within ~3e-5 of float64 on attention probabilities
// where scores are large; exact mode within ~5e-6 (README, "Tested models").
void attn_simd_exact(int on);

// ---------------------------------------------------------------- threads
int attn_pool_new(attn_pool **out, int n_threads); // n_threads <= 0: online cores
void attn_pool_free(attn_pool *p);
int attn_pool_size(const attn_pool *p);
// Run fn(ctx, i) for i in [0, n) on the pool's threads; returns when all done.
// Work items are independent, so results never depend on the thread count.
void attn_pool_run(attn_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx);
// The same, the calling thread running side(side_ctx) first while the other
// threads start on the items (n <= 0: side alone). side must not use the pool.
void attn_pool_run_beside(attn_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx, void (*side)(void *),
                          void *side_ctx);
int attn_online_cores(void);

// ---------------------------------------------------------------- forward
// What to capture during a forward pass. All callbacks are optional; they are
// called from the calling thread, in layer order, and must not use the
// session's pool (on_attn may run while its other threads compute).
typedef struct {
    // Attention rows of new query positions: p is (nq, nk) row-major, row i
    // is the query at position q0 + i, nk = q0 + nq keys, probabilities in
    // [0,1] summing to 1, zero above the diagonal.
    void (*on_attn)(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p);
    // Residual stream after layer `layer` (layer = -1: the embeddings),
    // x is (nq, D) for query positions q0 .. q0+nq-1. For the logit lens.
    void (*on_resid)(void *ctx, int layer, int q0, int nq, const float *x);
    // Queries and keys as attention uses them (after RoPE): q is (nq, q_stride),
    // head h at q + h*head_dim, for positions q0 .. q0+nq-1; k is (nk, k_stride),
    // KV head g at k + g*head_dim, for keys 0 .. nk-1 (nk = q0 + nq). For
    // `attn explain` and the pre-softmax scores of `run --export scores`.
    void (*on_qk)(void *ctx, int layer, int q0, int nq, int nk, const float *q, int q_stride, const float *k,
                  int k_stride);
    // Activations, to read or to change (interventions): x holds the rows of
    // query positions q0 .. q0+nq-1 of one stage (ATTN_ACT_*) of `layer`; the
    // callback may overwrite them and the forward goes on from what it leaves.
    // Not filtered by `layers`/`heads`.
    void (*on_act)(void *ctx, int kind, int layer, int q0, int nq, float *x);
    void *ctx;
    const uint8_t *layers; // [n_layer] 1 = capture this layer; NULL = all
    const uint8_t *heads;  // [n_head] 1 = capture this head; NULL = all
} attn_capture;
// Stages of on_act (TransformerLens hook names in brackets):
enum {
    ATTN_ACT_RESID_PRE = 0, // residual entering the layer (nq, D) [hook_resid_pre]
    ATTN_ACT_Z = 1,         // every head's attention-weighted sum of values, value
                            // bias included, before the output projection
                            // (nq, n_head * head_dim), head h in columns
                            // h*head_dim .. (h+1)*head_dim-1 [attn.hook_z]
    ATTN_ACT_MLP_OUT = 2,   // the MLP's output, its output bias included, before
                            // it is added to the residual (nq, D) [hook_mlp_out]
    ATTN_ACT_N
};

// Large zero-filled buffers (activations, logits): an anonymous mapping in
// 2 MB pages where the OS gives them, so a first touch faults once per 2 MB
// instead of once per 4 KB. Free with the same n. NULL: out of memory.
void *attn_big_alloc(size_t n);
void attn_big_free(void *p, size_t n);
// A forward session: activations and KV cache sized for at most max_t positions.
typedef struct attn_session attn_session;
int attn_session_new(attn_session **out, const attn_model *m, int max_t, attn_pool *pool);
void attn_session_free(attn_session *s);
int attn_session_pos(const attn_session *s); // positions already in the cache
void attn_session_reset(attn_session *s);
// The sliding window of layer l (keys j > i - window seen; 0: all earlier keys).
int attn_layer_window(const attn_config *c, int l);
// Feed n ids at positions pos..pos+n-1. logits: (n, V) or NULL; last_only=1
// writes just the last position's V logits. Ids out of range are ATTN_EINPUT.
int attn_session_feed(attn_session *s, const int32_t *ids, int n, float *logits, int last_only,
                      const attn_capture *cap);
// Final norm + unembedding of a residual row x (D) into logits (V).
void attn_unembed(const attn_session *s, const float *x, float *logits);
// Run the last n positions fed (n <= attn_session_pos) again from layer
// `from` on, with x (n, D) as the residual entering that layer; the KV cache
// of the layers before `from` is kept. Given the residual the full forward
// had there, the results are bit-identical to it; callbacks see layers >= from.
int attn_session_refeed(attn_session *s, int from, const float *x, int n, float *logits, int last_only,
                        const attn_capture *cap);
// A session for attn_session_run_from: its cache and activations hold
// max_runs runs of max_t positions (max_t <= the model's context).
int attn_session_new_runs(attn_session **out, const attn_model *m, int max_t, int max_runs, attn_pool *pool);
// runs independent passes over positions 0..n-1 from layer `from` on, run b's
// residual entering that layer at x + b n D, in one pass whose matrix products
// take all runs x n rows at once (each weight decoded once, not once a run):
// many interventions on one prompt (attn ablate: a layer's heads). Each run's
// results are bit-identical to attn_session_refeed of it alone. logits:
// (runs x n, V), last_only: (runs, V), each run's last position; caps: one
// capture per run (its callbacks see its own rows, positions 0..n-1), or
// NULL. Afterwards the session holds no positions (attn_session_pos 0).
int attn_session_run_from(attn_session *s, int from, const float *x, int n, int runs, float *logits, int last_only,
                          const attn_capture *caps);
// Runs of n positions that fill one such pass (about 512 rows: each weight
// decoded once for them all, the products' tiles full), at most `most`, at least 1.
int attn_runs_per_pass(int n, int most);

// ---------------------------------------------------------------- interventions
// A list of replacements applied by attn_edits_on_act (cap.on_act =
// attn_edits_on_act, cap.ctx = the attn_edits): at stage `kind` of `layer`,
// the columns col0 .. col0+ncol-1 of the row of position `pos` (-1: every
// position) become zero (v NULL) or the ncol floats at v + pos * v_stride
// (v_stride 0: the same vector at every position; a run recorded as (T, width)
// rows: v = rec + col0, v_stride = width). Head h's z: kind ATTN_ACT_Z,
// col0 = h * head_dim, ncol = head_dim.
typedef struct {
    int kind, layer, pos;
    int col0, ncol;
    const float *v;
    size_t v_stride;
} attn_edit;
typedef struct {
    const attn_edit *e;
    int n;
    int width[ATTN_ACT_N]; // row length of each stage: D, n_head * head_dim, D
} attn_edits;
void attn_edits_init(attn_edits *ed, const attn_model *m, const attn_edit *e, int n);
void attn_edits_on_act(void *ctx, int kind, int layer, int q0, int nq, float *x);

// Direct logit attribution at one position (attn_causal.c). The final
// residual x is a sum of components; each is sent through the final norm
// with its scale frozen at the value x gives (LayerNorm: centred, divided by
// x's sigma, times gamma; RMSNorm: divided by x's rms, times gamma) and onto
// the unembedding row of `target` minus the row of `against` (-1: none).
// Components: [0] embeddings (token + learned position), [1] the norm's bias
// (0 without one), then per layer l: n_head heads (W_o's columns of head h
// times z), the attention output bias, the MLP output (its bias included):
// index 2 + l * (n_head + 2) + h, ... + n_head, ... + n_head + 1. Their sum
// is the model's logit (difference) to float rounding; *logit is the model's.
// comp holds attn_attr_n(m) values.
int attn_attr_n(const attn_model *m);
int attn_attribute(const attn_model *m, attn_pool *pool, const int32_t *ids, int T, int pos, int target,
                   int against, double *comp, double *logit);
// Next-token loss (nats) of every position t in [1, T): nll[t-1] =
// -log softmax(logits[t-1])[ids[t]]; logits (T, V) are overwritten (by the
// probabilities). Positions spread over pool (may be NULL). Returns the mean.
double attn_nll_rows(float *logits, int V, const int32_t *ids, int T, attn_pool *pool, double *nll);

// Non-finite activations (NaN/inf, from weights that hold them or overflow):
// every feed checks the residual stream after the embeddings and each layer,
// and the logits. Returns where they first appeared in this process ("the
// output of layer 3, position 5"; "the embeddings, ..."; "the logits, ..."),
// or NULL when every value so far was finite.
const char *attn_nonfinite(void);

// Convenience: one full forward of T ids from position 0. attn (may be NULL)
// receives every layer's and head's probabilities as [L][H][T][T].
int attn_forward(const attn_model *m, attn_pool *pool, const int32_t *ids, int T,
                 float *logits, float *attn);

// ---------------------------------------------------------------- analysis
// Head-type scores (README "What the numbers mean"). Each score is the mean, over
// the query rows i where it is defined, of the attention mass row i puts on
// its target keys:
//   previous  key i-1                               rows i >= 1
//   first     key 0                                 rows i >= 1
//   self      key i                                 rows i >= 1
//   induction keys j+1 with ids[j] == ids[i], j+1 < i   rows with such a j
//   duplicate keys j < i with ids[j] == ids[i]          rows with such a j
//   offset    key i-k for the best k in 2..8 (k = 1 is `previous`), rows i >= k
//   entropy_bits  -sum_j p log2 p over keys j <= i    every row (row 0 gives 0)
// A score with no defined row is NaN (null in JSON), never 0.
enum {
    ATTN_S_PREVIOUS, ATTN_S_FIRST, ATTN_S_SELF, ATTN_S_INDUCTION, ATTN_S_DUPLICATE,
    ATTN_S_OFFSET, ATTN_S_ENTROPY, ATTN_S_N
};
// "previous", "first", "self", "induction", "duplicate", "offset", "entropy_bits"
extern const char *const attn_score_names[ATTN_S_N];
int attn_score_index(const char *name); // index of a name, -1 if unknown
#define ATTN_OFFSET_MIN 2
#define ATTN_OFFSET_MAX 8

typedef struct {
    double s[ATTN_S_N];  // NaN where undefined; s[ATTN_S_OFFSET] = offset_mass[offset_k]
    int offset_k;        // the k in 2..8 with the largest mean mass (0 if none defined)
    double offset_mass[ATTN_OFFSET_MAX + 1]; // [k] mean mass on key i-k; NaN if undefined
    unsigned nonfinite;  // bit s set: s[s] is NaN because a row held NaN/Inf (printed "nan"),
                         // not because no row defined it (printed "-")
} attn_head_scores;

// Streaming accumulator of one head's scores: feed attention rows as they
// come (a whole (T,T) matrix, or one row per generated token), read the means.
typedef struct {
    double sum[ATTN_S_N];
    long n[ATTN_S_N];
    double off_sum[ATTN_OFFSET_MAX + 1];
    long off_n[ATTN_OFFSET_MAX + 1];
} attn_score_acc;
void attn_score_acc_init(attn_score_acc *a);
// Rows of query positions q0 .. q0+nq-1; p is (nq, nk) row-major (the layout
// of attn_capture.on_attn), ids[0 .. q0+nq) the tokens at those positions.
// p == NULL adds the uniform causal rows (mass 1/(i+1) on every key j <= i).
void attn_score_acc_rows(attn_score_acc *a, const int32_t *ids, int q0, int nq, int nk,
                         const float *p);
void attn_score_acc_get(const attn_score_acc *a, attn_head_scores *out);
// One head's whole (T,T) attention p (row = query).
void attn_head_scores_of(const float *p, const int32_t *ids, int T, attn_head_scores *out);
// The uniform causal baseline for the same tokens, exactly (in double).
void attn_head_scores_uniform(const int32_t *ids, int T, attn_head_scores *out);

// Every head of a model at once, as an attn_capture.on_attn callback
// (cap.on_attn = attn_heads_acc_on_attn, cap.ctx = the attn_heads_acc).
// Rows of query positions < row_min are skipped: `trace --attn` sets it to the
// prompt length so only generated tokens' rows count. The caller keeps `ids`
// pointing at the tokens of every position fed so far.
typedef struct {
    int n_layer, n_head;
    const int32_t *ids;
    int row_min;
    attn_score_acc *acc; // [n_layer * n_head], layer-major
} attn_heads_acc;
int attn_heads_acc_new(attn_heads_acc **out, int n_layer, int n_head);
void attn_heads_acc_reset(attn_heads_acc *h); // zero every accumulator (keeps ids, row_min)
void attn_heads_acc_free(attn_heads_acc *h);
void attn_heads_acc_on_attn(void *ctx, int layer, int head, int q0, int nq, int nk, const float *p);
// scores[layer * n_head + head]
void attn_heads_acc_get(const attn_heads_acc *h, attn_head_scores *scores);

// Mean and spread over many prompts (corpus mode), streaming (Welford):
// undefined (NaN) values are skipped, so each score's n counts the prompts
// where it was defined; one prompt whose score met non-finite attention makes
// the mean NaN with its nonfinite bit set. The offset is aggregated per k, and the best k picked from the means.
typedef struct { long n, bad; double mean, m2; } attn_stat; // bad: non-finite samples
void attn_stat_add(attn_stat *st, double x);
double attn_stat_sd(const attn_stat *st); // sample standard deviation (0 when n < 2)
typedef struct {
    attn_stat s[ATTN_S_N];
    attn_stat off[ATTN_OFFSET_MAX + 1];
} attn_head_stats;
void attn_head_stats_add(attn_head_stats *a, const attn_head_scores *h);
// mean: the means (NaN where n == 0); sd (may be NULL): standard deviations,
// sd->offset_k == mean->offset_k; n (may be NULL): counts per score.
void attn_head_stats_get(const attn_head_stats *a, attn_head_scores *mean, attn_head_scores *sd,
                         long n[ATTN_S_N]);

// The induction test sequence: [BOS] then len random ids, then the same len
// ids again. ids are drawn from [0, n_vocab) minus `bos` and `eos` (-1: none),
// without repetition when len allows (so induction is defined only on the
// second repeat), from a fixed PRNG seeded by seed. out holds
// (bos >= 0) + 2*len ids; returns that count.
int attn_induction_ids(int32_t *out, int n_vocab, int len, uint64_t seed, int bos, int eos);
// Mean next-token loss in nats per token of the positions t in [from, to)
// (1 <= from): -log softmax(logits[t-1])[ids[t]], logits (T, V).
double attn_mean_nll(const float *logits, int V, const int32_t *ids, int from, int to);

// The k largest of x[0..n) in descending order into id, val (ties: the
// smaller index first). For next-token candidates after a softmax.
void attn_top_k(const float *x, int n, int k, int32_t *id, float *val);
// probs = softmax(logits / temp) of n logits, in double; returns the entropy
// of probs in bits.
double attn_softmax_bits(const float *logits, int n, double temp, double *probs);

// Logit lens: the residual stream after every layer (and the embeddings),
// through the final norm and unembedding. Capture with
// cap.on_resid = attn_lens_on_resid, cap.ctx = the lens (a caller that also
// captures attention calls attn_lens_on_resid from its own callback), feed the
// prompt, then attn_lens_compute. Rows: r = layer + 1 in [0, n_layer] (0 = the
// embeddings, n_layer = the last layer, whose logits are the model's).
typedef struct {
    int n_layer, T, k, D, V;
    float *resid;      // (n_layer+1, T, D) captured residual rows
    int32_t *top_id;   // (n_layer+1, T, k) top-k tokens, most probable first
    float *top_prob;   // (n_layer+1, T, k) their probabilities
    int32_t *final_id; // (T) the token the model finally chooses at each position (argmax of the last row)
    float *final_prob; // (n_layer+1, T) probability of final_id[t] at each row
} attn_lens;
int attn_lens_new(attn_lens **out, const attn_model *m, int T, int k);
void attn_lens_free(attn_lens *l);
void attn_lens_on_resid(void *ctx, int layer, int q0, int nq, const float *x);
// Fill top_*, final_* from the captured rows using the session's final norm
// and unembedding (attn_unembed), positions spread over pool (may be NULL).
int attn_lens_compute(attn_lens *l, const attn_session *s, attn_pool *pool);

// The offline HTML report (attn_report.c): one self-contained page, our own
// inline CSS and JavaScript, no network. Attention is embedded quantised to
// 8 bits (round(255 p)) as the lower triangles only.
typedef struct {
    const attn_model *m;
    int T;
    const int32_t *ids;
    char *const *labels;        // [T] display labels
    const uint8_t *attn;        // [L][H] triangles: row i holds keys 0..i; T(T+1)/2 bytes per head
    const attn_head_scores *scores, *baseline; // [L * H]; baseline (random init) may be NULL
    const attn_head_scores *uniform;           // the uniform causal baseline (one for every head)
    uint64_t seed;              // of the random init
    int k;                      // next-token candidates per position
    const int32_t *top_id;      // [T][k]
    const float *top_prob;      // [T][k] probabilities 0..1
    char *const *top_labels;    // [T * k]
} attn_report;
// Bytes of one head's triangle, and the offset of row i in it.
#define ATTN_TRI(T) ((size_t)(T) * ((T) + 1) / 2)
#define ATTN_TRI_ROW(i) ((size_t)(i) * ((i) + 1) / 2)
#define ATTN_Q8_NONFINITE 255
uint8_t attn_quant8(float p); // round(254 p) clamped to 0..254; NaN/Inf: ATTN_Q8_NONFINITE
int attn_report_write(const char *path, const attn_report *r);

// (T, T) -> (T-1, T-1): key 0 removed, every row renormalised over the keys
// left, query 0 (nothing left) removed. Rows with no mass left stay zero.
// out may be p (the (T-1, T-1) result then starts where p did).
void attn_drop_first(const float *p, int T, float *out);
// Jensen-Shannon divergence in bits between two distributions of n values.
double attn_jsd_bits(const float *a, const float *b, int n);

// ---------------------------------------------------------------- rendering
// Pictures of attention. A figure is a grid of square (T, T) panels (row =
// query position, column = key position) on one shared scale, with token
// labels on the outer axes, row/column headings, a title, notes, and a
// colorbar for each kind of panel present. It is drawn into an RGB raster
// (then PNG), as SVG with real text, or as ANSI truecolor blocks.
typedef enum {
    ATTN_SCALE_FIXED = 0, // 0..1 on every picture, so colours compare across pictures
    ATTN_SCALE_ROW = 1,   // each row divided by its largest value
    ATTN_SCALE_LOG = 2,   // log10, values below ATTN_LOG_FLOOR drawn as the floor
} attn_scale;
#define ATTN_LOG_FLOOR 1e-4f

typedef struct {
    const float *p; // (T, T) row-major, or NULL for an empty slot
    int diverging;  // 1: a difference map (diverging colormap, symmetric -dmax..dmax)
    int window;     // sliding-window layer: keys k <= q - window are masked too (0: none)
} attn_panel;

typedef struct {
    int T;
    const char *const *labels;   // [T] token labels (UTF-8); NULL: positions
    int label0;                  // position of labels[0] (1 after attn_drop_first)
    const char *title;           // e.g. "gpt2 - layer 2, head 3"
    const char *note;            // more text under the title ('\n' separates lines), or NULL
    const attn_panel *panels;    // [rows * cols], row-major
    int rows, cols;
    const char *const *row_names; // [rows] headings left of each row, or NULL
    const char *const *col_names; // [cols] headings above each column, or NULL
    attn_scale scale;            // how sequential panels map to colour
    float dmax;                  // diverging panels' range; <= 0: their largest |value|
    int causal;                  // cells above the diagonal are masked (drawn hatched grey)
    int drop_first;              // the panels went through attn_drop_first (said on the picture)
    int annot;                   // 1: each cell's value written in it (two decimals) where it fits
    const uint8_t *rows_shown;   // [T] 1 = draw this query row, 0 = hatched like masked cells; NULL = all
} attn_figure;

// An RGB raster, 3 bytes a pixel, row-major, and where the figure went in it.
typedef struct {
    int w, h;
    uint8_t *rgb;
    int x0, y0;      // top-left pixel of panel 0's cell (0, 0)
    int dx, dy;      // pixels from one panel to the next column / row
    int cell;        // pixels per cell
    int tpc;         // tokens per cell (> 1 only for prompts too long for 1 pixel each)
    int label_stride; // every label_stride-th token labelled (0: no labels)
    int bar_x, bar_y, bar_w, bar_h; // the sequential colorbar (top = largest value)
    int dbar_x;      // the diverging colorbar (same y, w, h), -1 if none
} attn_image;

// Colour of t in [0, 1] on the sequential map (dark violet -> yellow,
// lightness rising linearly), or of t in [-1, 1] on the diverging map (blue ->
// white -> red). Both computed in OKLab at first use, 256 steps. NaN is
// magenta (#ff00ff, in neither map): pictures draw non-finite values so and
// name the colour in their legend.
void attn_colormap(float t, uint8_t rgb[3]);
void attn_colormap_div(float t, uint8_t rgb[3]);
// The colour position (t in [0, 1]) of attention v under a scale; row_max is
// the largest value of v's row (used by ATTN_SCALE_ROW).
float attn_scale_t(attn_scale s, float v, float row_max);

int attn_render_image(const attn_figure *f, attn_image *out);
void attn_image_free(attn_image *im);
int attn_png_encode(const attn_image *im, uint8_t **png, size_t *len); // malloc'ed
int attn_write_png(const char *path, const attn_image *im);
// SVG text (malloc'ed, NUL-terminated): labels as real <text>, so any script reads.
int attn_render_svg(const attn_figure *f, char **svg, size_t *len);
// ANSI 24-bit colour blocks, one panel after another (malloc'ed text).
int attn_render_term(const attn_figure *f, char **text, size_t *len);
// Draw UTF-8 text with the built-in bitmap font (scale: integer zoom, rot90:
// 1 = reading upwards); returns its width in pixels. A character the font
// lacks is drawn as a box. attn_text_width measures without drawing.
int attn_draw_text(attn_image *im, int x, int y, const char *s, const uint8_t rgb[3], int scale,
                   int rot90);
int attn_text_width(const char *s, int scale);

// ---------------------------------------------------------------- analysis pictures
// The logit lens as a heatmap (attn_render.c): one row per lens row (the
// embeddings at the bottom, the last layer at the top), one column per
// position; colour = final_prob on the sequential colormap, fixed 0..1; each
// cell shows its top token when wide enough; input tokens (tok labels ids)
// below the columns, the finally chosen tokens above. Write it with
// attn_write_png, free it with attn_image_free.
int attn_lens_image(const attn_lens *l, const attn_tokenizer *tok, const int32_t *ids, const char *title,
                    attn_image *out);

// A rows x cols grid of values on the diverging colormap, symmetric around 0
// (-dmax .. dmax, dmax at least the largest |value| and the given dmax), a
// colorbar with the value `mark` marked and named (NaN: none); NaN cells
// grey. For patching (1 = fully restored) and attribution pictures.
typedef struct {
    const float *v;              // (rows, cols) row-major
    int rows, cols;
    char *const *row_names;      // [rows] left of the rows
    char *const *col_names;      // [cols] below the columns
    const char *title, *note;    // note may be NULL
    float dmax, mark;
    const char *mark_name;       // e.g. "= fully restored"
} attn_grid;
int attn_grid_image(const attn_grid *g, attn_image *out);

// ---------------------------------------------------------------- writers
// Every output file is written to a temporary name in the same directory
// (created O_EXCL, so a planted file or symbolic link is never followed) and
// renamed into place by attn_out_close, so a reader never sees a partial
// file. An existing output that is a character device or FIFO (/dev/stdout)
// is written through; a directory, socket or block device is refused
// (ATTN_EINPUT), never replaced; a symbolic link to a regular file replaces
// the file it names. attn_out_cleanup() (async-signal-safe) removes every temporary file
// still open: the CLI calls it from its SIGINT/SIGTERM handler.
#include <stdio.h>
typedef struct {
    FILE *fp;
    char path[1024];
    char tmp[1080];
    int direct; // 1: a character device or FIFO, written through (no rename)
} attn_outfile;
int attn_out_open(attn_outfile *o, const char *path);
// Flush, check for write errors (disk full), rename. On error the temporary
// file is removed and ATTN_EFAIL returned with the reason.
int attn_out_close(attn_outfile *o);
void attn_out_abort(attn_outfile *o);
void attn_out_cleanup(void);
// Scratch memory on disk: n bytes of a temporary file in dir, mapped read-write
// (the kernel pages it to the file, so it may be larger than RAM). The file is
// unlinked as soon as it is made, so nothing is left in dir however the
// process ends. Free space is checked first (ATTN_EINPUT) and the blocks are
// reserved up front, so a full disk is an error here (ATTN_EFAIL), never a
// SIGBUS later.
typedef struct {
    void *p;
    size_t n;
    int fd;
} attn_scratch;
int attn_scratch_new(attn_scratch *s, const char *dir, size_t n);
void attn_scratch_free(attn_scratch *s);
// A whole buffer to a file, atomically.
int attn_write_file(const char *path, const void *data, size_t n);
// NumPy .npy (v1.0, little-endian float32, C order) of shape dims[0..nd).
int attn_write_npy_f32(const char *path, const float *data, const int64_t *dims, int nd);
// Start a .npy of float32 of the given shape: writes the header; the caller
// fwrites the data in C order to o->fp and calls attn_out_close.
int attn_npy_open(attn_outfile *o, const char *path, const int64_t *dims, int nd);
// A JSON string literal (quotes, escapes; invalid UTF-8 bytes become U+FFFD).
void attn_json_str(FILE *fp, const char *s);
// JSON: a number (printf format fmt, or %.8g) or null when it is NaN or
// +-inf (JSON has neither); a scores object {"previous": .., "offset_k": ..}.
void attn_json_num(FILE *fp, double v);
void attn_json_numf(FILE *fp, const char *fmt, double v);
void attn_json_scores(FILE *fp, const attn_head_scores *h);
// A string from a file made safe for a terminal or a table: \n \t \r
// escaped as such, other C0 controls, DEL and bytes that are not well-formed
// UTF-8 as \xNN, C1 controls as \uNNNN. Reads at most len bytes (stops at a
// NUL); out is NUL-terminated, cut at a whole character to fit cap.
void attn_escape(char *out, size_t cap, const char *s, size_t len);
// Make a directory and its parents (like mkdir -p).
int attn_mkdirs(const char *dir);

#endif
