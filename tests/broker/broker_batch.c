/*
 * broker_batch.c — batch requests (broker/batch.c), driven in-process through
 * broker_request, whose replies come to deliver() (inproc.h).
 *
 * A batch is one Request whose `batch` items are packed Requests: the broker runs
 * them in order and answers with one Reply listing the failed items as (index,
 * status, error). Checked: a batch that succeeds gets one reply and no result; a
 * failing item in the middle is reported and the items after it still run; an
 * undecodable item, a nested batch and a "wait" fail as items; an empty batch (no
 * items: a request with no object and no operation) gets an error reply; a batch of
 * more than 4096 items is refused whole, none of its items run; with a data
 * directory a batch's writes survive a reopen of the broker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inproc.h"

/* The packed request id: obj.op(args...) (the nargs values of ap, freed). */
static ProtobufCBinaryData vpack(uint64_t id, const char *obj, const char *op,
                                 size_t nargs, va_list ap)
{
    bv *args[4];
    for (size_t i = 0; i < nargs; i++)
        args[i] = va_arg(ap, bv *);
    breq r = SHOAL__BROKER__REQUEST__INIT;
    r.id = id;
    r.object = (char *)obj;
    r.op = (char *)op;
    r.args = args;
    r.n_args = nargs;
    ProtobufCBinaryData d;
    d.data = shoal__bv_pack(&r.base, &d.len);
    assert_non_null(d.data);
    for (size_t i = 0; i < nargs; i++)
        shoal__bv_free(args[i]);
    return d;
}

/* A batch item obj.op(args...) (args taken over). */
static ProtobufCBinaryData item(const char *obj, const char *op, size_t nargs, ...)
{
    va_list ap;
    va_start(ap, nargs);
    ProtobufCBinaryData d = vpack(0, obj, op, nargs, ap);
    va_end(ap);
    return d;
}

/* Sends a batch of the n items (freed) with id 99; its reply. */
static brep *batch(shoal_broker *b, ProtobufCBinaryData *items, size_t n)
{
    breq r = SHOAL__BROKER__REQUEST__INIT;
    r.id = 99;
    r.batch = items;
    r.n_batch = n;
    size_t len;
    void *buf = shoal__bv_pack(&r.base, &len);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        free(items[i].data);
    ndelivered = 0;
    broker_request(b, SESSION, 7, buf, len);
    free(buf);
    assert_int_equal(ndelivered, 1);
    assert_non_null(last);
    assert_int_equal(last->id, 99);
    return last;
}

/* Runs one plain request obj.op(args...) (args taken over); its reply. */
static brep *call(shoal_broker *b, const char *obj, const char *op, size_t nargs, ...)
{
    va_list ap;
    va_start(ap, nargs);
    ProtobufCBinaryData d = vpack(5, obj, op, nargs, ap);
    va_end(ap);
    ndelivered = 0;
    broker_request(b, SESSION, 7, d.data, d.len);
    free(d.data);
    assert_int_equal(ndelivered, 1);
    assert_int_equal(last->id, 5);
    return last;
}

static bv *S(const char *s)
{
    return shoal__bv_str(s, strlen(s));
}

static bv *I(int64_t i)
{
    return shoal__bv_int(i);
}

static void make_dict(shoal_broker *b)
{
    assert_int_equal(call(b, "d", "create", 1, I(SHOAL__BROKER__KIND__DICT))->status, 0);
}

static int64_t get_int(shoal_broker *b, const char *key)
{
    brep *r = call(b, "d", "get", 1, S(key));
    assert_int_equal(r->status, 0);
    return r->result->i;
}

/* Failure f of the reply's list: its index, status and error. */
static void failure(const brep *r, size_t f, int64_t *index, int64_t *status,
                    const char **error)
{
    assert_int_equal(r->status, 0);
    assert_non_null(r->result);
    assert_int_equal(r->result->kind_case, BV_LIST);
    assert_true(f < r->result->list->n_items);
    bv *t = r->result->list->items[f];
    assert_int_equal(t->kind_case, BV_TUPLE);
    assert_int_equal(t->tuple->n_items, 3);
    *index = t->tuple->items[0]->i;
    *status = t->tuple->items[1]->i;
    *error = t->tuple->items[2]->s;
}

static void test_all_succeed(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(NULL);
    make_dict(b);
    ProtobufCBinaryData it[3] = {item("d", "set", 2, S("a"), I(1)),
                                 item("d", "set", 2, S("b"), I(2)),
                                 item("d", "incr", 2, S("a"), I(10))};
    brep *r = batch(b, it, 3);
    assert_int_equal(r->status, 0);
    assert_true(!r->result || r->result->kind_case == BV_NONE);
    assert_int_equal(get_int(b, "a"), 11);
    assert_int_equal(get_int(b, "b"), 2);
    shoal_broker_destroy(b);
}

