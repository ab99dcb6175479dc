/*
 * manager_view.c — reading the broker's read view (manager_view.h has the format).
 *
 * A broker listening on shm://NAME publishes the replies of its pure reads (a dict
 * get, a list len, an Event is_set: operations whose result depends on nothing but
 * the object's state and the arguments) in the SharedMemory block NAME:view, so that
 * a client on the same host answers such a read from memory instead of a round trip.
 * broker/view.c writes it; this file reads it.
 *
 * Keys. A cached reply is filed under its request's encoding without the fields
 * that do not change the result (id, timeout_ms, thread): shoal__view_key, the one
 * place both sides make it — the broker from the bytes it received, a client from
 * the bytes it is about to send, so whichever encoder made them (the C packer or the
 * Python extension's), a request finds what the same encoding published. The value
 * is the Reply without its id; a hit puts the request's id in front of it.
 *
 * Generations. Every object the broker has published for has a slot in the gens
 * table, holding its generation: a value of one broker-wide counter, taken afresh at
 * each change of the object (before the change's reply goes out) and when the slot
 * goes to another object. A cached reply names the object's slot and the generation
 * it was read at; it is current while gens[slot] still holds that generation. Since
 * every generation is taken from the same counter, a slot reused by another object
 * can never match an old reply.
 *
 * Reading a slot (shoal__view_lookup). The key hashes to a window of SHOAL_VIEW_WINDOW
 * slots. For each: read seq (odd: being written — a miss, no waiting), copy the
 * lengths, the key and the reply out, re-read seq (changed: a miss), compare the key,
 * then load the object's generation and the liveness word. So the reply is returned
 * only if, at the moment of that last check, the object had not changed since it was
 * read and the broker was alive: a write's reply reaches its client only after the
 * generation moved, so any process that learned of the write (from its own reply or
 * from that client) misses the old reply and asks the broker.
 *
 * Liveness. A thread of the broker holds the robust lock in the header for as long
 * as the broker runs. If the broker dies the kernel clears the holder in the lock's
 * word (FUTEX_OWNER_DIED); a broker that stops releases it first. A reader checks
 * the word after copying: one load. A restarted broker makes a new NAME:view (the
 * old one unlinked): a connection made after that maps the new one, and one that
 * still maps the old one only ever misses.
 *
 * Read-your-writes is the client's part (manager.c): it consults the view only while
 * no request of its own is still waiting for its reply.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "manager_view.h"
#include "pb_wire.h"
#include "platform.h"

struct shoal__view {
    shoal__seg *seg;
    shoal_view_header *h;
    _Atomic uint64_t *gens;
    shoal_view_slot *slots;
    uint32_t nslots, nobjs;
};

uint64_t shoal__view_hash(const uint8_t *key, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

/* Appends from[0 .. to - from) to out[cap] at *n: whether it fitted. */
static bool keep(uint8_t *out, size_t cap, size_t *n, const uint8_t *from,
                 const uint8_t *to)
{
    size_t k = (size_t)(to - from);
    if (k > cap - *n)
        return false;
    memcpy(out + *n, from, k);
    *n += k;
    return true;
}

/* Copies msg[len] to out[cap] without the fields of `drop` (a bit per field number
 * below 64), each run of kept fields in one copy. Returns the length, or 0 when a
 * field does not decode, a field `stop` (a bit per number) is there, or out is too
 * small; *id: field 1's value. */
static size_t strip(const void *msg, size_t len, uint64_t drop, uint64_t stop,
                    uint8_t *out, size_t cap, uint64_t *id)
{
    pb_in in = {msg, (const uint8_t *)msg + len};
    const uint8_t *run = in.p; /* the kept fields not copied yet start here */
    size_t n = 0;
    *id = 0;
    while (in.p < in.end) {
        const uint8_t *at = in.p;
        pb_field f = {0};
        if (!pb_get_field(&in, &f))
            return 0;
        uint64_t bit = f.number < 64 ? 1ull << f.number : 0;
        if (f.number == 1 && f.wt == WT_VARINT)
            *id = f.value;
        if (bit & stop)
            return 0;
        if (bit & drop) {
            if (!keep(out, cap, &n, run, at))
                return 0;
            run = in.p;
        }
    }
    return keep(out, cap, &n, run, in.p) ? n : 0;
}

size_t shoal__view_key(const void *req, size_t len, uint8_t *out, size_t cap,
                       uint64_t *id)
{
    return strip(req, len, (1u << 1) | (1u << 6) | (1u << 7), 1u << 8, out, cap, id);
}

size_t shoal__view_reply(const void *reply, size_t len, uint8_t *out, size_t cap)
{
    uint64_t id;
    return strip(reply, len, 1u << 1, 0, out, cap, &id);
}

