/*
 * tests/arch_fixtures.h — archive and PDF fixtures built in memory for
 * test_archive.c and test_doc.c, with libarchive's writer (the real library,
 * no mocks). Header-only: each test executable gets its own static copy.
 *
 *   fx_member m[] = {{"a.txt", "hello", 5}, {"dir/", NULL, 0, FX_DIR}};
 *   fx_bytes z = fx_archive("zip", NULL, NULL, m, 2);   ... free(z.data);
 */
#ifndef TOME_ARCH_FIXTURES_H
#define TOME_ARCH_FIXTURES_H

/* fixtures list members as {name, data, len} and leave type/link zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx_bytes {
    unsigned char *data;
    size_t len, cap;
} fx_bytes;

enum { FX_REG = 0, FX_DIR, FX_SYMLINK, FX_HARDLINK, FX_CHR, FX_FIFO };

typedef struct fx_member {
    const char *name;
    const void *data;
    size_t len;
    int type;
    const char *link; /* symlink / hardlink target */
} fx_member;

static inline void fx_append(fx_bytes *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

static la_ssize_t fx_write_cb(struct archive *a, void *ud, const void *buf, size_t n)
{
    (void)a;
    fx_append(ud, buf, n);
    return (la_ssize_t)n;
}

/* format: "zip", "ustar", "pax", "gnutar", "7zip", "cpio", "ar", "iso9660",
 * "raw"; filter: NULL, "gzip", "bzip2", "xz", "zstd"; options: passed to
 * archive_write_set_options (e.g. "zip:encryption=zipcrypt"); a passphrase
 * "secret" is set when options mention encryption. */
static inline fx_bytes fx_archive(const char *format, const char *filter, const char *options,
                           const fx_member *m, size_t n)
{
    fx_bytes out = {0};
    struct archive *a = archive_write_new();
    if (archive_write_set_format_by_name(a, format) != ARCHIVE_OK) {
        fprintf(stderr, "fixture: format %s: %s\n", format, archive_error_string(a));
        abort();
    }
    if (filter && archive_write_add_filter_by_name(a, filter) != ARCHIVE_OK) {
        fprintf(stderr, "fixture: filter %s: %s\n", filter, archive_error_string(a));
        abort();
    }
    archive_write_set_bytes_per_block(a, 0); /* no padding after the end */
    if (options) {
        if (archive_write_set_options(a, options) != ARCHIVE_OK) {
            fprintf(stderr, "fixture: options %s: %s\n", options, archive_error_string(a));
            abort();
        }
        if (strstr(options, "encryption"))
            archive_write_set_passphrase(a, "secret");
    }
    archive_write_open(a, &out, NULL, fx_write_cb, NULL);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_mtime(e, 1700000000, 0);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 0);
        switch (m[i].type) {
        case FX_DIR: archive_entry_set_filetype(e, AE_IFDIR); archive_entry_set_perm(e, 0755); break;
        case FX_SYMLINK: archive_entry_set_filetype(e, AE_IFLNK); archive_entry_set_symlink(e, m[i].link); break;
        case FX_HARDLINK: archive_entry_set_filetype(e, AE_IFREG); archive_entry_set_hardlink(e, m[i].link); break;
        case FX_CHR: archive_entry_set_filetype(e, AE_IFCHR); archive_entry_set_rdev(e, 0x0103); break;
        case FX_FIFO: archive_entry_set_filetype(e, AE_IFIFO); break;
        default: archive_entry_set_filetype(e, AE_IFREG); archive_entry_set_size(e, (la_int64_t)m[i].len);
        }
        if (archive_write_header(a, e) < ARCHIVE_WARN) {
            fprintf(stderr, "fixture: header %s: %s\n", m[i].name, archive_error_string(a));
            abort();
        }
        if (m[i].type == FX_REG && m[i].len)
            archive_write_data(a, m[i].data, m[i].len);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
}

