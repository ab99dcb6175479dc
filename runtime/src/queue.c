/*
 * queue.c — Queue: a bounded channel in shared memory, one ring (ring.c) in one
 * segment. The functions here check their handle and hand the work to the ring.
 */
#include <stdlib.h>

#include "queue_internal.h"

struct shoal_queue {
    shoal__seg *seg;
    shoal__ring ring;
};

int shoal__queue_waitable(shoal_queue *q, bool writable, shoal__waitable *out)
{
    if (!q || !out)
        return shoal__err(SHOAL_EINVAL, "queue: NULL argument");
    shoal__ring_waitable(&q->ring, writable, out);
    return 0;
}

uint32_t shoal__queue_sleepers(shoal_queue *q, bool producers)
{
    return shoal__ring_sleepers(&q->ring, producers);
}

shoal__ring *shoal__queue_ring(shoal_queue *q)
{
    return &q->ring;
}

int shoal__queue_inspect(shoal_queue *q, size_t max,
                         void (*fn)(void *arg, const void *msg, size_t len), void *arg)
{
    return shoal__ring_inspect(&q->ring, max, fn, arg);
}

static int queue_init_cb(shoal__seg *seg, void *arg)
{
    shoal__ring_format(seg->payload, arg);
    return 0;
}

int shoal_queue_open(shoal_queue **out, const char *name, int mode,
                     const shoal_queue_config *cfg, const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "queue: NULL output pointer");
    *out = NULL;
    shoal__ring_geom g;
    shoal_type bytes;
    shoal__seg_spec spec = {.kind = SHOAL_KIND_QUEUE, .what = "queue"};
    int rc;
    if (mode != SHOAL_OPEN || cfg) {
        if (mode == SHOAL_OPEN && cfg && !cfg->type && cfg->max_msg == 0)
            cfg = NULL; /* any variable-size queue */
        else if ((rc = shoal__ring_geom_make(cfg, "queue", name, &g)))
            return rc;
    }
    if (cfg) {
        shoal__ring_spec(&spec, &g, "queue");
        if (!cfg->type)
            shoal__ring_bytes_type(&bytes, g.max_msg);
        spec.type = cfg->type ? cfg->type : &bytes;
        spec.payload_size = shoal__ring_bytes(&g);
        spec.init = queue_init_cb;
        spec.arg = &g;
    }
    shoal_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return shoal__err(SHOAL_ENOMEM, "out of memory");
    if ((rc = shoal__seg_open(&q->seg, name, mode, &spec, attr))) {
        free(q);
        return rc;
    }
    const char *qn = q->seg->name;
    if ((rc = shoal__ring_geom_of(q->seg, "queue", &g)) ||
        (rc = shoal__ring_check_cfg(&g, cfg, "queue", qn)) ||
        (rc = shoal__ring_attach(&q->ring, q->seg, q->seg->payload,
                                 q->seg->hdr->payload_size, &g, "queue", qn))) {
        shoal__seg_close(q->seg);
        free(q);
        return rc;
    }
    *out = q;
    return 0;
}

int shoal_queue_close(shoal_queue *q)
{
    if (!q)
        return shoal__err(SHOAL_EINVAL, "queue: NULL handle");
    shoal__seg_close(q->seg);
    free(q);
    return 0;
}

const char *shoal_queue_name(const shoal_queue *q)
{
    return q ? q->seg->name : NULL;
}

#define Q_CHECK(q)                                                                       \
    do {                                                                                 \
        if (SHOAL_UNLIKELY(!(q)))                                                        \
            return shoal__err(SHOAL_EINVAL, "queue: NULL handle");                       \
    } while (0)

int shoal_queue_put(shoal_queue *q, const void *msg, size_t len, shoal_duration timeout)
{
    Q_CHECK(q);
    return shoal__ring_put(&q->ring, msg, len, timeout, NULL);
}

int shoal_queue_try_put(shoal_queue *q, const void *msg, size_t len)
{
    return shoal_queue_put(q, msg, len, SHOAL_NOWAIT);
}

int shoal_queue_get(shoal_queue *q, void *buf, size_t cap, size_t *len,
                    shoal_duration timeout)
{
    Q_CHECK(q);
    return shoal__ring_get(&q->ring, buf, cap, len, timeout, NULL);
}

int shoal_queue_try_get(shoal_queue *q, void *buf, size_t cap, size_t *len)
{
    return shoal_queue_get(q, buf, cap, len, SHOAL_NOWAIT);
}

int shoal_queue_put_batch(shoal_queue *q, const void *elems, size_t n, size_t *done,
                          shoal_duration timeout)
{
    Q_CHECK(q);
    return shoal__ring_put_batch(&q->ring, elems, n, done, timeout, NULL);
}

int shoal_queue_get_batch(shoal_queue *q, void *elems, size_t max, size_t *done,
                          shoal_duration timeout)
{
    Q_CHECK(q);
    return shoal__ring_get_batch(&q->ring, elems, max, done, timeout, NULL);
}

int shoal_queue_loan(shoal_queue *q, void **slot, size_t *cap, shoal_duration timeout)
{
    Q_CHECK(q);
    return shoal__ring_loan(&q->ring, slot, cap, timeout, NULL);
}

int shoal_queue_commit(shoal_queue *q, void *slot, size_t len)
{
    Q_CHECK(q);
    return shoal__ring_commit(&q->ring, slot, len);
}

int shoal_queue_peek(shoal_queue *q, const void **msg, size_t *len,
                     shoal_duration timeout)
{
    Q_CHECK(q);
    return shoal__ring_peek(&q->ring, msg, len, timeout, NULL);
}

int shoal_queue_release(shoal_queue *q, const void *msg)
{
    Q_CHECK(q);
    return shoal__ring_release(&q->ring, msg);
}

int shoal_queue_shutdown(shoal_queue *q)
{
    Q_CHECK(q);
    shoal__ring_shutdown(&q->ring);
    return 0;
}

int shoal_queue_stats_get(shoal_queue *q, shoal_queue_stats *st)
{
    Q_CHECK(q);
    if (!st)
        return shoal__err(SHOAL_EINVAL, "queue \"%s\": NULL stats", q->seg->name);
    shoal__ring_stats(&q->ring, st);
    return 0;
}