/* Whether the header h of a payload of `size` bytes describes a view this code reads,
 * every part of it inside the payload. */
static bool header_ok(const shoal_view_header *h, size_t size)
{
    if (size < sizeof(*h) || h->magic != SHOAL_VIEW_MAGIC ||
        h->version != SHOAL_VIEW_VERSION || h->slot_size != SHOAL_VIEW_SLOT ||
        !h->nslots || (h->nslots & (h->nslots - 1)) || h->nslots > (1u << 24) ||
        !h->nobjs || h->nobjs > (1u << 24))
        return false;
    uint64_t gens_end = h->gens_off + (uint64_t)h->nobjs * 8;
    uint64_t slots_end = h->slots_off + (uint64_t)h->nslots * SHOAL_VIEW_SLOT;
    return h->gens_off >= sizeof(*h) && h->gens_off % 8 == 0 && gens_end <= size &&
           h->slots_off >= sizeof(*h) && h->slots_off % 8 == 0 && slots_end <= size &&
           (slots_end <= h->gens_off || gens_end <= h->slots_off) && h->size <= size;
}

shoal__view *shoal__view_open(const char *name, const shoal_attr *attr)
{
    char vname[SHOAL_NAME_MAX + 16];
    snprintf(vname, sizeof(vname), "%s:view", name);
    shoal__seg_spec spec = {.kind = SHOAL_KIND_SHM, .what = "broker view"};
    shoal__view *v = strlen(vname) <= SHOAL_NAME_MAX ? calloc(1, sizeof(*v)) : NULL;
    if (!v || shoal__seg_open(&v->seg, vname, SHOAL_OPEN, &spec, attr) < 0) {
        free(v);
        shoal__err_clear(); /* no view: reads go to the broker */
        return NULL;
    }
    shoal_view_header *h = (shoal_view_header *)v->seg->payload;
    if (!header_ok(h, v->seg->hdr->payload_size)) {
        shoal__view_close(v);
        return NULL;
    }
    v->h = h;
    v->nslots = h->nslots;
    v->nobjs = h->nobjs;
    v->gens = (_Atomic uint64_t *)(v->seg->payload + h->gens_off);
    v->slots = (shoal_view_slot *)(v->seg->payload + h->slots_off);
    return v;
}

bool shoal__view_live(shoal__view *v)
{
    return v && shoal__lock_live(&v->h->live);
}

void shoal__view_close(shoal__view *v)
{
    if (!v)
        return;
    shoal__seg_close(v->seg);
    free(v);
}

/* Copies slot s if it holds key (hash h) and is not being written: the reply's
 * length in out, 0 otherwise; *obj, *gen: the object slot and generation it names. */
static size_t copy_slot(shoal_view_slot *s, const uint8_t *key, size_t klen, uint64_t h,
                        uint8_t *out, size_t cap, uint32_t *obj, uint64_t *gen)
{
    uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
    if ((seq & 1) || atomic_load_explicit(&s->hash, memory_order_relaxed) != h ||
        atomic_load_explicit(&s->klen, memory_order_relaxed) != klen)
        return 0;
    size_t rlen = atomic_load_explicit(&s->rlen, memory_order_relaxed);
    *obj = atomic_load_explicit(&s->obj, memory_order_relaxed);
    *gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
    if (!rlen || rlen > cap || klen + rlen > sizeof(s->data))
        return 0;
    bool same = memcmp(s->data, key, klen) == 0;
    memcpy(out, s->data + klen, rlen);
    atomic_thread_fence(memory_order_acquire);
    if (!same || atomic_load_explicit(&s->seq, memory_order_relaxed) != seq)
        return 0;
    return rlen;
}

size_t shoal__view_lookup(shoal__view *v, const uint8_t *key, size_t klen, uint64_t h,
                          uint8_t *out, size_t cap)
{
    if (!v || klen > sizeof(v->slots->data))
        return 0;
    for (uint32_t i = 0; i < SHOAL_VIEW_WINDOW; i++) {
        shoal_view_slot *s = &v->slots[(h + i) & (v->nslots - 1)];
        uint32_t obj;
        uint64_t gen;
        size_t n = copy_slot(s, key, klen, h, out, cap, &obj, &gen);
        if (!n)
            continue;
        /* after the copy (copy_slot's fence): the object unchanged, the broker alive */
        if (!obj || obj >= v->nobjs ||
            atomic_load_explicit(&v->gens[obj], memory_order_acquire) != gen ||
            !shoal__lock_live(&v->h->live))
            return 0;
        return n;
    }
    return 0;
}
