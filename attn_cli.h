// attn_cli.h - helpers shared by the CLI commands (attn_cli.c; used by
// attn.c and attn_cmd_*.c). Not part of the library API: commands may print
// and choose exit codes.
//
// A command is a descriptor run by cli_run_command, in attn_cmd_NAME.c:
// a struct of options, a struct of results and three functions.
//
//   typedef struct { cli_opts o; const char *fmt; long k; int full; } NAME_opts; // cli_opts first
//   typedef struct { attn_model *m; ... } NAME_result;                  // what compute found
//
//   static int NAME_opt(void *p, const char *a, int argc, char **argv, int *i) {
//       NAME_opts *no = p;                   // one of its own options (not a common one)
//       if (!strcmp(a, "-k")) return cli_opt_int(argc, argv, i, 1, 100, &no->k);
//       if (!strcmp(a, "--full")) return no->full = 1;
//       return 0;                            // not its option: refused by the loop
//   }
//   static int NAME_parse(int argc, char **argv, NAME_opts *no) {      // no is all zero
//       no->k = 5;                           // defaults
//       if (cli_parse_opts(&no->o, argc, argv, NAME_opt, no)) return CLI_PRINTED;
//       return no->o.help ? 0 : cli_format(&no->o, "table,tsv,json", &no->fmt);
//   }
//   static int NAME_compute(const NAME_opts *no, NAME_result *r);   // library calls, no printing
//   static void NAME_row(const NAME_result *r, const char *fmt, int i); // one row, any format
//   static int print_NAME(const NAME_result *r, const NAME_opts *no);  // header, rows, footer
//   static void NAME_result_free(NAME_result *r);                  // also of a partial result
//   CLI_COMMAND(NAME, NAME, "one line for attn --help", NAME_HELP);
//
// and `&cli_NAME` in the command table of attn.c (declared below). The
// driver: parse; on -h the help text; else compute, print (a compute that
// streams returns CLI_MORE for each part to print), free, and the exit
// status through cli_exit (0 ok, 2 bad input, 1 anything else).
#ifndef ATTN_CLI_H
#define ATTN_CLI_H

#include "attn.h"
#include <stdio.h>
#include <sys/types.h>

#define CLI_MAX_MODELS 16

// The commands, one file each: attn_cmd_<name>.c (attn.c holds the table).
typedef struct {
    const char *name, *what, *help; // for `attn --help`; the command's -h text
    size_t opts_size, result_size;  // NAME_opts (cli_opts its first member), NAME_result
    int (*parse)(int argc, char **argv, void *opts);
    int (*compute)(void *opts, void *result);
    int (*print)(void *result, void *opts);
    void (*free)(void *result);
} cli_command;
// Run a command on argv (argv[0] its name); returns the exit status.
int cli_run_command(const cli_command *c, int argc, char **argv);
// The descriptor cli_NAME of a command whose functions are P_parse,
// P_compute, print_NAME and P_result_free on P_opts and P_result.
#define CLI_COMMAND(NAME, P, WHAT, HELP)                                                                  \
    static int P##_parse_v(int argc, char **argv, void *o) { return P##_parse(argc, argv, o); }          \
    static int P##_compute_v(void *o, void *r) { return P##_compute(o, r); }                             \
    static int P##_print_v(void *r, void *o) { return print_##NAME(r, o); }                              \
    static void P##_free_v(void *r) { P##_result_free(r); }                                              \
    const cli_command cli_##NAME = { #NAME, WHAT, HELP, sizeof(P##_opts), sizeof(P##_result), P##_parse_v, \
                                     P##_compute_v, P##_print_v, P##_free_v }
extern const cli_command cli_info, cli_tokenize, cli_run, cli_maps, cli_trace, cli_heads, cli_compare,
    cli_explain, cli_report, cli_bench, cli_ablate, cli_patch, cli_attribute;

// Memory for captured attention: floats on the heap while the command's total
// stays within max_mem bytes (--max-mem MB), beyond that in scratch files in
// dir (the -o directory, else $TMPDIR or /tmp) that the kernel pages to disk.
#define CLI_MAX_MEM_MB 1024
#define CLI_MAX_MEM_HELP                                                                        \
    "  --max-mem MB       keep captured attention (4 bytes a cell) in memory up to MB\n"       \
    "                     megabytes (10^6 bytes) in all, default 1024; beyond that in\n"       \
    "                     a scratch file on disk in DIR (no -o: $TMPDIR or /tmp),\n"           \
    "                     deleted as soon as it is made\n"
