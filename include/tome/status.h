/*
 * tome/status.h — the error model shared by every module.
 *
 * Every fallible library function returns a tome_status. TOME_OK is zero;
 * everything else is an error class. The human-readable message for the most
 * recent failure on the calling thread is available from tome_last_error():
 * it names the file, archive entry or byte offset at fault, e.g.
 *   "model/model-00002-of-00003.safetensors: tensor 'x' ends at byte 812 past
 *    end of file (800 bytes)".
 * The message is thread-local, so threads never see each other's errors. The
 * returned pointer stays valid until the next tome call on the same thread
 * that fails or clears the error.
 *
 * Library code never calls exit() or abort() on bad input; only cli/ exits.
 */
#ifndef TOME_STATUS_H
#define TOME_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tome_status {
    TOME_OK = 0,
    TOME_ERR_INVALID_ARG = 1, /* the caller passed an unusable argument          */
    TOME_ERR_NOMEM = 2,       /* an allocation failed                            */
    TOME_ERR_IO = 3,          /* open/read/write/rename failed (errno in message) */
    TOME_ERR_FORMAT = 4,      /* an input file is malformed, truncated, corrupt  */
    TOME_ERR_UNSUPPORTED = 5, /* valid input using a feature tome does not have  */
    TOME_ERR_NOT_FOUND = 6,   /* a named file, tensor, token or entry is missing */
    TOME_ERR_LIMIT = 7,       /* a size, ratio, depth or memory budget exceeded  */
    TOME_ERR_MISMATCH = 8,    /* identities disagree (snapshot vs model/pack)    */
    TOME_ERR_NOSPACE = 9,     /* the disk is full or a file-size limit was hit   */
    TOME_ERR_DEVICE = 10,     /* a CUDA / device call failed                     */
    TOME_ERR_INTERRUPTED = 11,/* stopped by the caller or a signal               */
    TOME_ERR_INTERNAL = 12    /* a broken invariant inside tome (a bug)          */
} tome_status;

/* Stable lower-case name of a status, e.g. "format". Never NULL. */
const char *tome_status_name(tome_status st);

/* Message of the most recent error on this thread; "" when there is none.
 * Never NULL. Valid until the next failing or clearing tome call on this
 * thread. */
const char *tome_last_error(void);

/* Forget the error message of this thread. */
void tome_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif /* TOME_STATUS_H */
