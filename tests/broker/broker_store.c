/*
 * broker_store.c — the broker's dict index (broker/index.c) and its per-record LMDB
 * format (broker/store.c), driven in-process through broker_request, whose replies
 * come to deliver() (inproc.h).
 *
 * The index is checked against the scanned maps it replaced: every operation runs on
 * the dict "d" (indexed) and on the same dict nested in "n" under the key "in" (the
 * path reaches it; nested maps are scanned), and the two replies must be the same
 * bytes — over thousands of random operations on keys that hash and compare across
 * kinds (1, 1.0, True; tuples; strings and bytes). With a data directory the broker
 * is closed and reopened along the way, and the two must still agree, in order.
 * Lists and queues are checked the same way against their copies before the reopen.
 * Containers of 100,000 entries are emptied from the front (del of the oldest key,
 * pop(0), queue get), in memory and durable, each value checked on the way.
 * A forked broker writing without end is SIGKILLed at a random instant: every write
 * it acknowledged is there after the reopen. A list takes thousands of inserts and
 * pops at random places and many at one place (its record keys run out of room there
 * and a window around it is renumbered), checked against a model in memory, durable
 * across reopens, and in a forked broker SIGKILLed at random instants: the list is the
 * model after the operations acknowledged (or one more). Version 1 and version 2 data
 * directories (written here with LMDB as those formats had them) are migrated — a
 * version 2 one by writing its version only; a malformed item key and a newer version
 * are refused.
 */
#include <lmdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "inproc.h"

static uint64_t next_id;

/* Runs obj.op(args) with a path (args and path taken over); the reply (until the
 * next request). */
static brep *call_path(shoal_broker *b, const char *obj, const char *op, bv **path,
                       size_t npath, bv **args, size_t nargs)
{
    breq r = SHOAL__BROKER__REQUEST__INIT;
    r.id = ++next_id;
    r.object = (char *)obj;
    r.op = (char *)op;
    r.path = path;
    r.n_path = npath;
    r.args = args;
    r.n_args = nargs;
    size_t len;
    void *buf = shoal__bv_pack(&r.base, &len);
    for (size_t i = 0; i < nargs; i++)
        shoal__bv_free(args[i]);
    for (size_t i = 0; i < npath; i++)
        shoal__bv_free(path[i]);
    broker_request(b, SESSION, 7, buf, len);
    free(buf);
    assert_non_null(last);
    assert_int_equal(last->id, r.id);
    return last;
}

#define ARGS(...) (bv *[]){__VA_ARGS__}, sizeof((bv *[]){__VA_ARGS__}) / sizeof(bv *)

static brep *call(shoal_broker *b, const char *obj, const char *op, bv **args, size_t n)
{
    return call_path(b, obj, op, NULL, 0, args, n);
}

static brep *call0(shoal_broker *b, const char *obj, const char *op)
{
    return call(b, obj, op, NULL, 0);
}

static bv *S(const char *s)
{
    return shoal__bv_str(s, strlen(s));
}

static bv *I(int64_t i)
{
    return shoal__bv_int(i);
}

/* The reply's result packed (status folded in), to compare two replies. */
static char *reply_bytes(const brep *r, size_t *len)
{
    brep c = *r;
    c.id = 0;
    c.error = (char *)"";
    return shoal__bv_pack(&c.base, len);
}

static void assert_same_reply(const brep *a, size_t alen, const char *abuf)
{
    size_t blen;
    char *bbuf = reply_bytes(a, &blen);
    assert_int_equal(alen, blen);
    assert_memory_equal(abuf, bbuf, alen);
    free(bbuf);
}

static void create(shoal_broker *b, const char *name, int kind, bv *init)
{
    brep *r = init ? call(b, name, "create", ARGS(I(kind), init))
                   : call(b, name, "create", ARGS(I(kind)));
    assert_int_equal(r->status, 0);
}

/* ---- the dict against the same dict nested (scanned) ---- */

/* A random key: ints, the same numbers as doubles and bools, strings, bytes of the
 * same text, tuples, None. */
static bv *random_key(unsigned *seed)
{
    int n = rand_r(seed) % 40;
    char s[16];
    switch (rand_r(seed) % 7) {
    case 0:
    case 1:
        return I(n);
    case 2:
        return shoal__bv_double(rand_r(seed) % 4 ? (double)n : n + 0.5);
    case 3:
        return shoal__bv_bool(n & 1);
    case 4:
        snprintf(s, sizeof(s), "k%d", n);
        return rand_r(seed) % 3 ? S(s) : shoal__bv_bytes(BV_BYTES, s, strlen(s));
    case 5: {
        bv *t = shoal__bv_seq(BV_TUPLE);
        shoal__bv_seq_insert(t, 0, I(n % 5));
        shoal__bv_seq_insert(t, 1, S(n & 1 ? "a" : "b"));
        return t;
    }
    default:
        return n < 3 ? shoal__bv_none() : I(n + 1000);
    }
}

