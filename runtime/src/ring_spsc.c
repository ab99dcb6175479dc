/*
 * ring_spsc.c — the single-producer single-consumer ring (its table of operations is
 * shoal__ring_spsc_ops; ring.c holds geometry, attaching, waiting and dispatch).
 *
 * Slots are dense (a bare array of elements; variable-size: a 32-bit length, padded to
 * 8 bytes, before each message) and have no per-slot state: the head and tail indexes,
 * on separate cache lines, say everything. The producer writes the slot, then
 * publishes the tail with a release store; the consumer copies the slot, then
 * publishes the head with a release store. Neither makes a locked instruction or a
 * fence (the sleeper counts: "The wake path" in ring.c). A producer killed before
 * publishing leaves nothing; a consumer killed before publishing leaves the message
 * for the next consumer.
 *
 * Exact shutdown without a compare-and-swap on the tail. A put runs
 *     busy = me; [order]; if (closed) { busy = 0; ECLOSED }
 *     write the slot; tail = t + 1 (release); busy = 0 (release)
 * where busy (put_busy, on a line of its own) is the producer's owner id and [order]
 * is store_load_order. Shutdown stores closed = RING_CLOSING, issues the barrier
 * (shoal__ring_barrier: membarrier), then moves closed to RING_SEALED. The barrier
 * splits every put in two cases: either its load of `closed` comes after the barrier
 * and sees it, so the put reports SHOAL_ECLOSED and publishes nothing; or it came
 * before, and then so did its store of busy, which is therefore visible to whoever
 * looks after the barrier. A consumer that finds the ring empty and `closed` at
 * RING_SEALED reads busy (acquire), then the tail (acquire): busy == 0 means every
 * put that saw the ring open has published (its tail store precedes its release of
 * busy), so an empty ring is the end of the stream (SHOAL_EEOF); busy naming a live
 * process means a put is in flight: the consumer waits for it (it publishes and wakes
 * as usual, or clears busy and wakes on finding the ring closed). Hence a put that
 * returned 0 is delivered before the end, and a put that starts after shutdown
 * reports SHOAL_ECLOSED. SIGKILL at any instant: a producer killed inside a put
 * leaves busy naming a dead owner, which consumers ignore (what it published before
 * its death is there, nothing else is); a closer killed between the two steps leaves
 * RING_CLOSING, which the first consumer to find the ring empty completes (barrier,
 * then RING_SEALED) — the barrier is the same whoever issues it. Shutdown itself
 * never waits for a producer, so a stopped producer cannot block it.
 *
 * Each side keeps a cached copy of the other side's index (head_cache, tail_cache in
 * the process's view): a hint that is never ahead of the real value, refreshed only
 * when it shows too little room or too few messages, so the common put or get touches
 * the other side's cache line once per many messages. A consumer refreshing its copy
 * of the tail also asks for the head slot's line (a prefetch), so that a consumer
 * polling an empty ring fetches the tail's line and the slot's together when a message
 * comes, not one after the other. A loan is the slot at the tail (one at a time), a
 * peek the slot at the head, remembered in the view until commit or release.
 *
 * The producer does not read the tail either, while its own puts are the last ones:
 * the tail's line is the one a polling consumer reads, and on some processors (the
 * Intel Xeon guests the round-trip figures come from) a read takes a modified line
 * away from its writer altogether, so a put that began by loading the tail waited for
 * the line to come back before it could even address the slot — a whole transfer more
 * per message (a polling round trip of two rings: 370-400 ns, against 310-325 ns
 * without the load). So each view keeps the tail after its last put (tail_own), and
 * every put, in sp_enter, first writes the view's tag to put_view, beside put_busy on
 * the producer's line: (owner id, a number of its process), unique among live views,
 * 0 for a process without an owner id (which never keeps a copy). A put whose view
 * finds its own tag there uses its copy: no other put has begun since its own last
 * one, which left the copy exact (published: t + n; refused by shutdown: t, which
 * sp_tail recorded when it read the shared tail). Any other put — another handle,
 * another process, a fork child (whose tag is new: put_id's generation) — wrote its
 * own tag before it could move the tail, so a copy outlived by it is never used, even
 * when that producer was killed right after publishing. put_view is only a name: no
 * consumer reads it, and a producer killed anywhere in a put leaves the ring as
 * before (what it published is there, nothing else).
 *
 * One put and one get — the index helpers and the two try forms — are inline in
 * ring_spsc.h, in two instances: the try forms of the table, and the fast attempt
 * ring.c makes first for messages of up to COPY_INLINE_MAX bytes, which copies inline
 * and makes no call on its way to success (the caller stays a leaf function: an 8-byte
 * put is some 85 instructions, a get some 70, call and copy included), leaving every
 * other case to the general path — except a try form on an open ring with no room or
 * no message, which the attempt answers itself (some 55 instructions, against 150
 * through the general path).
 */
#include "ring_spsc.h"

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

/* ---- the producer's own tail (see the top) ----------------------------------------- */

uint64_t shoal__spsc_new_tag(uint32_t me)
{
    static _Atomic uint32_t views; /* tags given in this process */
    return (uint64_t)me << 32 | (atomic_fetch_add(&views, 1) + 1);
}

