/* type.c — the scalar typecodes, kind names and the FNV-1a hash. */
#include <string.h>

#include "internal.h"

uint64_t shoal_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define SCALAR(code, tname, sz)                                                          \
    {                                                                                    \
        tname, 0, sz, sz, code, 0, NULL                                                  \
    }

static shoal_type scalars[] = {
    SCALAR('b', "int8", 1),   SCALAR('B', "uint8", 1),   SCALAR('h', "int16", 2),
    SCALAR('H', "uint16", 2), SCALAR('i', "int32", 4),   SCALAR('I', "uint32", 4),
    SCALAR('l', "int64", 8),  SCALAR('L', "uint64", 8),  SCALAR('q', "int64", 8),
    SCALAR('Q', "uint64", 8), SCALAR('f', "float32", 4), SCALAR('d', "float64", 8),
    SCALAR('c', "char", 1),
};

__attribute__((constructor)) static void scalars_init(void)
{
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
        scalars[i].layout_hash =
            shoal_fnv1a(SHOAL_FNV_OFFSET, scalars[i].name, strlen(scalars[i].name));
}

const shoal_type *shoal_typecode(char code)
{
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
        if (scalars[i].typecode == code)
            return &scalars[i];
    return NULL;
}

const char *shoal_kind_name(int kind)
{
    static const char *const names[] = {
        [SHOAL_KIND_SHM] = "shm",
        [SHOAL_KIND_VALUE] = "value",
        [SHOAL_KIND_ARRAY] = "array",
        [SHOAL_KIND_LOCK] = "lock",
        [SHOAL_KIND_RLOCK] = "rlock",
        [SHOAL_KIND_SEMAPHORE] = "semaphore",
        [SHOAL_KIND_BOUNDED_SEMAPHORE] = "bounded-semaphore",
        [SHOAL_KIND_CONDITION] = "condition",
        [SHOAL_KIND_EVENT] = "event",
        [SHOAL_KIND_BARRIER] = "barrier",
        [SHOAL_KIND_QUEUE] = "queue",
        [SHOAL_KIND_PIPE] = "pipe",
    };
    if (kind <= 0 || kind >= (int)(sizeof(names) / sizeof(names[0])) || !names[kind])
        return "unknown";
    return names[kind];
}

void shoal__type_from_header(shoal_type *t, const struct shoal__header *h)
{
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
        if (!strcmp(scalars[i].name, h->type_name)) {
            *t = scalars[i];
            return;
        }
    *t = (shoal_type){.name = h->type_name,
                      .layout_hash = h->layout_hash,
                      .size = (uint32_t)h->elem_size,
                      .align = h->elem_align};
}

int shoal__type_check(const shoal_type *t, const char *what, const char *name,
                      uint32_t max_size)
{
    if (!t || !t->name || !t->name[0] || strlen(t->name) >= 64 || t->size == 0 ||
        t->size > max_size || t->align == 0 || (t->align & (t->align - 1)) ||
        t->align > 64 || t->size % t->align)
        return shoal__err(
            SHOAL_EINVAL,
            "%s \"%s\": element type must have a name (< 64 bytes), a size "
            "(1 to %u bytes, a multiple of its alignment) and a power-of-two "
            "alignment <= 64",
            what, name ? name : "(anonymous)", max_size);
    return 0;
}

int shoal__seg_type(const shoal__seg *seg, const char *what, shoal_type *t)
{
    const struct shoal__header *h = seg->hdr;
    shoal__type_from_header(t, h);
    bool scalar = t->typecode != 0;
    if (h->elem_size == 0 || h->elem_size > UINT32_MAX ||
        (scalar && (h->elem_size != t->size || h->elem_align != t->align)) ||
        shoal__type_check(t, what, seg->name, UINT32_MAX) != 0)
        return shoal__err(
            SHOAL_ECORRUPT,
            "%s \"%s\": header names an impossible element type (%llu bytes, "
            "alignment %u; corrupt)",
            what, seg->name, (unsigned long long)h->elem_size, h->elem_align);
    return 0;
}
