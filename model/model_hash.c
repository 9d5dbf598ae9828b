/*
 * model/model_hash.c — tome_model_hash: the identity of an opened model, the
 * key that ties a KV snapshot (kvcache/kv_snapshot.c) to the weights that
 * produced it.
 *
 * XXH3-128 over: config.json's bytes; the weight format chosen at open
 * (native / int8 / int4: they give different K/V); for dummy weights the
 * seed; for every *.safetensors file of the directory in name order, its
 * name, size and content — whole when up to 64 MiB, else its header plus
 * eight 1-MiB samples spread over the file (hashing hundreds of GB at every
 * prefill would cost minutes; a snapshot must still not be taken for another
 * checkpoint, and any two different checkpoints differ in the sampled bytes
 * or the headers with overwhelming likelihood). Written by the KV cache
 * engineer (issue 5) because model/ had no identity yet.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "core/core_impl.h"
#include "core/error_impl.h"
#include "model/model_impl.h"
#include "tome/model.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static tome_status hash_file(XXH3_state_t *x, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tome_mmap m = {0};
    TOME_FORWARD(tome_mmap_open(path, &m));
    uint64_t len = m.len;
    XXH3_128bits_update(x, name, strlen(name) + 1);
    XXH3_128bits_update(x, &len, sizeof len);
    const uint64_t whole = 64ull << 20, sample = 1ull << 20;
    if (len <= whole) {
        if (len) XXH3_128bits_update(x, m.data, m.len);
    } else {
        uint64_t hdr = 0;
        memcpy(&hdr, m.data, 8);
        if (hdr > len - 8) hdr = len - 8;
        XXH3_128bits_update(x, m.data, (size_t)(8 + hdr));
        for (int i = 0; i < 8; i++) {
            uint64_t off = (len - sample) / 7 * (uint64_t)i;
            XXH3_128bits_update(x, m.data + off, (size_t)sample);
        }
    }
    tome_mmap_close(&m);
    return TOME_OK;
}

tome_status tome_model_hash(const tome_model_t *m, char out[33])
{
    out[0] = 0;
    XXH3_state_t *x = XXH3_createState();
    if (!x) return tome_set_error(TOME_ERR_NOMEM, "model hash: out of memory");
    XXH3_128bits_reset(x);
    tome_status st = TOME_OK;
    uint32_t wf = (uint32_t)m->opts.weights, dummy = (uint32_t)m->opts.load_dummy;
    XXH3_128bits_update(x, "tome-model-1", 12);
    XXH3_128bits_update(x, &wf, 4);
    XXH3_128bits_update(x, &dummy, 4);
    if (dummy) XXH3_128bits_update(x, &m->opts.dummy_seed, 8);
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (m->dir) {
        st = hash_file(x, m->dir, "config.json");
        DIR *d = st == TOME_OK && !dummy ? opendir(m->dir) : NULL;
        for (struct dirent *e; d && st == TOME_OK && (e = readdir(d));) {
            size_t L = strlen(e->d_name);
            if (L < 12 || strcmp(e->d_name + L - 12, ".safetensors") != 0) continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **nn = realloc(names, cap * sizeof *nn);
                if (!nn) {
                    st = tome_set_error(TOME_ERR_NOMEM, "model hash: out of memory");
                    break;
                }
                names = nn;
            }
            if (!(names[n] = strdup(e->d_name))) st = tome_set_error(TOME_ERR_NOMEM, "model hash: out of memory");
            else n++;
        }
        if (d) closedir(d);
        if (st == TOME_OK && n > 1) qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n && st == TOME_OK; i++) st = hash_file(x, m->dir, names[i]);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (st == TOME_OK) {
        XXH128_hash_t h = XXH3_128bits_digest(x);
        snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    }
    XXH3_freeState(x);
    return st == TOME_OK ? st : tome_error_prefix(st, "model hash");
}