/* Runs one random operation on "d" and on n['in'] and compares the replies. */
static void random_op(shoal_broker *b, unsigned *seed)
{
    static const char *ops[] = {"set", "set", "set",        "get",  "get",
                                "pop", "del", "setdefault", "incr", "contains",
                                "cas", "len", "update"};
    const char *op = ops[rand_r(seed) % (sizeof(ops) / sizeof(ops[0]))];
    unsigned s2 = *seed;
    bv *args[2][3];
    size_t nargs = 0;
    for (int side = 0; side < 2; side++) {
        unsigned s = s2; /* the same arguments for both */
        bv **a = args[side];
        nargs = 0;
        if (!strcmp(op, "update")) {
            bv *m = shoal__bv_map();
            for (int i = rand_r(&s) % 4; i > 0; i--)
                shoal__bv_map_put(m, random_key(&s), I(rand_r(&s) % 100));
            a[nargs++] = m;
        } else if (strcmp(op, "len")) {
            a[nargs++] = random_key(&s);
        }
        if (!strcmp(op, "set") || !strcmp(op, "setdefault") || !strcmp(op, "incr"))
            a[nargs++] = I(rand_r(&s) % 100);
        if (!strcmp(op, "cas")) {
            a[nargs++] = I(rand_r(&s) % 3);
            a[nargs++] = I(rand_r(&s) % 3);
        }
        if ((!strcmp(op, "get") || !strcmp(op, "pop")) && rand_r(&s) % 2)
            a[nargs++] = S("default");
        if (side == 1)
            *seed = s;
    }
    brep *r = call(b, "d", op, args[0], nargs);
    size_t len;
    char *buf = reply_bytes(r, &len);
    brep *r2 = call_path(b, "n", op, ARGS(S("in")), args[1], nargs);
    assert_same_reply(r2, len, buf);
    free(buf);
}

/* d's items, in order, equal n['in']'s. */
static void assert_dicts_agree(shoal_broker *b)
{
    size_t len;
    char *buf = reply_bytes(call0(b, "d", "items"), &len);
    assert_same_reply(call_path(b, "n", "items", ARGS(S("in")), NULL, 0), len, buf);
    free(buf);
}

static void dict_model(const char *dir)
{
    shoal_broker *b = open_broker(dir);
    create(b, "d", SHOAL__BROKER__KIND__DICT, NULL);
    create(b, "n", SHOAL__BROKER__KIND__DICT, NULL);
    assert_int_equal(call(b, "n", "set", ARGS(S("in"), shoal__bv_map()))->status, 0);
    unsigned seed = 12345;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 1500; i++)
            random_op(b, &seed);
        assert_dicts_agree(b);
        if (round == 3) { /* clear both, then go on filling them */
            assert_int_equal(call0(b, "d", "clear")->status, 0);
            assert_int_equal(call_path(b, "n", "clear", ARGS(S("in")), NULL, 0)->status,
                             0);
        }
        if (dir) { /* what came back from the records is the same */
            shoal_broker_destroy(b);
            b = open_broker(dir);
            assert_dicts_agree(b);
        }
    }
    assert_true(call0(b, "d", "len")->result->i > 20);
    shoal_broker_destroy(b);
}

static void test_dict_index_memory(void **state)
{
    (void)state;
    dict_model(NULL);
}

static void test_dict_index_durable(void **state)
{
    (void)state;
    dict_model(data_dir);
}

/* A large dict: many keys, each found, some removed, the rest still found. */
static void test_dict_large(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(data_dir);
    create(b, "big", SHOAL__BROKER__KIND__DICT, NULL);
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        assert_int_equal(call(b, "big", "set", ARGS(I(i), I(i * 3)))->status, 0);
    for (int i = 0; i < N; i += 3)
        assert_int_equal(call(b, "big", "del", ARGS(I(i)))->status, 0);
    shoal_broker_destroy(b);
    b = open_broker(data_dir);
    for (int i = 0; i < N; i++) {
        brep *r = call(b, "big", "get", ARGS(shoal__bv_double(i)));
        if (i % 3 == 0) {
            assert_int_equal(r->status, SHOAL_ENOENT);
        } else {
            assert_int_equal(r->status, 0);
            assert_int_equal(r->result->i, i * 3);
        }
    }
    brep *k = call0(b, "big", "keys"); /* insertion order */
    assert_int_equal(k->result->list->n_items, N - (N + 2) / 3);
    assert_int_equal(k->result->list->items[0]->i, 1);
    assert_int_equal(k->result->list->items[1]->i, 2);
    assert_int_equal(k->result->list->items[2]->i, 4);
    shoal_broker_destroy(b);
}

/* Appends key: v to map m as it is, even when m has the key already. */
static void raw_put(bv *m, bv *key, bv *v)
{
    Shoal__Broker__Entry *e = malloc(sizeof(*e));
    shoal__broker__entry__init(e);
    e->key = key;
    e->value = v;
    m->map->entries = realloc(m->map->entries, (m->map->n_entries + 1) * sizeof(e));
    m->map->entries[m->map->n_entries++] = e;
}

/* A dict created from a map that repeats a key (1, 1.0, True are one key) has it
 * once: the first key, the last value, as a Python dict display. */
static void test_dict_created_with_repeated_keys(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(data_dir);
    bv *m = shoal__bv_map();
    raw_put(m, I(1), S("a"));
    raw_put(m, S("x"), I(2));
    raw_put(m, shoal__bv_double(1.0), S("b"));
    raw_put(m, shoal__bv_bool(true), S("c"));
    create(b, "dup", SHOAL__BROKER__KIND__DICT, m);
    for (int life = 0; life < 2; life++) {
        assert_int_equal(call0(b, "dup", "len")->result->i, 2);
        brep *k = call0(b, "dup", "keys"); /* 1 first, then again after 'x' */
        assert_int_equal(k->result->list->items[life]->kind_case, BV_INT);
        assert_string_equal(call(b, "dup", "get", ARGS(I(1)))->result->s, "c");
        assert_int_equal(call(b, "dup", "del", ARGS(shoal__bv_bool(true)))->status, 0);
        assert_int_equal(call(b, "dup", "contains", ARGS(I(1)))->result->b, false);
        assert_int_equal(call(b, "dup", "set", ARGS(I(1), S("c")))->status, 0);
        shoal_broker_destroy(b);
        b = open_broker(data_dir);
    }
    shoal_broker_destroy(b);
}

/* ---- lists and queues ---- */

static char *copy_of(shoal_broker *b, const char *name, size_t *len)
{
    brep *r = call0(b, name, "copy");
    assert_int_equal(r->status, 0);
    return reply_bytes(r, len);
}