typedef struct {
    const char *cmd; // for messages: "attn: <cmd>: ..."
    const char *dir; // where scratch files go
    double max_mem, used;
} cli_mem;
typedef struct {
    const char *models[CLI_MAX_MODELS]; // -m FILE, repeatable; none = the built-in model
    int n_models;
    const char *prompt;      // -p TEXT
    const char *prompt_file; // -f FILE ("-" = stdin)
    const char *ids;         // --ids 1,2,3 (raw ids, no BOS added)
    int no_bos;              // --no-bos
    int no_special;          // --no-special: special-token text stays plain text
    int threads;             // -t N (0 = online cores)
    int exact;               // --exact: matmuls and scores summed in double (attn_simd_exact)
    const char *out_dir;     // -o DIR
    const char *format;      // --format table|tsv|json (NULL = table)
    int help;                // -h/--help seen
    cli_mem mem;             // --max-mem MB: taken only after cli_mem_init(&o.mem, "<command>")
    int select;              // set before parsing: the command takes --layers/--heads
    const char *layers, *heads; // --layers LIST, --heads LIST (NULL: all)
} cli_opts;

void cli_opts_init(cli_opts *o);
// Consume a common option at argv[*i] (advancing *i past its value).
// Returns 1 if consumed, 0 if not a common option, -1 on error (printed).
int cli_common_opt(cli_opts *o, int argc, char **argv, int *i);
// A command's own option at argv[*i] (a, advancing *i past its value):
// 1 taken, 0 not one of its options, CLI_PRINTED on a bad value (printed).
typedef int (*cli_own_opt)(void *opts, const char *a, int argc, char **argv, int *i);
// The option loop of every parser: argv[1..] through cli_common_opt, the rest
// through own (NULL: none) with opts; an unknown option is refused naming
// the command argv[0]. Returns 0 or CLI_PRINTED.
int cli_parse_opts(cli_opts *o, int argc, char **argv, cli_own_opt own, void *opts);
// The value of option argv[*i] into *out: 1, or CLI_PRINTED when missing.
int cli_opt_str(int argc, char **argv, int *i, const char **out);
// The same for an integer in [lo, hi].
int cli_opt_int(int argc, char **argv, int *i, long lo, long hi, long *out);
// "--opt=value" -> "--opt" "value"; an option given twice (other than -m) is
// refused with a message. Done once for every command, before its own parsing.
int cli_split_args(int argc, char **argv, char ***out);
// Print "attn: <command>: unknown option '<opt>' (see attn <command> --help)", return 2.
int cli_bad_opt(const char *cmd, const char *opt);
// Terminal columns a UTF-8 string takes (wide CJK/Hangul 2, combining 0).
int cli_display_width(const char *s);
// Print s left-aligned in w terminal columns (display width, not bytes).
void cli_print_padded(const char *s, int w);
// A display label in double quotes, a '"' inside escaped as \" (truncated to n).
void cli_quote(char *out, size_t n, const char *label);
// Print "attn: <message>" on stderr as one line: control characters in the
// message (a newline in a file name or option the user typed) are escaped.
// Use it for every error line that holds user input.
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
// The same shape for a line that is not an error ("attn: wrote to DIR").
void cli_note(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
// `, "key": <number>` on stdout, the number through attn_json_numf (null
// when not finite): a field after the first of a JSON object.
void cli_json_num(const char *key, const char *fmt, double v);
// `{"model": "<name>"` on stdout: the start of a command's JSON object.
void cli_json_open_model(const char *name);
// `{"id": ID, "text": "...", "prob": P, "logit": L}` (", " before it unless
// first): one next-token candidate (run, trace).
void cli_json_candidate(int first, int id, const char *text, double prob, double logit);
// The one error exit of every command: the process exit status of rc.
// 0 -> 0; CLI_PRINTED (a parser helper -- cli_val, cli_int, cli_index_list,
// cli_common_opt... -- printed its message; bad input) -> 2; ATTN_EINPUT ->
// "attn: <attn_errmsg()>", 2; anything else (ATTN_EFAIL) -> the message, 1.
#define CLI_PRINTED (-1)
int cli_exit(int rc);
// A streaming compute's "a part is ready: print it, then compute the next"
// (tokenize --ids-only: one line at a time).
#define CLI_MORE 3
// Parse an int option value; prints an error and returns -1 if not an integer in [lo,hi].
int cli_int(const char *opt, const char *val, long lo, long hi, long *out);
// Value of option argv[*i] (advancing *i); prints an error and returns NULL if missing.
const char *cli_val(int argc, char **argv, int *i);

// Load model number k of o->models (the built-in model when none was given).
int cli_load_model(const cli_opts *o, int k, attn_model **out);
// The prompt's ids from -p / -f / --ids: BOS added as the model does unless
// --no-bos or --ids; checks ids < n_vocab and length <= n_ctx (ATTN_EINPUT).
int cli_prompt_ids(const cli_opts *o, const attn_model *m, int32_t **ids, int *n);
// Inputs are read with a size limit, so an endless one (/dev/zero, a FIFO
// that never ends) stops with an error in bounded memory: a prompt file or a
// tokens.json at most CLI_TEXT_MAX bytes, a line of a corpus at most
// CLI_LINE_MAX. No model's context holds a prompt anywhere near either.
#define CLI_TEXT_MAX ((size_t)64 << 20)
#define CLI_LINE_MAX ((size_t)16 << 20)
// Whole file (or stdin for "-") into a malloc'ed NUL-terminated buffer; more
// than max bytes is ATTN_EINPUT.
int cli_read_input(const char *path, size_t max, char **buf, size_t *len);
// One line of fp (its newline kept) into *line (grown as getline does):
// returns its length, -1 at the end, -2 (message set) for a line longer than
// max bytes or out of memory.
ssize_t cli_getline(char **line, size_t *cap, FILE *fp, size_t max);
// --each-line: the -f FILE ("-" = stdin) one non-empty line at a time, each
// a prompt. Errors name "FILE line N". Shared by heads, ablate, run --loss.
typedef struct {
    const cli_opts *o;
    const attn_model *m;
    FILE *fp;
    char *line;
    size_t cap;
    long lineno;  // lines read so far
    long n_empty; // empty lines skipped
    long total;   // lines in all when counted (a regular file and count_total), else 0
} cli_lines;
int cli_lines_open(cli_lines *it, const cli_opts *o, const attn_model *m, int count_total);
// The next non-empty line's ids (malloc'ed, BOS as the model adds it) into
// *ids, *T; *ids = NULL at the end. An error (a bad line) names the line.
int cli_lines_next(cli_lines *it, int32_t **ids, int *T);
// rc of the caller's work on the current line, its message now naming the line.
int cli_lines_fail(cli_lines *it, int rc);
// Close; returns rc, or a read error of the file when rc is 0.
int cli_lines_close(cli_lines *it, int rc);
// Model 0 and a thread pool sized by -t; with ids (not NULL) the prompt's
// ids (cli_prompt_ids), with labels (not NULL) their display labels too.
int cli_setup(const cli_opts *o, attn_model **m, attn_pool **pool, int32_t **ids, int *T, char ***labels);
// A thread pool sized by -t.
int cli_pool(const cli_opts *o, attn_pool **out);
// Create o->out_dir (and parents) if missing; error if no -o was given and required.
int cli_out_dir(const cli_opts *o, const char *dflt, char *dir, size_t n);
// The --format value, checked against the allowed list "table,tsv,json".
int cli_format(const cli_opts *o, const char *allowed, const char **fmt);

// Progress on stderr for slow work: prints only if stderr is a terminal or
// ATTN_PROGRESS=1, and only after the first second.
void cli_progress(const char *what, long done, long total);

// ---- picture commands (attn_cmd_maps.c; used by maps, compare, trace)
// "all" or a list like 0,3,5-7,last into mask[0..n); -1 (message printed) if bad.
int cli_index_list(const char *opt, const char *val, int n, uint8_t *mask);
// --layers / --heads (all when not given) into lmask[0..L), hmask[0..H);
// CLI_PRINTED (message printed) if a list is bad.
int cli_select(const cli_opts *o, int L, int H, uint8_t *lmask, uint8_t *hmask);
// One layer/head index: a number or "last" (n - 1); *end == p when neither.
long cli_index(const char *p, int n, char **end);
// --scale fixed|row|log; -1 (message printed) if bad.
int cli_scale(const char *val, attn_scale *out);
typedef struct {
    float *p;
    attn_scratch disk; // disk.p set: p lives in a scratch file
} cli_buf;
// The default budget, for a command that takes --max-mem (see cli_opts.mem).
void cli_mem_init(cli_mem *mem, const char *cmd);
// n floats, all 0, for `what` (said in the messages); prints where they go when large.
int cli_buf_new(cli_mem *mem, cli_buf *b, size_t n, const char *what);
void cli_buf_free(cli_buf *b);

// Attention of the chosen layers and heads from one forward pass of ids:
// buf.p is (n_sel, T, T), panel k is layer sel[k] / n_head, head sel[k] % n_head.
typedef struct { int T, n_head, n_sel; int *sel; cli_buf buf; } cli_attn;
int cli_attn_capture(const attn_model *m, attn_pool *pool, const int32_t *ids, int T, const uint8_t *layers,
                     const uint8_t *heads, cli_mem *mem, cli_attn *out);
// The same, and logits (T, V) of every position when not NULL.
int cli_attn_capture_logits(const attn_model *m, attn_pool *pool, const int32_t *ids, int T,
                            const uint8_t *layers, const uint8_t *heads, cli_mem *mem, cli_attn *out, float *logits);
void cli_attn_free(cli_attn *a);
// DIR/STEM.png and/or DIR/STEM.svg of a figure, each written atomically.
int cli_write_figure(const attn_figure *f, const char *dir, const char *stem, int png, int svg);
// One figure per item k < n, made and written on the pool's threads (a
// picture's deflate and its file are most of a many-picture command's time):
// fill(ctx, k, it) sets up item k's figure in *it (f, and the buffers it
// may point into) and returns 1 to write it as DIR/it->stem, 0 to skip it.
// Progress on stderr as `what`; *n_files counts the figures written. The
// first error is returned, with its message, after the items running then.
typedef struct {
    attn_figure f;
    attn_panel panels[8];
    char title[320], note[320], stem[64];
} cli_figure_item;
int cli_write_figures(attn_pool *pool, const char *what, int n, int (*fill)(void *ctx, int k, cli_figure_item *it),
                      void *ctx, const char *dir, int png, int svg, int *n_files);

// ---- causal commands (attn_cmd_ablate.c)
// "L.H,L.H,..." into out[k] = layer * n_head + head (malloc'ed, *n of them).
int cli_head_pairs(const char *opt, const char *val, const attn_model *m, int **out, int *n);
// A token: "#ID", or text that is exactly one token (no BOS).
int cli_token(const attn_model *m, const char *opt, const char *val, int32_t *id);

// ---- run --export resid,z,mlp and run --loss (attn_cmd_run_causal.c)
// Activations of one forward of T positions for the selected layers/heads
// (NULL: all): feed with on_act = cli_acts_on_act, on_resid =
// cli_acts_on_resid, then cli_acts_write(DIR) writes resid_pre.npy, z.npy,
// mlp_out.npy of those wanted (their names appended to names).
typedef struct cli_acts cli_acts;
int cli_acts_new(cli_acts **out, const attn_model *m, int T, const uint8_t *layers, const uint8_t *heads, int resid,
                 int z, int mlp);
void cli_acts_free(cli_acts *a);
void cli_acts_on_act(void *ctx, int kind, int layer, int q0, int nq, float *x);
void cli_acts_on_resid(void *ctx, int layer, int q0, int nq, const float *x);
int cli_acts_write(const cli_acts *a, const char *dir, char *names, size_t n);
// `attn run --loss`: each token's next-token loss of one prompt, or with
// each_line (-f FILE --each-line) the mean over a corpus. run's parser calls
// cli_loss_check, its compute cli_loss_compute, its printer print_cli_loss.
typedef struct {
    attn_model *m;
    attn_pool *pool;
    attn_session *s;          // regrown for longer prompts
    int max_t, each_line;
    float *logits;            // (max_t, V)
    double *nll;              // (max_t) loss of each predicted token, nats
    int32_t *ids;             // one prompt: its ids and labels
    char **labels;
    int T;
    long n_lines, n_pred;     // a corpus: lines and predicted tokens
    double mean;              // mean loss, nats/token
} cli_loss;
int cli_loss_check(const cli_opts *o, int each_line, const char **fmt);
int cli_loss_compute(const cli_opts *o, int each_line, cli_loss *r);
void print_cli_loss(const cli_loss *r, const char *fmt);
void cli_loss_free(cli_loss *r);

#endif
