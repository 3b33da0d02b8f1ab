// tests/fuzz/fuzz_cli.c - libFuzzer harness: the command line. The input,
// split on NUL bytes, is argv[1..] of `attn` (at most 64 arguments), run
// through the CLI's main (attn.c compiled with -Dmain=attn_main) in a scratch
// directory holding three small models: m.gguf (GPT-2 BPE), l.gguf (Llama
// SentencePiece, GQA) and c.gguf (RoPE nanoGPT, characters), copied from
// $ATTN_FUZZ_SEEDS (default tests/fuzz/corpus_gguf). An input that starts
// with byte 0xFF first carries two files for `maps --from rec`:
//   0xFF, n1 (2 bytes LE), n1 bytes of rec/attention.npy, n2 (2 bytes LE),
//   n2 bytes of rec/tokens.json, then the arguments as above. An input that
// starts with byte 0xFE first carries a prompt file for `-f p.txt`:
//   0xFE, n (2 bytes LE), n bytes of p.txt, then the arguments
// (seeds hold prompt files and tokens.json of many sizes, 0 to ~4 KB).
//
// To keep the fuzzer inside its scratch directory and fast, arguments are
// rewritten: '/' becomes '_' and ".." becomes "_." (no path leaves the
// directory), a -t/--threads value is capped at 4, and `bench` is not run
// (it only times the forward pass, which fuzz_gguf covers). stdin is
// /dev/null. Every file a run creates is removed after it.
//
// Checks: the exit status is 0, 1 or 2, and a failure says why on stderr in
// one line starting "attn: ".
// tests/fuzz/t_fuzz_cli.py replays tests/fuzz/corpus_cli/ and
// tests/fuzz/regressions/cli/ through the real binary the same way.
#define _XOPEN_SOURCE 700 // nftw
#include <fcntl.h>
#include <ftw.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int attn_main(int argc, char **argv);

#define FC_MAX_ARGS 64
static const char *const fc_models[][2] = {
    { "gpt2_bpe.gguf", "m.gguf" }, { "llama_spm_gqa.gguf", "l.gguf" }, { "nanogpt_rope_char.gguf", "c.gguf" },
};
static int fc_null = -1;
static char fc_dir[] = "/tmp/attn-fuzz-cli.XXXXXX";

static void fc_assert(int ok) {
    if (!ok) __builtin_trap();
}

static void fc_copy(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[1 << 16];
    size_t n;
    if (!in || !out) {
        fprintf(stderr, "fuzz_cli: cannot copy %s\n", from);
        exit(1);
    }
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

static int fc_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void fc_remove_dir(void) { nftw(fc_dir, fc_rm, 16, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *seeds = getenv("ATTN_FUZZ_SEEDS");
    char src[4096], *dir = fc_dir, cwd[2048];
    if (!getcwd(cwd, sizeof cwd) || !mkdtemp(dir)) exit(1);
    atexit(fc_remove_dir);
    if (!seeds) seeds = "tests/fuzz/corpus_gguf";
    for (size_t i = 0; i < sizeof fc_models / sizeof *fc_models; i++) {
        char dst[4096];
        snprintf(src, sizeof src, "%s%s%s/%s", seeds[0] == '/' ? "" : cwd, seeds[0] == '/' ? "" : "/", seeds, fc_models[i][0]);
        snprintf(dst, sizeof dst, "%s/%s", dir, fc_models[i][1]);
        fc_copy(src, dst);
    }
    if (chdir(dir)) exit(1);
    fprintf(stderr, "fuzz_cli: scratch directory %s\n", dir);
    if (!freopen("/dev/null", "r", stdin)) exit(1);
    fc_null = open("/dev/null", O_WRONLY);
    return 0;
}

// Remove everything in the scratch directory but the models.
static void fc_clean(void) {
    DIR *d = opendir(".");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int keep = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        for (size_t i = 0; i < sizeof fc_models / sizeof *fc_models; i++) keep |= !strcmp(e->d_name, fc_models[i][1]);
        if (!keep) nftw(e->d_name, fc_rm, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (d) closedir(d);
}

// Write n bytes to path (creating rec/).
static void fc_put(const char *path, const uint8_t *p, size_t n) {
    mkdir("rec", 0777);
    FILE *f = fopen(path, "wb");
    if (f) fwrite(p, 1, n, f), fclose(f);
}

// The files of a 0xFF input; returns the bytes they took.
static size_t fc_files(const uint8_t *data, size_t size) {
    static const char *names[2] = { "rec/attention.npy", "rec/tokens.json" };
    size_t at = 1;
    for (int k = 0; k < 2; k++) {
        size_t n = at + 2 <= size ? (size_t)(data[at] | data[at + 1] << 8) : 0;
        at = at + 2 <= size ? at + 2 : size;
        if (n > size - at) n = size - at;
        fc_put(names[k], data + at, n);
        at += n;
    }
    return at;
}

// The prompt file of a 0xFE input; returns the bytes it took.
static size_t fc_prompt(const uint8_t *data, size_t size) {
    size_t n = size >= 3 ? (size_t)(data[1] | data[2] << 8) : 0, at = size >= 3 ? 3 : size;
    if (n > size - at) n = size - at;
    FILE *f = fopen("p.txt", "wb");
    if (f) fwrite(data + at, 1, n, f), fclose(f);
    return at + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fc_null < 0) LLVMFuzzerInitialize(NULL, NULL);
    if (size && data[0] == 0xFF) {
        size_t used = fc_files(data, size);
        data += used, size -= used;
    } else if (size && data[0] == 0xFE) {
        size_t used = fc_prompt(data, size);
        data += used, size -= used;
    }
    char *buf = malloc(size + 1), *argv[FC_MAX_ARGS + 2];
    int argc = 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    argv[argc++] = "attn";
    for (char *p = buf; p <= buf + size && argc <= FC_MAX_ARGS; p += strlen(p) + 1) {
        for (char *q = p; *q; q++)
            if (*q == '/') *q = '_';
        for (char *q = strstr(p, ".."); q; q = strstr(q, "..")) *q = '_';
        argv[argc++] = p;
    }
    argv[argc] = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) && atol(argv[i + 1]) > 4) argv[i + 1] = "4";
    if (argc > 1 && !strcmp(argv[1], "bench")) {
        free(buf);
        return 0;
    }
    // stdout to /dev/null, stderr to a file we read back
    FILE *errf = tmpfile();
    int out_save = dup(1), err_save = dup(2);
    fflush(stdout), fflush(stderr);
    dup2(fc_null, 1);
    dup2(fileno(errf), 2);
    int rc = attn_main(argc, argv);
    fflush(stdout), fflush(stderr);
    dup2(out_save, 1), dup2(err_save, 2);
    close(out_save), close(err_save);
    clearerr(stdout);
    char msg[4096] = "";
    rewind(errf);
    size_t n = fread(msg, 1, sizeof msg - 1, errf);
    msg[n] = 0;
    fclose(errf);
    fc_assert(rc == 0 || rc == 1 || rc == 2);
    if (rc) {
        // the last line says why, and begins "attn: " (anything before it: warnings, progress)
        char *last = msg + n;
        while (last > msg && last[-1] == '\n') *--last = 0;
        while (last > msg && last[-1] != '\n') last--;
        fc_assert(!strncmp(last, "attn: ", 6) || (n == sizeof msg - 1));
    }
    fc_clean();
    free(buf);
    return 0;
}
