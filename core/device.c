/*
 * core/device.c — device discovery for builds without CUDA.
 *
 * With CUDA the same functions come from model/cuda/device.cu instead; this
 * file then compiles to nothing.
 */
#include "tome/device.h"

#include "core/error_impl.h"

#ifndef TOME_HAVE_CUDA
int tome_build_has_cuda(void) { return 0; }

tome_status tome_device_count(int *n)
{
    *n = 0;
    tome_set_error(TOME_OK, "this build of tome has no CUDA backend (configure with -DTOME_CUDA=ON)");
    return TOME_OK;
}

tome_status tome_device_get_info(int i, tome_device_info *out)
{
    (void)out;
    return tome_set_error(TOME_ERR_DEVICE, "device %d: this build of tome has no CUDA backend", i);
}
#else
typedef int tome_device_c_unused; /* ISO C forbids an empty translation unit */
#endif