/* A minimal valid PDF: one page per string, Helvetica, each page's text on
 * separate lines split at '\n'. Written with a correct xref table. With
 * encrypted set, the trailer names a standard security handler whose user
 * password is not empty (the O/U values match no password a reader tries),
 * so the document cannot be opened without one. */
static inline fx_bytes fx_pdf_ex(const char *const *pages, int n_pages, int encrypted)
{
    fx_bytes b = {0};
    size_t n_obj = 3 + 2 * (size_t)n_pages + (encrypted ? 1 : 0);
    size_t *off = calloc(n_obj + 1, sizeof *off);
    char tmp[4096];
    fx_append(&b, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", 15);
    off[1] = b.len;
    snprintf(tmp, sizeof tmp, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    fx_append(&b, tmp, strlen(tmp));
    off[2] = b.len;
    fx_append(&b, "2 0 obj\n<< /Type /Pages /Kids [", 31);
    for (int i = 0; i < n_pages; i++) {
        snprintf(tmp, sizeof tmp, "%d 0 R ", 4 + 2 * i);
        fx_append(&b, tmp, strlen(tmp));
    }
    snprintf(tmp, sizeof tmp, "] /Count %d >>\nendobj\n", n_pages);
    fx_append(&b, tmp, strlen(tmp));
    off[3] = b.len;
    snprintf(tmp, sizeof tmp, "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    fx_append(&b, tmp, strlen(tmp));
    for (int i = 0; i < n_pages; i++) {
        char content[2048] = "BT /F1 12 Tf 72 720 Td 14 TL\n";
        const char *s = pages[i];
        while (*s) {
            size_t k = strcspn(s, "\n");
            strcat(content, "(");
            strncat(content, s, k);
            strcat(content, ") Tj T*\n");
            s += k + (s[k] == '\n');
        }
        strcat(content, "ET\n");
        off[4 + 2 * i] = b.len;
        snprintf(tmp, sizeof tmp,
                 "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                 "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>\nendobj\n",
                 4 + 2 * i, 5 + 2 * i);
        fx_append(&b, tmp, strlen(tmp));
        off[5 + 2 * i] = b.len;
        snprintf(tmp, sizeof tmp, "%d 0 obj\n<< /Length %zu >>\nstream\n%sendstream\nendobj\n",
                 5 + 2 * i, strlen(content), content);
        fx_append(&b, tmp, strlen(tmp));
    }
    if (encrypted) {
        off[n_obj - 1] = b.len;
        snprintf(tmp, sizeof tmp,
                 "%zu 0 obj\n<< /Filter /Standard /V 1 /R 2 /P -44 "
                 "/O <5b3c7e1f00a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f3a5b7c9d1e3f4a6b8c0> "
                 "/U <0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0> >>\nendobj\n",
                 n_obj - 1);
        fx_append(&b, tmp, strlen(tmp));
    }
    size_t xref = b.len;
    snprintf(tmp, sizeof tmp, "xref\n0 %zu\n0000000000 65535 f \n", n_obj);
    fx_append(&b, tmp, strlen(tmp));
    for (size_t i = 1; i < n_obj; i++) {
        snprintf(tmp, sizeof tmp, "%010zu 00000 n \n", off[i]);
        fx_append(&b, tmp, strlen(tmp));
    }
    if (encrypted)
        snprintf(tmp, sizeof tmp,
                 "trailer\n<< /Size %zu /Root 1 0 R /Encrypt %zu 0 R /ID [<0123456789abcdef0123456789abcdef>"
                 "<0123456789abcdef0123456789abcdef>] >>\nstartxref\n%zu\n%%%%EOF\n",
                 n_obj, n_obj - 1, xref);
    else
        snprintf(tmp, sizeof tmp, "trailer\n<< /Size %zu /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                 n_obj, xref);
    fx_append(&b, tmp, strlen(tmp));
    free(off);
    return b;
}

static inline fx_bytes fx_pdf(const char *const *pages, int n_pages)
{
    return fx_pdf_ex(pages, n_pages, 0);
}

#endif /* TOME_ARCH_FIXTURES_H */