/* The queue's items in order, packed as a list (got and put back). */
static char *queue_items(shoal_broker *b, const char *name, size_t *len)
{
    size_t n = (size_t)call0(b, name, "qsize")->result->i;
    bv *items = shoal__bv_seq(BV_LIST);
    for (size_t i = 0; i < n; i++) {
        brep *g = call0(b, name, "get");
        assert_int_equal(g->status, 0);
        shoal__bv_seq_insert(items, i, shoal__bv_clone(g->result));
    }
    for (size_t i = 0; i < n; i++)
        call(b, name, "put", ARGS(shoal__bv_clone(items->list->items[i])));
    brep r = SHOAL__BROKER__REPLY__INIT;
    r.result = items;
    char *buf = reply_bytes(&r, len);
    shoal__bv_free(items);
    return buf;
}

static void test_list_queue_records(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(data_dir);
    create(b, "l", SHOAL__BROKER__KIND__LIST, NULL);
    create(b, "q", SHOAL__BROKER__KIND__QUEUE, NULL);
    create(b, "nd", SHOAL__BROKER__KIND__DICT, NULL);
    unsigned seed = 99;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 400; i++) {
            int r = rand_r(&seed) % 10;
            int v = rand_r(&seed) % 1000;
            if (r < 4)
                call(b, "l", "append", ARGS(I(v)));
            else if (r == 4)
                call(b, "l", "pop", ARGS(I(0)));
            else if (r == 5)
                call0(b, "l", "pop");
            else if (r == 6)
                call(b, "l", "insert", ARGS(I(v % 7), I(v)));
            else if (r == 7)
                call(b, "l", "set", ARGS(I(0), I(v)));
            else if (r == 8 && v % 13 == 0)
                call0(b, "l", "reverse");
            else
                call(b, "l", "remove", ARGS(I(v)));
            call(b, "q", rand_r(&seed) % 3 ? "put" : "get", ARGS(I(v)));
        }
        /* a list nested in a dict: d['x'].append() rewrites d['x'] */
        call(b, "nd", "setdefault", ARGS(S("x"), shoal__bv_seq(BV_LIST)));
        call_path(b, "nd", "append", ARGS(S("x")), ARGS(I(round)));
        size_t ll, ql, nl;
        char *l = copy_of(b, "l", &ll), *q = queue_items(b, "q", &ql),
             *n = copy_of(b, "nd", &nl);
        shoal_broker_destroy(b);
        b = open_broker(data_dir);
        assert_same_reply(call0(b, "l", "copy"), ll, l);
        assert_same_reply(call0(b, "nd", "copy"), nl, n);
        size_t ql2;
        char *q2 = queue_items(b, "q", &ql2);
        assert_int_equal(ql, ql2);
        assert_memory_equal(q, q2, ql);
        free(q2);
        free(l);
        free(q);
        free(n);
    }
    assert_true(call0(b, "nd", "len")->result->i == 1);
    shoal_broker_destroy(b);
}

/* Runs obj.op(args) deferred: its commit (and reply) waits for broker_commit. */
static void deferred(shoal_broker *b, const char *obj, const char *op, bv **args,
                     size_t n)
{
    breq r = SHOAL__BROKER__REQUEST__INIT;
    r.id = ++next_id;
    r.object = (char *)obj;
    r.op = (char *)op;
    r.args = args;
    r.n_args = n;
    size_t len;
    void *buf = shoal__bv_pack(&r.base, &len);
    for (size_t i = 0; i < n; i++)
        shoal__bv_free(args[i]);
    assert_int_equal(broker_run(b, SESSION, 7, buf, len, 1), 1);
    free(buf);
}

/* d[k] = v as session `sid` (SESSION: 7, SESSION2: 8), with defer: what broker_run
 * returned. */
static broker_session *const SESSION2 = (broker_session *)&ndelivered;

/* A broker on data_dir whose timer thread has made its first pass, which commits
 * whatever is waiting (as every timer pass does): a test that counts commits starts
 * after it. */
static shoal_broker *settled_broker(void)
{
    shoal_broker *b = open_broker(data_dir);
    usleep(200 * 1000);
    return b;
}

static int run_set(shoal_broker *b, uint64_t sid, int64_t k, int64_t v, int defer)
{
    breq r = SHOAL__BROKER__REQUEST__INIT;
    bv *args[2] = {I(k), I(v)};
    r.id = ++next_id;
    r.object = (char *)"g";
    r.op = (char *)"set";
    r.args = args;
    r.n_args = 2;
    size_t len;
    void *buf = shoal__bv_pack(&r.base, &len);
    shoal__bv_free(args[0]);
    shoal__bv_free(args[1]);
    int rc = broker_run(b, sid == 7 ? SESSION : SESSION2, sid, buf, len, defer);
    free(buf);
    return rc;
}

/* Group commit: while session 7 runs a batch, session 8's request joins its commit —
 * no reply before it, every reply after it, in order; past GROUP_MAX replies waiting
 * (256) the request that makes them so many commits them. */
static void test_group_commit(void **state)
{
    (void)state;
    shoal_broker *b = settled_broker();
    create(b, "g", SHOAL__BROKER__KIND__DICT, NULL);
    ndelivered = 0;
    broker_batching(b, 1);
    assert_int_equal(run_set(b, 7, 1, 10, 1), 1);
    assert_int_equal(run_set(b, 8, 2, 20, 0), 0); /* joins the batch's commit */
    assert_int_equal(run_set(b, 7, 3, 30, 1), 1);
    assert_int_equal(ndelivered, 0); /* nothing acknowledged before the commit */
    broker_batching(b, 0);
    assert_int_equal(run_set(b, 7, 4, 40, 0), 0); /* the batch's end commits all */
    assert_int_equal(ndelivered, 4);
    assert_int_equal(last->id, next_id);
    /* a batch that does not end: the 256th reply waiting commits them */
    broker_batching(b, 1);
    ndelivered = 0;
    for (int i = 0; i < 300; i++)
        run_set(b, 8, 100 + i, i, 0);
    assert_int_equal(ndelivered, 256);
    broker_batching(b, 0);
    broker_commit(b);
    assert_int_equal(ndelivered, 300);
    shoal_broker_destroy(b);
    b = open_broker(data_dir); /* all of it durable */
    assert_int_equal(call0(b, "g", "len")->result->i, 304);
    assert_int_equal(call(b, "g", "get", ARGS(I(2)))->result->i, 20);
    assert_int_equal(call(b, "g", "get", ARGS(I(399)))->result->i, 299);
    shoal_broker_destroy(b);
}

