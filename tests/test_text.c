/* tests/test_text.c — encoding detection, conversion to UTF-8, path escaping. */
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_impl.h"
#include "tt.h"

static tome_encoding det(const char *s, size_t n) { return tome_text_detect((const uint8_t *)s, n); }
#define DET(lit) det((lit), sizeof(lit) - 1)

static tome_buf g_conv, g_esc; /* results of the last conv() / esc() */

static const char *conv(const char *s, size_t n, tome_encoding enc)
{
    tome_buf_free(&g_conv);
    if (tome_text_to_utf8((const uint8_t *)s, n, enc, &g_conv) != TOME_OK) return NULL;
    return g_conv.data ? g_conv.data : "";
}
#define CONV(lit, enc) conv((lit), sizeof(lit) - 1, (enc))

static void test_detect_plain(void)
{
    TT_EQ_INT(DET(""), TOME_ENC_UTF8);
    TT_EQ_INT(DET("int main(void) { return 0; }\r\n"), TOME_ENC_UTF8);
    TT_EQ_INT(DET("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n"), TOME_ENC_UTF8);
    TT_EQ_INT(DET("\xEF\xBB\xBFhello\n"), TOME_ENC_UTF8_BOM);
    TT_EQ_INT(DET("\x1b[31mred log\x1b[0m\n\f\v"), TOME_ENC_UTF8); /* ESC, FF, VT are text */
}

