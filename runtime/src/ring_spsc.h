/*
 * ring_spsc.h — the hot half of the single-producer single-consumer ring (ring_spsc.c
 * has the design and the rest): the index helpers and the try forms of one put and
 * one get, inline so that ring.c calls them directly on an SPSC ring, without the
 * table of operations.
 */
#ifndef SHOAL_RING_SPSC_H
#define SHOAL_RING_SPSC_H

#include "ring_internal.h"

/* The ring looked empty at head hd: SHOAL_EAGAIN, SHOAL_EEOF (shut down, no put in
 * flight: see ring_spsc.c), or 1 when a message has arrived after all (tail_cache). */
int shoal__spsc_empty(shoal__ring *r, uint64_t hd);

/* ---- indexes ----------------------------------------------------------------------- */

/* Free slots at tail t, refreshing the cached head only when it shows fewer than
 * `want`. The cache may be stale (older), never ahead. */
static inline uint64_t sp_room(shoal__ring *r, uint64_t t, uint64_t want)
{
    uint64_t cap = r->g.capacity;
    if (t - r->head_cache > cap - want) {
        r->head_cache = atomic_load_explicit(&r->h->head, memory_order_acquire);
        if (t - r->head_cache >= cap)
            return 0;
    }
    return cap - (t - r->head_cache);
}

/* Marks a put in flight and checks that the ring is still open (see the top):
 * 0, or SHOAL_ECLOSED with nothing marked. */
static inline int sp_enter(shoal__ring *r, bool fenced)
{
    if (SHOAL_UNLIKELY(r->put_gen != shoal__ring_fork_gen)) {
        uint32_t me = shoal__seg_owner(r->seg);
        r->put_id = me ? me : UINT32_MAX; /* UINT32_MAX: no owner id (full table) */
        r->put_gen = shoal__ring_fork_gen;
    }
    atomic_store_explicit(&r->h->put_busy, r->put_id, memory_order_relaxed);
    store_load_order(fenced);
    if (SHOAL_LIKELY(atomic_load_explicit(&r->h->closed, memory_order_relaxed) == 0))
        return 0;
    atomic_store_explicit(&r->h->put_busy, 0, memory_order_release);
    wake_after_store(r, fenced, false); /* a consumer may wait for this put */
    return err_closed(r);
}

/* Publishes the tail (t -> t + n) and ends the put sp_enter began. */
static inline void sp_publish(shoal__ring *r, bool fenced, uint64_t t, uint64_t n)
{
    atomic_store_explicit(&r->h->tail, t + n, memory_order_release);
    shoal__test_point("queue.published");
    atomic_store_explicit(&r->h->put_busy, 0, memory_order_release);
    wake_after_store(r, fenced, false);
}

/* Messages available at head hd (refreshing the cached tail only when it shows fewer
 * than `want`), or 0 with *why: SHOAL_EAGAIN or SHOAL_EEOF. */
static inline uint64_t sp_avail(shoal__ring *r, uint64_t hd, uint64_t want, int *why)
{
    if (r->tail_cache < hd + want) {
        r->tail_cache = atomic_load_explicit(&r->h->tail, memory_order_acquire);
        if (r->tail_cache == hd && (*why = shoal__spsc_empty(r, hd)) != 1)
            return 0;
    }
    return r->tail_cache - hd;
}

static inline void sp_consume(shoal__ring *r, uint64_t hd, uint64_t n)
{
    r->peek = NULL; /* whatever was peeked is consumed now */
    atomic_store_explicit(&r->h->head, hd + n, memory_order_release);
    wake_after_store(r, ring_fenced(r), true);
}

/* A message's length as its slot records it. */
static inline size_t sp_len(const shoal__ring *r, const unsigned char *slot)
{
    uint32_t len;
    if (!is_var(r))
        return r->g.elem_size;
    memcpy(&len, slot, sizeof(len));
    return len;
}

static inline void sp_set_len(const shoal__ring *r, unsigned char *slot, size_t len)
{
    if (is_var(r)) {
        uint32_t l = (uint32_t)len;
        memcpy(slot, &l, sizeof(l));
    }
}

/* The free slot at the tail: 0 (*t, *slot), SHOAL_EAGAIN, or SHOAL_ECLOSED (a full
 * ring says so at once; the exact check is sp_enter's). */
static inline int sp_back(shoal__ring *r, uint64_t *t, unsigned char **slot)
{
    *t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
    if (sp_room(r, *t, 1) == 0)
        return atomic_load_explicit(&r->h->closed, memory_order_relaxed) ? err_closed(r)
                                                                         : SHOAL_EAGAIN;
    *slot = slot_at(r, *t);
    return 0;
}

/* The message at the head, the one read path of get and peek: 0 (*hd, *msg — its
 * bytes —, *len), SHOAL_EAGAIN, SHOAL_EEOF, or SHOAL_ECORRUPT when its recorded length
 * exceeds max_msg. */
static inline int sp_front(shoal__ring *r, uint64_t *hd, unsigned char **msg, size_t *len)
{
    int why;
    *hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    if (sp_avail(r, *hd, 1, &why) == 0)
        return why;
    unsigned char *slot = slot_at(r, *hd);
    *len = sp_len(r, slot);
    *msg = slot + r->g.data_off;
    return SHOAL_UNLIKELY(*len > r->g.max_msg) ? err_bad_len(r, *len) : 0;
}

/* ---- one put, one get ------------------------------------------------------------- */

/* One message: 0, SHOAL_EAGAIN (full), SHOAL_ECLOSED. */
static inline int sp_put1(shoal__ring *r, const void *msg, size_t len)
{
    uint64_t t;
    unsigned char *slot = NULL;
    int rc = sp_back(r, &t, &slot);
    if (rc)
        return rc;
    bool fenced = ring_fenced(r);
    if ((rc = sp_enter(r, fenced)))
        return rc;
    sp_set_len(r, slot, len);
    copy_msg(slot + r->g.data_off, msg, len);
    shoal__test_point("queue.reserved");
    sp_publish(r, fenced, t, 1);
    return 0;
}

/* One message into buf (cap bytes), its length in *len: 0, SHOAL_EAGAIN, SHOAL_EEOF,
 * SHOAL_EMSGSIZE (buf too small: *len says how much is needed), SHOAL_ECORRUPT. */
static inline int sp_get1(shoal__ring *r, void *buf, size_t cap, size_t *len)
{
    uint64_t hd;
    unsigned char *msg = NULL;
    size_t n = 0;
    int rc = sp_front(r, &hd, &msg, &n);
    if (rc)
        return rc;
    *len = n;
    if (n > cap)
        return err_small(r, n, cap);
    copy_msg(buf, msg, n);
    shoal__test_point("queue.claimed");
    sp_consume(r, hd, 1);
    return 0;
}

static inline int sp_try_put(shoal__ring *r, void *arg)
{
    const struct put_args *a = arg;
    return sp_put1(r, a->msg, a->len);
}

static inline int sp_try_get(shoal__ring *r, void *arg)
{
    const struct get_args *a = arg;
    return sp_get1(r, a->buf, a->cap, a->len);
}

#endif