static void test_failure_in_the_middle(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(NULL);
    make_dict(b);
    ProtobufCBinaryData it[4] = {
        item("d", "set", 2, S("a"), I(1)), item("d", "append", 1, I(5)), /* not a list */
        item("nothere", "set", 2, S("x"), I(1)), item("d", "set", 2, S("c"), I(3))};
    brep *r = batch(b, it, 4);
    assert_int_equal(r->result->list->n_items, 2);
    int64_t index, status;
    const char *error;
    failure(r, 0, &index, &status, &error);
    assert_int_equal(index, 1);
    assert_true(status < 0);
    assert_true(strlen(error) > 0);
    failure(r, 1, &index, &status, &error);
    assert_int_equal(index, 2);
    assert_int_equal(status, SHOAL_ENOENT);
    assert_non_null(strstr(error, "nothere"));
    assert_int_equal(get_int(b, "a"), 1);
    assert_int_equal(get_int(b, "c"), 3); /* the items after a failure run */
    shoal_broker_destroy(b);
}

static void test_bad_items(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(NULL);
    make_dict(b);
    /* a nested batch */
    ProtobufCBinaryData inner[1] = {item("d", "set", 2, S("n"), I(1))};
    breq nb = SHOAL__BROKER__REQUEST__INIT;
    nb.batch = inner;
    nb.n_batch = 1;
    ProtobufCBinaryData nested;
    nested.data = shoal__bv_pack(&nb.base, &nested.len);
    free(inner[0].data);
    /* undecodable bytes */
    static const char junk[] = "\x0a\xff\xff\xff\xff\x0f";
    ProtobufCBinaryData bad = {sizeof(junk) - 1, malloc(sizeof(junk))};
    memcpy(bad.data, junk, sizeof(junk));
    ProtobufCBinaryData it[5] = {nested, bad, item("d", "wait", 0),
                                 item("", "", 0), /* an empty request */
                                 item("d", "set", 2, S("ok"), I(7))};
    brep *r = batch(b, it, 5);
    assert_int_equal(r->result->list->n_items, 4);
    int64_t index, status;
    const char *error;
    failure(r, 0, &index, &status, &error);
    assert_int_equal(index, 0);
    assert_int_equal(status, SHOAL_EINVALID_DATA);
    assert_non_null(strstr(error, "batch inside a batch"));
    failure(r, 1, &index, &status, &error);
    assert_int_equal(index, 1);
    assert_int_equal(status, SHOAL_EINVALID_DATA);
    failure(r, 2, &index, &status, &error);
    assert_int_equal(index, 2);
    assert_int_equal(status, SHOAL_EINVAL);
    assert_non_null(strstr(error, "wait"));
    failure(r, 3, &index, &status, &error);
    assert_int_equal(index, 3);
    assert_true(status < 0);
    assert_int_equal(get_int(b, "ok"), 7);
    assert_int_equal(call(b, "d", "get", 1, S("n"))->status, SHOAL_ENOENT); /* not run */
    shoal_broker_destroy(b);
}

static void test_empty_batch(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(NULL);
    /* no items: on the wire, a request with no object and no operation */
    brep *r = batch(b, NULL, 0);
    assert_true(r->status < 0);
    assert_true(strlen(r->error) > 0);
    shoal_broker_destroy(b);
}

static void test_oversized_batch(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(NULL);
    make_dict(b);
    size_t n = 4097;
    ProtobufCBinaryData *it = calloc(n, sizeof(*it));
    assert_non_null(it);
    for (size_t i = 0; i < n; i++)
        it[i] = item("d", "set", 2, I((int64_t)i), I(1));
    brep *r = batch(b, it, n);
    assert_int_equal(r->status, SHOAL_EMSGSIZE);
    assert_non_null(strstr(r->error, "4097"));
    brep *len = call(b, "d", "len", 0);
    assert_int_equal(len->result->i, 0); /* none of its items ran */
    free(it);
    shoal_broker_destroy(b);
}

static void test_durable(void **state)
{
    (void)state;
    shoal_broker *b = open_broker(data_dir);
    make_dict(b);
    ProtobufCBinaryData it[3] = {item("d", "set", 2, S("a"), I(1)),
                                 item("d", "get", 1, S("missing")),
                                 item("d", "set", 2, S("b"), I(2))};
    brep *r = batch(b, it, 3);
    assert_int_equal(r->result->list->n_items, 1);
    shoal_broker_destroy(b);
    b = open_broker(data_dir);
    assert_int_equal(get_int(b, "a"), 1);
    assert_int_equal(get_int(b, "b"), 2);
    shoal_broker_destroy(b);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_succeed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_in_the_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
