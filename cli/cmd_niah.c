/*
 * cli/cmd_niah.c — `tome niah`: the needle-in-a-haystack grid (model/niah.c)
 * from the command line; prints the grid, writes niah.json, niah.csv and the
 * niah.svg heatmap into the output directory. `--model synthetic` first
 * writes the hand-set retrieval checkpoint (model/synthetic.c) into
 * OUT/retrieval-model and scores by exact match.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tome/niah.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tome niah --model DIR|synthetic [options]\n"
            "  -m, --model DIR|synthetic  model directory, or 'synthetic': build the hand-set\n"
            "                             retrieval model (docs/synthetic-model.md) and use it\n"
            "      --synthetic-shape S    other shapes of the synthetic model, e.g.\n"
            "                             hidden=256,layers=4,heads=8,kv_heads=2,head_dim=128,chunk=32\n"
            "                             (limits: docs/synthetic-model.md)\n"
            "  -t, --tokenizer PATH       tokenizer.model / tokenizer.json / directory\n"
            "                             (default: $TOME_TOKENIZER, then the model directory)\n"
            "      --haystack DIR|FILE    text files to build the haystack from (default: the\n"
            "                             license texts of this Debian system)\n"
            "      --lengths LIST         prompt lengths, e.g. 1K,16K,1M (default 1K,4K,16K,64K)\n"
            "      --min N --max N --steps K   K log-spaced lengths from N to M instead\n"
            "      --depths LIST          needle depths in %% (default 0,25,50,75,100)\n"
            "      --variant V            single | multikey | multiquery | multivalue (default single)\n"
            "      --needles N            needles for multikey / multiquery / multivalue (default 4, max 8)\n"
            "      --scoring S            exact | contains (default: exact for synthetic)\n"
            "      --kv FMT               KV cache format: f32 bf16 fp8 int8 int4 int2 (default f32)\n"
            "      --kv-ram BYTES         RAM budget of sealed KV pages (e.g. 2G); the rest spills\n"
            "      --kv-disk DIR          spill directory of the disk tier\n"
            "      --weights W            native | int8 | int4\n"
            "      --ubatch N             prefill micro-batch (default 512)\n"
            "      --threads N            compute threads (default: all)\n"
            "      --seed S               needle words and distractor depths (default 1)\n"
            "  -o, --out DIR              output directory (default niah-out)\n");
}

static int parse_list_tokens(const char *s, int64_t *out, size_t cap, size_t *n)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == cap || tome_niah_parse_tokens(t, &out[*n]) != 0) return -1;
        (*n)++;
    }
    return *n ? 0 : -1;
}

static int parse_list_pct(const char *s, double *out, size_t cap, size_t *n)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        double v = strtod(t, &end);
        if (*n == cap || end == t || *end || v < 0 || v > 100) return -1;
        out[(*n)++] = v / 100.0;
    }
    return *n ? 0 : -1;
}

static int kv_fmt(const char *s)
{
    static const char *n[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, n[i])) return i;
    return -1;
}

typedef struct prog {
    int tty;
} prog;

static void on_progress(const tome_niah_progress *p, void *ctx)
{
    prog *pr = ctx;
    if (!pr->tty) return;
    char lab[32];
    tome_niah_format_tokens(p->length, lab, sizeof lab);
    double rate = p->seconds > 0 ? (double)p->tokens_done / p->seconds : 0;
    double eta = rate > 0 ? (double)(p->tokens_total - p->tokens_done) / rate : 0;
    fprintf(stderr, "\r\033[Kcell %zu/%zu  %s @ %3.4g%%  prefill %lld/%lld tokens  %.0f tok/s  ETA %.0fs",
            p->cell + 1, p->n_cells, lab, 100 * p->depth, (long long)p->tokens_done, (long long)p->tokens_total,
            rate, eta);
    if (p->tokens_done == p->tokens_total) fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

int tome_cmd_niah(int argc, char **argv)
{
    const char *model = NULL, *tokp = NULL, *hay = NULL, *out = "niah-out", *kv_disk = NULL, *shape = NULL;
    int64_t lengths[64] = {1024, 4096, 16384, 65536};
    size_t n_lengths = 4;
    double depths[64] = {0, 0.25, 0.5, 0.75, 1.0};
    size_t n_depths = 5;
    int64_t lmin = 0, lmax = 0;
    unsigned long long steps = 0, ull;
    tome_niah_opts o = {.seed = 1, .exact = -1};
    enum { O_HAY = 256, O_LEN, O_MIN, O_MAX, O_STEPS, O_DEP, O_VAR, O_NEED, O_SCORE, O_KV, O_KVRAM, O_KVDISK,
           O_W, O_UB, O_THR, O_SEED, O_SHAPE };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},   {"tokenizer", required_argument, 0, 't'},
        {"haystack", required_argument, 0, O_HAY}, {"lengths", required_argument, 0, O_LEN},
        {"min", required_argument, 0, O_MIN},   {"max", required_argument, 0, O_MAX},
        {"steps", required_argument, 0, O_STEPS}, {"depths", required_argument, 0, O_DEP},
        {"variant", required_argument, 0, O_VAR}, {"needles", required_argument, 0, O_NEED},
        {"scoring", required_argument, 0, O_SCORE}, {"kv", required_argument, 0, O_KV},
        {"kv-ram", required_argument, 0, O_KVRAM}, {"kv-disk", required_argument, 0, O_KVDISK},
        {"weights", required_argument, 0, O_W}, {"ubatch", required_argument, 0, O_UB},
        {"threads", required_argument, 0, O_THR}, {"seed", required_argument, 0, O_SEED},
        {"out", required_argument, 0, 'o'},     {"help", no_argument, 0, 'h'},
        {"synthetic-shape", required_argument, 0, O_SHAPE},
        {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:t:o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't': tokp = optarg; break;
        case 'o': out = optarg; break;
        case O_HAY: hay = optarg; break;
        case O_SHAPE: shape = optarg; break;
        case O_LEN:
            if (parse_list_tokens(optarg, lengths, 64, &n_lengths)) return tome_cli_usage_error("niah", "bad --lengths '%s'", optarg);
            break;
        case O_MIN:
            if (tome_niah_parse_tokens(optarg, &lmin)) return tome_cli_usage_error("niah", "bad --min '%s'", optarg);
            break;
        case O_MAX:
            if (tome_niah_parse_tokens(optarg, &lmax)) return tome_cli_usage_error("niah", "bad --max '%s'", optarg);
            break;
        case O_STEPS:
            if (tome_cli_parse_u64(optarg, 0, &steps) || steps < 1 || steps > 64)
                return tome_cli_usage_error("niah", "bad --steps '%s' (1..64)", optarg);
            break;
        case O_DEP:
            if (parse_list_pct(optarg, depths, 64, &n_depths)) return tome_cli_usage_error("niah", "bad --depths '%s'", optarg);
            break;
        case O_VAR:
            if (!strcmp(optarg, "single")) o.variant = TOME_NIAH_SINGLE;
            else if (!strcmp(optarg, "multikey")) o.variant = TOME_NIAH_MULTIKEY;
            else if (!strcmp(optarg, "multiquery")) o.variant = TOME_NIAH_MULTIQUERY;
            else if (!strcmp(optarg, "multivalue")) o.variant = TOME_NIAH_MULTIVALUE;
            else return tome_cli_usage_error("niah", "unknown --variant '%s'", optarg);
            break;
        case O_NEED:
            if (tome_cli_parse_u64(optarg, 0, &ull) || ull < 1 || ull > 8)
                return tome_cli_usage_error("niah", "bad --needles '%s' (1..8)", optarg);
            o.n_needles = (int)ull;
            break;
        case O_SCORE:
            if (!strcmp(optarg, "exact")) o.exact = 1;
            else if (!strcmp(optarg, "contains")) o.exact = 0;
            else return tome_cli_usage_error("niah", "unknown --scoring '%s'", optarg);
            break;
        case O_KV:
            if ((o.kv_fmt = kv_fmt(optarg)) < 0) return tome_cli_usage_error("niah", "unknown --kv '%s'", optarg);
            break;
        case O_KVRAM:
            if (tome_cli_parse_u64(optarg, 1, &ull)) return tome_cli_usage_error("niah", "bad --kv-ram '%s'", optarg);
            o.kv_ram_budget = ull;
            break;
        case O_KVDISK: kv_disk = optarg; break;
        case O_W:
            if (!strcmp(optarg, "native") || !strcmp(optarg, "bf16")) o.weights = 0;
            else if (!strcmp(optarg, "int8")) o.weights = 1;
            else if (!strcmp(optarg, "int4")) o.weights = 2;
            else return tome_cli_usage_error("niah", "unknown --weights '%s'", optarg);
            break;
        case O_UB:
            if (tome_cli_parse_u64(optarg, 0, &ull) || ull < 1 || ull > 65536)
                return tome_cli_usage_error("niah", "bad --ubatch '%s'", optarg);
            o.ubatch = (int)ull;
            break;
        case O_THR:
            if (tome_cli_parse_u64(optarg, 0, &ull) || ull > 1024) return tome_cli_usage_error("niah", "bad --threads '%s'", optarg);
            o.n_threads = (int)ull;
            break;
        case O_SEED:
            if (tome_cli_parse_u64(optarg, 0, &ull)) return tome_cli_usage_error("niah", "bad --seed '%s'", optarg);
            o.seed = ull;
            break;
        case 'h': usage(stdout); return TOME_EXIT_OK;
        default: usage(stderr); return TOME_EXIT_USAGE;
        }
    }
    if (optind != argc) return tome_cli_usage_error("niah", "unexpected argument '%s'", argv[optind]);
    if (!model) return tome_cli_usage_error("niah", "--model DIR|synthetic is required");
    tome_synthetic_shape sh;
    if (shape && strcmp(model, "synthetic"))
        return tome_cli_usage_error("niah", "--synthetic-shape goes with --model synthetic");
    if (tome_synthetic_shape_parse(shape, &sh) != TOME_OK) return tome_cli_usage_error("niah", "%s", tome_last_error());
    if (lmin || lmax || steps) {
        if (!lmin || !lmax || lmax < lmin) return tome_cli_usage_error("niah", "--min and --max (>= min) go together");
        if (!steps) steps = 5;
        n_lengths = (size_t)steps;
        for (size_t i = 0; i < n_lengths; i++) {
            double f = n_lengths == 1 ? 0 : (double)i / (double)(n_lengths - 1);
            double v = (double)lmin * pow((double)lmax / (double)lmin, f);
            lengths[i] = (int64_t)(v + 0.5);
        }
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "tome niah: cannot create %s: %s\n", out, strerror(errno));
        return TOME_EXIT_IO;
    }
    char mdir[4096], path[4096];
    int synthetic = !strcmp(model, "synthetic");
    if (synthetic) {
        snprintf(mdir, sizeof mdir, "%s/retrieval-model", out);
        tome_status st = tome_synthetic_write_shape(mdir, &sh);
        if (st != TOME_OK) return tome_cli_fail(st);
    } else {
        snprintf(mdir, sizeof mdir, "%s", model);
    }
    if (o.exact < 0) o.exact = synthetic;
    if (!tokp || !*tokp) tokp = getenv("TOME_TOKENIZER");
    if (!tokp || !*tokp) tokp = synthetic ? NULL : mdir;
    if (!tokp) return tome_cli_usage_error("niah", "--model synthetic needs a tokenizer: -t PATH or $TOME_TOKENIZER");
    tome_tokenizer_t *tok = NULL;
    tome_status st = tome_tokenizer_open(tokp, &tok);
    if (st != TOME_OK) return tome_cli_fail(st);
    prog pr = {.tty = isatty(2)};
    o.model_dir = mdir, o.tok = tok, o.haystack_dir = hay, o.lengths = lengths, o.n_lengths = n_lengths;
    o.depths = depths, o.n_depths = n_depths, o.kv_disk_dir = kv_disk, o.progress = on_progress;
    o.progress_ctx = &pr;
    tome_niah_result *r = NULL;
    st = tome_niah_run(&o, &r);
    tome_tokenizer_free(tok);
    if (st != TOME_OK) return tome_cli_fail(st);
    /* the grid */
    printf("needle in a haystack: %s, KV %s, %s match, model %s\n", r->variant, r->kv, r->scoring, r->model);
    printf("%10s", "length");
    for (size_t j = 0; j < r->n_depths; j++) printf(" %6.4g%%", 100 * r->depths[j]);
    printf("   prefill s\n");
    double sum = 0;
    for (size_t i = 0; i < r->n_lengths; i++) {
        char lab[32];
        tome_niah_format_tokens(r->lengths[i], lab, sizeof lab);
        printf("%10s", lab);
        double ps = 0;
        for (size_t j = 0; j < r->n_depths; j++) {
            const tome_niah_cell *cc = &r->cells[i * r->n_depths + j];
            printf(" %7.2f", cc->score);
            sum += cc->score;
            ps += cc->prefill_s;
        }
        printf("   %8.2f\n", ps);
    }
    printf("mean score %.3f over %zu cells, %.1f s, peak RSS %.0f MB\n", sum / (double)(r->n_lengths * r->n_depths),
           r->n_lengths * r->n_depths, r->seconds, (double)r->peak_rss / 1048576.0);
    snprintf(path, sizeof path, "%s/niah.json", out);
    if (st == TOME_OK) st = tome_niah_write_json(r, path);
    snprintf(path, sizeof path, "%s/niah.csv", out);
    if (st == TOME_OK) st = tome_niah_write_csv(r, path);
    snprintf(path, sizeof path, "%s/niah.svg", out);
    if (st == TOME_OK) st = tome_niah_write_svg(r, path);
    if (st == TOME_OK) printf("wrote %s/niah.json, %s/niah.csv, %s/niah.svg\n", out, out, out);
    tome_niah_result_free(r);
    return st == TOME_OK ? TOME_EXIT_OK : tome_cli_fail(st);
}