/* A group (a batch of session 7 and a request of session 8 joining it) stopped at
 * `point` of its commit and SIGKILLed: before the commit none of its writes is
 * there, after it all of them; none was acknowledged. */
static int group_child(void *arg)
{
    int *fds = arg;
    close(fds[0]);
    ack_fd = fds[1];
    shoal_broker *b = settled_broker();
    broker_batching(b, 1);
    run_set(b, 7, 1, 10, 1);
    run_set(b, 8, 2, 20, 0);
    run_set(b, 7, 3, 30, 1);
    broker_batching(b, 0);
    run_set(b, 7, 4, 40, 0); /* commits: stops at the point */
    return 0;
}

static void group_killed_at(const char *point, int64_t want)
{
    shoal_broker *b = open_broker(data_dir);
    create(b, "g", SHOAL__BROKER__KIND__DICT, NULL);
    shoal_broker_destroy(b);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = t_fork_paused(point, group_child, fds);
    assert_true(pid > 0);
    t_kill(pid);
    close(fds[1]);
    uint64_t id;
    assert_int_equal(read(fds[0], &id, sizeof(id)), 0); /* nothing acknowledged */
    close(fds[0]);
    b = open_broker(data_dir);
    assert_int_equal(call0(b, "g", "len")->result->i, want);
    shoal_broker_destroy(b);
}

static void test_group_killed_before_commit(void **state)
{
    (void)state;
    group_killed_at("broker.before_commit", 0);
}

static void test_group_killed_after_commit(void **state)
{
    (void)state;
    group_killed_at("broker.after_commit", 4);
}

/* One commit holds a dict's writes, its deletion, a new dict of the same name and
 * its writes: the new one alone comes back. */
static void test_delete_and_recreate_in_one_commit(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(data_dir);
    create(b, "r", SHOAL__BROKER__KIND__LIST, NULL);
    call(b, "r", "append", ARGS(I(1)));
    deferred(b, "r", "append", ARGS(I(2)));
    deferred(b, "r", "clear", NULL, 0);
    deferred(b, "r", "append", ARGS(I(3)));
    deferred(b, "r", "delete", NULL, 0);
    deferred(b, "r", "create", ARGS(I(SHOAL__BROKER__KIND__DICT)));
    deferred(b, "r", "set", ARGS(S("k"), I(4)));
    deferred(b, "r", "set", ARGS(S("gone"), I(5)));
    deferred(b, "r", "del", ARGS(S("gone")));
    broker_commit(b);
    shoal_broker_destroy(b);
    b = open_broker(data_dir);
    brep *r = call0(b, "r", "items");
    assert_int_equal(r->status, 0);
    assert_int_equal(r->result->list->n_items, 1);
    assert_string_equal(r->result->list->items[0]->tuple->items[0]->s, "k");
    assert_int_equal(r->result->list->items[0]->tuple->items[1]->i, 4);
    shoal_broker_destroy(b);
}

/* ---- large containers: removing from the front costs what a lookup does ---- */

/* Runs obj.op(args), whose status must be 0: with a data directory deferred and
 * committed every 1000 requests, as a session's pipelined batch is. */
static void bulk(shoal_broker *b, bool durable, const char *obj, const char *op,
                 bv **args, size_t n)
{
    static unsigned count;
    if (!durable) {
        assert_int_equal(call(b, obj, op, args, n)->status, 0);
        return;
    }
    deferred(b, obj, op, args, n);
    if (++count % 1000 == 0) {
        broker_commit(b);
        assert_int_equal(last->status, 0);
    }
}

/* The first item of obj's keys (dict) or copy (list), and their number. */
static int64_t first_of(shoal_broker *b, const char *obj, const char *op, size_t *n)
{
    brep *r = call0(b, obj, op);
    assert_int_equal(r->status, 0);
    *n = r->result->list->n_items;
    return *n ? r->result->list->items[0]->i : -1;
}

/* 100,000 keys deleted, 100,000 items popped from the front of a list and got from
 * a queue, oldest first (each one a move of every other before holes replaced it),
 * with the state read whole (keys, copy: the holes squeezed out) and, durable, the
 * broker reopened half way; every value comes back in order. */
