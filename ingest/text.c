/*
 * ingest/text.c — text encodings: detection by content, conversion to UTF-8,
 * and escaping of display paths.
 *
 * Detection (tome_text_detect), in order:
 *   1. empty → UTF-8;
 *   2. a BOM: EF BB BF → UTF-8 with BOM; FF FE / FE FF → UTF-16 LE / BE
 *      (FF FE 00 00 is UTF-32, which tome does not read → binary), unless the
 *      decoded UTF-16 is mostly control characters (a binary file that
 *      happens to start with those bytes) → binary;
 *   3. any NUL byte → binary (git's rule, applied to the whole buffer),
 *      unless it is UTF-16 without a BOM: an even length, a zero byte in
 *      at least half of the odd (LE) or even (BE) positions and at most
 *      1/4 as many in the others, and the units pass the check of 2.;
 *      or UTF-16 without a BOM in CJK, Cyrillic, Indic and other scripts
 *      whose letters have no zero byte (utf16_wide_without_bom: 128+ bytes,
 *      >= 97% of the units in the ranges text is written in, in one byte
 *      order only);
 *   4. control-byte density: bytes < 0x20 other than \t \n \r \f \v ESC,
 *      plus DEL, counted over the buffer; more than 1 in 64 → binary;
 *   5. valid UTF-8 (shortest forms, no surrogates, ≤ U+10FFFF) → UTF-8;
 *   6. otherwise Latin-1 when it is plausible text: at most a few of the
 *      bytes ≥ 0x80 are C1 bytes 0x80–0x9F not used by Windows-1252, and
 *      either at most 1/4 of the bytes are ≥ 0x80, or (short words in a
 *      language with many accents: "Größe", "Ελλάδα" is not Latin-1 but
 *      "Ærø" is) at most half are and at least 2/3 of those are Latin-1
 *      letters (0xC0–0xFF but × and ÷) → Latin-1;
 *   7. otherwise UTF-8 text with a few stray bytes (at least one valid
 *      multi-byte sequence, at most 1 invalid byte in 256) → "utf-8-lossy":
 *      converted like UTF-8, the stray bytes become U+FFFD; else binary.
 *   tome_text_legacy_8bit tells apart, among the binary ones, text in an
 *   8-bit or multi-byte legacy encoding tome does not decode (Shift-JIS,
 *   GBK, Big5, EUC-*, KOI8-R, Windows-1251...: no NUL, few control bytes,
 *   bytes >= 0x80, neither UTF-8 nor Latin-1), so the skip reason can say
 *   so; guessing which of those encodings it is would be wrong too often.
 *
 * Conversion (tome_text_to_utf8) appends to *out:
 *   - UTF-8: copied; an invalid sequence (possible only when the caller
 *     forces the encoding) becomes U+FFFD per maximal invalid subpart;
 *   - UTF-8 BOM: the BOM is dropped, the rest as UTF-8;
 *   - UTF-16: the BOM is dropped; an unpaired surrogate (a high one not
 *     followed by a low one, or a lone low one) becomes U+FFFD, as does a
 *     trailing odd byte;
 *   - Latin-1: ISO-8859-1, with 0x80–0x9F read as Windows-1252 (the WHATWG
 *     meaning of the "iso-8859-1" label, since real files labelled Latin-1
 *     use those bytes for quotes and dashes); the five bytes Windows-1252
 *     leaves undefined map to the C1 code points.
 *   Line ends are kept as they are ("\r\n" stays).
 *
 * Path escaping (tome_path_escape) appends to *out: bytes of invalid UTF-8,
 * C0 controls and DEL become "\xNN"; C1 controls (U+0080–U+009F) and the
 * bidirectional overrides/isolates (U+202A–U+202E, U+2066–U+2069, "Trojan
 * source" characters) are escaped byte by byte as "\xNN" too, so a file
 * name cannot move the terminal cursor or reorder what a reader sees. A
 * backslash that would read as such an escape (followed by 'x' and two hex
 * digits) becomes "\x5c", so the escaped form is unambiguous.
 */
#include <ctype.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ingest/ingest_impl.h"

