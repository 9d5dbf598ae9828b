/*
 * attention/attention_cuda_stub.c — the CUDA attention API in a build
 * without CUDA: every call says so (TOME_ERR_UNSUPPORTED). The real
 * functions are in the .cu files under attention/cuda (attention_cuda.h).
 */
#include "attention/attention_cuda.h"

#ifndef TOME_HAVE_CUDA
#include "core/error_impl.h"

static tome_status no_cuda(void) { return tome_set_error(TOME_ERR_UNSUPPORTED, "attention: this build has no CUDA backend"); }

tome_status tome_attn_cuda_prefill(const tome_attn_cuda_params *p) { (void)p; return no_cuda(); }
tome_status tome_attn_cuda_decode(const tome_attn_cuda_params *p) { (void)p; return no_cuda(); }
size_t tome_attn_cuda_decode_workspace(const tome_attn_cuda_params *p) { (void)p; return 0; }
tome_status tome_attn_cuda_malloc(void **dev, size_t n)
{
    (void)n;
    *dev = NULL;
    return no_cuda();
}
void tome_attn_cuda_free(void *dev) { (void)dev; }
tome_status tome_attn_cuda_upload(void *dev, const void *host, size_t n)
{
    (void)dev, (void)host, (void)n;
    return no_cuda();
}
tome_status tome_attn_cuda_download(void *host, const void *dev, size_t n)
{
    (void)dev, (void)host, (void)n;
    return no_cuda();
}
tome_status tome_attn_cuda_sync(void) { return no_cuda(); }
#else
typedef int tome_attention_cuda_stub_unused; /* ISO C wants a declaration */
#endif
