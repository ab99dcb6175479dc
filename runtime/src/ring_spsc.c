/*
 * ring_spsc.c — the single-producer single-consumer ring (its table of operations is
 * shoal__ring_spsc_ops; ring.c holds geometry, attaching, waiting and dispatch).
 *
 * Slots are dense, in one of two layouts chosen by the geometry (sp_geom):
 *
 *   marked       a typed slot is a 32-bit ready marker, padding to the element's
 *                alignment, then the element; a variable-size slot a 32-bit length,
 *                the marker, then the message. Every variable-size ring, and every
 *                typed ring whose marked slot fits in a cache line (an element of up
 *                to 56 bytes aligned to 8, 60 aligned to 4 or less), or whose element
 *                is larger than a line and not a whole number of lines.
 *   tail-published  the element alone, the slot the element rounded to its alignment
 *                (data_off 0: sp_by_tail), published by the tail: a typed ring whose
 *                element does not fit behind the marker in a line but either fits in
 *                a line alone (57 to 64 bytes aligned to 8, 61 to 64 aligned to 4 or
 *                less) or, rounded to its alignment, fills whole lines (128, 192, ...,
 *                1024 bytes ...).
 *
 * A marked slot whose marker does not fit in the element's lines takes parts of one
 * line more, shared with the next slot, which the producer writes while the consumer
 * reads this one: a 64-byte element would take parts of two lines, a 1024-byte one
 * parts of 17. The tail-published slot of such an element takes its own lines and no
 * more, at the price of the tail's line moving with each message (the consumer polls
 * the tail). An element of other sizes shares lines with its neighbours either way,
 * and keeps the marker, which saves the tail's line. Measured through the queue, one
 * layout against the other: 64-byte elements some 7% faster tail-published; on an AMD
 * EPYC guest (2 vCPUs) 128 bytes some 40% faster, 256 bytes 10%, 1024 bytes 20 to
 * 25%, but 72-byte ones 40% slower. (An Intel Xeon guest had shown 128 to 1024 bytes
 * 5% to 30% slower tail-published; not measured there again.)
 *
 * The marker of the slot at position p is p + 1 (modulo 2^32) once the message at p
 * is published: the slot's earlier laps left other values (capacity is at most 2^30)
 * and a zero-filled ring is empty. The producer writes the slot, stores its marker
 * with a release store (marked slots), then the tail (its line of the header). On a
 * marked ring the consumer polls the marker of the head slot alone — so a message
 * moves in the one cache line its slot shares with its marker, and the consumer never
 * reads the tail's line for a single message (a batch reads the tail once for all it
 * takes); on a tail-published ring it polls the tail, as the textbook ring does, and
 * takes every message up to it without reading the tail again (tail_cache). Then it
 * copies the slot and publishes the head with a release store. Neither side makes a
 * locked instruction or a fence (the sleeper counts: "The wake path" in ring.c). A
 * consumer killed before publishing the head leaves the message for the next consumer.
 *
 * Exact shutdown without a compare-and-swap on the tail. A put runs
 *     busy = me; [order]; if (closed) { busy = 0; ECLOSED }
 *     write the slot; [marker = t + 1 (release);] tail = t + 1 (release);
 *     busy = 0 (release)
 * where busy (put_busy, on a line only the producer writes) is the producer's owner
 * id and [order] is store_load_order. Shutdown stores closed = RING_CLOSING, issues
 * the barrier (shoal__ring_barrier: membarrier), then moves closed to RING_SEALED.
 * The barrier splits every put in two cases: either its load of `closed` comes after
 * the barrier and sees it, so the put reports SHOAL_ECLOSED and publishes nothing; or
 * it came before, and then so did its store of busy, which is therefore visible to
 * whoever looks after the barrier. A consumer that finds the ring empty and `closed`
 * at RING_SEALED reads busy (acquire), then the tail and (marked slots) the head
 * slot's marker (acquire): busy == 0 means every put that saw the ring open has
 * published (its marker and tail stores precede its release of busy), so an empty
 * ring is the end of the stream (SHOAL_EEOF); busy naming a live process means a put is
 * in flight: the consumer waits for it (it publishes and wakes as usual, or clears busy
 * and wakes on finding the ring closed). Hence a put that returned 0 is delivered before
 * the end, and a put that starts after shutdown reports SHOAL_ECLOSED.
 *
 * SIGKILL at any instant. A producer killed inside a put leaves busy naming a dead
 * owner, which consumers ignore: what it published is there, nothing else is. Killed
 * after writing the slot, before its marker (marked) or its tail store
 * (tail-published): nothing is published, the next put writes the slot again — on a
 * tail-published ring the tail store is the one step that publishes, so a producer
 * killed before it has published nothing, and one killed after it has published its
 * messages whole (written before that release store), the tail exact for the next
 * producer. On a marked ring, killed between the marker and the tail store: the message
 * is published (the consumer goes by the marker) and the tail lags it; the producer's
 * next position is therefore the tail moved past every slot already marked for its
 * position (sp_marked_tail, read when another view put last: see below), so the
 * next producer neither overwrites nor loses that message, and the counters and
 * inspection read the tail the same way. A consumer that finds the tail behind its head
 * takes the marker's word for it (sp_refresh). A closer killed between its two steps
 * leaves RING_CLOSING, which the first consumer to find the ring empty completes
 * (barrier, then RING_SEALED) — the barrier is the same whoever issues it. Shutdown
 * itself never waits for a producer, so a stopped producer cannot block it.
 *
 * Each side keeps a cached copy of the other side's index (head_cache, tail_cache in
 * the process's view): a hint that is never ahead of what is published, refreshed only
 * when it shows too little room or too few messages, so the common put touches the
 * head's line once per many messages. A loan is the slot at the tail (one at a time),
 * a peek the slot at the head, remembered in the view until commit or release.
 *
 * The producer reads neither the tail nor the slot at it while its own puts are the
 * last ones. That slot is the line a polling consumer reads, and on some processors
 * (the Intel Xeon guests the round-trip figures come from) a read takes a modified
 * line away from its writer altogether, so a put that began by reading the tail (and,
 * for a producer killed between a marker and its tail store, the marker at it) waited
 * for the line to come back before it could even address the slot: a transfer more
 * per message. So each view keeps the tail after its last put (tail_own), and every
 * put, in sp_enter, first writes the view's tag to put_view, beside put_busy on the
 * producer's line: (owner id, a number of its process), unique among live views, 0
 * for a process without an owner id (which never keeps a copy). A put whose view
 * finds its own tag there uses its copy: no other put has begun since its own last
 * one, which left the copy exact (published: t + n; refused by shutdown: t, which
 * sp_tail recorded when it read the ring's tail, sp_marked_tail). Any other put —
 * another handle, another process, a fork child (whose tag is new: put_id's
 * generation) — wrote its own tag before it could write a marker or move the tail, so
 * a copy outlived by it is never used, even when that producer was killed between its
 * marker and its tail store (the same holds, with no marker, on a tail-published
 * ring). put_view is only a name: no consumer reads it, and a
 * producer killed anywhere in a put leaves the ring as described above.
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

/* A cache line: a typed element whose marked slot does not fit in one is stored alone
 * and published by the tail when it fits in one alone or fills whole ones (see the
 * top). */
