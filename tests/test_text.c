/* tests/test_text.c — encoding detection, conversion to UTF-8, path escaping. */
#include <stdlib.h>

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
    TT_RUN(test_detect_utf16);
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