/* ---- the end of the stream (see the top) ------------------------------------------ */

int shoal__spsc_refused(shoal__ring *r, bool fenced)
{
    atomic_store_explicit(&r->h->put_busy, 0, memory_order_release);
    wake_after_store(r, fenced, false); /* a consumer may wait for this put */
    return err_closed(r);
}

/* Completes a shutdown whose closer stopped after its first step (see the top). */
static void sp_seal(shoal__ring *r)
{
    uint32_t c = RING_CLOSING;
    shoal__ring_barrier();
    atomic_compare_exchange_strong(&r->h->closed, &c, RING_SEALED);
}

int shoal__spsc_empty(shoal__ring *r, uint64_t hd)
{
    uint32_t c = atomic_load_explicit(&r->h->closed, memory_order_acquire);
    if (SHOAL_LIKELY(c == 0))
        return SHOAL_EAGAIN;
    if (c != RING_SEALED)
        sp_seal(r);
    uint32_t busy = atomic_load_explicit(&r->h->put_busy, memory_order_acquire);
    r->tail_cache = atomic_load_explicit(&r->h->tail, memory_order_acquire);
    if (r->tail_cache != hd)
        return 1;
    if (busy == 0)
        return err_eof(r);
    /* A put in flight, unless its producer died inside it (UINT32_MAX: a producer
     * without an owner id, which cannot be judged). */
    if (busy == UINT32_MAX || shoal__owner_alive(r->seg, busy))
        return SHOAL_EAGAIN;
    atomic_compare_exchange_strong(&r->h->put_busy, &busy, 0);
    return err_eof(r);
}

/* ---- the other try forms ----------------------------------------------------------- */

/* Batches move every element that fits with one publication of the index. */
static int sp_try_put_batch(shoal__ring *r, void *arg)
{
    struct batch_args *a = arg;
    size_t esz = r->g.elem_size;
    uint64_t t = sp_tail(r);
    uint64_t k = sp_room(r, t, a->n < r->g.capacity ? a->n : r->g.capacity);
    if (k == 0)
        return atomic_load_explicit(&r->h->closed, memory_order_relaxed) ? err_closed(r)
                                                                         : SHOAL_EAGAIN;
    if (k > a->n)
        k = a->n;
    bool fenced = ring_fenced(r);
    int rc = sp_enter(r, fenced, false);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < k; i++)
        memcpy(slot_at(r, t + i), a->elems + i * esz, esz);
    shoal__test_point("queue.reserved");
    sp_publish(r, fenced, t, k, false);
    *a->done = k;
    return 0;
}

static int sp_try_get_batch(shoal__ring *r, void *arg)
{
    struct batch_args *a = arg;
    size_t esz = r->g.elem_size;
    uint64_t hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    int why;
    uint64_t k = sp_avail(r, hd, a->n, &why);
    if (k == 0)
        return why;
    if (k > a->n)
        k = a->n;
    for (uint64_t i = 0; i < k; i++)
        memcpy(a->elems + i * esz, slot_at(r, hd + i), esz);
    shoal__test_point("queue.claimed");
    sp_consume(r, hd, k, false);
    *a->done = k;
    return 0;
}

static int sp_try_loan(shoal__ring *r, void *arg)
{
    if (r->loan)
        return shoal__err(SHOAL_EINVAL,
                          "%s \"%s\": a single-producer %s allows one loan at a time",
                          r->what, r->name, r->what);
    if (atomic_load_explicit(&r->h->closed, memory_order_relaxed))
        return err_closed(r);
    uint64_t t = sp_tail(r);
    if (sp_room(r, t, 1) == 0)
        return sp_full(r);
    unsigned char *slot = slot_at(r, t);
    r->loan = slot;
    return loan_done(r, arg, slot);
}

static int sp_commit(shoal__ring *r, unsigned char *base, size_t len)
{
    if (!r->loan || base != r->loan)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": slot is not loaned by this handle",
                          r->what, r->name);
    r->loan = NULL;
    bool fenced = ring_fenced(r);
    uint64_t t = sp_tail(r);
    int rc = sp_enter(r, fenced, false);
    if (rc)
        return rc;
    sp_set_len(r, base, len);
    sp_publish(r, fenced, t, 1, false);
    return 0;
}

static int sp_try_peek(shoal__ring *r, void *arg)
{
    struct peek_args *a = arg;
    uint64_t hd;
    unsigned char *msg = NULL;
    int rc = sp_front(r, &hd, &msg, a->len, false);
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
    sp_consume(r, atomic_load_explicit(&r->h->head, memory_order_relaxed), 1, false);
    return 0;
}

static int sp_readable(shoal__ring *r, void *arg)
{
    (void)arg;
    uint64_t hd = atomic_load_explicit(&r->h->head, memory_order_relaxed);
    int why;
    return sp_avail(r, hd, 1, &why) ? 0 : why;
}

static int sp_writable(shoal__ring *r, void *arg)
{
    (void)arg;
    if (atomic_load_explicit(&r->h->closed, memory_order_relaxed))
        return err_closed(r);
    uint64_t t = sp_tail(r);
    return sp_room(r, t, 1) ? 0 : SHOAL_EAGAIN;
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