static void large_containers(const char *dir)
{
    enum { N = 100000 };
    bool durable = dir != NULL;
    shoal_broker *b = open_broker(dir);
    bv *m = shoal__bv_map(), *l = shoal__bv_seq(BV_LIST);
    m->map->entries = malloc(N * sizeof(*m->map->entries));
    for (int i = 0; i < N; i++) {
        Shoal__Broker__Entry *e = malloc(sizeof(*e));
        shoal__broker__entry__init(e);
        e->key = I(i);
        e->value = I(i * 2);
        m->map->entries[m->map->n_entries++] = e;
        assert_int_equal(shoal__bv_seq_insert(l, (size_t)i, I(i)), 0);
    }
    create(b, "bd", SHOAL__BROKER__KIND__DICT, NULL);
    create(b, "bl", SHOAL__BROKER__KIND__LIST, NULL);
    create(b, "bq", SHOAL__BROKER__KIND__QUEUE, NULL);
    assert_int_equal(call(b, "bd", "update", ARGS(m))->status, 0);
    assert_int_equal(call(b, "bl", "extend", ARGS(l))->status, 0);
    for (int i = 0; i < N; i++)
        bulk(b, durable, "bq", "put", ARGS(I(i)));
    for (int i = 0; i < N; i++) {
        if (i == N / 2) {
            if (durable) {
                broker_commit(b);
                shoal_broker_destroy(b);
                b = open_broker(dir);
            }
            size_t n;
            assert_int_equal(call0(b, "bd", "len")->result->i, N / 2);
            assert_int_equal(first_of(b, "bd", "keys", &n), N / 2);
            assert_int_equal(n, N / 2);
            assert_int_equal(first_of(b, "bl", "copy", &n), N / 2);
            assert_int_equal(n, N / 2);
            assert_int_equal(call0(b, "bq", "qsize")->result->i, N / 2);
        }
        if (i % 997 == 0) { /* looked at */
            brep *r = call(b, "bd", "pop", ARGS(I(i)));
            assert_int_equal(r->status, 0);
            assert_int_equal(r->result->i, i * 2);
            r = call(b, "bl", "pop", ARGS(I(0)));
            assert_int_equal(r->status, 0);
            assert_int_equal(r->result->i, i);
            r = call(b, "bq", "get", NULL, 0);
            assert_int_equal(r->status, 0);
            assert_int_equal(r->result->i, i);
            assert_int_equal(call(b, "bd", "get", ARGS(I(i + 1)))->result->i, i * 2 + 2);
        } else {
            bulk(b, durable, "bd", "del", ARGS(I(i)));
            bulk(b, durable, "bl", "pop", ARGS(I(0)));
            bulk(b, durable, "bq", "get", NULL, 0);
        }
    }
    if (durable) {
        broker_commit(b);
        shoal_broker_destroy(b);
        b = open_broker(dir);
    }
    assert_int_equal(call0(b, "bd", "len")->result->i, 0);
    assert_int_equal(call0(b, "bl", "len")->result->i, 0);
    assert_int_equal(call0(b, "bq", "qsize")->result->i, 0);
    assert_int_equal(call(b, "bl", "append", ARGS(I(7)))->status, 0);
    assert_int_equal(call(b, "bl", "get", ARGS(I(0)))->result->i, 7);
    shoal_broker_destroy(b);
}

static void test_large_containers_memory(void **state)
{
    (void)state;
    large_containers(NULL);
}

static void test_large_containers_durable(void **state)
{
    (void)state;
    large_containers(data_dir);
}

/* ---- a list's middle inserts and deletes against a model ---- */

/* The list's items as a model of int64s. */
typedef struct {
    int64_t *v;
    size_t n, cap;
} model;

static void model_insert(model *m, size_t at, int64_t v)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = realloc(m->v, m->cap * sizeof(*m->v));
        assert_non_null(m->v);
    }
    memmove(m->v + at + 1, m->v + at, (m->n - at) * sizeof(*m->v));
    m->v[at] = v;
    m->n++;
}

static int64_t model_take(model *m, size_t at)
{
    int64_t v = m->v[at];
    memmove(m->v + at, m->v + at + 1, (m->n - at - 1) * sizeof(*m->v));
    m->n--;
    return v;
}

/* Operation i on a list the model mirrors: an insert at a random place, at the
 * front, at the end, or many at one place (its keys run out of room between the
 * neighbours there: a window around it is renumbered), or a pop at a random place
 * or at either end. Applies it to m; *pos and *insert say what it was (and a pop
 * returns the value it takes). */
static int64_t next_list_op(model *m, unsigned *seed, int64_t i, size_t *pos,
                            bool *insert)
{
    int r = rand_r(seed) % 20;
    size_t n = m->n;
    *insert = n < 8 || r < 12;
    if (*insert) {
        *pos = r < 5    ? n / 3 /* the hot spot */
               : r < 9  ? (size_t)rand_r(seed) % (n + 1)
               : r < 10 ? 0
                        : n;
        model_insert(m, *pos, i);
        return 0;
    }
    *pos = r < 18 ? (size_t)rand_r(seed) % n : r == 18 ? 0 : n - 1;
    return model_take(m, *pos);
}

static brep *list_op(shoal_broker *b, const char *name, size_t pos, bool insert,
                     int64_t v)
{
    brep *r = insert ? call(b, name, "insert", ARGS(I((int64_t)pos), I(v)))
                     : call(b, name, "pop", ARGS(I((int64_t)pos)));
    assert_int_equal(r->status, 0);
    return r;
}

static void assert_list_is(shoal_broker *b, const char *name, const model *m)
{
    brep *r = call0(b, name, "copy");
    assert_int_equal(r->status, 0);
    assert_int_equal(r->result->list->n_items, m->n);
    for (size_t k = 0; k < m->n; k++)
        assert_int_equal(r->result->list->items[k]->i, m->v[k]);
}

/* Thousands of inserts and pops at random places (and many at one place), each pop's
 * value checked, the list compared with the model after each reopen. */
