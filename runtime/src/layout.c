/* layout.c — layout descriptors stored in segment headers. */
#include "internal.h"

size_t shoal__layout_encode(const shoal_type *type, unsigned char *buf, size_t cap)
{
    (void)type;
    (void)buf;
    (void)cap;
    return 0;
}

int shoal__layout_print(const unsigned char *desc, size_t n, const void *data, FILE *out)
{
    (void)desc;
    (void)n;
    (void)data;
    (void)out;
    return -1;
}
