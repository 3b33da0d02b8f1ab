// tests/unit/test_analysis.c - head-type scores on synthetic attention with known
// answers (previous, first, self, offset-3, induction on a repeated sequence,
// uniform), undefined rows excluded, streaming accumulation, corpus
// statistics, the induction test sequence and its loss.
#include "attn.h"
#include "check.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT 10

static float P[NT][NT];
static attn_head_scores H;

static void clear(void) { memset(P, 0, sizeof P); }
// every row i puts all its mass on key f(i)
static void one_hot(int (*f)(int i)) {
    clear();
    for (int i = 0; i < NT; i++) P[i][f(i)] = 1;
}
static int f_prev(int i) { return i ? i - 1 : 0; }
static int f_first(int i) { (void)i; return 0; }
static int f_self(int i) { return i; }
static int f_off3(int i) { return i >= 3 ? i - 3 : 0; }

static int eq(double a, double b) { return a == b; }
static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static const int32_t distinct[NT] = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
static const int32_t repeated[NT] = {5, 6, 7, 8, 9, 5, 6, 7, 8, 9}; // period 5

static void scores(const int32_t *ids) { attn_head_scores_of(&P[0][0], ids, NT, &H); }

// One-hot heads with known scores: previous, first, self, offset -3.
static void test_one_hot_heads(void) {
    // previous-token head: every row i >= 1 on key i-1
    one_hot(f_prev);
    scores(distinct);
    check(eq(H.s[ATTN_S_PREVIOUS], 1), "previous_head", "previous = %g", H.s[ATTN_S_PREVIOUS]);
    check(eq(H.s[ATTN_S_FIRST], 1.0 / (NT - 1)) && eq(H.s[ATTN_S_SELF], 0),
          "previous_head_others", "first %g (want 1/9: only row 1), self %g", H.s[ATTN_S_FIRST], H.s[ATTN_S_SELF]);
    check(eq(H.s[ATTN_S_ENTROPY], 0), "previous_head_entropy", "entropy %g", H.s[ATTN_S_ENTROPY]);
    check(isnan(H.s[ATTN_S_INDUCTION]) && isnan(H.s[ATTN_S_DUPLICATE]), "no_repeat_induction_null",
          "induction %g duplicate %g on distinct tokens (want NaN)", H.s[ATTN_S_INDUCTION], H.s[ATTN_S_DUPLICATE]);

    // first-token head
    one_hot(f_first);
    scores(distinct);
    check(eq(H.s[ATTN_S_FIRST], 1) && eq(H.s[ATTN_S_PREVIOUS], 1.0 / (NT - 1)) && eq(H.s[ATTN_S_SELF], 0),
          "first_head", "first %g previous %g self %g", H.s[ATTN_S_FIRST], H.s[ATTN_S_PREVIOUS], H.s[ATTN_S_SELF]);

    // self head: row 0 (trivially on key 0) is excluded, so first is 0, not 1/NT
    one_hot(f_self);
    scores(distinct);
    check(eq(H.s[ATTN_S_SELF], 1) && eq(H.s[ATTN_S_FIRST], 0) && eq(H.s[ATTN_S_PREVIOUS], 0), "self_head",
          "self %g first %g previous %g", H.s[ATTN_S_SELF], H.s[ATTN_S_FIRST], H.s[ATTN_S_PREVIOUS]);

    // offset -3: best k is 3 with mass 1 over rows i >= 3; rows 0..2 look at key 0,
    // so k = 2 gets only row 2 of rows 2..9 (1/8) and previous only row 1 (1/9)
    one_hot(f_off3);
    scores(distinct);
    check(H.offset_k == 3 && eq(H.s[ATTN_S_OFFSET], 1) && eq(H.offset_mass[2], 1.0 / 8) &&
              eq(H.s[ATTN_S_PREVIOUS], 1.0 / 9),
          "offset3_head", "k %d mass %g (k=2: %g) previous %g", H.offset_k, H.s[ATTN_S_OFFSET], H.offset_mass[2],
          H.s[ATTN_S_PREVIOUS]);
}

