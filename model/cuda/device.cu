/*
 * model/cuda/device.cu — CUDA device discovery (see tome/device.h).
 *
 * Every CUDA runtime call is checked and turned into a tome_status with the
 * CUDA error string; nothing here aborts. On a machine with the CUDA runtime
 * but no driver or no GPU, tome_device_count() succeeds with 0 devices.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "tome/device.h"
#include "core/error_impl.h"
}

extern "C" int tome_build_has_cuda(void) { return 1; }

extern "C" tome_status tome_device_count(int *n)
{
    *n = 0;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        tome_set_error(TOME_OK, "no usable CUDA device: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        cudaGetLastError(); /* clear the sticky error */
        return TOME_OK;
    }
    *n = count;
    return TOME_OK;
}

extern "C" tome_status tome_device_get_info(int i, tome_device_info *out)
{
    memset(out, 0, sizeof *out);
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, i);
    if (e != cudaSuccess)
        return tome_set_error(TOME_ERR_DEVICE, "device %d: cudaGetDeviceProperties: %s", i, cudaGetErrorString(e));
    out->index = i;
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->total_bytes = p.totalGlobalMem;
    out->multiprocessors = p.multiProcessorCount;
    int prev = 0;
    e = cudaGetDevice(&prev);
    if (e == cudaSuccess) e = cudaSetDevice(i);
    size_t free_b = 0, total_b = 0;
    if (e == cudaSuccess) e = cudaMemGetInfo(&free_b, &total_b);
    cudaSetDevice(prev);
    if (e != cudaSuccess)
        return tome_set_error(TOME_ERR_DEVICE, "device %d: cudaMemGetInfo: %s", i, cudaGetErrorString(e));
    out->free_bytes = free_b;
    return TOME_OK;
}