static void test_detect_binary(void)
{
    TT_EQ_INT(DET("abc\0def"), TOME_ENC_BINARY);
    TT_EQ_INT(DET("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), TOME_ENC_BINARY);
    /* control-byte soup without NULs */
    TT_EQ_INT(DET("\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11 some text"), TOME_ENC_BINARY);
    /* high-byte soup that is neither UTF-8 nor plausible Latin-1 */
    TT_EQ_INT(DET("\xff\xd8\xff\xe0\x81\x9d\x8f\xc3\x28\xa0\xa1\xfe\xfd\xfc\xfb\xfa"), TOME_ENC_BINARY);
    TT_EQ_INT(DET("\xFF\xFE\0\0h\0\0\0"), TOME_ENC_BINARY); /* UTF-32 LE BOM */
    /* a real executable */
    size_t n = 0;
    char *exe = tt_read_file("/bin/sh", &n);
    if (exe) {
        TT_EQ_INT(det(exe, n), TOME_ENC_BINARY);
        free(exe);
    }
    /* a real source file of this project is UTF-8 */
    char *src = tt_read_file(tt_source_path("ingest/text.c"), &n);
    TT_CHECK(src != NULL);
    if (src) {
        TT_EQ_INT(det(src, n), TOME_ENC_UTF8);
        free(src);
    }
}

static void test_detect_word_fast_path(void)
{
    /* one byte in a 16-byte ASCII buffer, at every position (word-at-a-time
     * scanning must see it wherever it lands) */
    const uint8_t probes[] = {0x01, 0x08, 0x7F, 0x1F, 0x00};
    for (size_t k = 0; k < sizeof probes; k++) {
        for (size_t pos = 0; pos < 16; pos++) {
            uint8_t buf[16];
            memset(buf, 'a', sizeof buf);
            buf[pos] = probes[k];
            TT_EQ_INT(tome_text_detect(buf, sizeof buf), TOME_ENC_BINARY);
            buf[pos] = '\t';
            TT_EQ_INT(tome_text_detect(buf, sizeof buf), TOME_ENC_UTF8);
            buf[pos] = 0xE9; /* Latin-1 e-acute: invalid UTF-8 */
            TT_EQ_INT(tome_text_detect(buf, sizeof buf), TOME_ENC_LATIN1);
        }
    }
}

/* The same over 200 bytes, where 16-byte blocks are scanned at once: a
 * control byte, a tab, a Latin-1 byte or a UTF-8 sequence at any position,
 * also across a block edge. */
static void test_detect_block_fast_path(void)
{
    for (size_t pos = 0; pos < 199; pos++) {
        uint8_t buf[200];
        memset(buf, 'a', sizeof buf);
        for (size_t k = 0; k < sizeof buf; k += 37) buf[k] = '\n';
        memset(buf + pos, 0x01, pos + 4 <= sizeof buf ? 4 : sizeof buf - pos);
        TT_EQ_INT(tome_text_detect(buf, sizeof buf), pos + 4 <= sizeof buf ? TOME_ENC_BINARY : TOME_ENC_UTF8);
        memset(buf + pos, 'a', pos + 4 <= sizeof buf ? 4 : sizeof buf - pos);
        buf[pos] = 0x7F;
        buf[(pos + 90) % sizeof buf] = 0x7F;
        buf[(pos + 150) % sizeof buf] = 0x7F;
        buf[(pos + 60) % sizeof buf] = 0x7F;
        TT_EQ_INT(tome_text_detect(buf, sizeof buf), TOME_ENC_BINARY);
        memset(buf, 'a', sizeof buf);
        buf[pos] = 0xC3; /* e-acute in UTF-8, possibly across two blocks */
        buf[pos + 1] = 0xA9;
        TT_EQ_INT(tome_text_detect(buf, sizeof buf), TOME_ENC_UTF8);
        buf[pos + 1] = 'a';
        buf[pos] = 0xE9; /* Latin-1 */
        TT_EQ_INT(tome_text_detect(buf, sizeof buf), TOME_ENC_LATIN1);
    }
}

static void test_detect_utf16(void)
{
    TT_EQ_INT(DET("\xFF\xFEh\0i\0\n\0"), TOME_ENC_UTF16LE);
    TT_EQ_INT(DET("\xFE\xFF\0h\0i\0\n"), TOME_ENC_UTF16BE);
    /* a binary blob starting with FF FE: control units everywhere */
    TT_EQ_INT(DET("\xFF\xFE\x01\x00\x02\x00\x03\x00\x04\x00"), TOME_ENC_BINARY);
    /* without a BOM: the zero bytes of ASCII characters give the order */
    TT_EQ_INT(DET("h\0i\0 \0t\0h\0e\0r\0e\0\n\0"), TOME_ENC_UTF16LE);
    TT_EQ_INT(DET("\0h\0i\0 \0t\0h\0e\0r\0e\0\n"), TOME_ENC_UTF16BE);
    /* with a CJK character whose low byte is 00 (U+4E00) */
    TT_EQ_INT(DET("a\0\x00\x4E:\0 \0b\0\n\0"), TOME_ENC_UTF16LE);
    TT_EQ_STR(CONV("h\0\xE9\0\n\0", TOME_ENC_UTF16LE), "h\xC3\xA9\n");
    /* ... but not binary data with zeros in every other byte */
    TT_EQ_INT(DET("\x01\0\x02\0\x03\0\x04\0\x05\0"), TOME_ENC_BINARY); /* control units */
    TT_EQ_INT(DET("a\0b\0\0\0c\0"), TOME_ENC_BINARY);                    /* U+0000 */
    TT_EQ_INT(DET("a\0b\0c\0d"), TOME_ENC_BINARY);                         /* odd length */
    TT_EQ_INT(DET("a\0\0b\0c\0d\0"), TOME_ENC_BINARY);                     /* misaligned */
}

/* UTF-16 without a BOM in Chinese, Japanese, Korean: few zero bytes (the
 * newlines' and ASCII's), not enough for the zero-byte rule */
static void utf16_of(const char *utf8, int le, tome_buf *out) /* appends */
{
    const uint8_t *s = (const uint8_t *)utf8;
    while (*s) {
        uint32_t cp;
        size_t n = *s < 0x80 ? 1 : *s < 0xE0 ? 2 : *s < 0xF0 ? 3 : 4;
        cp = n == 1 ? s[0] : n == 2 ? (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F)
                  : n == 3 ? (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F)
                           : (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
        s += n;
        uint16_t u[2];
        int k = 1;
        if (cp >= 0x10000) {
            u[0] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
            u[1] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
            k = 2;
        } else {
            u[0] = (uint16_t)cp;
        }
        for (int j = 0; j < k; j++) {
            char b[2] = {(char)(le ? u[j] & 0xFF : u[j] >> 8), (char)(le ? u[j] >> 8 : u[j] & 0xFF)};
            tome_buf_append(out, b, 2);
        }
    }
}

/* text in UTF-16 (le or be), repeated into b until it has at least min
 * bytes; checks that it is detected in that byte order and converts back to
 * the text repeated */
static void utf16_detected(const char *text, int le, size_t min, tome_buf *b)
{
    b->len = 0;
    while (b->len < min) utf16_of(text, le, b);
    TT_EQ_INT(det(b->data, b->len), le ? TOME_ENC_UTF16LE : TOME_ENC_UTF16BE);
    const char *back = conv(b->data, b->len, le ? TOME_ENC_UTF16LE : TOME_ENC_UTF16BE);
    size_t tl = strlen(text);
    TT_CHECK(back && strlen(back) % tl == 0);
    for (size_t k = 0; back && k + tl <= strlen(back); k += tl) TT_CHECK(!memcmp(back + k, text, tl));
}

static void test_detect_utf16_cjk_without_bom(void)
{
    static const char *texts[] = {
        "\xe4\xba\xba\xe5\xb7\xa5\xe6\x99\xba\xe8\x83\xbd\xe6\x98\xaf\xe8\xae\xa1\xe7\xae\x97\xe6\x9c\xba\xe7\xa7\x91\xe5\xad\xa6\xe7\x9a\x84"
        "\xe4\xb8\x80\xe4\xb8\xaa\xe5\x88\x86\xe6\x94\xaf\xef\xbc\x8c\xe5\xae\x83\xe4\xbc\x81\xe5\x9b\xbe\xe4\xba\x86\xe8\xa7\xa3\xe6\x99\xba"
        "\xe8\x83\xbd\xe7\x9a\x84\xe5\xae\x9e\xe8\xb4\xa8\xe3\x80\x82\n\xe8\xaf\xa5\xe9\xa2\x86\xe5\x9f\x9f\xe7\x9a\x84\xe7\xa0\x94\xe7\xa9\xb6"
        "\xe5\x8c\x85\xe6\x8b\xac\xe6\x9c\xba\xe5\x99\xa8\xe4\xba\xba\xe3\x80\x81\xe8\xaf\xad\xe8\xa8\x80\xe8\xaf\x86\xe5\x88\xab 2024\n",
        "\xe5\x90\xbe\xe8\xbc\xa9\xe3\x81\xaf\xe7\x8c\xab\xe3\x81\xa7\xe3\x81\x82\xe3\x82\x8b\xe3\x80\x82\xe5\x90\x8d\xe5\x89\x8d\xe3\x81\xaf"
        "\xe3\x81\xbe\xe3\x81\xa0\xe7\x84\xa1\xe3\x81\x84\xe3\x80\x82\n\xe3\x81\xa9\xe3\x81\x93\xe3\x81\xa7\xe7\x94\x9f\xe3\x82\x8c\xe3\x81\x9f"
        "\xe3\x81\x8b\xe3\x81\xa8\xe3\x82\x93\xe3\x81\xa8\xe8\xa6\x8b\xe5\xbd\x93\xe3\x81\x8c\xe3\x81\xa4\xe3\x81\x8b\xe3\x81\xac\xe3\x80\x82"
        "\xe3\x83\x8b\xe3\x83\xa3\xe3\x83\xbc\xe3\x83\x8b\xe3\x83\xa3\xe3\x83\xbc \xf0\x9f\x98\xba\n",
        "\xeb\x8c\x80\xed\x95\x9c\xeb\xaf\xbc\xea\xb5\xad\xec\x9d\x80 \xeb\x8f\x99\xec\x95\x84\xec\x8b\x9c\xec\x95\x84\xec\x9d\x98 "
        "\xed\x95\x9c\xeb\xb0\x98\xeb\x8f\x84 \xeb\x82\xa8\xeb\xb6\x80\xec\x97\x90 \xec\x9c\x84\xec\xb9\x98\xed\x95\x9c "
        "\xeb\xaf\xbc\xec\xa3\xbc\xea\xb3\xb5\xed\x99\x94\xea\xb5\xad\xec\x9d\xb4\xeb\x8b\xa4.\n\xec\x84\x9c\xec\x9a\xb8\xed\x8a\xb9\xeb\xb3\x84"
        "\xec\x8b\x9c\xeb\x8a\x94 \xeb\x8c\x80\xed\x95\x9c\xeb\xaf\xbc\xea\xb5\xad\xec\x9d\x98 \xec\x88\x98\xeb\x8f\x84\xec\x9d\xb4\xeb\x8b\xa4.\n",
    };
    tome_buf b = {0};
    for (size_t t = 0; t < TOME_ARRAY_LEN(texts); t++)
        for (int le = 0; le < 2; le++) {
            utf16_detected(texts[t], le, 128, &b);
            /* under 128 bytes the evidence is too thin: binary */
            TT_EQ_INT(det(b.data, 100), TOME_ENC_BINARY);
            /* one unit in 20 that no text holds (a control character) tips it */
            for (size_t k = 0; k + 1 < b.len; k += 40) {
                b.data[k + (le ? 0 : 1)] = 0x01;
                b.data[k + (le ? 1 : 0)] = 0x00;
            }
            TT_EQ_INT(det(b.data, b.len), TOME_ENC_BINARY);
        }
    /* random bytes with zeros in them (a compressed or encrypted file) */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int wrong = 0;
    for (int r = 0; r < 2000; r++) {
        b.len = 0;
        size_t n = 128 + (size_t)(r % 64) * 2;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            char c = (char)(i % 37 == 5 ? 0 : x);
            tome_buf_append(&b, &c, 1);
        }
        tome_encoding e = det(b.data, b.len);
        wrong += e == TOME_ENC_UTF16LE || e == TOME_ENC_UTF16BE;
    }
    TT_EQ_INT(wrong, 0);
    tome_buf_free(&b);
}

/* UTF-16 without a BOM in other scripts whose only zero bytes are those of
 * spaces and newlines: Armenian was taken in the wrong byte order (read the
 * other way it looked like CJK ideographs), Russian was binary (read either
 * way it looked like text: lowercase Cyrillic lands in CJK Extension A and
 * a space on U+2000), Hindi and Georgian were binary (not in the ranges).
 * UTF-32 of the same texts stays binary (U+0000 units). */
static void test_detect_utf16_other_scripts_without_bom(void)
{
    static const char *texts[] = {
        /* Armenian */
        "\xd5\x80\xd5\xa1\xd5\xb5\xd5\xa5\xd6\x80\xd5\xa5\xd5\xb6\xd5\xa8 \xd5\xb0\xd5\xb6\xd5\xa4\xd5\xa5\xd5"
        "\xbe\xd6\x80\xd5\xb8\xd5\xba\xd5\xa1\xd5\xaf\xd5\xa1\xd5\xb6 \xd5\xac\xd5\xa5\xd5\xa6\xd5\xb8\xd6\x82"
        " \xd5\xa7\xd6\x89 \xd4\xb5\xd6\x80\xd6\x87\xd5\xa1\xd5\xb6\xd5\xa8 \xd5\x80\xd5\xa1\xd5\xb5\xd5\xa1"
        "\xd5\xbd\xd5\xbf\xd5\xa1\xd5\xb6\xd5\xab \xd5\xb4\xd5\xa1\xd5\xb5\xd6\x80\xd5\xa1\xd6\x84\xd5\xa1\xd5"
        "\xb2\xd5\xa1\xd6\x84\xd5\xb6 \xd5\xa7\xd6\x89\n",
        /* Russian */
        "\xd0\xa0\xd1\x83\xd1\x81\xd1\x81\xd0\xba\xd0\xb8\xd0\xb9 \xd1\x8f\xd0\xb7\xd1\x8b\xd0\xba \xd1\x8f"
        "\xd0\xb2\xd0\xbb\xd1\x8f\xd0\xb5\xd1\x82\xd1\x81\xd1\x8f \xd0\xb3\xd0\xbe\xd1\x81\xd1\x83\xd0\xb4\xd0"
        "\xb0\xd1\x80\xd1\x81\xd1\x82\xd0\xb2\xd0\xb5\xd0\xbd\xd0\xbd\xd1\x8b\xd0\xbc \xd1\x8f\xd0\xb7\xd1\x8b"
        "\xd0\xba\xd0\xbe\xd0\xbc \xd0\xa0\xd0\xbe\xd1\x81\xd1\x81\xd0\xb8\xd0\xb8. \xd0\x9c\xd0\xbe\xd1\x81"
        "\xd0\xba\xd0\xb2\xd0\xb0 \xe2\x80\x94 \xd1\x81\xd1\x82\xd0\xbe\xd0\xbb\xd0\xb8\xd1\x86\xd0\xb0.\n",
        /* Hindi */
        "\xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xa6\xe0\xa5\x80 \xe0\xa4\xad\xe0\xa4\xbe\xe0"
        "\xa4\xb0\xe0\xa4\xa4 \xe0\xa4\x95\xe0\xa5\x80 \xe0\xa4\xb0\xe0\xa4\xbe\xe0\xa4\x9c\xe0\xa4\xad\xe0"
        "\xa4\xbe\xe0\xa4\xb7\xe0\xa4\xbe \xe0\xa4\xb9\xe0\xa5\x88\xe0\xa5\xa4 \xe0\xa4\xa8\xe0\xa4\x88 \xe0"
        "\xa4\xa6\xe0\xa4\xbf\xe0\xa4\xb2\xe0\xa5\x8d\xe0\xa4\xb2\xe0\xa5\x80 \xe0\xa4\xad\xe0\xa4\xbe\xe0\xa4"
        "\xb0\xe0\xa4\xa4 \xe0\xa4\x95\xe0\xa5\x80 \xe0\xa4\xb0\xe0\xa4\xbe\xe0\xa4\x9c\xe0\xa4\xa7\xe0\xa4"
        "\xbe\xe0\xa4\xa8\xe0\xa5\x80 \xe0\xa4\xb9\xe0\xa5\x88\xe0\xa5\xa4\n",
        /* Georgian */
        "\xe1\x83\xa5\xe1\x83\x90\xe1\x83\xa0\xe1\x83\x97\xe1\x83\xa3\xe1\x83\x9a\xe1\x83\x98 \xe1\x83\x94\xe1"
        "\x83\x9c\xe1\x83\x90 \xe1\x83\x90\xe1\x83\xa0\xe1\x83\x98\xe1\x83\xa1 \xe1\x83\xa5\xe1\x83\x90\xe1"
        "\x83\xa0\xe1\x83\x97\xe1\x83\x95\xe1\x83\x94\xe1\x83\x9a\xe1\x83\x94\xe1\x83\x91\xe1\x83\x98\xe1\x83"
        "\xa1 \xe1\x83\x9b\xe1\x83\xa8\xe1\x83\x9d\xe1\x83\x91\xe1\x83\x9a\xe1\x83\x98\xe1\x83\xa3\xe1\x83\xa0"
        "\xe1\x83\x98 \xe1\x83\x94\xe1\x83\x9c\xe1\x83\x90. \xe1\x83\x97\xe1\x83\x91\xe1\x83\x98\xe1\x83\x9a"
        "\xe1\x83\x98\xe1\x83\xa1\xe1\x83\x98 \xe1\x83\x93\xe1\x83\x94\xe1\x83\x93\xe1\x83\x90\xe1\x83\xa5\xe1"
        "\x83\x90\xe1\x83\x9a\xe1\x83\x90\xe1\x83\xa5\xe1\x83\x98\xe1\x83\x90.\n",
    };
    tome_buf b = {0};
    for (size_t t = 0; t < TOME_ARRAY_LEN(texts); t++)
        for (int le = 0; le < 2; le++) {
            utf16_detected(texts[t], le, 300, &b);
            /* the same text in UTF-32 (each unit followed or led by 00 00) */
            tome_buf w = {0};
            for (size_t i = 0; i + 1 < b.len; i += 2) {
                const char z[2] = {0, 0};
                if (le) tome_buf_append(&w, b.data + i, 2), tome_buf_append(&w, z, 2);
                else tome_buf_append(&w, z, 2), tome_buf_append(&w, b.data + i, 2);
            }
            TT_EQ_INT(det(w.data, w.len), TOME_ENC_BINARY);
            tome_buf_free(&w);
        }
    tome_buf_free(&b);
}

static void test_legacy_8bit(void)
{
    /* Shift-JIS, GBK and KOI8-R text: binary to the detector (tome does not
     * guess among legacy encodings), but recognised as text for the reason */
    static const char sjis[] = "\x93\xfa\x96\x7b\x8c\xea\x82\xcc\x83\x65\x83\x4c\x83\x58\x83\x67\x82\xc5\x82\xb7\x81\x42\n";
    static const char gbk[] = "\xd5\xe2\xca\xc7\xd6\xd0\xce\xc4\xce\xc4\xb1\xbe\xa3\xac\xca\xb9\xd3\xc3GBK\xb1\xe0\xc2\xeb\xa1\xa3\n";
    static const char koi8[] = "\xfc\xd4\xcf \xd2\xd5\xd3\xd3\xcb\xc9\xca \xd4\xc5\xcb\xd3\xd4 \xd7 \xcb\xcf\xc4\xc9\xd2\xcf\xd7\xcb\xc5.\n";
    const char *texts[] = {sjis, gbk, koi8};
    const size_t lens[] = {sizeof sjis - 1, sizeof gbk - 1, sizeof koi8 - 1};
    for (int i = 0; i < 3; i++) {
        TT_EQ_INT(tome_text_detect((const uint8_t *)texts[i], lens[i]), TOME_ENC_BINARY);
        TT_CHECK(tome_text_legacy_8bit((const uint8_t *)texts[i], lens[i]));
    }
    /* not for real binaries, UTF-8 or Latin-1 */
    TT_CHECK(!tome_text_legacy_8bit((const uint8_t *)"abc\0\xe9", 5));
    TT_CHECK(!tome_text_legacy_8bit((const uint8_t *)"\x01\x02\x03\x04\xe9\xff", 6));
    TT_CHECK(!tome_text_legacy_8bit((const uint8_t *)"caf\xc3\xa9", 5));
    TT_CHECK(!tome_text_legacy_8bit((const uint8_t *)"caf\xe9 au lait", 13));
    TT_CHECK(!tome_text_legacy_8bit((const uint8_t *)"plain", 5));
    size_t n = 0;
    char *exe = tt_read_file("/bin/sh", &n);
    if (exe) {
        TT_CHECK(!tome_text_legacy_8bit((const uint8_t *)exe, n));
        free(exe);
    }
}

static void test_detect_latin1(void)
{
    TT_EQ_INT(DET("Caf\xE9 cr\xE8me br\xFB" "l\xE9" "e, na\xEF" "ve fa\xE7" "ade.\n"), TOME_ENC_LATIN1);
    /* Windows-1252 quotes and dash */
    TT_EQ_INT(DET("He said \x93hello\x94 \x96 twice.\n"), TOME_ENC_LATIN1);
    /* invalid UTF-8 sequences: truncated, overlong, surrogate */
    TT_EQ_INT(DET("abc \xC3 def ghi jkl mno"), TOME_ENC_LATIN1);
    TT_EQ_INT(DET("overlong \xC0\xAF slash and more text"), TOME_ENC_LATIN1);
    /* short words dense with accents (more than 1/4 of the bytes) */
    TT_EQ_INT(DET("Gr\xF6\xDF" "e\n"), TOME_ENC_LATIN1);
    TT_EQ_INT(DET("\xC6r\xF8 og \xE5\n"), TOME_ENC_LATIN1);
    TT_EQ_INT(DET("\xE0 \xE9t\xE9\n"), TOME_ENC_LATIN1);
    /* ... but not when most of the bytes are high, or the high bytes are not letters */
    TT_EQ_INT(DET("\xF6\xDF\xE9\xE8\xE0" "x\n"), TOME_ENC_BINARY);
    TT_EQ_INT(DET("a\xA9\xB0\xAB\xBB" "b\n"), TOME_ENC_BINARY);
}

static void test_convert(void)
{
    TT_EQ_STR(CONV("plain\r\n", TOME_ENC_UTF8), "plain\r\n");
    TT_EQ_STR(CONV("\xEF\xBB\xBFhi", TOME_ENC_UTF8_BOM), "hi");
    TT_EQ_STR(CONV("\xFF\xFEh\0\xE9\0\n\0", TOME_ENC_UTF16LE), "h\xC3\xA9\n");
    TT_EQ_STR(CONV("\xFE\xFF\0h\x20\xAC", TOME_ENC_UTF16BE), "h\xE2\x82\xAC");
    /* surrogate pair → U+1F600 */
    TT_EQ_STR(CONV("\xFF\xFE\x3D\xD8\x00\xDE", TOME_ENC_UTF16LE), "\xF0\x9F\x98\x80");
    /* unpaired high, lone low, odd trailing byte → U+FFFD each */
    TT_EQ_STR(CONV("\xFF\xFE\x3D\xD8" "a\0", TOME_ENC_UTF16LE), "\xEF\xBF\xBD" "a");
    TT_EQ_STR(CONV("\xFF\xFE\x00\xDE" "b\0", TOME_ENC_UTF16LE), "\xEF\xBF\xBD" "b");
    TT_EQ_STR(CONV("\xFF\xFE" "c\0" "d", TOME_ENC_UTF16LE), "c\xEF\xBF\xBD");
    TT_EQ_STR(CONV("\xFF\xFE\x3D\xD8", TOME_ENC_UTF16LE), "\xEF\xBF\xBD"); /* high at the end */
    /* Latin-1 with Windows-1252 punctuation */
    TT_EQ_STR(CONV("caf\xE9 \x93q\x94 \x80 \x81", TOME_ENC_LATIN1),
              "caf\xC3\xA9 \xE2\x80\x9Cq\xE2\x80\x9D \xE2\x82\xAC \xC2\x81");
    /* forced UTF-8 on invalid bytes: U+FFFD per maximal subpart */
    TT_EQ_STR(CONV("a\xE2\x82" "b\xFF" "c", TOME_ENC_UTF8), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c");
    TT_EQ_STR(CONV("\xED\xA0\x80", TOME_ENC_UTF8), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    TT_CHECK(CONV("x\0y", TOME_ENC_BINARY) == NULL);
    TT_CONTAINS(tome_last_error(), "binary");
    TT_EQ_STR(tome_encoding_name(TOME_ENC_UTF16BE), "utf-16be");
    TT_EQ_STR(tome_encoding_name(TOME_ENC_LATIN1), "latin-1");
}

static void test_detect_then_convert_is_valid_utf8(void)
{
    /* every non-binary detection converts to valid UTF-8 (re-detected as UTF-8) */
    const char *samples[] = {"caf\xE9\n", "\xEF\xBB\xBFok", "\xFF\xFEo\0k\0", "\xFE\xFF\xD8\x3D\0k", "ascii"};
    size_t lens[] = {5, 5, 6, 6, 5};
    for (size_t i = 0; i < TOME_ARRAY_LEN(samples); i++) {
        tome_encoding e = det(samples[i], lens[i]);
        TT_CHECK(e != TOME_ENC_BINARY);
        tome_buf b = {0};
        TT_OK(tome_text_to_utf8((const uint8_t *)samples[i], lens[i], e, &b));
        TT_EQ_INT(tome_text_detect((const uint8_t *)b.data, b.len), TOME_ENC_UTF8);
        tome_buf_free(&b);
    }
}

static const char *esc(const char *p)
{
    tome_buf_free(&g_esc);
    if (tome_path_escape(p, &g_esc) != TOME_OK) return NULL;
    return g_esc.data ? g_esc.data : "";
}

static void test_path_escape(void)
{
    TT_EQ_STR(esc("src/main.c"), "src/main.c");
    TT_EQ_STR(esc("docs/caf\xC3\xA9.md"), "docs/caf\xC3\xA9.md");
    TT_EQ_STR(esc("bad\xFFname"), "bad\\xffname");
    TT_EQ_STR(esc("tab\there\nnl"), "tab\\x09here\\x0anl");
    TT_EQ_STR(esc("ansi\x1b[31m"), "ansi\\x1b[31m");
    TT_EQ_STR(esc("del\x7f"), "del\\x7f");
    TT_EQ_STR(esc("c1\xC2\x9B"), "c1\\xc2\\x9b");         /* U+009B CSI */
    TT_EQ_STR(esc("rlo\xE2\x80\xAEtxt.exe"), "rlo\\xe2\\x80\\xaetxt.exe"); /* U+202E */
    TT_EQ_STR(esc("trunc\xE2\x82"), "trunc\\xe2\\x82");
    TT_EQ_STR(esc(""), "");
    /* appends */
    tome_buf b = {0};
    TT_OK(tome_buf_append(&b, "path: ", 6));
    TT_OK(tome_path_escape("a\x01", &b));
    TT_EQ_STR(b.data, "path: a\\x01");
    tome_buf_free(&b);
}

static void test_one_line(void)
{
    char a[] = "XML error: extra content\n";
    tome_text_one_line(a);
    TT_EQ_STR(a, "XML error: extra content");
    char b[] = "a\tb\r\nc\x01" "d  \n\n";
    tome_text_one_line(b);
    TT_EQ_STR(b, "a b  c d");
    char c[] = "caf\xC3\xA9 \xFF"; /* bytes >= 0x80 are left alone */
    tome_text_one_line(c);
    TT_EQ_STR(c, "caf\xC3\xA9 \xFF");
    tome_text_one_line(NULL);
}

int main(void)
{
    TT_RUN(test_detect_plain);
    TT_RUN(test_detect_binary);
    TT_RUN(test_detect_word_fast_path);
    TT_RUN(test_detect_block_fast_path);
    TT_RUN(test_detect_utf16);
    TT_RUN(test_detect_utf16_cjk_without_bom);
    TT_RUN(test_detect_utf16_other_scripts_without_bom);
    TT_RUN(test_detect_latin1);
    TT_RUN(test_legacy_8bit);
    TT_RUN(test_convert);
    TT_RUN(test_detect_then_convert_is_valid_utf8);
    TT_RUN(test_path_escape);
    TT_RUN(test_one_line);
    tome_buf_free(&g_conv);
    tome_buf_free(&g_esc);
    return tt_finish();
}
