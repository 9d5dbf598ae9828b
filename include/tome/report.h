/*
 * tome/report.h — `tome report`: task templates (refactor, compliance), the
 * findings of a multi-question run, and their rendering as Markdown and as
 * one self-contained HTML page (inline CSS, no scripts, no external links:
 * citation links jump to the cited lines inside the page).
 */
#ifndef TOME_REPORT_H
#define TOME_REPORT_H

#include <stddef.h>

#include "tome/chat.h"
#include "tome/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tome_report_item {
    char *title;             /* "Module map", "Clause 3" ...                     */
    char *question;          /* what the model was asked                         */
    char *answer;            /* its answer (may be "")                           */
    char *severity;          /* compliance: high|medium|low|none|unknown; else NULL */
    tome_citation *cites;    /* checked against the pack                          */
    size_t n_cites;
} tome_report_item;

typedef struct tome_report {
    char *task;              /* "refactor" or "compliance"                        */
    char *title;
    char *sources;           /* what was packed, for the header                   */
    char *model;
    tome_report_item *items;
    size_t n_items;
} tome_report;

/* The questions of a task: refactor (module map, dependency hot spots, dead
 * code, migration plan) or compliance (one per policy clause; policy_text is
 * required: clauses are its non-empty lines or paragraphs). Appends items with
 * title and question set. */
tome_status tome_report_plan(tome_report *r, const char *task, const char *policy_text);

/* Severity word of a compliance answer: the first of high / medium / low /
 * none (case-insensitive, whole word) after "severity", else the first one
 * anywhere, else "unknown". Returns a static string. */
const char *tome_report_severity(const char *answer);

/* A report output may replace only an earlier tome report (marked by the
 * comment "<!-- tome report -->" near its start) or an empty file: a source,
 * the policy or a README that happens to sit at the path is refused
 * (TOME_ERR_INVALID_ARG, naming the path), as is a directory or a device.
 * The renderers check it too; the CLI checks before running the model. */
tome_status tome_report_check_output(const char *path);

tome_status tome_report_render_md(const tome_report *r, const char *path);
tome_status tome_report_render_html(const tome_report *r, const char *path);
void tome_report_clear(tome_report *r); /* frees everything inside r */

#ifdef __cplusplus
}
#endif
#endif /* TOME_REPORT_H */
