/*
 * ring_spsc.c — the single-producer single-consumer ring (its table of operations is
 * shoal__ring_spsc_ops; ring.c holds geometry, attaching, waiting and dispatch).
 *
 * Slots are dense (a bare array of elements; variable-size: a 32-bit length, padded to
 * 8 bytes, before each message) and have no per-slot state: the head and tail indexes,
 * on separate cache lines, say everything. The producer writes the slot, then
 * publishes the tail with a compare-and-swap that fails once shutdown has sealed the
 * tail (bit 63), so shutdown is exact: a put either lands before the seal or reports
 * SHOAL_ECLOSED. The consumer copies the slot, then publishes the head. A producer
 * killed before publishing leaves nothing; a consumer killed before publishing leaves
 * the message for the next consumer.
 *
 * Each side keeps a cached copy of the other side's index (head_cache, tail_cache in
 * the process's view): a hint that is never ahead of the real value, refreshed only
 * when it shows too little room or too few messages, so the common put or get touches
 * the other side's cache line once per many messages. A loan is the slot at the tail
 * (one at a time), a peek the slot at the head, remembered in the view until commit or
 * release.
 */
#include "ring_internal.h"

/* ---- layout ------------------------------------------------------------------------ */

static void sp_geom(shoal__ring_geom *g, uint32_t align)
{
    bool var = g->flags & SHOAL__RING_VAR;
    g->data_off = var ? 8 : 0;
    g->stride = (uint32_t)round_up(g->data_off + g->max_msg, var ? 8 : align);
}

static void sp_format(unsigned char *slots, const shoal__ring_geom *g)
{
    (void)slots, (void)g; /* zero-filled indexes are an empty ring */
}

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

/* Publishes the tail (t -> t + n); fails only if shutdown sealed it. */
static int sp_publish(shoal__ring *r, uint64_t t, uint64_t n)
{
    if (!atomic_compare_exchange_strong(&r->h->tail, &t, t + n))
        return err_closed(r);
    wake_consumers(r);
    return 0;
}

/* Messages available at head hd, refreshing the cached tail only when it shows fewer
 * than `want`. */
static inline uint64_t sp_avail(shoal__ring *r, uint64_t hd, uint64_t want, bool *sealed)
{
    *sealed = false;
    uint64_t tc = r->tail_cache & ~TAIL_SEAL;
    if (tc < hd + want) {
        r->tail_cache = atomic_load_explicit(&r->h->tail, memory_order_acquire);
        tc = r->tail_cache & ~TAIL_SEAL;
        *sealed = r->tail_cache & TAIL_SEAL;
        if (tc <= hd)
            return 0;
    }
    return tc - hd;
}

