/*
 * tome/device.h — what accelerators this build of tome can use.
 *
 * tome is always built with its CPU path; the CUDA backend is compiled in when
 * the build found nvcc (TOME_CUDA=AUTO|ON). A build with CUDA still runs on a
 * machine without a GPU: tome_device_count() then reports 0 devices and the
 * reason in tome_last_error().
 */
#ifndef TOME_DEVICE_H
#define TOME_DEVICE_H

#include <stddef.h>

#include "tome/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tome_device_info {
    int index;
    char name[256];
    int cc_major, cc_minor;      /* compute capability, e.g. 9.0 for H100 */
    size_t total_bytes;          /* device memory                          */
    size_t free_bytes;
    int multiprocessors;
} tome_device_info;

/* Stops the BLAS library's own thread pool: tome runs each BLAS call on one
 * thread of its own pool. The CLI calls it first thing; a program linking
 * libtome may too (an idle OpenBLAS pool spins for ~0.1 s after loading). */
void tome_blas_single_thread(void);

/* Nonzero when this build contains the CUDA backend. */
int tome_build_has_cuda(void);

/* Number of usable CUDA devices in *n. Returns TOME_OK with *n = 0 when the
 * build has no CUDA or no device/driver is present (the reason, e.g. "no CUDA
 * driver", is then in tome_last_error()). */
tome_status tome_device_count(int *n);

/* Properties of device i; TOME_ERR_DEVICE with the CUDA error string on failure. */
tome_status tome_device_get_info(int i, tome_device_info *out);

#ifdef __cplusplus
}
#endif
#endif /* TOME_DEVICE_H */
