/* layout.c — layout descriptors stored in segment headers. */
#include "internal.h"

size_t shoal__layout_encode(const shoal_type *type, unsigned char *buf, size_t cap)
{
    (void)type;
    (void)buf;
    (void)cap;
    return 0;
}