static inline void sp_consume(shoal__ring *r, uint64_t hd, uint64_t n)
{
    r->peek = NULL;                    /* whatever was peeked is consumed now */
    atomic_store(&r->h->head, hd + n); /* seq_cst: ordered before the sleeper check */
    wake_producers(r);
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

/* The free slot at the tail: 0 (*t, *slot), SHOAL_EAGAIN, or SHOAL_ECLOSED. */
static inline int sp_back(shoal__ring *r, uint64_t *t, unsigned char **slot)
{
    *t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
    if (SHOAL_UNLIKELY(*t & TAIL_SEAL))
        return err_closed(r);
    if (sp_room(r, *t, 1) == 0)
        return SHOAL_EAGAIN;
    *slot = slot_at(r, *t);
    return 0;
}

/* The message at the head, the one read path of get and peek: 0 (*hd, *msg — its
 * bytes —, *len), SHOAL_EAGAIN, SHOAL_EEOF, or SHOAL_ECORRUPT when its recorded length
 * exceeds max_msg. */
static inline int sp_front(shoal__ring *r, uint64_t *hd, unsigned char **msg, size_t *len)
{
    bool sealed;
    *hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    if (sp_avail(r, *hd, 1, &sealed) == 0)
        return sealed ? err_eof(r) : SHOAL_EAGAIN;
    unsigned char *slot = slot_at(r, *hd);
    *len = sp_len(r, slot);
    *msg = slot + r->g.data_off;
    return SHOAL_UNLIKELY(*len > r->g.max_msg) ? err_bad_len(r, *len) : 0;
}

/* ---- the try forms ----------------------------------------------------------------- */

static int sp_try_put(shoal__ring *r, void *arg)
{
    const struct put_args *a = arg;
    uint64_t t;
    unsigned char *slot = NULL;
    int rc = sp_back(r, &t, &slot);
    if (rc)
        return rc;
    sp_set_len(r, slot, a->len);
    copy_msg(slot + r->g.data_off, a->msg, a->len);
    shoal__test_point("queue.reserved");
    return sp_publish(r, t, 1);
}

static int sp_try_get(shoal__ring *r, void *arg)
{
    struct get_args *a = arg;
    uint64_t hd;
    unsigned char *msg = NULL;
    size_t len = 0;
    int rc = sp_front(r, &hd, &msg, &len);
    if (rc)
        return rc;
    *a->len = len;
    if (len > a->cap)
        return err_small(r, len, a->cap);
    copy_msg(a->buf, msg, len);
    shoal__test_point("queue.claimed");
    sp_consume(r, hd, 1);
    return 0;
}

/* Batches move every element that fits with one publication of the index. */
static int sp_try_put_batch(shoal__ring *r, void *arg)
{
    struct batch_args *a = arg;
    size_t esz = r->g.elem_size;
    uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
    if (t & TAIL_SEAL)
        return err_closed(r);
    uint64_t k = sp_room(r, t, a->n < r->g.capacity ? a->n : r->g.capacity);
    if (k == 0)
        return SHOAL_EAGAIN;
    if (k > a->n)
        k = a->n;
    for (uint64_t i = 0; i < k; i++)
        memcpy(slot_at(r, t + i), a->elems + i * esz, esz);
    shoal__test_point("queue.reserved");
    int rc = sp_publish(r, t, k);
    if (rc == 0)
        *a->done = k;
    return rc;
}

static int sp_try_get_batch(shoal__ring *r, void *arg)
{
    struct batch_args *a = arg;
    size_t esz = r->g.elem_size;
    uint64_t hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    bool sealed;
    uint64_t k = sp_avail(r, hd, a->n, &sealed);
    if (k == 0)
        return sealed ? err_eof(r) : SHOAL_EAGAIN;
    if (k > a->n)
        k = a->n;
    for (uint64_t i = 0; i < k; i++)
        memcpy(a->elems + i * esz, slot_at(r, hd + i), esz);
    shoal__test_point("queue.claimed");
    sp_consume(r, hd, k);
    *a->done = k;
    return 0;
}

static int sp_try_loan(shoal__ring *r, void *arg)
{
    if (r->loan)
        return shoal__err(SHOAL_EINVAL,
                          "%s \"%s\": a single-producer %s allows one loan at a time",
                          r->what, r->name, r->what);
    uint64_t t;
    unsigned char *slot = NULL;
    int rc = sp_back(r, &t, &slot);
    if (rc)
        return rc;
    r->loan = slot;
    return loan_done(r, arg, slot);
}

static int sp_commit(shoal__ring *r, unsigned char *base, size_t len)
{
    if (!r->loan || base != r->loan)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": slot is not loaned by this handle",
                          r->what, r->name);
    r->loan = NULL;
    sp_set_len(r, base, len);
    uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
    return sp_publish(r, t & ~TAIL_SEAL, 1);
}

static int sp_try_peek(shoal__ring *r, void *arg)
{
    struct peek_args *a = arg;
    uint64_t hd;
    unsigned char *msg = NULL;
    int rc = sp_front(r, &hd, &msg, a->len);
    if (rc)
        return rc;
    r->peek = msg - r->g.data_off;
    *a->msg = msg;
    shoal__test_point("queue.claimed");
    return 0;
}

static int sp_release(shoal__ring *r, const void *msg)
{
    if (!r->peek || (const unsigned char *)msg != r->peek + r->g.data_off)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": message is not the one peeked",
                          r->what, r->name);
    r->peek = NULL;
    sp_consume(r, atomic_load_explicit(&r->h->head, memory_order_relaxed), 1);
    return 0;
}

static int sp_readable(shoal__ring *r, void *arg)
{
    (void)arg;
    uint64_t hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    bool sealed;
    if (sp_avail(r, hd, 1, &sealed))
        return 0;
    return sealed ? err_eof(r) : SHOAL_EAGAIN;
}

static int sp_writable(shoal__ring *r, void *arg)
{
    (void)arg;
    uint64_t t = atomic_load_explicit(&r->h->tail, memory_order_relaxed);
    if (t & TAIL_SEAL)
        return err_closed(r);
    return sp_room(r, t, 1) ? 0 : SHOAL_EAGAIN;
}

/* Seals the tail: the producer's publishing compare-and-swap fails from now on. */
static void sp_seal(shoal__ring *r)
{
    atomic_fetch_or(&r->h->tail, TAIL_SEAL);
}

static long sp_copy_at(const shoal__ring *r, uint64_t pos, unsigned char *buf)
{
    const unsigned char *slot = slot_at(r, pos);
    size_t len = sp_len(r, slot);
    if (len > r->g.max_msg)
        return -1;
    copy_msg(buf, slot + r->g.data_off, len);
    return (long)len;
}

const struct shoal__ring_ops shoal__ring_spsc_ops = {
    .geom = sp_geom,
    .format = sp_format,
    .put = sp_try_put,
    .get = sp_try_get,
    .put_batch = sp_try_put_batch,
    .get_batch = sp_try_get_batch,
    .loan = sp_try_loan,
    .peek = sp_try_peek,
    .readable = sp_readable,
    .writable = sp_writable,
    .commit = sp_commit,
    .release = sp_release,
    .seal = sp_seal,
    .copy_at = sp_copy_at,
};
