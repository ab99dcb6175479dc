/*
 * batch.c — a batch request: many requests in one frame, one reply.
 *
 * A pipelining client (Python's proxies: d[k] = v, l.append(x), lock.release())
 * does not need a reply per write, only to learn of the ones that failed. It packs
 * its writes as the items of one Request's `batch` field (broker.proto), each item
 * a packed Request, and the broker answers the whole batch with one Reply: status
 * 0 and, as its result, null when every item succeeded, or a list of
 * (index, status, error) tuples, one per failed item, in order.
 *
 * The dispatcher (core.c) hands a request with items here, under the broker's
 * mutex, with its runner of items as `run`. Each item is decoded with the same checks as
 * a request of its own (shoal__bv_unpack_in, into an arena reset after each item),
 * counted, given id 0 and no timeout, and run through `run` as a request of its own,
 * except that it has no reply: `run` returns its status, and its error in
 * shoal_errdetail(), which this file records when the item failed. The replies of
 * the waiters an item satisfied are pending as usual (core.c); none is the item's.
 *
 * The batch runs as one step: no other request runs between its items, and with a
 * data directory they share one commit (the one broker_run makes after the batch),
 * so their acknowledgement — the batch's reply — comes once all of them are
 * durable. A failed item does not stop the ones after it, as separate pipelined
 * requests would not be stopped either. Refused as items, each with its own error:
 * an undecodable one (SHOAL_EINVALID_DATA), a batch inside the batch
 * (SHOAL_EINVALID_DATA), and "wait" (condition, event and barrier wait), the only
 * operations that park even without a timeout. Refused whole, before any item runs:
 * a batch of more than BATCH_ITEMS_MAX items (SHOAL_EMSGSIZE), which would hold the
 * broker's mutex too long.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "internal.h"

/* The most items one batch may carry. */
#define BATCH_ITEMS_MAX 4096
/* Each item is decoded into an arena on the stack (as core.c's broker_run decodes a
 * request), dropped once it ran: larger items take blocks from malloc. */
#define BATCH_ARENA_BYTES 2048

/* Appends (index, status, error) to the failures list *out (made on first use). */
static int add_failure(bv **out, size_t index, int status, const char *error)
{
    if (!*out && !(*out = shoal__bv_seq(BV_LIST)))
        return -1;
    bv *t = shoal__bv_seq(BV_TUPLE);
    if (!t || shoal__bv_seq_insert(t, 0, shoal__bv_int((int64_t)index)) ||
        shoal__bv_seq_insert(t, 1, shoal__bv_int(status)) ||
        shoal__bv_seq_insert(t, 2, shoal__bv_str(error, strlen(error)))) {
        shoal__bv_free(t); /* NULL-safe; an insert that failed freed its item */
        return -1;
    }
    return shoal__bv_seq_insert(*out, (*out)->list->n_items, t); /* frees t on failure */
}

/* Decodes item i into arena a; NULL (its failure recorded) when it may not run. */
static breq *item(shoal_broker *b, const breq *req, size_t i, shoal_bv_arena *a, bv **out,
                  int *rc)
{
    breq *r = (breq *)shoal__bv_unpack_in(&shoal__broker__request__descriptor,
                                          req->batch[i].data, req->batch[i].len, a);
    b->requests++;
    if (!r) {
        b->bad_requests++;
        *rc = add_failure(out, i, SHOAL_EINVALID_DATA, shoal_errdetail());
        return NULL;
    }
    const char *why = r->n_batch ? "a batch inside a batch"
                      : !strcmp(r->op, "wait")
                          ? "\"wait\" would block: it cannot be part of a batch"
                          : NULL;
    if (why) {
        char detail[96];
        snprintf(detail, sizeof(detail), "broker: batch item %zu: %s", i, why);
        b->bad_requests += r->n_batch != 0;
        *rc =
            add_failure(out, i, r->n_batch ? SHOAL_EINVALID_DATA : SHOAL_EINVAL, detail);
        return NULL;
    }
    r->id = 0; /* a reply only if it fails */
    r->timeout_ms = 0;
    return r;
}

int broker__batch(shoal_broker *b, broker_session *s, uint64_t sid, const breq *req,
                  broker_run_fn run, bv **result)
{
    if (req->n_batch > BATCH_ITEMS_MAX)
        return shoal__err(SHOAL_EMSGSIZE,
                          "broker: a batch of %zu requests (at most %d in one batch)",
                          req->n_batch, BATCH_ITEMS_MAX);
    bv *out = NULL;
    int rc = 0;
    max_align_t space[BATCH_ARENA_BYTES / sizeof(max_align_t)];
    shoal_bv_arena arena;
    shoal__bv_arena_init(&arena, space, sizeof(space));
    for (size_t i = 0; i < req->n_batch && rc == 0; i++) {
        breq *r = item(b, req, i, &arena, &out, &rc);
        int status = r ? run(b, s, sid, r) : 0; /* copies out what it keeps (core.c) */
        if (status < 0)
            rc = add_failure(&out, i, status, shoal_errdetail());
        shoal__bv_arena_reset(&arena);
    }
    if (rc < 0) {
        shoal__bv_free(out);
        return shoal__err(SHOAL_ENOMEM, "broker: out of memory answering a batch");
    }
    *result = out;
    return 0;
}
