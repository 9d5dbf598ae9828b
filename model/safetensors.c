/*
 * model/safetensors.c — reading and writing safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [b, e]}, ...,
 *  "__metadata__": {...}}, then the data area; offsets are relative to the
 * data area (8 + N). Files are memory-mapped read-only and tensors point into
 * the map; nothing is copied. A set (tome_st_set) is one file or the shards
 * named by model.safetensors.index.json; its tensors are sorted by name for
 * binary search.
 *
 * Validation (each error names the file, the tensor and the offset): header
 * length past the end of the file, bad JSON, unknown dtype, a size that does
 * not match dtype × shape, offsets out of range (a truncated shard) or
 * overlapping, a tensor named twice, an index that names a missing shard or a
 * tensor its shard lacks.
 */
#include "model/model_impl.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *tome_dtype_name(tome_dtype dt)
{
    switch (dt) {
    case TOME_DT_F32: return "F32";
    case TOME_DT_F16: return "F16";
    case TOME_DT_BF16: return "BF16";
    case TOME_DT_Q8: return "Q8";
    case TOME_DT_Q4: return "Q4";
    }
    return "?";
}

size_t tome_dtype_size(tome_dtype dt)
{
    switch (dt) {
    case TOME_DT_F32: return 4;
    case TOME_DT_F16:
    case TOME_DT_BF16: return 2;
    default: return 0;
    }
}

static int dtype_from_name(const char *s, tome_dtype *out)
{
    if (!strcmp(s, "F32")) *out = TOME_DT_F32;
    else if (!strcmp(s, "F16")) *out = TOME_DT_F16;
    else if (!strcmp(s, "BF16")) *out = TOME_DT_BF16;
    else return -1;
    return 0;
}

void tome_st_close(tome_st_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) {
        tome_mmap_close(&s->maps[i]);
        free(s->paths[i]);
    }
    for (size_t i = 0; i < s->n; i++) free(s->t[i].name);
    free(s->maps);
    free(s->paths);
    free(s->t);
    memset(s, 0, sizeof *s);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const tome_st_tensor *)a)->name, ((const tome_st_tensor *)b)->name);
}

const tome_st_tensor *tome_st_find(const tome_st_set *s, const char *name)
{
    tome_st_tensor key = {.name = (char *)name};
    return s->n ? bsearch(&key, s->t, s->n, sizeof key, cmp_tensor_name) : NULL;
}

typedef struct span {
    uint64_t b, e;
    const char *name;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b ? 1 : (x->e < y->e ? -1 : x->e > y->e);
}