#define SP_LINE 64

static void sp_geom(shoal__ring_geom *g, uint32_t align)
{
    if (g->flags & SHOAL__RING_VAR) { /* length, marker, message */
        g->data_off = 8;
        g->stride = (uint32_t)round_up(8 + (uint64_t)g->max_msg, 8);
        return;
    }
    /* typed: marker, padding, element; or the element alone (data_off 0) */
    uint64_t off = round_up(4, align);
    uint64_t marked = round_up(off + g->max_msg, align < 4 ? 4 : align);
    uint64_t dense = round_up(g->max_msg, align);
    bool by_tail = marked > SP_LINE && (dense <= SP_LINE || dense % SP_LINE == 0);
    g->data_off = by_tail ? 0 : (uint32_t)off;
    g->stride = (uint32_t)(by_tail ? dense : marked);
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
    if (sp_refresh(r, hd))
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
        memcpy(slot_at(r, t + i) + r->g.data_off, a->elems + i * esz, esz);
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
        memcpy(a->elems + i * esz, slot_at(r, hd + i) + r->g.data_off, esz);
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
    /* A biased ring's readiness is asked outside its right, perhaps while another
     * thread of the view puts: the view's own tail is not touched. */
    uint64_t t = r->busy ? sp_marked_tail(r) : sp_tail(r);
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