static void list_model(const char *dir)
{
    shoal_broker *b = open_broker(dir);
    create(b, "l", SHOAL__BROKER__KIND__LIST, NULL);
    model m = {0};
    unsigned seed = 7;
    int64_t i = 0;
    for (int round = 0; round < 6; round++) {
        for (int k = 0; k < 3000; k++, i++) {
            size_t pos;
            bool insert;
            int64_t taken = next_list_op(&m, &seed, i, &pos, &insert);
            brep *r = list_op(b, "l", pos, insert, i);
            if (!insert)
                assert_int_equal(r->result->i, taken);
        }
        assert_list_is(b, "l", &m);
        if (dir) {
            shoal_broker_destroy(b);
            b = open_broker(dir);
            assert_list_is(b, "l", &m);
        }
    }
    /* pops from the front leave holes in memory (until they are squeezed out): the
     * keys stay beside their items through a middle pop, an append and a set then */
    for (int k = 0; k < 300 && m.n > 4; k++) {
        for (int j = 0; j < 2; j++)
            assert_int_equal(call(b, "l", "pop", ARGS(I(0)))->result->i,
                             model_take(&m, 0));
        size_t mid = m.n / 2;
        assert_int_equal(call(b, "l", "pop", ARGS(I((int64_t)mid)))->result->i,
                         model_take(&m, mid));
        call(b, "l", "append", ARGS(I(-k)));
        model_insert(&m, m.n, -k);
        call(b, "l", "set", ARGS(I(1), I(k)));
        m.v[1] = k;
    }
    if (dir) {
        shoal_broker_destroy(b);
        b = open_broker(dir);
    }
    assert_list_is(b, "l", &m);
    shoal_broker_destroy(b);
    free(m.v);
}

static void test_list_middle_memory(void **state)
{
    (void)state;
    list_model(NULL);
}

static void test_list_middle_durable(void **state)
{
    (void)state;
    list_model(data_dir);
}

/* ---- SIGKILL at a random instant ---- */

enum { KEYS = 5000 }; /* the writer's dict keys: i % KEYS */

static int group_writer; /* writer_child writes in groups (test_sigkill_group) */

/* With group_writer, request i of each 8: 0-2 session 7's batch (deferred), 3-5
 * session 8's joining it, 6 the batch's last, 7 session 8's alone. Returns defer. */
static int group_step(shoal_broker *b, int64_t i)
{
    int step = (int)(i % 8);
    if (step == 0)
        broker_batching(b, 1);
    if (step == 6)
        broker_batching(b, 0);
    return step < 3;
}

static int writer_child(void *arg)
{
    ack_fd = *(int *)arg;
    shoal_broker *b = open_broker(data_dir);
    for (int64_t i = 0;; i++) {
        breq r = SHOAL__BROKER__REQUEST__INIT;
        bv *args[2] = {I(i % KEYS), I(i)};
        r.id = (uint64_t)i + 1;
        r.object = (char *)(i % 3 ? "kd" : "kl");
        r.op = (char *)(i % 3 ? "set" : "append");
        r.args = i % 3 ? args : args + 1;
        r.n_args = i % 3 ? 2 : 1;
        size_t len;
        void *buf = shoal__bv_pack(&r.base, &len);
        shoal__bv_free(args[0]);
        shoal__bv_free(args[1]);
        if (!group_writer) {
            broker_request(b, SESSION, 7, buf, len);
        } else {
            int defer = group_step(b, i), s8 = i % 8 >= 3 && i % 8 != 6;
            broker_run(b, s8 ? SESSION2 : SESSION, s8 ? 8 : 7, buf, len, defer);
        }
        free(buf);
    }
    return 0;
}

/* Runs writer (a child writing requests with ids 1, 2, ... and their replies' ids to
 * ack_fd) until the reply to request `want` came, SIGKILLs it, and returns the id of
 * the last reply it wrote (the replies written meanwhile included). */
static uint64_t killed_writer(int (*writer)(void *), uint64_t want)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = t_fork(writer, &fds[1]);
    close(fds[1]);
    uint64_t id = 0;
    while (id < want && read(fds[0], &id, sizeof(id)) == sizeof(id))
        ;
    kill(pid, SIGKILL);
    t_wait(pid);
    while (read(fds[0], &id, sizeof(id)) == sizeof(id)) /* acknowledged meanwhile */
        ;
    close(fds[0]);
    return id;
}

static void sigkill_any_instant(void)
{
    shoal_broker *b = open_broker(data_dir);
    create(b, "kd", SHOAL__BROKER__KIND__DICT, NULL);
    create(b, "kl", SHOAL__BROKER__KIND__LIST, NULL);
    shoal_broker_destroy(b);
    unsigned seed = (unsigned)getpid();
    int64_t acked = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t id = killed_writer(writer_child, 300 + rand_r(&seed) % 3000);
        acked = (int64_t)id - 1; /* the writes 0..acked are acknowledged */
        b = open_broker(data_dir);
        /* every acknowledged set of this life is there: key i % KEYS holds the last
         * acknowledged i written to it — or a later one, committed but not
         * acknowledged (a loaded machine lets the child run thousands of writes past
         * `want` before the kill, so the keys wrap) */
        for (int64_t i = acked > KEYS ? acked - KEYS + 1 : 1; i <= acked; i++)
            if (i % 3) {
                brep *r = call(b, "kd", "get", ARGS(I(i % KEYS)));
                assert_int_equal(r->status, 0);
                int64_t v = r->result->i;
                if (v != i)
                    assert_true(v > acked && (v - i) % KEYS == 0);
            }
        /* the list has every acknowledged append of this life, in order, and at most
         * those of the commit after them (committed, not acknowledged): one, or the
         * three of a group of 8 */
        brep *r = call0(b, "kl", "copy");
        size_t n = r->result->list->n_items, want_n = (size_t)(acked / 3) + 1;
        assert_true(n >= want_n && n <= want_n + (group_writer ? 3 : 1));
        for (size_t k = 0; k < n; k++)
            assert_int_equal(r->result->list->items[k]->i, (int64_t)k * 3);
        call0(b, "kl", "clear"); /* the next life starts from 0 again */
        shoal_broker_destroy(b);
    }
}

static void test_sigkill_any_instant(void **state)
{
    (void)state;
    group_writer = 0;
    sigkill_any_instant();
}

/* The same with the writes in groups of two sessions sharing a commit. */
static void test_sigkill_group(void **state)
{
    (void)state;
    group_writer = 1;
    sigkill_any_instant();
    group_writer = 0;
}