tome_status tome_st_parse_file(tome_st_set *set, int fi)
{
    const char *path = set->paths[fi];
    const tome_mmap *m = &set->maps[fi];
    if (m->len < 8)
        return tome_set_error(TOME_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors header", path, m->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | m->data[i];
    if (hlen > m->len - 8)
        return tome_set_error(TOME_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                              path, (unsigned long long)hlen, m->len);
    if (hlen > (100u << 20))
        return tome_set_error(TOME_ERR_LIMIT, "%s: header length %llu is over 100 MiB", path,
                              (unsigned long long)hlen);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)m->data + 8, (size_t)hlen, 0, &jerr);
    if (!root)
        return tome_set_error(TOME_ERR_FORMAT, "%s: header is not valid JSON (byte %d): %s", path, 8 + jerr.position,
                              jerr.text);
    tome_status st = TOME_OK;
    span *spans = NULL;
    size_t n_spans = 0;
    if (!json_is_object(root)) {
        st = tome_set_error(TOME_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    const uint64_t data_off = 8 + hlen, data_len = m->len - data_off;
    size_t n_new = json_object_size(root);
    tome_st_tensor *nt = realloc(set->t, (set->n + n_new + 1) * sizeof *nt);
    spans = malloc((n_new + 1) * sizeof *spans);
    if (!nt || !spans) {
        if (nt) set->t = nt;
        st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for %zu tensors", path, n_new);
        goto done;
    }
    set->t = nt;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
               *jo = json_object_get(val, "data_offsets");
        if (!json_is_object(val) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
            json_array_size(jo) != 2) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: tensor '%s': entry needs dtype, shape and data_offsets[2]", path,
                                key);
            goto done;
        }
        tome_st_tensor t = {0};
        if (dtype_from_name(json_string_value(jd), &t.dtype) != 0) {
            st = tome_set_error(TOME_ERR_UNSUPPORTED, "%s: tensor '%s': dtype '%s' is not supported (F32, F16, BF16)",
                                path, key, json_string_value(jd));
            goto done;
        }
        if (json_array_size(js) > 4) {
            st = tome_set_error(TOME_ERR_UNSUPPORTED, "%s: tensor '%s': %zu dimensions (at most 4)", path, key,
                                json_array_size(js));
            goto done;
        }
        t.ndim = (int)json_array_size(js);
        uint64_t numel = 1;
        for (int d = 0; d < t.ndim; d++) {
            json_t *x = json_array_get(js, (size_t)d);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > ((json_int_t)1 << 40)) {
                st = tome_set_error(TOME_ERR_FORMAT, "%s: tensor '%s': bad shape[%d]", path, key, d);
                goto done;
            }
            t.shape[d] = json_integer_value(x);
            /* checked before multiplying: [2^40, 2^40] must not wrap around to a small count */
            if (t.shape[d] && numel > ((uint64_t)1 << 44) / (uint64_t)t.shape[d]) {
                st = tome_set_error(TOME_ERR_FORMAT, "%s: tensor '%s': shape too large", path, key);
                goto done;
            }
            numel *= (uint64_t)t.shape[d];
        }
        json_t *b = json_array_get(jo, 0), *e = json_array_get(jo, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b)) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: tensor '%s': bad data_offsets", path, key);
            goto done;
        }
        uint64_t ob = (uint64_t)json_integer_value(b), oe = (uint64_t)json_integer_value(e);
        if (oe - ob != numel * tome_dtype_size(t.dtype)) {
            st = tome_set_error(TOME_ERR_FORMAT,
                                "%s: tensor '%s': data_offsets [%llu, %llu) hold %llu bytes, dtype and shape need %llu",
                                path, key, (unsigned long long)ob, (unsigned long long)oe,
                                (unsigned long long)(oe - ob), (unsigned long long)(numel * tome_dtype_size(t.dtype)));
            goto done;
        }
        if (oe > data_len) {
            st = tome_set_error(TOME_ERR_FORMAT,
                                "%s: tensor '%s' ends at byte %llu past the end of the file (%zu bytes): truncated?",
                                path, key, (unsigned long long)(data_off + oe), m->len);
            goto done;
        }
        t.name = strdup(key);
        if (!t.name) {
            st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        t.data = m->data + data_off + ob;
        t.nbytes = oe - ob;
        t.file = fi;
        spans[n_spans++] = (span){ob, oe, t.name};
        set->t[set->n++] = t;
    }
    qsort(spans, n_spans, sizeof *spans, cmp_span);
    /* compared with the furthest end so far, not just the previous span: an empty tensor in between
     * (b == e) must not hide an overlap */
    const span *far = NULL;
    for (size_t i = 0; i < n_spans; i++) {
        if (spans[i].e == spans[i].b) continue;
        if (far && spans[i].b < far->e) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap at data offset %llu", path,
                                far->name, spans[i].name, (unsigned long long)spans[i].b);
            goto done;
        }
        if (!far || spans[i].e > far->e) far = &spans[i];
    }
done:
    free(spans);
    json_decref(root);
    return st;
}

static tome_status add_file(tome_st_set *s, const char *path)
{
    char **np = realloc(s->paths, (size_t)(s->n_files + 1) * sizeof *np);
    if (!np) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    s->paths = np;
    tome_mmap *nm = realloc(s->maps, (size_t)(s->n_files + 1) * sizeof *nm);
    if (!nm) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    s->maps = nm;
    s->paths[s->n_files] = strdup(path);
    memset(&s->maps[s->n_files], 0, sizeof(tome_mmap));
    if (!s->paths[s->n_files]) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    int fi = s->n_files++;
    TOME_FORWARD(tome_mmap_open(path, &s->maps[fi]));
    return tome_st_parse_file(s, fi);
}

static tome_status open_index(tome_st_set *s, const char *dir, const char *index_path)
{
    tome_buf b = {0};
    TOME_FORWARD(tome_read_file(index_path, 64u << 20, &b));
    json_error_t jerr;
    json_t *root = json_loadb(b.data, b.len, 0, &jerr);
    tome_buf_free(&b);
    if (!root)
        return tome_set_error(TOME_ERR_FORMAT, "%s: bad JSON at line %d: %s", index_path, jerr.line, jerr.text);
    tome_status st = TOME_OK;
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        st = tome_set_error(TOME_ERR_FORMAT, "%s: no weight_map object", index_path);
        goto done;
    }
    const char *key;
    json_t *val;
    /* open every shard once, in order of first mention */
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val)) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: weight_map['%s'] is not a file name", index_path, key);
            goto done;
        }
        const char *shard = json_string_value(val);
        if (!*shard || strchr(shard, '/') || !strcmp(shard, "..") || !strcmp(shard, ".")) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: weight_map['%s'] names '%s' outside the directory", index_path,
                                key, shard);
            goto done;
        }
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, shard);
        int have = 0;
        for (int i = 0; i < s->n_files; i++) have |= !strcmp(s->paths[i], p);
        if (have) continue;
        struct stat sb;
        if (stat(p, &sb) != 0) {
            st = tome_set_error(TOME_ERR_NOT_FOUND, "%s: shard '%s' (holding '%s') is missing", index_path, shard, key);
            goto done;
        }
        if ((st = add_file(s, p)) != TOME_OK) goto done;
    }
    qsort(s->t, s->n, sizeof *s->t, cmp_tensor_name);
    /* every mapped name must be in its shard */
    json_object_foreach(wm, key, val) {
        const tome_st_tensor *t = tome_st_find(s, key);
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, json_string_value(val));
        if (!t || strcmp(s->paths[t->file], p) != 0) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: tensor '%s' is not in shard '%s'", index_path, key,
                                json_string_value(val));
            goto done;
        }
    }