const char *tome_encoding_name(tome_encoding enc)
{
    switch (enc) {
    case TOME_ENC_UTF8: return "utf-8";
    case TOME_ENC_UTF8_BOM: return "utf-8-bom";
    case TOME_ENC_UTF16LE: return "utf-16le";
    case TOME_ENC_UTF16BE: return "utf-16be";
    case TOME_ENC_LATIN1: return "latin-1";
    case TOME_ENC_BINARY: return "binary";
    case TOME_ENC_UTF8_LOSSY: return "utf-8-lossy";
    }
    return "unknown";
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid; *cp
 * receives the code point. */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Bytes of the maximal invalid subpart at s (≥ 1): how many bytes one
 * U+FFFD replaces (the Unicode "best practice" used by browsers). */
static size_t utf8_invalid_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t want;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) want = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        want = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        want = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 1;
    size_t i = 1;
    if (i < n && i < want && s[i] >= lo && s[i] <= hi) {
        i++;
        while (i < n && i < want && (s[i] & 0xC0) == 0x80) i++;
    }
    return i;
}

/* Per-byte exact mask (0x80 in each byte of x that is zero). */
static uint64_t zero_bytes(uint64_t x)
{
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7Full;
    return ~(((x & low7) + low7) | x | low7);
}

/* 8 bytes at p are printable ASCII (0x20..0x7E) or '\t' '\n' '\r'? A fast
 * pre-check per word; anything else takes the per-byte path. */
static int word_plain_ascii(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    if (w & highs) return 0;
    uint64_t lt20 = ~(w + ones * 0x60) & highs; /* no carries: every byte < 0x80 */
    if (lt20) {
        uint64_t ok = zero_bytes(w ^ (ones * '\n')) | zero_bytes(w ^ (ones * '\t')) | zero_bytes(w ^ (ones * '\r'));
        if (lt20 & ~ok) return 0;
    }
    return zero_bytes(w ^ (ones * 0x7F)) == 0;
}

/* Length of the prefix of p[0..len) made of whole 16-byte blocks of plain
 * ASCII (as word_plain_ascii: no byte >= 0x80, no control but \t \n \r). */
static size_t plain_ascii_run(const uint8_t *p, size_t len)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i sp = _mm_set1_epi8(0x20), nl = _mm_set1_epi8('\n'), tab = _mm_set1_epi8('\t'),
                  cr = _mm_set1_epi8('\r'), del = _mm_set1_epi8(0x7F);
    for (; i + 16 <= len; i += 16) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        /* signed compare: bytes >= 0x80 are negative, so "< 0x20" flags them too */
        __m128i ctl = _mm_cmplt_epi8(b, sp);
        __m128i ok = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(b, nl), _mm_cmpeq_epi8(b, tab)), _mm_cmpeq_epi8(b, cr));
        __m128i bad = _mm_or_si128(_mm_andnot_si128(ok, ctl), _mm_cmpeq_epi8(b, del));
        if (_mm_movemask_epi8(bad)) break;
    }
#else
    (void)p;
    (void)len;
#endif
    return i;
}

