/*
 * registry.c — named primitives (locks, semaphores, conditions, events, barriers).
 *
 * Their handle is the pointer to the primitive inside its mapping, so embedded and
 * named primitives share one set of functions. This process-local table maps such a
 * pointer back to its segment when the handle is closed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

struct entry {
    const void *obj;
    shoal__seg *seg;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry *entries;
static size_t nentries, capacity;

int shoal__registry_put(const void *obj, shoal__seg *seg)
{
    pthread_mutex_lock(&mu);
    if (nentries == capacity) {
        size_t cap = capacity ? capacity * 2 : 16;
        struct entry *grown = realloc(entries, cap * sizeof(*grown));
        if (!grown) {
            pthread_mutex_unlock(&mu);
            return shoal__err(SHOAL_ENOMEM, "out of memory");
        }
        entries = grown;
        capacity = cap;
    }
    entries[nentries++] = (struct entry){obj, seg};
    pthread_mutex_unlock(&mu);
    return 0;
}

static shoal__seg *lookup(const void *obj, bool take)
{
    shoal__seg *seg = NULL;
    pthread_mutex_lock(&mu);
    for (size_t i = nentries; i-- > 0;) {
        if (entries[i].obj == obj) {
            seg = entries[i].seg;
            if (take)
                entries[i] = entries[--nentries];
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return seg;
}

shoal__seg *shoal__registry_take(const void *obj)
{
    return lookup(obj, true);
}

shoal__seg *shoal__registry_find(const void *obj)
{
    return lookup(obj, false);
}

int shoal__prim_open(void **out, uint32_t kind, const char *what, size_t size,
                     const char *name, int mode, int (*init)(shoal__seg *, void *),
                     void *arg, const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "%s: NULL output pointer", what);
    shoal__seg_spec spec = {
        .kind = kind,
        .what = what,
        .payload_size = size,
        .init = init,
        .arg = arg,
    };
    shoal__seg *seg;
    int rc = shoal__seg_open(&seg, name, mode, &spec, attr);
    if (rc)
        return rc;
    if (seg->hdr->payload_size < size) {
        shoal__seg_close(seg);
        return shoal__err(SHOAL_ECORRUPT, "%s \"%s\": payload too small", what, name);
    }
    if ((rc = shoal__registry_put(seg->payload, seg))) {
        shoal__seg_close(seg);
        return rc;
    }
    *out = seg->payload;
    return 0;
}

const char *shoal__prim_noun(const void *prim, const char *kind)
{
    static _Thread_local char buf[SHOAL_NAME_MAX + 32];
    shoal__seg *seg = prim ? shoal__registry_find(prim) : NULL;
    if (!seg)
        return kind;
    snprintf(buf, sizeof(buf), "%s \"%s\"", kind, seg->name);
    return buf;
}

int shoal__prim_check(const void *prim, bool initialised, const char *kind,
                      const char *op)
{
    if (!prim)
        return shoal__err(SHOAL_EINVAL, "%s %s: %s is NULL", kind, op, kind);
    if (!initialised)
        return shoal__err(SHOAL_EINVAL, "%s %s: %p is not initialised", kind, op, prim);
    return 0;
}

int shoal__prim_close(const void *obj)
{
    shoal__seg *seg = shoal__registry_take(obj);
    if (!seg)
        return shoal__err(SHOAL_EINVAL, "not a named object opened by this process");
    shoal__seg_close(seg);
    return 0;
}

const char *shoal_sync_name(const void *prim)
{
    shoal__seg *seg = prim ? shoal__registry_find(prim) : NULL;
    return seg ? seg->name : NULL;
}
