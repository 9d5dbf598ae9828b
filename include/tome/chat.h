/*
 * tome/chat.h — prompt assembly for `tome ask` / `tome report` and the
 * citations in an answer.
 *
 * Layout of a question over a pack (the pack's ids come first so that a KV
 * snapshot of the pack made by `tome prefill` is a prefix of every prompt):
 *   [pack ids] <|eot|><|header_start|>system<|header_end|>\n\n SYSTEM
 *   <|eot|><|header_start|>user<|header_end|>\n\n QUESTION
 *   <|eot|><|header_start|>assistant<|header_end|>\n\n
 * Citations are "path:line" or "path:first-last" as the system prompt asks;
 * they are checked with tome_pack_cite (the pack's own checker).
 */
#ifndef TOME_CHAT_H
#define TOME_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "tome/model.h"
#include "tome/pack.h"
#include "tome/status.h"
#include "tome/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default system prompt of tome ask. */
extern const char *const TOME_CHAT_SYSTEM;

/* Appends the ids that follow the pack's ids (layout above) to out.
 * system may be NULL (TOME_CHAT_SYSTEM). */
tome_status tome_chat_tail(const tome_tokenizer_t *tok, const char *system, const char *question, tome_tokens_t *out);

typedef struct tome_citation {
    char *text;       /* "path:line[-line]" as found in the answer (an en dash   */
                      /* range written with '-')                                 */
    size_t offset;    /* byte offset in the answer                               */
    size_t length;    /* bytes it spans in the answer (may differ from text's)   */
    int valid;        /* 1: the lines are in the pack; 0: not                    */
    char *reason;     /* why not (valid == 0), else NULL                         */
    char *lines;      /* the cited lines (valid == 1), else NULL                 */
} tome_citation;

/* Finds the citations in answer[0..len) (a path with at least one '/' or
 * '.', then ':' and a line or line range; surrounding backquotes, brackets
 * and punctuation are not part of it) and, when pack is not NULL, checks
 * each. *out is malloc'd; free with tome_citations_free. */
tome_status tome_chat_citations(tome_pack_t *pack, const char *answer, size_t len, tome_citation **out, size_t *n);
void tome_citations_free(tome_citation *c, size_t n); /* NULL ok */

/* Whether a model can run prompts of this tokenizer: every id the tokenizer
 * makes must be inside the model's vocabulary (TOME_ERR_MISMATCH naming both
 * otherwise, e.g. the tiny preset's 512 ids with Llama 4's tokenizer). */
tome_status tome_chat_check_vocab(const tome_model_t *m, const char *model_dir, const tome_tokenizer_t *tok,
                                  const char *tok_path);
/* Tokens left for the pack when `rest` positions (question tail + answer)
 * must follow it within the model's max_position_embeddings; 0 when nothing
 * is left (or the config gives no limit: then UINT64_MAX). */
uint64_t tome_chat_pack_budget(const tome_model_t *m, uint64_t rest);
/* TOME_ERR_LIMIT, naming the pack, the model and the numbers, when
 * pack_tokens + rest positions do not fit the model's context. */
tome_status tome_chat_check_length(const tome_model_t *m, const char *model_dir, const char *pack_desc,
                                   uint64_t pack_tokens, uint64_t rest);

/* s[0..n) as valid UTF-8, malloc'd and NUL-terminated (NULL when out of
 * memory): bytes that do not begin a well-formed sequence, and NULs, become
 * U+FFFD, so answers cut inside a character and non-UTF-8 paths can go into
 * JSON and HTML. */
char *tome_chat_clean_utf8(const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* TOME_CHAT_H */
