/*
 * array.c — Array: a fixed number of typed elements in shared memory.
 *
 * Payload: the control block (lock), then the elements, aligned for their type.
 * Element access is bounds-checked and, when the array has a lock, takes it, as
 * multiprocessing.Array's synchronized wrapper does. Integer elements also have a
 * lock-free atomic add.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct shoal_array {
    shoal__seg *seg;
    shoal_type type;
    shoal_lock *lock;
    bool own_lock;
    size_t count;
    unsigned char *elems;
};

static size_t elems_offset(const shoal_type *t)
{
    size_t a = t->align ? t->align : 1;
    return (sizeof(struct shoal__objctl) + a - 1) & ~(a - 1);
}

struct array_init {
    const shoal_type *type;
    size_t count;
    const void *init;
};

static int array_init_cb(shoal__seg *seg, void *arg)
{
    struct array_init *ai = arg;
    int rc = shoal__objlock_init(seg);
    if (!rc && ai->init)
        memcpy(seg->payload + elems_offset(ai->type), ai->init,
               ai->count * ai->type->size);
    return rc;
}

int shoal_array_open(shoal_array **out, const char *name, int mode,
                     const shoal_type *type, size_t count, const void *init,
                     const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "array: NULL output pointer");
    *out = NULL;
    /* Without a type, an existing array is opened as whatever type it holds. */
    int rc;
    if ((type || mode != SHOAL_OPEN) &&
        (rc = shoal__type_check(type, "array", name, UINT32_MAX)))
        return rc;
    if (count == 0 && mode != SHOAL_OPEN)
        return shoal__err(SHOAL_EINVAL, "array: cannot create with 0 elements");
    if (type && count > (UINT64_MAX / 2) / type->size)
        return shoal__err(SHOAL_ENOSPC, "array: %zu elements of %u bytes is too large",
                          count, type->size);
    shoal_array *a = calloc(1, sizeof(*a));
    if (!a)
        return shoal__err(SHOAL_ENOMEM, "out of memory");
    struct array_init ai = {type, count, init};
    shoal__seg_spec spec = {
        .kind = SHOAL_KIND_ARRAY,
        .what = "array",
        .type = type,
        .count = count,
        .check_count = count != 0,
        .payload_size = type ? elems_offset(type) + count * type->size : 0,
        .init = array_init_cb,
        .arg = &ai,
    };
    if ((rc = shoal__objlock_spec(&spec, attr)) ||
        (rc = shoal__seg_open(&a->seg, name, mode, &spec, attr))) {
        free(a);
        return rc;
    }
    if (!type && (rc = shoal__seg_type(a->seg, "array", &a->type)))
        goto fail;
    if (type)
        a->type = *type;
    /* count x size must fit the payload without overflowing anything on the way. */
    uint64_t bytes, need, count_h = a->seg->hdr->count;
    if (count_h == 0 || count_h > SIZE_MAX ||
        __builtin_mul_overflow(count_h, (uint64_t)a->type.size, &bytes) ||
        __builtin_add_overflow(bytes, (uint64_t)elems_offset(&a->type), &need) ||
        a->seg->hdr->payload_size < need) {
        rc = shoal__err(SHOAL_ECORRUPT,
                        "array \"%s\": header says %llu elements of %u bytes, which do "
                        "not fit its %llu-byte payload (corrupt)",
                        a->seg->name, (unsigned long long)count_h, a->type.size,
                        (unsigned long long)a->seg->hdr->payload_size);
        goto fail;
    }
    a->count = (size_t)count_h;
    a->elems = a->seg->payload + elems_offset(&a->type);
    if ((rc = shoal__objlock_resolve(a->seg, attr, &a->lock, &a->own_lock)))
        goto fail;
    *out = a;
    return 0;
fail:
    shoal__seg_close(a->seg);
    free(a);
    return rc;
}

int shoal_array_close(shoal_array *a)
{
    if (!a)
        return SHOAL_EINVAL;
    shoal__objlock_close(a->lock, a->own_lock);
    shoal__seg_close(a->seg);
    free(a);
    return 0;
}

const char *shoal_array_name(const shoal_array *a)
{
    return a->seg->name;
}

const shoal_type *shoal_array_type(const shoal_array *a)
{
    return &a->type;
}

size_t shoal_array_len(const shoal_array *a)
{
    return a->count;
}

void *shoal_array_data(shoal_array *a)
{
    return a->elems;
}

shoal_lock *shoal_array_get_lock(shoal_array *a)
{
    return a->lock;
}

static int check_range(const shoal_array *a, size_t start, size_t n)
{
    if (start > a->count || n > a->count - start)
        return shoal__err(SHOAL_ERANGE,
                          "array \"%s\": elements [%zu, %zu) outside [0, %zu)",
                          a->seg->name, start, start + n, a->count);
    return 0;
}

int shoal_array_read(shoal_array *a, size_t start, size_t n, void *out)
{
    int rc = check_range(a, start, n);
    if (rc)
        return rc;
    bool taken = shoal__objlock_acquire(a->seg, a->lock);
    memcpy(out, a->elems + start * a->type.size, n * a->type.size);
    shoal__objlock_release(a->lock, taken);
    return 0;
}

int shoal_array_write(shoal_array *a, size_t start, size_t n, const void *in)
{
    int rc = check_range(a, start, n);
    if (rc)
        return rc;
    bool taken = shoal__objlock_acquire(a->seg, a->lock);
    memcpy(a->elems + start * a->type.size, in, n * a->type.size);
    shoal__objlock_release(a->lock, taken);
    return 0;
}

int shoal_array_get(shoal_array *a, size_t index, void *out)
{
    return shoal_array_read(a, index, 1, out);
}

int shoal_array_set(shoal_array *a, size_t index, const void *in)
{
    return shoal_array_write(a, index, 1, in);
}

int shoal_array_add(shoal_array *a, size_t index, int64_t delta, int64_t *old)
{
    char c = a->type.typecode;
    if (!c || c == 'f' || c == 'd')
        return shoal__err(SHOAL_ETYPE,
                          "array \"%s\": atomic add needs an integer typecode, "
                          "the array holds %s",
                          a->seg->name, a->type.name);
    int rc = check_range(a, index, 1);
    if (rc)
        return rc;
    uint64_t prev = shoal__atomic_rmw(a->elems + index * a->type.size, a->type.size, 0,
                                      (uint64_t)delta);
    if (old)
        *old = shoal__extend(c, prev);
    return 0;
}
