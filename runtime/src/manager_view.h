/*
 * manager_view.h — the broker's read view: its format in shared memory, shared by the
 * broker that writes it (broker/view.c) and the clients that read it (manager_view.c,
 * used by manager.c). The mechanism is described in manager_view.c's top comment.
 *
 * Layout of the segment NAME:view (a SharedMemory block beside the broker's shm://NAME):
 *
 *   header    one shoal_view_header (magic, version, sizes, offsets) and, in the next
 *             64 bytes, the liveness lock
 *   gens      nobjs 64-bit words: object slot i's generation
 *   slots     nslots entries of SHOAL_VIEW_SLOT bytes: a cached reply each
 *
 * Every value a reader takes from the segment is checked against the sizes in the
 * header, and the header against the segment's size: a corrupt or foreign view is
 * not used.
 */
#ifndef SHOAL_MANAGER_VIEW_H
#define SHOAL_MANAGER_VIEW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shoal/sync.h"

#define SHOAL_VIEW_MAGIC   0x3157454956484853ull /* "SHHVIEW1" */
#define SHOAL_VIEW_VERSION 1
#define SHOAL_VIEW_SLOT    256 /* bytes per cached reply */
#define SHOAL_VIEW_WINDOW  8   /* the slots a key may be in: hash % nslots onwards */
#define SHOAL_VIEW_SLOTS   8192
#define SHOAL_VIEW_OBJS    16384 /* objects beyond these are never published */

typedef struct shoal_view_header {
    uint64_t magic;
    uint32_t version;
    uint32_t slot_size;
    uint32_t nslots; /* a power of two */
    uint32_t nobjs;
    uint64_t gens_off, slots_off; /* from the start of the payload */
    uint64_t size;                /* bytes of the whole view */
    uint8_t pad_[16];
    /* Held by a thread of the broker for as long as it runs: a reader trusts the
     * view only while the lock's word names a holder (the kernel clears it when the
     * broker dies; the broker releases it when it stops). */
    shoal_lock live;
} shoal_view_header;

_Static_assert(offsetof(shoal_view_header, live) == 64, "the liveness lock's place");

/* One cached reply. seq is a seqlock: odd while the broker writes the slot. */
typedef struct shoal_view_slot {
    _Atomic uint32_t seq;
    _Atomic uint16_t klen, rlen; /* the key's bytes, then the reply's, in data */
    _Atomic uint32_t obj;        /* the object's slot in gens (0: the slot is empty) */
    uint32_t pad_;
    _Atomic uint64_t hash;
    _Atomic uint64_t gen; /* the object's generation the reply was read at */
    uint8_t data[SHOAL_VIEW_SLOT - 32];
} shoal_view_slot;

_Static_assert(sizeof(shoal_view_slot) == SHOAL_VIEW_SLOT, "a view slot's size");

/* The bytes of a view of nobjs objects and nslots slots. */
static inline size_t shoal__view_size(uint32_t nobjs, uint32_t nslots)
{
    return sizeof(shoal_view_header) + (size_t)nobjs * 8 +
           (size_t)nslots * SHOAL_VIEW_SLOT;
}

/*
 * The cache key of an encoded Request: its bytes without the fields that do not
 * change its result (id, timeout_ms, thread), into out[cap]. Returns the key's
 * length, or 0 when the request cannot be cached (a batch, undecodable, longer than
 * cap); *id: the request's id.
 */
size_t shoal__view_key(const void *req, size_t len, uint8_t *out, size_t cap,
                       uint64_t *id);
/* An encoded Reply without its id field, into out[cap]: its length, or 0 (too long
 * or undecodable). */
size_t shoal__view_reply(const void *reply, size_t len, uint8_t *out, size_t cap);
/* The hash of a key (FNV-1a). */
uint64_t shoal__view_hash(const uint8_t *key, size_t len);

/*
 * The names of the pure operations: those flagged F_PURE in broker/core.c's ops[] (for
 * some kind of object), whose replies the broker may publish. A client looks in the
 * view only for a request of one of these (a write skips the lookup); a name here
 * that some kind also uses for a write (a queue's get) costs that write a lookup
 * that misses. broker__view_ops_check (core.c) checks ops[] against this list, and
 * broker.view fails if they differ.
 */
#define SHOAL_VIEW_PURE_OPS                                                              \
    "get", "contains", "keys", "values", "items", "index", "count", "len", "copy",       \
        "qsize", "empty", "full", "locked", "value", "is_set", "parties", "n_waiting",   \
        "broken"

/* Whether op[n] (not NUL-terminated) names a pure operation. Called on every call's
 * path: the set of the names' first letters (made at the first call) rules out most
 * writes at once, a comparison of first letters most of the other names. */
static inline bool shoal__view_pure(const char *op, size_t n)
{
    static const char *const pure[] = {SHOAL_VIEW_PURE_OPS};
    static uint64_t firsts; /* bit c & 63 for each first letter c; 0: not made yet */
    uint64_t f = __atomic_load_n(&firsts, __ATOMIC_RELAXED);
    if (!f) {
        for (size_t i = 0; i < sizeof(pure) / sizeof(pure[0]); i++)
            f |= 1ull << (pure[i][0] & 63);
        __atomic_store_n(&firsts, f, __ATOMIC_RELAXED); /* the same value in any thread */
    }
    if (!n || !(f >> (op[0] & 63) & 1))
        return false;
    for (size_t i = 0; i < sizeof(pure) / sizeof(pure[0]); i++)
        if (op[0] == pure[i][0] && strlen(pure[i]) == n && !memcmp(op, pure[i], n))
            return true;
    return false;
}

/* A client's view of a broker (manager_view.c). */
typedef struct shoal__view shoal__view;
/* Opens the view of the broker on shm://name, or NULL (none, not valid, or the
 * broker is not running: reads then go to the broker). */
shoal__view *shoal__view_open(const char *name, const shoal_attr *attr);
void shoal__view_close(shoal__view *v);
/* Whether the broker that published v still runs (its liveness lock is held). */
bool shoal__view_live(shoal__view *v);
/*
 * Looks up key[klen] (hash h): the cached reply's length (without its id) copied to
 * out[cap], or 0 when the view has no current reply for it (not cached, changed since,
 * being written, or the broker is not running).
 */
size_t shoal__view_lookup(shoal__view *v, const uint8_t *key, size_t klen, uint64_t h,
                          uint8_t *out, size_t cap);

#endif