// Induction and duplicate-token heads on a sequence repeated twice.
static void test_repeat_heads(void) {
    // induction head on a sequence repeated twice: row i >= 5 looks at the
    // token after the earlier occurrence (key i-4); rows < 5 (undefined) on key 0
    clear();
    for (int i = 0; i < NT; i++) P[i][i >= 5 ? i - 4 : 0] = 1;
    scores(repeated);
    check(eq(H.s[ATTN_S_INDUCTION], 1) && eq(H.s[ATTN_S_DUPLICATE], 0), "induction_head",
          "induction %g duplicate %g", H.s[ATTN_S_INDUCTION], H.s[ATTN_S_DUPLICATE]);
    // a duplicate-token head on the same sequence: key i-5
    clear();
    for (int i = 0; i < NT; i++) P[i][i >= 5 ? i - 5 : 0] = 1;
    scores(repeated);
    check(eq(H.s[ATTN_S_DUPLICATE], 1) && eq(H.s[ATTN_S_INDUCTION], 0) && H.offset_k == 5 &&
              eq(H.s[ATTN_S_OFFSET], 1),
          "duplicate_head", "duplicate %g induction %g offset k %d mass %g", H.s[ATTN_S_DUPLICATE],
          H.s[ATTN_S_INDUCTION], H.offset_k, H.s[ATTN_S_OFFSET]);
}

// Uniform causal attention: the float path, the exact baseline, closed forms.
static void test_uniform(void) {
    // uniform causal attention against closed forms (and the exact baseline)
    clear();
    for (int i = 0; i < NT; i++)
        for (int j = 0; j <= i; j++) P[i][j] = 1.0f / (i + 1);
    scores(repeated);
    attn_head_scores U;
    attn_head_scores_uniform(repeated, NT, &U);
    double prev = 0, ent = 0, ind = 0, dup = 0;
    for (int i = 1; i < NT; i++) prev += 1.0 / (i + 1);
    prev /= NT - 1;
    for (int i = 0; i < NT; i++) ent += log2(i + 1.0);
    ent /= NT;
    // rows 5..9 each have one earlier occurrence (j = i-5) and one induction target (i-4 < i)
    for (int i = 5; i < NT; i++) dup += 1.0 / (i + 1), ind += 1.0 / (i + 1);
    dup /= 5, ind /= 5;
    int ok = 1;
    for (int s = 0; s < ATTN_S_N; s++) ok &= near(H.s[s], U.s[s], 1e-6);
    check(ok && H.offset_k == U.offset_k, "uniform_matches_baseline", "float uniform rows vs exact baseline differ");
    check(eq(U.s[ATTN_S_PREVIOUS], prev) && eq(U.s[ATTN_S_FIRST], prev) && eq(U.s[ATTN_S_SELF], prev) &&
              near(U.s[ATTN_S_ENTROPY], ent, 1e-12) && near(U.s[ATTN_S_DUPLICATE], dup, 1e-15) &&
              near(U.s[ATTN_S_INDUCTION], ind, 1e-15) && U.offset_k == 2,
          "uniform_closed_form", "prev %.17g want %.17g, entropy %.17g want %.17g, dup %g want %g, k %d",
          U.s[ATTN_S_PREVIOUS], prev, U.s[ATTN_S_ENTROPY], ent, U.s[ATTN_S_DUPLICATE], dup, U.offset_k);

    // one position: nothing but entropy (0) is defined
    attn_head_scores_uniform(distinct, 1, &U);
    check(isnan(U.s[ATTN_S_PREVIOUS]) && isnan(U.s[ATTN_S_FIRST]) && isnan(U.s[ATTN_S_SELF]) &&
              isnan(U.s[ATTN_S_OFFSET]) && U.offset_k == 0 && eq(U.s[ATTN_S_ENTROPY], 0),
          "single_token_undefined", "T=1 should leave every score but entropy undefined");
}

