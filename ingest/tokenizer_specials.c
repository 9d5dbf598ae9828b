/*
 * ingest/tokenizer_specials.c — Llama 4's 2,048 special token names, in id
 * order starting right after the ordinary ranks (200000..202047 for the
 * 200,000-rank tokenizer.model), as Meta's reference tokenizer assigns them:
 * 5 basic tokens, 75 text post-training tokens, 1,054 vision tokens, 10
 * reasoning tokens, then <|reserved_special_token_0..903|>.
 * Used when loading a tokenizer.model (which holds no special tokens); a
 * tokenizer.json brings its own list.
 */
#include <stdio.h>
#include <string.h>

#include "ingest/tokenizer_impl.h"

static const char *const k_named[] = {
    /* 200000 */ "begin_of_text", "end_of_text", "fim_prefix", "fim_middle", "fim_suffix",
    /* 200005 */ "header_start", "header_end", "eom", "eot", "step",
    "text_post_train_reserved_special_token_0", "text_post_train_reserved_special_token_1",
    "text_post_train_reserved_special_token_2", "text_post_train_reserved_special_token_3",
    "text_post_train_reserved_special_token_4", "text_post_train_reserved_special_token_5",
    "python_start", "python_end", "finetune_right_pad",
};
#define N_NAMED 19                 /* 200000..200018 */
#define N_TEXT_RESERVED 61         /* text_post_train_reserved 8..68: 200019..200079 */
static const char *const k_vision[] = {
    /* 200080 */ "image_start", "image_end", "vision_reserved_special_token_0",
    "vision_reserved_special_token_1", "tile_x_separator", "tile_y_separator",
    "vision_reserved_special_token_2", "vision_reserved_special_token_3",
    "vision_reserved_special_token_4", "vision_reserved_special_token_5", "image",
    "vision_reserved_special_token_6", "patch",
};
#define N_VISION 13
#define N_VISION_RESERVED 1041     /* vision_reserved 7..1047: 200093..201133 */
static const char *const k_reasoning[] = {
    /* 201134 */ "reasoning_reserved_special_token_0", "reasoning_reserved_special_token_1",
    "reasoning_reserved_special_token_2", "reasoning_reserved_special_token_3",
    "reasoning_reserved_special_token_4", "reasoning_reserved_special_token_5",
    "reasoning_reserved_special_token_6", "reasoning_reserved_special_token_7",
    "reasoning_thinking_start", "reasoning_thinking_end",
};
#define N_REASONING 10
#define N_TOTAL 2048

size_t tome_llama4_special_count(void) { return N_TOTAL; }

void tome_llama4_special_name(size_t i, char *buf, size_t cap)
{
    if (i < N_NAMED) {
        snprintf(buf, cap, "<|%s|>", k_named[i]);
        return;
    }
    i -= N_NAMED;
    if (i < N_TEXT_RESERVED) {
        snprintf(buf, cap, "<|text_post_train_reserved_special_token_%zu|>", i + 8);
        return;
    }
    i -= N_TEXT_RESERVED;
    if (i < N_VISION) {
        snprintf(buf, cap, "<|%s|>", k_vision[i]);
        return;
    }
    i -= N_VISION;
    if (i < N_VISION_RESERVED) {
        snprintf(buf, cap, "<|vision_reserved_special_token_%zu|>", i + 7);
        return;
    }
    i -= N_VISION_RESERVED;
    if (i < N_REASONING) {
        snprintf(buf, cap, "<|%s|>", k_reasoning[i]);
        return;
    }
    i -= N_REASONING;
    snprintf(buf, cap, "<|reserved_special_token_%zu|>", i);
}
