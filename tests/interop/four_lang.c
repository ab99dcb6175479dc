/*
 * four_lang.c — the C side of the four-language test (test_four_lang.py): C, Python,
 * Rust and Node processes share the queue "four.orders" of orders.Order and the Value
 * "four.tally" of interop.Tally (tally.proto). The other languages' programs
 * (four_lang.py, four_lang.js, bindings/rust/shoal-tests' shoal-interop) follow the same
 * protocol:
 *
 *   four_lang writer LANG N   put N orders numbered LANG*1000000+i (i < N) with the
 *                             language's name as symbol, price i/2, quantity i, side
 *                             BUY for even i, fills {LANG}; after each, under the
 *                             tally's lock: total += id, adds += 1, by_lang[LANG-1] += 1,
 *                             last = the language's name
 *   four_lang reader N        get orders until the stream ends; each of the 4*N must
 *                             arrive exactly once, intact; then the tally must be exact
 *
 * LANG is 1 c, 2 python, 3 rust, 4 node. The root and domain come from $SHOAL_ROOT and
 * $SHOAL_DOMAIN. Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orders.shoal.h"
#include "tally.shoal.h"

#define CAPACITY    256
#define TIMEOUT     SHOAL_SEC(60)
#define ID(lang, i) ((int64_t)(lang)*1000000 + (i))

static const char *const langs[] = {"c", "python", "rust", "node"};

static int fail(const char *what, int rc)
{
    fprintf(stderr, "four_lang (c): %s: %s: %s\n", what, shoal_strerror(rc),
            shoal_errdetail());
    return 1;
}

static int open_both(Order_queue **q, Tally_value **v)
{
    shoal_queue_config cfg = {.capacity = CAPACITY};
    int rc = Order_queue_open(q, "four.orders", SHOAL_OPEN_OR_CREATE, &cfg, NULL);
    if (rc)
        return fail("open queue", rc);
    if ((rc = Tally_value_open(v, "four.tally", SHOAL_OPEN_OR_CREATE, NULL, NULL)))
        return fail("open tally", rc);
    return 0;
}

static int add_to_tally(Tally_value *v, int lang, int64_t id)
{
    shoal_lock *lock = Tally_value_get_lock(v);
    int rc = shoal_lock_acquire(lock, TIMEOUT);
    if (rc < 0 && rc != SHOAL_EOWNERDEAD)
        return fail("lock", rc);
    Tally t;
    if ((rc = Tally_value_read(v, &t)) == 0) {
        t.total += id;
        t.adds++;
        t.by_lang.count = 4;
        t.by_lang.items[lang - 1]++;
        Tally_set_last(&t, langs[lang - 1]);
        rc = Tally_value_write(v, &t);
    }
    shoal_lock_release(lock);
    return rc ? fail("tally", rc) : 0;
}

static int writer(int lang, long n)
{
    Order_queue *q;
    Tally_value *v;
    if (open_both(&q, &v))
        return 1;
    for (long i = 0; i < n; i++) {
        Order o = Order_INIT;
        o.id = ID(lang, i);
        Order_set_symbol(&o, langs[lang - 1]);
        o.price = (double)i * 0.5;
        o.quantity = (uint32_t)i;
        o.side = i % 2 == 0 ? Side_BUY : Side_SELL;
        o.fills.count = 1;
        o.fills.items[0] = (uint32_t)lang;
        int rc = Order_queue_put(q, &o, TIMEOUT);
        if (rc)
            return fail("put", rc);
        if (add_to_tally(v, lang, o.id))
            return 1;
    }
    Order_queue_close(q);
    Tally_value_close(v);
    return 0;
}

static int check_order(const Order *o, long n, unsigned char *seen)
{
    long lang = (long)(o->id / 1000000), i = (long)(o->id % 1000000);
    if (lang < 1 || lang > 4 || i < 0 || i >= n) {
        fprintf(stderr, "four_lang (c): unexpected order id %lld\n", (long long)o->id);
        return 1;
    }
    const char *sym = langs[lang - 1];
    if (o->symbol.len != strlen(sym) || memcmp(o->symbol.data, sym, o->symbol.len) ||
        o->quantity != (uint32_t)i || o->price != (double)i * 0.5 ||
        o->fills.count != 1 || o->fills.items[0] != (uint32_t)lang ||
        o->side != (i % 2 == 0 ? Side_BUY : Side_SELL)) {
        fprintf(stderr, "four_lang (c): order %lld garbled\n", (long long)o->id);
        return 1;
    }
    if (seen[(lang - 1) * n + i]++) {
        fprintf(stderr, "four_lang (c): order %lld arrived twice\n", (long long)o->id);
        return 1;
    }
    return 0;
}

static int reader(long n)
{
    Order_queue *q;
    Tally_value *v;
    if (open_both(&q, &v))
        return 1;
    unsigned char *seen = calloc((size_t)(4 * n), 1);
    long got = 0;
    int rc;
    Order o;
    while ((rc = Order_queue_get(q, &o, TIMEOUT)) == 0) {
        if (check_order(&o, n, seen))
            return 1;
        got++;
    }
    free(seen);
    if (rc != SHOAL_EEOF)
        return fail("get", rc);
    if (got != 4 * n) {
        fprintf(stderr, "four_lang (c): %ld orders arrived, expected %ld\n", got, 4 * n);
        return 1;
    }
    Tally t;
    if ((rc = Tally_value_snapshot(v, &t)))
        return fail("tally", rc);
    int64_t expect = 0;
    for (int lang = 1; lang <= 4; lang++)
        expect += ID(lang, 0) * n + (int64_t)n * (n - 1) / 2;
    int per_lang_ok = t.by_lang.count == 4;
    for (int l = 0; l < 4 && per_lang_ok; l++)
        per_lang_ok = t.by_lang.items[l] == (uint32_t)n;
    if (t.total != expect || t.adds != (uint32_t)(4 * n) || !per_lang_ok) {
        fprintf(stderr,
                "four_lang (c): tally total %lld adds %u, expected %lld and %ld\n",
                (long long)t.total, t.adds, (long long)expect, 4 * n);
        return 1;
    }
    printf("c reader: %ld orders exactly once, total %lld\n", got, (long long)t.total);
    Order_queue_close(q);
    Tally_value_close(v);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "writer") && atoi(argv[2]) >= 1 &&
        atoi(argv[2]) <= 4)
        return writer(atoi(argv[2]), atol(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "reader"))
        return reader(atol(argv[2]));
    fprintf(stderr, "usage: four_lang writer LANG(1-4) N | reader N\n");
    return 2;
}