// The accumulator: rows streamed as a decode gives them, and row_min.
static int test_streamed(void) {
    // rows fed one at a time (trace) equal the whole matrix; row_min skips a prompt
    clear();
    srand(7);
    for (int i = 0; i < NT; i++) {
        float z = 0;
        for (int j = 0; j <= i; j++) z += P[i][j] = (float)(rand() % 100 + 1);
        for (int j = 0; j <= i; j++) P[i][j] /= z;
    }
    scores(repeated);
    attn_heads_acc *acc;
    if (attn_heads_acc_new(&acc, 1, 2)) return 1;
    acc->ids = repeated;
    attn_heads_acc_on_attn(acc, 0, 1, 0, NT, NT, &P[0][0]); // reset must forget this
    attn_heads_acc_reset(acc);
    // head 1 gets the rows one by one as a decode gives them; head 0 gets none
    for (int i = 0; i < NT; i++) attn_heads_acc_on_attn(acc, 0, 1, i, 1, i + 1, P[i]);
    attn_head_scores hs[2];
    attn_heads_acc_get(acc, hs);
    int ok = isnan(hs[0].s[ATTN_S_PREVIOUS]);
    for (int s = 0; s < ATTN_S_N; s++) ok &= eq(hs[1].s[s], H.s[s]) || (isnan(hs[1].s[s]) && isnan(H.s[s]));
    check(ok, "streamed_rows_equal_matrix", "row-by-row accumulation differs from the whole matrix");
    // row_min = 6: only rows 6..9, fed as one block of all rows
    attn_heads_acc_reset(acc);
    acc->row_min = 6;
    attn_heads_acc_on_attn(acc, 0, 0, 0, NT, NT, &P[0][0]);
    attn_heads_acc_get(acc, hs);
    double want = 0;
    for (int i = 6; i < NT; i++) want += P[i][i - 1];
    want /= 4;
    check(near(hs[0].s[ATTN_S_PREVIOUS], want, 1e-15) && near(hs[0].s[ATTN_S_INDUCTION],
          (P[6][2] + P[7][3] + P[8][4] + P[9][5]) / 4.0, 1e-7),
          "row_min_generated_rows", "previous %g want %g", hs[0].s[ATTN_S_PREVIOUS], want);
    attn_heads_acc_free(acc);
    return 0;
}

// Corpus statistics: mean and sample sd, NaN skipped.
static void test_corpus_stats(void) {
    attn_head_stats st;
    memset(&st, 0, sizeof st);
    double vals[4] = {0.2, 0.4, NAN, 0.9};
    for (int i = 0; i < 4; i++) {
        attn_head_scores x = {.nonfinite = 0};
        for (int s = 0; s < ATTN_S_N; s++) x.s[s] = vals[i];
        for (int k = 0; k <= ATTN_OFFSET_MAX; k++) x.offset_mass[k] = k == 4 ? vals[i] : 0.1;
        attn_head_stats_add(&st, &x);
    }
    attn_head_scores mean, sd;
    long n[ATTN_S_N];
    attn_head_stats_get(&st, &mean, &sd, n);
    double m = 1.5 / 3, v = ((0.2 - m) * (0.2 - m) + (0.4 - m) * (0.4 - m) + (0.9 - m) * (0.9 - m)) / 2;
    check(near(mean.s[ATTN_S_PREVIOUS], m, 1e-15) && near(sd.s[ATTN_S_PREVIOUS], sqrt(v), 1e-15) &&
              n[ATTN_S_PREVIOUS] == 3 && mean.offset_k == 4 && near(mean.s[ATTN_S_OFFSET], m, 1e-15) &&
              n[ATTN_S_OFFSET] == 3,
          "corpus_stats", "mean %g sd %g n %ld k %d", mean.s[ATTN_S_PREVIOUS], sd.s[ATTN_S_PREVIOUS],
          n[ATTN_S_PREVIOUS], mean.offset_k);
    // one prompt whose `self` met non-finite attention: that mean is NaN and
    // marked non-finite (printed "nan"), the other scores are unaffected
    attn_head_scores badp = {.nonfinite = 1u << ATTN_S_SELF};
    for (int s = 0; s < ATTN_S_N; s++) badp.s[s] = s == ATTN_S_SELF ? NAN : 0.5;
    for (int k = 0; k <= ATTN_OFFSET_MAX; k++) badp.offset_mass[k] = k == 4 ? 0.5 : 0.1;
    attn_head_stats_add(&st, &badp);
    attn_head_stats_get(&st, &mean, &sd, n);
    check(isnan(mean.s[ATTN_S_SELF]) && mean.nonfinite == 1u << ATTN_S_SELF && !isnan(mean.s[ATTN_S_PREVIOUS]),
          "corpus_stats_nonfinite", "self %g nonfinite %#x previous %g", mean.s[ATTN_S_SELF], mean.nonfinite,
          mean.s[ATTN_S_PREVIOUS]);
}

