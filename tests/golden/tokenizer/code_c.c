/* ring buffer with a power-of-two capacity */
#include <stdint.h>
#include <string.h>

typedef struct ring { uint8_t *buf; size_t cap, head, tail; } ring;

static int ring_push(ring *r, const void *src, size_t n)
{
    if (r->cap - (r->head - r->tail) < n) return -1;   // full
    for (size_t i = 0; i < n; i++)
        r->buf[(r->head + i) & (r->cap - 1)] = ((const uint8_t *)src)[i];
    r->head += n;
    return 0;
}

int main(int argc, char **argv) {
	printf("%s: %d args\n", argv[0], argc - 1);
	return argc > 1 ? 0x1F : 0;
}