static int is_bad_control(uint8_t c)
{
    return (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' && c != 0x1B) ||
           c == 0x7F;
}

/* Windows-1252 for 0x80..0x9F; 0 = undefined there (kept as the C1 code point). */
static const uint16_t g_cp1252[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

static int utf16_is_text(const uint8_t *d, size_t len, int le)
{
    size_t units = len / 2, bad = 0;
    for (size_t i = 0; i < units; i++) {
        uint16_t u = le ? (uint16_t)(d[2 * i] | d[2 * i + 1] << 8) : (uint16_t)(d[2 * i] << 8 | d[2 * i + 1]);
        if (u == 0) return 0;
        if (u < 0x80 && is_bad_control((uint8_t)u)) bad++;
    }
    return bad * 64 <= units;
}

/* UTF-16 without a BOM (what some Windows tools write): text mostly in the
 * first 256 code points has a zero byte in every other position — the odd
 * ones for LE, the even ones for BE — and few in the others (a CJK
 * character can end in 00). Returns 1 for LE, 0 for BE, -1 for neither.
 * The decoded units must still pass utf16_is_text (no U+0000, few
 * controls). */
static int utf16_without_bom(const uint8_t *d, size_t len)
{
    if (len < 4 || (len & 1)) return -1;
    size_t units = len / 2, z_even = 0, z_odd = 0;
    for (size_t i = 0; i < units; i++) {
        z_even += d[2 * i] == 0;
        z_odd += d[2 * i + 1] == 0;
    }
    if (z_odd * 2 >= units && z_even * 4 <= z_odd) return utf16_is_text(d, len, 1) ? 1 : -1;
    if (z_even * 2 >= units && z_odd * 4 <= z_even) return utf16_is_text(d, len, 0) ? 0 : -1;
    return -1;
}

/* Whether unit u (UTF-16) is in the ranges text is written in: tab, CR, LF,
 * printable ASCII, Latin-1 and Latin Extended, Greek, Cyrillic, Armenian,
 * Hebrew, Arabic, the Indic scripts (Devanagari to Sinhala), Thai, Lao,
 * Georgian, Hangul Jamo, Ethiopic, Latin/Greek Extended (Vietnamese),
 * punctuation and common symbols, CJK punctuation, kana, bopomofo, CJK
 * ideographs, Hangul syllables, compatibility, presentation and full-width
 * forms. Left out although they are text: the typographic spaces
 * U+2000-U+200A and CJK Extension A (U+3400-U+4DBF), both rare in real text
 * and just where the other byte order puts a space (00 20 -> U+2000) and
 * lowercase Cyrillic (U+0434 -> U+3404); with them a Russian text read both
 * ways looked like text, and an Armenian one was taken in the wrong byte
 * order. Surrogates are checked by the caller. */
static int utf16_text_unit(uint16_t u)
{
    if (u < 0x80) return u == '\t' || u == '\n' || u == '\r' || (u >= 0x20 && u < 0x7F);
    return (u >= 0xA0 && u <= 0x24F) || (u >= 0x370 && u <= 0x58F) || (u >= 0x590 && u <= 0x6FF) ||
           (u >= 0x900 && u <= 0xDFF) || (u >= 0xE00 && u <= 0xEFF) || (u >= 0x10A0 && u <= 0x137F) ||
           (u >= 0x1E00 && u <= 0x1FFF) || (u >= 0x200B && u <= 0x27BF) || (u >= 0x3000 && u <= 0x33FF) ||
           (u >= 0x4E00 && u <= 0x9FFF) || (u >= 0xAC00 && u <= 0xD7A3) || (u >= 0xF900 && u <= 0xFAFF) ||
           (u >= 0xFB50 && u <= 0xFDFF) || (u >= 0xFE30 && u <= 0xFE4F) || (u >= 0xFE70 && u <= 0xFEFC) ||
           (u >= 0xFF00 && u <= 0xFFEF);
}

/* Units of d read in one byte order that are text (utf16_text_unit, or a
 * valid surrogate pair); -1 at a U+0000. */
static long utf16_text_units(const uint8_t *d, size_t units, int le)
{
    long ok = 0;
    for (size_t i = 0; i < units; i++) {
        uint16_t u = le ? (uint16_t)(d[2 * i] | d[2 * i + 1] << 8) : (uint16_t)(d[2 * i] << 8 | d[2 * i + 1]);
        if (u == 0) return -1;
        if (u >= 0xD800 && u <= 0xDBFF && i + 1 < units) {
            uint16_t v = le ? (uint16_t)(d[2 * i + 2] | d[2 * i + 3] << 8) : (uint16_t)(d[2 * i + 2] << 8 | d[2 * i + 3]);
            if (v >= 0xDC00 && v <= 0xDFFF) {
                ok += 2;
                i++;
            }
            continue;
        }
        ok += utf16_text_unit(u);
    }
    return ok;
}

/* UTF-16 without a BOM whose text is mostly past the first 256 code points
 * (Chinese, Japanese, Korean): its only zero bytes are the high bytes of
 * newlines, spaces and ASCII, too few for utf16_without_bom. Asked only of
 * data that holds a zero byte (ASCII or Latin-1 text has none, and read as
 * UTF-16 it would look like CJK). At least 128 bytes, >= 97% of the units
 * text in one byte order and < 90% in the other: a binary file passes with a
 * chance below 1e-9 (about 2/3 of all units are in those ranges). Not only
 * CJK: any script of utf16_text_unit, Hindi, Arabic, Russian, Thai... whose
 * spaces and newlines are the only units with a zero byte. Returns 1 for
 * LE, 0 for BE, -1 for neither. */
static int utf16_wide_without_bom(const uint8_t *d, size_t len)
{
    if (len < 128 || (len & 1)) return -1;
    size_t units = len / 2;
    long le = utf16_text_units(d, units, 1), be = utf16_text_units(d, units, 0);
    if (le >= 0 && (size_t)le * 100 >= units * 97 && (be < 0 || (size_t)be * 100 < units * 90)) return 1;
    if (be >= 0 && (size_t)be * 100 >= units * 97 && (le < 0 || (size_t)le * 100 < units * 90)) return 0;
    return -1;
}

int tome_text_legacy_8bit(const uint8_t *data, size_t len)
{
    if (len == 0 || memchr(data, 0, len)) return 0;
    size_t bad = 0, high = 0;
    for (size_t i = 0; i < len; i++) {
        bad += is_bad_control(data[i]);
        high += data[i] >= 0x80;
    }
    return high && bad * 64 <= len && tome_text_detect(data, len) == TOME_ENC_BINARY;
}

tome_encoding tome_text_detect(const uint8_t *data, size_t len)
{
    if (len == 0) return TOME_ENC_UTF8;
    if (len >= 4 && data[0] == 0xFF && data[1] == 0xFE && data[2] == 0 && data[3] == 0) return TOME_ENC_BINARY;
    if (len >= 2 && data[0] == 0xFF && data[1] == 0xFE)
        return utf16_is_text(data + 2, len - 2, 1) ? TOME_ENC_UTF16LE : TOME_ENC_BINARY;
    if (len >= 2 && data[0] == 0xFE && data[1] == 0xFF)
        return utf16_is_text(data + 2, len - 2, 0) ? TOME_ENC_UTF16BE : TOME_ENC_BINARY;
    int bom = len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF;
    if (memchr(data, 0, len)) {
        int le = utf16_without_bom(data, len);
        if (le < 0) le = utf16_wide_without_bom(data, len);
        return le < 0 ? TOME_ENC_BINARY : le ? TOME_ENC_UTF16LE : TOME_ENC_UTF16BE;
    }

    size_t bad = 0, high = 0, c1_undefined = 0, invalid = 0, multibyte = 0, letters = 0;
    int valid = 1;
    for (size_t i = plain_ascii_run(data, len); i < len;) {
        if (i + 8 <= len && word_plain_ascii(data + i)) {
            i += 8;
            if (i + 64 <= len) i += plain_ascii_run(data + i, len - i);
            continue;
        }
        uint8_t c = data[i];
        if (c < 0x80) {
            if (is_bad_control(c)) bad++;
            i++;
            continue;
        }
        high++;
        if (c >= 0x80 && c <= 0x9F && g_cp1252[c - 0x80] == 0) c1_undefined++;
        uint32_t cp;
        size_t n = utf8_seq(data + i, len - i, &cp);
        for (size_t k = 0; k < (n ? n : 1); k++) /* Latin-1 letters, should this not be UTF-8 */
            letters += data[i + k] >= 0xC0 && data[i + k] != 0xD7 && data[i + k] != 0xF7;
        if (n) {
            if (!valid) /* past the first invalid byte every byte counts for Latin-1 */
                for (size_t k = 1; k < n; k++)
                    if (data[i + k] <= 0x9F && g_cp1252[data[i + k] - 0x80] == 0) c1_undefined++;
            high += n - 1;
            multibyte++;
            i += n;
            continue;
        }
        valid = 0;
        invalid++;
        i++;
    }
    if (bad * 64 > len) return TOME_ENC_BINARY;
    if (valid) return bom ? TOME_ENC_UTF8_BOM : TOME_ENC_UTF8;
    if (bom) return TOME_ENC_UTF8_BOM; /* declared UTF-8: invalid bytes become U+FFFD */
    if ((high * 4 <= len || (high * 2 <= len && letters * 3 >= high * 2)) && c1_undefined * 64 <= high + 1)
        return TOME_ENC_LATIN1;
    /* UTF-8 text with a few stray bytes (a test file with a deliberately
     * broken sequence, a truncated paste): UTF-8, the stray bytes U+FFFD */
    if (multibyte && invalid * 256 <= len) return TOME_ENC_UTF8_LOSSY;
    return TOME_ENC_BINARY;
}

static tome_status put_cp(tome_buf *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return tome_buf_append(out, b, n);
}

static tome_status utf8_copy(const uint8_t *d, size_t len, tome_buf *out)
{
    TOME_FORWARD(tome_buf_reserve(out, len));
    size_t run = 0; /* start of the pending valid run */
    for (size_t i = 0; i < len;) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, d + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        if (d[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_seq(d + i, len - i, &cp);
        if (n) {
            i += n;
            continue;
        }
        TOME_FORWARD(tome_buf_append(out, d + run, i - run));
        TOME_FORWARD(put_cp(out, 0xFFFD));
        i += utf8_invalid_len(d + i, len - i);
        run = i;
    }
    return tome_buf_append(out, d + run, len - run);
}

static tome_status utf16_convert(const uint8_t *d, size_t len, int le, tome_buf *out)
{
    TOME_FORWARD(tome_buf_reserve(out, len + len / 2));
    size_t units = len / 2;
    for (size_t i = 0; i < units; i++) {
        uint32_t u = le ? (uint32_t)(d[2 * i] | d[2 * i + 1] << 8) : (uint32_t)(d[2 * i] << 8 | d[2 * i + 1]);
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (i + 1 < units) {
                uint32_t v = le ? (uint32_t)(d[2 * i + 2] | d[2 * i + 3] << 8)
                                : (uint32_t)(d[2 * i + 2] << 8 | d[2 * i + 3]);
                if (v >= 0xDC00 && v <= 0xDFFF) {
                    TOME_FORWARD(put_cp(out, 0x10000 + ((u - 0xD800) << 10) + (v - 0xDC00)));
                    i++;
                    continue;
                }
            }
            u = 0xFFFD;
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            u = 0xFFFD;
        }
        TOME_FORWARD(put_cp(out, u));
    }
    if (len & 1) TOME_FORWARD(put_cp(out, 0xFFFD));
    return TOME_OK;
}

tome_status tome_text_to_utf8(const uint8_t *data, size_t len, tome_encoding enc, tome_buf *out)
{
    TOME_RETURN_IF(!out || (!data && len), TOME_ERR_INVALID_ARG, "text: no buffer");
    switch (enc) {
    case TOME_ENC_UTF8:
    case TOME_ENC_UTF8_LOSSY:
        return utf8_copy(data, len, out);
    case TOME_ENC_UTF8_BOM:
        if (len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF) {
            data += 3;
            len -= 3;
        }
        return utf8_copy(data, len, out);
    case TOME_ENC_UTF16LE:
    case TOME_ENC_UTF16BE: {
        int le = enc == TOME_ENC_UTF16LE;
        if (len >= 2 && ((le && data[0] == 0xFF && data[1] == 0xFE) || (!le && data[0] == 0xFE && data[1] == 0xFF))) {
            data += 2;
            len -= 2;
        }
        return utf16_convert(data, len, le, out);
    }
    case TOME_ENC_LATIN1: {
        TOME_FORWARD(tome_buf_reserve(out, len + len / 4));
        size_t run = 0;
        for (size_t i = 0; i < len; i++) {
            uint8_t c = data[i];
            if (c < 0x80) continue;
            TOME_FORWARD(tome_buf_append(out, data + run, i - run));
            uint32_t cp = c;
            if (c <= 0x9F && g_cp1252[c - 0x80]) cp = g_cp1252[c - 0x80];
            TOME_FORWARD(put_cp(out, cp));
            run = i + 1;
        }
        return tome_buf_append(out, data + run, len - run);
    }
    case TOME_ENC_BINARY:
        break;
    }
    return tome_set_error(TOME_ERR_INVALID_ARG, "text: %s content cannot be converted to UTF-8",
                          tome_encoding_name(enc));
}

/* A reason is one line of text: library messages (libarchive, libxml2,
 * poppler) may end in '\n' or hold tabs and other controls, which would
 * break the tree's line and the summary. Each becomes a space; trailing
 * spaces go. */
void tome_text_one_line(char *r)
{
    if (!r) return;
    size_t n = 0;
    for (char *c = r; *c; c++, n++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    while (n && r[n - 1] == ' ') r[--n] = '\0';
}

static int escaped_cp(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

tome_status tome_path_escape(const char *path, tome_buf *out)
{
    TOME_RETURN_IF(!path || !out, TOME_ERR_INVALID_ARG, "path escape: no path");
    const uint8_t *s = (const uint8_t *)path;
    size_t len = strlen(path), run = 0;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_seq(s + i, len - i, &cp);
        /* a literal backslash that reads as an escape ("\\x41") is itself
         * escaped, so two different names never print the same */
        int lit_esc = n == 1 && cp == '\\' && i + 3 < len && s[i + 1] == 'x' && isxdigit(s[i + 2]) && isxdigit(s[i + 3]);
        if (n && !escaped_cp(cp) && !lit_esc) {
            i += n;
            continue;
        }
        TOME_FORWARD(tome_buf_append(out, s + run, i - run));
        if (!n) n = 1;
        for (size_t k = 0; k < n; k++) {
            char e[4] = {'\\', 'x', hex[s[i + k] >> 4], hex[s[i + k] & 15]};
            TOME_FORWARD(tome_buf_append(out, e, 4));
        }
        i += n;
        run = i;
    }
    return tome_buf_append(out, s + run, len - run);
}
