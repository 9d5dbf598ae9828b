/* tests/test_device.c — device discovery works (and never fails hard) with
 * or without CUDA in the build and with or without a GPU in the machine. */
#include "tome/device.h"
#include "tt.h"

static void test_device_count_is_clean(void)
{
    int n = -1;
    TT_OK(tome_device_count(&n));
    TT_CHECK(n >= 0);
    if (n == 0) TT_CHECK(tome_last_error()[0] != '\0'); /* says why */
    for (int i = 0; i < n; i++) {
        tome_device_info info;
        TT_OK(tome_device_get_info(i, &info));
        TT_CHECK(info.total_bytes > 0);
        TT_CHECK(info.cc_major >= 5);
        TT_CHECK(info.name[0] != '\0');
    }
}

static void test_bad_device_index_is_an_error(void)
{
    tome_device_info info;
    TT_STATUS(tome_device_get_info(4096, &info), TOME_ERR_DEVICE);
    TT_CONTAINS(tome_last_error(), "device 4096");
}

int main(void)
{
    TT_RUN(test_device_count_is_clean);
    TT_RUN(test_bad_device_index_is_an_error);
    return tt_finish();
}