done:
    json_decref(root);
    return st;
}

tome_status tome_st_open(const char *path, tome_st_set *out)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0) return tome_set_errno(TOME_ERR_NOT_FOUND, errno, "%s", path);
    tome_status st;
    if (S_ISDIR(sb.st_mode)) {
        char p[4096];
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
        if (stat(p, &sb) == 0) {
            st = open_index(out, path, p);
        } else {
            snprintf(p, sizeof p, "%s/model.safetensors", path);
            if (stat(p, &sb) != 0)
                return tome_set_error(TOME_ERR_NOT_FOUND,
                                      "%s: no model.safetensors or model.safetensors.index.json", path);
            st = add_file(out, p);
        }
    } else {
        st = add_file(out, path);
    }
    if (st == TOME_OK) {
        qsort(out->t, out->n, sizeof *out->t, cmp_tensor_name);
        for (size_t i = 1; i < out->n; i++)
            if (!strcmp(out->t[i].name, out->t[i - 1].name)) {
                st = tome_set_error(TOME_ERR_FORMAT, "%s: tensor '%s' appears in both %s and %s", path,
                                    out->t[i].name, out->paths[out->t[i - 1].file], out->paths[out->t[i].file]);
                break;
            }
    }
    if (st != TOME_OK) tome_st_close(out);
    return st;
}

/* ------------------------------------------------------------ writer */
tome_status tome_st_write(const char *path, const tome_st_out *t, size_t n)
{
    tome_buf h = {0};
    tome_status st = tome_buf_appendf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < n && st == TOME_OK; i++) {
        uint64_t numel = 1;
        st = tome_buf_appendf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, tome_dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim && st == TOME_OK; d++) {
            st = tome_buf_appendf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
            numel *= (uint64_t)t[i].shape[d];
        }
        uint64_t nb = numel * tome_dtype_size(t[i].dtype);
        if (st == TOME_OK)
            st = tome_buf_appendf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                  (unsigned long long)(off + nb));
        off += nb;
    }
    if (st == TOME_OK) st = tome_buf_putc(&h, '}');
    while (st == TOME_OK && h.len % 8 != 0) st = tome_buf_putc(&h, ' ');
    if (st != TOME_OK) {
        tome_buf_free(&h);
        return st;
    }
    tome_atomic_file *f = NULL;
    st = tome_atomic_open(path, &f);
    if (st == TOME_OK) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
        st = tome_atomic_write(f, len8, 8);
        if (st == TOME_OK) st = tome_atomic_write(f, h.data, h.len);
        for (size_t i = 0; i < n && st == TOME_OK; i++) {
            uint64_t numel = 1;
            for (int d = 0; d < t[i].ndim; d++) numel *= (uint64_t)t[i].shape[d];
            st = tome_atomic_write(f, t[i].data, numel * tome_dtype_size(t[i].dtype));
        }
        if (st == TOME_OK) st = tome_atomic_commit(f);
        else tome_atomic_abort(f);
    }
    tome_buf_free(&h);
    return st;
}

tome_status tome_write_npy_f32(const char *path, const float *data, size_t rows, size_t cols)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    tome_buf h = {0};
    tome_status st = tome_buf_append(&h, "\x93NUMPY\x01\x00", 8);
    uint16_t hl = (uint16_t)(n + pad + 1);
    uint8_t hl2[2] = {(uint8_t)(hl & 0xff), (uint8_t)(hl >> 8)};
    if (st == TOME_OK) st = tome_buf_append(&h, hl2, 2);
    if (st == TOME_OK) st = tome_buf_append(&h, hdr, (size_t)n);
    for (int i = 0; i < pad && st == TOME_OK; i++) st = tome_buf_putc(&h, ' ');
    if (st == TOME_OK) st = tome_buf_putc(&h, '\n');
    tome_atomic_file *f = NULL;
    if (st == TOME_OK) st = tome_atomic_open(path, &f);
    if (st == TOME_OK) {
        st = tome_atomic_write(f, h.data, h.len);
        if (st == TOME_OK) st = tome_atomic_write(f, data, rows * cols * sizeof(float));
        if (st == TOME_OK) st = tome_atomic_commit(f);
        else tome_atomic_abort(f);
    }
    tome_buf_free(&h);
    return st;
}