/* A forked broker runs the list operations of next_list_op without end and is
 * SIGKILLed at a random instant: the list is the model after the operations it
 * acknowledged, or after one more (committed, not acknowledged). */
static unsigned list_seed;

static int list_writer_child(void *arg)
{
    ack_fd = *(int *)arg;
    shoal_broker *b = open_broker(data_dir);
    model m = {0};
    unsigned seed = list_seed;
    for (int64_t i = 0;; i++) {
        size_t pos;
        bool insert;
        next_list_op(&m, &seed, i, &pos, &insert);
        breq r = SHOAL__BROKER__REQUEST__INIT;
        bv *args[2] = {I((int64_t)pos), I(i)};
        r.id = (uint64_t)i + 1;
        r.object = (char *)"rl";
        r.op = (char *)(insert ? "insert" : "pop");
        r.args = args;
        r.n_args = insert ? 2 : 1;
        size_t len;
        void *buf = shoal__bv_pack(&r.base, &len);
        shoal__bv_free(args[0]);
        shoal__bv_free(args[1]);
        broker_request(b, SESSION, 7, buf, len);
        free(buf);
    }
    return 0;
}

static bool list_equals(const bv *l, const model *m)
{
    if (l->list->n_items != m->n)
        return false;
    for (size_t k = 0; k < m->n; k++)
        if (l->list->items[k]->i != m->v[k])
            return false;
    return true;
}

static void test_sigkill_list_middle(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(data_dir);
    create(b, "rl", SHOAL__BROKER__KIND__LIST, NULL);
    shoal_broker_destroy(b);
    unsigned seed = (unsigned)getpid();
    for (int round = 0; round < 4; round++) {
        list_seed = rand_r(&seed);
        uint64_t id = killed_writer(list_writer_child, 300 + rand_r(&seed) % 4000);
        /* the model after the id acknowledged operations */
        model m = {0};
        unsigned s = list_seed;
        size_t pos;
        bool insert;
        for (int64_t i = 0; i < (int64_t)id; i++)
            next_list_op(&m, &s, i, &pos, &insert);
        b = open_broker(data_dir);
        brep *r = call0(b, "rl", "copy");
        assert_int_equal(r->status, 0);
        if (!list_equals(r->result, &m)) { /* then the one after it was committed */
            next_list_op(&m, &s, (int64_t)id, &pos, &insert);
            assert_true(list_equals(r->result, &m));
        }
        free(m.v);
        call0(b, "rl", "clear"); /* the next life starts from an empty list again */
        shoal_broker_destroy(b);
    }
}

/* ---- versions ---- */

static void lmdb_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl, const void *v,
                     size_t vl)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
}

