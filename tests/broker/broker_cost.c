/*
 * broker_cost.c — the broker's own work per request, in process: no transport, no
 * session thread, only broker_request on requests packed beforehand.
 *
 *   broker_cost OP N [view | DIR ITEMS]
 *
 * runs N times one operation on an in-memory broker: `set` (d[k] = i over 100 keys
 * of one dict), `get` (d[k] over the same keys), `append` (l.append(i)), `lock` (a
 * lock's acquire, then its release: two requests), `batch` (one batch request of 16
 * dict sets), `insert` (l.insert(len(l) // 2, i)), `pop` (l.pop(len(l) // 2)). The
 * replies are kept by the delivery function, then checked (status 0, so a count is
 * never that of an error path) and freed outside broker_request, as a session sends
 * them outside it. Counted with
 *
 *   valgrind --tool=callgrind --toggle-collect=counted broker_cost set 20000
 *
 * (counted: the broker_request of the N requests, not those of the setup) the total
 * divided by N is the broker's cost of one operation. With `view` the broker
 * publishes its read view (broker/view.c, as beside an shm:// address): the cost of
 * its generations and of publishing the gets. With DIR the broker keeps its objects in
 * that data directory (created; --sync=none; "-": in memory), and the list starts
 * with ITEMS items (one extend): the cost of a middle insert or pop of a durable list,
 * its LMDB transaction included. CTest runs it with a small N for each operation, as a
 * check that the program works.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "internal.h"
#include "view.h"

#define KEYS  100
#define BATCH 16

static size_t failures;

/* The replies of the request running now: kept by deliver (which broker_request
 * calls, so it is counted: it does as little as a session's outbox), checked and
 * freed by check, after broker_request returned (not counted). */
static broker_reply replies[4];
static size_t nreplies;

static void deliver(broker_session *s, broker_reply *r, size_t n)
{
    (void)s;
    if (nreplies + n > sizeof(replies) / sizeof(replies[0])) {
        fprintf(stderr, "broker_cost: more replies than requests\n");
        exit(1);
    }
    memcpy(&replies[nreplies], r, n * sizeof(*r));
    nreplies += n;
}

static void check(void)
{
    for (size_t i = 0; i < nreplies; i++) {
        brep *r = (brep *)protobuf_c_message_unpack(&shoal__broker__reply__descriptor,
                                                    NULL, replies[i].len,
                                                    broker_reply_bytes(&replies[i]));
        if (!r || r->status != 0) {
            fprintf(stderr, "broker_cost: reply %s\n", r ? r->error : "undecodable");
            failures++;
        }
        if (r)
            protobuf_c_message_free_unpacked(&r->base, NULL);
        free(replies[i].buf);
    }
    nreplies = 0;
}

/* The packed request obj.op(a0, a1) (values taken over; NULL: fewer arguments). */
static ProtobufCBinaryData pack(uint64_t id, const char *obj, const char *op, bv *a0,
                                bv *a1)
{
    bv *args[2] = {a0, a1};
    breq r = SHOAL__BROKER__REQUEST__INIT;
    r.id = id;
    r.object = (char *)obj;
    r.op = (char *)op;
    r.args = args;
    r.n_args = a1 ? 2 : a0 ? 1 : 0;
    ProtobufCBinaryData d;
    d.data = shoal__bv_pack(&r.base, &d.len);
    shoal__bv_free(a0);
    shoal__bv_free(a1);
    if (!d.data) {
        fprintf(stderr, "broker_cost: out of memory\n");
        exit(1);
    }
    return d;
}

static void run(shoal_broker *b, broker_session *s, uint64_t sid, ProtobufCBinaryData d)
{
    broker_request(b, s, sid, d.data, d.len);
    check();
}

/* A request of the N counted (callgrind's --toggle-collect=counted). */
__attribute__((noinline)) void counted(shoal_broker *b, broker_session *s, uint64_t sid,
                                       ProtobufCBinaryData d);
__attribute__((noinline)) void counted(shoal_broker *b, broker_session *s, uint64_t sid,
                                       ProtobufCBinaryData d)
{
    broker_request(b, s, sid, d.data, d.len);
}

/* The request l.extend(range(items)). */
static ProtobufCBinaryData fill(long items)
{
    bv *l = shoal__bv_seq(BV_LIST);
    for (long i = 0; l && i < items; i++)
        if (shoal__bv_seq_insert(l, (size_t)i, shoal__bv_int(i)) < 0) {
            shoal__bv_free(l);
            l = NULL;
        }
    if (!l) {
        fprintf(stderr, "broker_cost: out of memory\n");
        exit(1);
    }
    return pack(6, "l", "extend", l, NULL);
}

static bv *key(size_t i)
{
    char k[16];
    int n = snprintf(k, sizeof(k), "key%zu", i);
    return shoal__bv_str(k, (size_t)n);
}