// Induction test sequence: BOS, len distinct ids (no BOS/EOS), repeated.
static void test_induction_sequence(void) {
    int32_t seq[1 + 2 * 50], seq2[1 + 2 * 50];
    int ns = attn_induction_ids(seq, 60, 50, 42, 0, 1);
    attn_induction_ids(seq2, 60, 50, 42, 0, 1);
    int ok = ns == 101 && seq[0] == 0 && !memcmp(seq, seq2, sizeof seq);
    for (int i = 1; i <= 50; i++) {
        ok &= seq[i] == seq[i + 50] && seq[i] > 1 && seq[i] < 60;
        for (int j = 1; j < i; j++) ok &= seq[j] != seq[i];
    }
    check(ok, "induction_sequence", "not BOS + 50 distinct ids (2..59) repeated, or not reproducible");
    attn_induction_ids(seq2, 60, 50, 43, 0, 1);
    check(memcmp(seq, seq2, sizeof seq) != 0, "induction_sequence_seed", "seed 43 gave the seed 42 sequence");
    ns = attn_induction_ids(seq2, 4, 10, 1, -1, -1); // more ids than the vocabulary: with repetition
    ok = ns == 20;
    for (int i = 0; i < 10; i++) ok &= seq2[i] == seq2[i + 10] && seq2[i] >= 0 && seq2[i] < 4;
    check(ok, "induction_sequence_small_vocab", "len > vocab should draw with repetition");
}

// Mean next-token loss and top-k.
static void test_loss_top_k(void) {
    // loss: logits (3 positions, V = 2); position t is predicted by row t-1
    float logits[3][2] = {{0, 0}, {log(3.0f), 0}, {0, 0}};
    int32_t ids3[3] = {0, 1, 0};
    double l = attn_mean_nll(&logits[0][0], 2, ids3, 1, 3); // -log(1/2), -log(3/4)
    check(near(l, (log(2.0) + log(4.0 / 3)) / 2, 1e-7), "mean_nll", "loss %.9g", l);

    // top-k: descending, ties keep the smaller index first
    float xs[6] = {0.1f, 0.5f, 0.2f, 0.5f, 0.05f, 0.9f};
    int32_t tid[3];
    float tv[3];
    attn_top_k(xs, 6, 3, tid, tv);
    check(tid[0] == 5 && tid[1] == 1 && tid[2] == 3 && tv[0] == 0.9f && tv[2] == 0.5f, "top_k",
          "got %d %d %d", tid[0], tid[1], tid[2]);
}

// The report: no text of the data can close its <script> blocks.
static void test_report(void) {
    static attn_model fake;
    fake.cfg.n_layer = 1;
    fake.cfg.n_head = 1;
    snprintf(fake.name, sizeof fake.name, "</script><b>m&");
    char *labs[2] = {"</script><script>alert(1)</script>", "b"};
    uint8_t tri[3] = {254, 128, 127};
    attn_head_scores hsc[1];
    attn_head_scores_uniform(repeated, 2, &hsc[0]);
    int32_t rid[2] = {5, 6}, top[2] = {1, 2};
    float topp[2] = {0.5f, 0.25f};
    attn_report rep = {.m = &fake, .T = 2, .ids = rid, .labels = labs, .attn = tri, .scores = hsc,
                       .uniform = &hsc[0], .k = 1, .top_id = top, .top_prob = topp, .top_labels = labs};
    char path[] = "/tmp/test_analysis_report_XXXXXX";
    int fd = mkstemp(path);
    int n_close = -1, title_ok = 0;
    if (fd >= 0 && !attn_report_write(path, &rep)) {
        FILE *fp = fopen(path, "rb");
        static char page[1 << 16];
        size_t len = fp ? fread(page, 1, sizeof page - 1, fp) : 0;
        if (fp) fclose(fp);
        page[len] = 0;
        n_close = 0;
        for (char *q = page; (q = strstr(q, "</script>")); q++) n_close++;
        title_ok = strstr(page, "<title>attn report: &lt;/script>&lt;b>m&amp;</title>") != NULL;
    }
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    check(n_close == 3 && title_ok, "report_script_safe", "%d </script> in the page (want our 3), title escaped %d",
          n_close, title_ok);
}

int main(void) {
    (void)skip;
    test_one_hot_heads();
    test_repeat_heads();
    test_uniform();
    if (test_streamed()) return 1;
    test_corpus_stats();
    test_induction_sequence();
    test_loss_top_k();
    test_report();
    check(attn_score_index("induction") == ATTN_S_INDUCTION && attn_score_index("entropy_bits") == ATTN_S_ENTROPY &&
              attn_score_index("nope") == -1,
          "score_names", "name lookup");
    CHECK_EXIT();
}