/* Writes a data directory as version 1 had it: "o" name -> the whole Object. */
static void write_v1(const char *dir, uint32_t *version)
{
    assert_int_equal(mkdir(dir, 0700), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    uint64_t boot = 3;
    lmdb_put(txn, dbi, "m:boot", 6, &boot, sizeof(boot));
    if (version)
        lmdb_put(txn, dbi, "m:version", 9, version, sizeof(*version));
    bobjstate st = SHOAL__BROKER__OBJECT__INIT;
    st.kind = SHOAL__BROKER__KIND__DICT;
    st.typecode = (char *)"";
    st.data = shoal__bv_map();
    shoal__bv_map_put(st.data, S("a"), I(1));
    shoal__bv_map_put(st.data, I(2), S("two"));
    size_t len;
    void *buf = shoal__bv_pack(&st.base, &len);
    lmdb_put(txn, dbi, "odict", 5, buf, len);
    free(buf);
    shoal__bv_free(st.data);
    st.kind = SHOAL__BROKER__KIND__LIST;
    st.data = shoal__bv_seq(BV_LIST);
    shoal__bv_seq_insert(st.data, 0, I(10));
    shoal__bv_seq_insert(st.data, 1, I(11));
    buf = shoal__bv_pack(&st.base, &len);
    lmdb_put(txn, dbi, "olist", 5, buf, len);
    free(buf);
    shoal__bv_free(st.data);
    st.kind = SHOAL__BROKER__KIND__VALUE;
    st.data = I(42);
    buf = shoal__bv_pack(&st.base, &len);
    lmdb_put(txn, dbi, "oval", 4, buf, len);
    free(buf);
    shoal__bv_free(st.data);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_version_1_migrated(void **state)
{
    (void)state;
    write_v1(data_dir, NULL);
    for (int life = 0; life < 2;
         life++) { /* migrated, then read as the current version */
        shoal_broker *b = open_broker(data_dir);
        assert_string_equal(call(b, "dict", "get", ARGS(I(2)))->result->s, "two");
        assert_int_equal(call(b, "dict", "get", ARGS(S("a")))->result->i, 1);
        assert_int_equal(call(b, "list", "get", ARGS(I(1)))->result->i, 11);
        assert_int_equal(call0(b, "val", "get")->result->i, 42);
        assert_int_equal(call(b, "list", "append", ARGS(I(12 + life)))->status, 0);
        assert_int_equal(call0(b, "list", "len")->result->i, 3 + life);
        shoal_broker_destroy(b);
    }
}

/* The key "e" name "\0" id of an item or entry record. */
static size_t item_key(char *key, const char *name, uint64_t id)
{
    size_t n = strlen(name);
    key[0] = 'e';
    memcpy(key + 1, name, n + 1);
    for (int i = 0; i < 8; i++)
        key[n + 2 + i] = (char)(id >> (56 - 8 * i));
    return n + 10;
}

/* Writes a data directory as version 2 had it: list "l" with items 100..109 under ids
 * 0..9 (head + position), queue "q" with items 5..8 under ids 5..8 (four got), and
 * a record whose key has no room for an id when bad_key. */
static void write_v2(const char *dir, bool bad_key)
{
    assert_int_equal(mkdir(dir, 0700), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    uint32_t version = 2;
    uint64_t boot = 3;
    lmdb_put(txn, dbi, "m:version", 9, &version, sizeof(version));
    lmdb_put(txn, dbi, "m:boot", 6, &boot, sizeof(boot));
    const char *names[2] = {"l", "q"};
    int kinds[2] = {SHOAL__BROKER__KIND__LIST, SHOAL__BROKER__KIND__QUEUE};
    for (int o = 0; o < 2; o++) {
        bobjstate st = SHOAL__BROKER__OBJECT__INIT;
        st.kind = kinds[o];
        st.typecode = (char *)"";
        st.data = shoal__bv_none();
        size_t len;
        void *buf = shoal__bv_pack(&st.base, &len);
        char key[32] = "h";
        strcpy(key + 1, names[o]);
        lmdb_put(txn, dbi, key, 1 + strlen(names[o]), buf, len);
        free(buf);
        shoal__bv_free(st.data);
        for (uint64_t id = o ? 5 : 0; id < (o ? 9 : 10); id++) {
            bv *v = I(o ? (int64_t)id : 100 + (int64_t)id);
            buf = shoal__bv_pack(&v->base, &len);
            lmdb_put(txn, dbi, key, item_key(key, names[o], id) - (bad_key && id == 7),
                     buf, len);
            free(buf);
            shoal__bv_free(v);
        }
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Every record of dir but those of "m:" (the version, the boot count), packed one
 * after the other: key length, key, value length, value. */
static char *records_of(const char *dir, size_t *len, uint32_t *version)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    char *out = NULL;
    *len = 0;
    MDB_val k, v;
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        if (k.mv_size == 9 && !memcmp(k.mv_data, "m:version", 9)) {
            assert_int_equal(v.mv_size, sizeof(*version));
            memcpy(version, v.mv_data, sizeof(*version));
        }
        if (k.mv_size >= 2 && !memcmp(k.mv_data, "m:", 2))
            continue;
        out = realloc(out, *len + 16 + k.mv_size + v.mv_size);
        assert_non_null(out);
        memcpy(out + *len, &k.mv_size, 8);
        memcpy(out + *len + 8, k.mv_data, k.mv_size);
        memcpy(out + *len + 8 + k.mv_size, &v.mv_size, 8);
        memcpy(out + *len + 16 + k.mv_size, v.mv_data, v.mv_size);
        *len += 16 + k.mv_size + v.mv_size;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return out;
}

/* Version 2's item ids (head + position, contiguous) are version 3 keys as they
 * are: opening the directory writes the version and nothing else; then a middle
 * insert (no room between contiguous ids: the items around it are renumbered) and
 * the rest keep the lists as the model has them. */
static void test_version_2_migrated(void **state)
{
    (void)state;
    write_v2(data_dir, false);
    size_t len0, len1;
    uint32_t v0 = 0, v1 = 0;
    char *before = records_of(data_dir, &len0, &v0);
    shoal_broker *b = open_broker(data_dir);
    shoal_broker_destroy(b);
    char *after = records_of(data_dir, &len1, &v1);
    assert_int_equal(v0, 2);
    assert_int_equal(v1, 3);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
    model m = {0};
    for (int64_t i = 0; i < 10; i++)
        model_insert(&m, (size_t)i, 100 + i);
    unsigned seed = 5;
    b = open_broker(data_dir);
    assert_list_is(b, "l", &m);
    assert_int_equal(call0(b, "q", "get")->result->i, 5);
    for (int life = 0; life < 3; life++) {
        for (int64_t i = 0; i < 500; i++) {
            size_t pos;
            bool insert;
            int64_t taken = next_list_op(&m, &seed, 1000 * life + i, &pos, &insert);
            brep *r = list_op(b, "l", pos, insert, 1000 * life + i);
            if (!insert)
                assert_int_equal(r->result->i, taken);
        }
        assert_int_equal(call(b, "q", "put", ARGS(I(life)))->status, 0);
        shoal_broker_destroy(b);
        b = open_broker(data_dir);
        assert_list_is(b, "l", &m);
    }
    for (int64_t want = 6; want < 9; want++)
        assert_int_equal(call0(b, "q", "get")->result->i, want);
    for (int64_t want = 0; want < 3; want++)
        assert_int_equal(call0(b, "q", "get")->result->i, want);
    shoal_broker_destroy(b);
    free(m.v);
}

/* A record key without room for its id: the directory is refused, naming itself and
 * the object. */
static void test_malformed_key_refused(void **state)
{
    (void)state;
    write_v2(data_dir, true);
    shoal_broker *b;
    shoal_broker_config cfg = {data_dir, 0};
    assert_int_equal(shoal_broker_create(&b, &cfg, deliver), SHOAL_ECORRUPT);
    const char *e = shoal_errdetail();
    assert_non_null(strstr(e, data_dir));
    assert_non_null(strstr(e, "malformed: object \"l\""));
}

static void test_newer_version_refused(void **state)
{
    (void)state;
    uint32_t v = 9;
    write_v1(data_dir, &v);
    shoal_broker *b;
    shoal_broker_config cfg = {data_dir, 0};
    assert_int_equal(shoal_broker_create(&b, &cfg, deliver), SHOAL_ECORRUPT);
    const char *e = shoal_errdetail();
    assert_non_null(strstr(e, data_dir));
    assert_non_null(strstr(e, "version 9"));
    assert_non_null(strstr(e, "and 3"));
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dict_index_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dict_index_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dict_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dict_created_with_repeated_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_queue_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_recreate_in_one_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_large_containers_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_containers_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_middle_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_middle_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_any_instant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_killed_before_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_killed_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_list_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_1_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_2_migrated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