int main(int argc, char **argv)
{
    const char *op = argc > 2 ? argv[1] : "";
    long n = argc > 2 ? atol(argv[2]) : 0;
    bool view = argc == 4 && !strcmp(argv[3], "view");
    const char *dir = argc == 5 && strcmp(argv[3], "-") ? argv[3] : NULL;
    long nitems = argc == 5 ? atol(argv[4]) : 0;
    bool middle = !strcmp(op, "insert") || !strcmp(op, "pop");
    if (n <= 0 || (argc == 4 && !view) || argc > 5 ||
        (!strcmp(op, "pop") && nitems < n) ||
        (strcmp(op, "set") && strcmp(op, "get") && strcmp(op, "append") &&
         strcmp(op, "lock") && strcmp(op, "batch") && !middle)) {
        fprintf(stderr, "usage: broker_cost set|get|append|lock|batch|insert|pop N "
                        "[view | DIR ITEMS] (pop: N <= ITEMS)\n");
        return 2;
    }
    shoal_broker *b;
    char vname[64];
    snprintf(vname, sizeof(vname), "broker-cost-%d", (int)getpid());
    shoal_broker_config cfg = {dir, 0};
    if (shoal_broker_create(&b, &cfg, deliver) < 0 ||
        (view && broker__view_open(b, vname, NULL) < 0)) {
        fprintf(stderr, "broker_cost: %s\n", shoal_errdetail());
        return 1;
    }
    broker_session *s = (broker_session *)&failures; /* any address: an identity */
    uint64_t sid = broker_session_id(b);
    ProtobufCBinaryData setup[3] = {
        pack(1, "d", "create", shoal__bv_int(SHOAL__BROKER__KIND__DICT), NULL),
        pack(2, "l", "create", shoal__bv_int(SHOAL__BROKER__KIND__LIST), NULL),
        pack(3, "k", "create", shoal__bv_int(SHOAL__BROKER__KIND__LOCK), NULL)};
    ProtobufCBinaryData sets[KEYS], gets[KEYS], more[2];
    for (size_t i = 0; i < KEYS; i++) {
        sets[i] = pack(10 + i, "d", "set", key(i), shoal__bv_int((int64_t)i));
        gets[i] = pack(10 + i, "d", "get", key(i), NULL);
    }
    more[0] = pack(7, "l", "append", shoal__bv_int(42), NULL);
    more[1] = pack(8, "k", "acquire", NULL, NULL);
    ProtobufCBinaryData release = pack(9, "k", "release", NULL, NULL);
    ProtobufCBinaryData items[BATCH];
    for (size_t i = 0; i < BATCH; i++)
        items[i] = sets[i];
    breq br = SHOAL__BROKER__REQUEST__INIT;
    br.id = 5;
    br.batch = items;
    br.n_batch = BATCH;
    ProtobufCBinaryData batch;
    batch.data = shoal__bv_pack(&br.base, &batch.len);

    for (size_t i = 0; i < 3; i++)
        run(b, s, sid, setup[i]);
    for (size_t i = 0; i < KEYS; i++) /* every key there: a set replaces a value */
        run(b, s, sid, sets[i]);
    ProtobufCBinaryData filled = fill(nitems);
    run(b, s, sid, filled);
    free(filled.data);
    for (long i = 0; i < n; i++) {
        if (middle) { /* the middle of the list as it is now */
            long len = nitems + (!strcmp(op, "insert") ? i : -i);
            ProtobufCBinaryData d =
                !strcmp(op, "insert")
                    ? pack(11, "l", "insert", shoal__bv_int(len / 2), shoal__bv_int(i))
                    : pack(11, "l", "pop", shoal__bv_int(len / 2), NULL);
            counted(b, s, sid, d);
            check();
            free(d.data);
        } else if (!strcmp(op, "set")) {
            counted(b, s, sid, sets[i % KEYS]);
            check();
        } else if (!strcmp(op, "get")) {
            counted(b, s, sid, gets[i % KEYS]);
            check();
        } else if (!strcmp(op, "append")) {
            counted(b, s, sid, more[0]);
            check();
        } else if (!strcmp(op, "lock")) {
            counted(b, s, sid, more[1]);
            check();
            counted(b, s, sid, release);
            check();
        } else {
            counted(b, s, sid, batch);
            check();
        }
    }
    broker_session_end(b, s, sid);
    shoal_broker_destroy(b);
    for (size_t i = 0; i < 3; i++)
        free(setup[i].data);
    for (size_t i = 0; i < KEYS; i++) {
        free(sets[i].data);
        free(gets[i].data);
    }
    free(more[0].data);
    free(more[1].data);
    free(release.data);
    free(batch.data);
    if (failures) {
        fprintf(stderr, "broker_cost: %zu requests failed\n", failures);
        return 1;
    }
    printf("broker_cost: %s x %ld\n", op, n);
    return 0;
}
