/*
 * model/backend_cuda_stub.c — tome_backend_cuda() in a build without CUDA:
 * NULL, and the reason in tome_last_error(). The real backend is
 * model/cuda/backend_cuda.cu (docs/cuda.md).
 */
#include "model/backend_impl.h"

#ifndef TOME_HAVE_CUDA
#include "core/error_impl.h"

const tome_backend *tome_backend_cuda(void)
{
    tome_set_error(TOME_ERR_UNSUPPORTED, "this build of tome has no CUDA backend (configure with -DTOME_CUDA=ON)");
    return NULL;
}
#else
/* keeps the translation unit non-empty (ISO C) in a CUDA build */
typedef int tome_backend_cuda_stub_unused;
#endif
