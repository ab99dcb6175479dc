/*
 * broker_codec.c — the broker's own codec (runtime/src/manager_value.c) against
 * protobuf-c's.
 *
 * The Request decoder (shoal__bv_unpack_in with an arena: one pass, pb_wire.h's
 * field reader) must decode what protobuf-c packs exactly as protobuf-c's unpack
 * does (shoal__bv_unpack: the depth and size scan, protobuf-c, the model's checks):
 * random Requests — every kind of value, nested lists, tuples, maps and typed
 * messages, paths, many arguments, batch items, large strings past the arena's stack
 * buffer — are packed with protobuf-c, decoded both ways, and both results packed
 * again with protobuf-c must be the same bytes as the original. Then the edges,
 * given as bytes: unknown fields of every wire type skipped at every level; a known
 * field with the wrong wire type, a group, field number 0, a varint or a length
 * cut short, refused; the depth and value limits, at the limit and one past it; a
 * value of no kind, a map entry without its key or value, a key that is not a
 * scalar, refused — by both decoders alike.
 *
 * The hand-written Reply packer (shoal__bv_pack_reply) must write the bytes
 * protobuf-c writes for the same Reply: random ids, statuses, errors and results
 * (none, every scalar, containers, which it leaves to protobuf-c).
 *
 * The client's codec likewise. Its Request packer (shoal__bv_pack_request) must
 * write protobuf-c's bytes for random requests — mostly scalar paths and arguments,
 * which it packs by hand, some with containers or batch items, which it leaves to
 * protobuf-c — whatever room the caller's buffer has. Its Reply decoder
 * (shoal__bv_unpack_reply) must accept and refuse what shoal__bv_unpack does and
 * decode the same id, status, error and result: on random replies, on the same with
 * bytes changed, cut short or added, and on the edges given as bytes (a result given
 * twice, which protobuf-c merges; a oneof set twice; unknown fields; a bool of
 * another wire type; tags and length prefixes of five bytes and of six).
 *
 * And the Request decoder field by field against protobuf-c (request_same.h: every
 * field and value, unknown fields aside), where they could part: a field given twice
 * (a scalar's last value; an entry's key or value merged as protobuf-c merges a
 * message; a oneof's last member, the earlier one dropped unchecked), bools of any
 * wire type, negative and ten-byte integers, scalars sent packed, empty strings and
 * bytes, strings that are not UTF-8, five- and six-byte tags and length prefixes, a
 * length past 2^32, a field number past 2^29 - 1 in a typed value, every cut of a
 * request, the depth limit in a dropped member, random requests corrupted. And the
 * decoder's fast path for the common shape (fields in order, each path element and
 * argument one scalar member as clients write it): every scalar kind, strings and
 * bytes of one- and two-byte length prefixes and longer, varints of one to ten bytes
 * (the last field's too), every cut of such a request; and the shapes that narrowly
 * miss it — values of several members, unknown fields, containers, long or
 * non-canonical prefixes and tags, bools of two bytes or other wire types; fields
 * out of order, given twice, a run of arguments broken, batch items — which the
 * general decoder decodes or refuses as protobuf-c does.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "manager_internal.h"
#include "request_same.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t below(size_t n)
{
    return (size_t)(rnd() % n);
}

/* Random bytes (text: printable ASCII). */
static void fill(char *p, size_t n, int text)
{
    for (size_t i = 0; i < n; i++)
        p[i] = text ? (char)(' ' + below(95)) : (char)rnd();
}

static bv *rnd_str(size_t max)
{
    char buf[4096];
    size_t n = below(max + 1);
    fill(buf, n, 1);
    return shoal__bv_str(buf, n);
}

/* A random integer: small, large, negative, the extremes. */
static int64_t rnd_int(void)
{
    switch (below(5)) {
    case 0:
        return (int64_t)below(100);
    case 1:
        return -(int64_t)below(100);
    case 2:
        return INT64_MIN;
    case 3:
        return INT64_MAX;
    default:
        return (int64_t)rnd();
    }
}

static bv *rnd_value(int depth, int key);

static bv *rnd_scalar(int key)
{
    switch (below(key ? 5 : 7)) {
    case 0: {
        bv *v = shoal__bv_none();
        v->none = !below(4) ? 0 : 1; /* a null with its bool false: still packed */
        return v;
    }
    case 1:
        return shoal__bv_bool(below(2));
    case 2:
        return shoal__bv_int(rnd_int());
    case 3: {
        uint64_t bits = rnd();
        double d;
        memcpy(&d, &bits, 8);
        if (below(2))
            d = (double)rnd_int() / 7;
        return shoal__bv_double(key && isnan(d) ? 0.5 : d);
    }
    case 4:
        return rnd_str(below(8) ? 12 : 300);
    case 5: {
        char buf[64];
        size_t n = below(sizeof(buf));
        fill(buf, n, 0);
        return shoal__bv_bytes(below(2) ? BV_BYTES : BV_PICKLE, buf, n);
    }
    default: {
        bv *v = shoal__bv_map(); /* replaced by a typed message */
        protobuf_c_message_free_unpacked(&v->map->base, NULL);
        v->kind_case = BV_MSG;
        v->message = malloc(sizeof(*v->message));
        shoal__broker__typed__init(v->message);
        v->message->type = strdup("pkg.Type");
        char buf[16];
        fill(buf, sizeof(buf), 0);
        v->message->data.len = below(sizeof(buf));
        v->message->data.data = malloc(sizeof(buf));
        memcpy(v->message->data.data, buf, sizeof(buf));
        return v;
    }
    }
}

static bv *rnd_value(int depth, int key)
{
    size_t pick = depth > 0 ? below(key ? 6 : 10) : 0;
    if (pick < 5)
        return rnd_scalar(key);
    if (pick < 8 || key) { /* list or tuple (a key: a tuple of keys) */
        bv *s = shoal__bv_seq(key || pick == 7 ? BV_TUPLE : BV_LIST);
        for (size_t i = 0, n = below(6); i < n; i++)
            assert_int_equal(shoal__bv_seq_insert(s, i, rnd_value(depth - 1, key)), 0);
        return s;
    }
    bv *m = shoal__bv_map();
    for (size_t i = 0, n = below(5); i < n; i++) { /* repeated keys kept: both decode */
        Shoal__Broker__Map *map = m->map;
        map->entries = realloc(map->entries, (i + 1) * sizeof(*map->entries));
        Shoal__Broker__Entry *e = malloc(sizeof(*e));
        shoal__broker__entry__init(e);
        e->key = rnd_value(depth - 1, 1);
        e->value = rnd_value(depth - 1, 0);
        map->entries[map->n_entries++] = e;
    }
    return m;
}

/* A random Request (scalars: only scalars in its path and args, no batch items: the
 * client's common requests); free with free_request. */
static void rnd_breq(breq *r, int scalars)
{
    shoal__broker__request__init(r);
    r->id = below(3) ? rnd() : 0;
    bv *name = rnd_str(20), *op = rnd_str(10);
    r->object = name->s;
    r->op = op->s;
    free(name); /* the strings kept, freed by free_request */
    free(op);
    r->n_path = below(3);
    r->n_args = below(4) ? below(4) : below(40);
    r->path = calloc(r->n_path + 1, sizeof(bv *));
    r->args = calloc(r->n_args + 1, sizeof(bv *));
    for (size_t i = 0; i < r->n_path; i++)
        r->path[i] = scalars ? rnd_scalar(1) : rnd_value(2, 1);
    for (size_t i = 0; i < r->n_args; i++)
        r->args[i] = scalars && below(8) ? rnd_value(0, 0) : rnd_value(4, 0);
    r->timeout_ms = below(2) ? rnd_int() : 0;
    r->thread = below(2) ? rnd() : 0;
    r->n_batch = scalars || below(4) ? 0 : below(20);
    r->batch = calloc(r->n_batch + 1, sizeof(*r->batch));
    for (size_t i = 0; i < r->n_batch; i++) {
        r->batch[i].len = below(30);
        r->batch[i].data = malloc(30);
        fill((char *)r->batch[i].data, 30, 0);
    }
}

static void free_request(breq *r)
{
    for (size_t i = 0; i < r->n_path; i++)
        shoal__bv_free(r->path[i]);
    for (size_t i = 0; i < r->n_args; i++)
        shoal__bv_free(r->args[i]);
    for (size_t i = 0; i < r->n_batch; i++)
        free(r->batch[i].data);
    free(r->path);
    free(r->args);
    free(r->batch);
    free(r->object);
    free(r->op);
}

/* A random Request, packed with protobuf-c. */
static void *rnd_request(size_t *len)
{
    breq r;
    rnd_breq(&r, 0);
    void *buf = shoal__bv_pack(&r.base, len);
    assert_non_null(buf);
    free_request(&r);
    return buf;
}

/*
 * Decodes buf[len] as a Request both ways. Returns 1 when both decoded it (and
 * repacked, each is `want`: the bytes protobuf-c packs for what it decoded), 0 when
 * both refused it as malformed; fails the test when they disagree.
 */
static int both(const void *buf, size_t len, const void *want, size_t want_len)
{
    max_align_t space[2048 / sizeof(max_align_t)];
    shoal_bv_arena arena;
    shoal__bv_arena_init(&arena, space, sizeof(space));
    shoal__err_clear();
    ProtobufCMessage *ours =
        shoal__bv_unpack_in(&shoal__broker__request__descriptor, buf, len, &arena);
    char our_error[512];
    snprintf(our_error, sizeof(our_error), "%s", shoal_errdetail());
    shoal__err_clear();
    ProtobufCMessage *theirs =
        shoal__bv_unpack(&shoal__broker__request__descriptor, buf, len);
    if (!ours != !theirs)
        fail_msg("the decoders disagree: ours %s, protobuf-c's %s",
                 ours ? "ok" : "refused", theirs ? "ok" : "refused");
    int rc = 0;
    if (ours) {
        size_t a, b;
        void *pa = shoal__bv_pack(ours, &a), *pb = shoal__bv_pack(theirs, &b);
        assert_int_equal(a, b);
        assert_memory_equal(pa, pb, a);
        if (want) {
            assert_int_equal(a, want_len);
            assert_memory_equal(pa, want, a);
        }
        free(pa);
        free(pb);
        protobuf_c_message_free_unpacked(theirs, NULL);
        rc = 1;
    } else {
        /* both name the broker message (SHOAL_EINVALID_DATA: not out of memory) */
        assert_int_equal(strncmp(our_error, "broker message", 14), 0);
        assert_int_equal(strncmp(shoal_errdetail(), "broker message", 14), 0);
        assert_null(strstr(our_error, "out of memory"));
    }
    shoal__bv_arena_reset(&arena);
    return rc;
}

static void test_random_requests(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) {
        size_t len;
        void *buf = rnd_request(&len);
        assert_int_equal(both(buf, len, buf, len), 1);
        free(buf);
    }
}

/* ---- bytes by hand ---- */

typedef struct wbuf {
    uint8_t b[1 << 16];
    size_t n;
} wbuf;

static void w_varint(wbuf *w, uint64_t v)
{
    do {
        w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void w_tag(wbuf *w, uint32_t number, int wt)
{
    w_varint(w, ((uint64_t)number << 3) | (uint64_t)wt);
}

static void w_bytes(wbuf *w, uint32_t number, const void *p, size_t n)
{
    w_tag(w, number, 2);
    w_varint(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_sub(wbuf *w, uint32_t number, const wbuf *sub)
{
    w_bytes(w, number, sub->b, sub->n);
}

/* One unknown field of each wire type, numbered 1000 + i. */
static void w_unknown(wbuf *w)
{
    w_tag(w, 1000, 0);
    w_varint(w, 300);
    w_tag(w, 1001, 1);
    memset(w->b + w->n, 0xab, 8);
    w->n += 8;
    w_bytes(w, 1002, "xyz", 3);
    w_tag(w, 1003, 5);
    memset(w->b + w->n, 0xcd, 4);
    w->n += 4;
}

/* An int Value, with unknown fields around it when noisy. */
static void w_int_value(wbuf *w, int64_t i, int noisy)
{
    if (noisy)
        w_unknown(w);
    w_tag(w, 3, 0);
    w_varint(w, ((uint64_t)i << 1) ^ (uint64_t)(i >> 63));
    if (noisy)
        w_unknown(w);
}

/* d.set({1: [2]}) with (noisy) or without unknown fields at every level. */
static void w_request(wbuf *w, int noisy)
{
    static wbuf one, seq, list, key, value, entry, map, arg;
    memset(w, 0, sizeof(*w));
    one.n = seq.n = list.n = key.n = value.n = entry.n = map.n = arg.n = 0;
    w_int_value(&one, 2, noisy);
    if (noisy)
        w_unknown(&seq);
    w_sub(&seq, 1, &one);
    w_sub(&list, 7, &seq);
    w_int_value(&key, 1, noisy);
    if (noisy)
        w_unknown(&entry);
    w_sub(&entry, 1, &key);
    w_sub(&entry, 2, &list);
    if (noisy)
        w_unknown(&map);
    w_sub(&map, 1, &entry);
    w_sub(&arg, 9, &map);
    if (noisy)
        w_unknown(w);
    w_tag(w, 1, 0);
    w_varint(w, 7);
    w_bytes(w, 2, "d", 1);
    w_bytes(w, 4, "set", 3);
    w_sub(w, 5, &arg);
    if (noisy)
        w_unknown(w);
}

static void test_unknown_fields(void **state)
{
    (void)state;
    static wbuf clean, noisy;
    w_request(&clean, 0);
    w_request(&noisy, 1);
    assert_true(noisy.n > clean.n);
    assert_int_equal(both(clean.b, clean.n, clean.b, clean.n), 1);
    /* the unknown fields skipped: what both decoded packs as the clean request */
    max_align_t space[2048 / sizeof(max_align_t)];
    shoal_bv_arena arena;
    shoal__bv_arena_init(&arena, space, sizeof(space));
    ProtobufCMessage *m = shoal__bv_unpack_in(&shoal__broker__request__descriptor,
                                              noisy.b, noisy.n, &arena);
    assert_non_null(m);
    size_t len;
    void *p = shoal__bv_pack(m, &len);
    assert_int_equal(len, clean.n);
    assert_memory_equal(p, clean.b, len);
    free(p);
    shoal__bv_arena_reset(&arena);
    /* protobuf-c accepts it too (and keeps the unknown fields, which ours drops) */
    m = shoal__bv_unpack(&shoal__broker__request__descriptor, noisy.b, noisy.n);
    assert_non_null(m);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void refused(const wbuf *w)
{
    assert_int_equal(both(w->b, w->n, NULL, 0), 0);
}

static void test_bad_wire(void **state)
{
    (void)state;
    static wbuf w, v;
    /* a known field with another wire type: id as bytes, object as a varint */
    w.n = 0;
    w_bytes(&w, 1, "ab", 2);
    refused(&w);
    w.n = 0;
    w_tag(&w, 2, 0);
    w_varint(&w, 5);
    refused(&w);
    /* in a Value: an int as fixed64 */
    v.n = 0;
    w_tag(&v, 3, 1);
    memset(v.b + v.n, 0, 8);
    v.n += 8;
    w.n = 0;
    w_sub(&w, 5, &v);
    refused(&w);
    /* a group (wire type 3), an unknown wire type (7), field number 0 */
    for (int wt = 3; wt <= 7; wt += 4) {
        w.n = 0;
        w_tag(&w, 1000, wt);
        w_varint(&w, 0);
        refused(&w);
    }
    w.n = 0;
    w_tag(&w, 0, 0);
    w_varint(&w, 1);
    refused(&w);
    /* a varint cut short, an 11-byte varint, a length past the end */
    w.n = 0;
    w_tag(&w, 1, 0);
    w.b[w.n++] = 0x80;
    refused(&w);
    w.n = 0;
    w_tag(&w, 1, 0);
    memset(w.b + w.n, 0xff, 10);
    w.n += 10;
    w.b[w.n++] = 0x01;
    refused(&w);
    w.n = 0;
    w_tag(&w, 2, 2);
    w_varint(&w, 5);
    memcpy(w.b + w.n, "abc", 3);
    w.n += 3;
    refused(&w);
    /* the same inside a nested Value: a string's length past its Value's end */
    v.n = 0;
    w_tag(&v, 5, 2);
    w_varint(&v, 9);
    memcpy(v.b + v.n, "ab", 2);
    v.n += 2;
    w.n = 0;
    w_sub(&w, 5, &v);
    refused(&w);
}

/* A list nested `levels` deep (the innermost an int) as an argument. */
static void w_nested(wbuf *w, int levels)
{
    static wbuf in, out;
    in.n = 0;
    w_int_value(&in, 5, 0);
    for (int i = 1; i < levels; i++) {
        out.n = 0;
        static wbuf seq;
        seq.n = 0;
        w_sub(&seq, 1, &in);
        w_sub(&out, 7, &seq);
        memcpy(in.b, out.b, out.n);
        in.n = out.n;
    }
    w->n = 0;
    w_sub(w, 5, &in);
}

static void test_limits(void **state)
{
    (void)state;
    static wbuf w;
    w_nested(&w, SHOAL_BV_MAX_DEPTH);
    assert_int_equal(both(w.b, w.n, w.b, w.n), 1);
    w_nested(&w, SHOAL_BV_MAX_DEPTH + 1);
    refused(&w);
    /* a list of SHOAL_BV_MAX_VALUES - 1 nulls (the list is a value too), then one more */
    size_t cap = 4 * (size_t)SHOAL_BV_MAX_VALUES + 32;
    uint8_t *req = malloc(cap);
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t items = SHOAL_BV_MAX_VALUES - 1 + extra, seq_len = 4 * items;
        static wbuf head;
        head.n = 0;
        w_tag(&head, 5, 2); /* args: Value{list: Seq{items...}} */
        static wbuf len_bytes;
        len_bytes.n = 0;
        w_varint(&len_bytes, seq_len);
        w_varint(&head, 1 + len_bytes.n + seq_len);
        w_tag(&head, 7, 2);
        w_varint(&head, seq_len);
        memcpy(req, head.b, head.n);
        size_t n = head.n;
        for (size_t i = 0; i < items; i++, n += 4)
            memcpy(req + n, "\x0a\x02\x08\x01", 4); /* Value{none: true} */
        assert_true(n <= cap);
        assert_int_equal(both(req, n, extra ? NULL : req, n), !extra);
    }
    free(req);
}

static void test_model_checks(void **state)
{
    (void)state;
    static wbuf w, v, e, m, s;
    /* a Value of no kind (empty, or only unknown fields) */
    w.n = 0;
    w_bytes(&w, 5, "", 0);
    refused(&w);
    v.n = 0;
    w_unknown(&v);
    w.n = 0;
    w_sub(&w, 3, &v);
    refused(&w);
    /* a map entry without its value, without its key; a list as a key */
    for (int which = 0; which < 3; which++) {
        v.n = 0;
        w_int_value(&v, 1, 0);
        s.n = 0;
        w_bytes(&s, 7, "", 0); /* an empty list */
        e.n = 0;
        if (which != 1)
            w_sub(&e, 1, which == 2 ? &s : &v);
        if (which != 0)
            w_sub(&e, 2, &v);
        m.n = 0;
        w_sub(&m, 1, &e);
        v.n = 0;
        w_sub(&v, 9, &m);
        w.n = 0;
        w_sub(&w, 5, &v);
        refused(&w);
    }
    /* a repeated oneof member: the last one counts (both decoders) */
    v.n = 0;
    w_bytes(&v, 5, "text", 4);
    w_int_value(&v, 9, 0);
    w.n = 0;
    w_sub(&w, 5, &v);
    static wbuf want;
    want.n = 0;
    v.n = 0;
    w_int_value(&v, 9, 0);
    w_sub(&want, 5, &v);
    assert_int_equal(both(w.b, w.n, want.b, want.n), 1);
}

/* ---- the Request decoder against protobuf-c, field by field ---- */

/* Decodes buf[len] as a Request both ways: 1 when both accept it and decode the same
 * message (request_same.h: unknown fields aside), 0 when both refuse it; fails the
 * test when they disagree. *out (when not NULL) gets protobuf-c's decoding. */
static int same_both(const void *buf, size_t len, breq **out)
{
    max_align_t space[2048 / sizeof(max_align_t)];
    shoal_bv_arena arena;
    shoal__bv_arena_init(&arena, space, sizeof(space));
    breq *ours = (breq *)shoal__bv_unpack_in(&shoal__broker__request__descriptor, buf,
                                             len, &arena);
    char our_error[512];
    snprintf(our_error, sizeof(our_error), "%s", ours ? "" : shoal_errdetail());
    breq *theirs =
        (breq *)shoal__bv_unpack(&shoal__broker__request__descriptor, buf, len);
    if (!ours != !theirs)
        fail_msg("the decoders disagree: ours %s (%s), protobuf-c's %s (%s)",
                 ours ? "ok" : "refused", our_error, theirs ? "ok" : "refused",
                 theirs ? "" : shoal_errdetail());
    if (ours && !same_request(ours, theirs))
        fail_msg("the decoders decode different messages");
    shoal__bv_arena_reset(&arena);
    if (out)
        *out = theirs;
    else if (theirs)
        protobuf_c_message_free_unpacked(&theirs->base, NULL);
    return theirs != NULL;
}

/* A Request {id 1, op "set", args: the Value v}. */
static void w_arg(wbuf *w, const wbuf *v)
{
    w->n = 0;
    w_tag(w, 1, 0);
    w_varint(w, 1);
    w_bytes(w, 4, "set", 3);
    w_sub(w, 5, v);
}

/* A map Value {entry} as the Request's argument; its decoding (protobuf-c's) in *out. */
static int map_arg(const wbuf *entry, breq **out)
{
    static wbuf m, v, w;
    m.n = v.n = 0;
    w_sub(&m, 1, entry);
    w_sub(&v, 9, &m);
    w_arg(&w, &v);
    return same_both(w.b, w.n, out);
}

/* An Entry {key "k", value v1, value v2 [, value v3]} where each v is a Value of the
 * kind field `kinds[i]` (0: none) holding the bytes "x" or nothing (`empty`): 1 when both
 * decoders accept it, 0 when both refuse it. */
static int value_thrice(const int *kinds, int n, int empty)
{
    static wbuf e, k, v;
    k.n = e.n = 0;
    w_bytes(&k, 5, "k", 1);
    w_sub(&e, 1, &k);
    for (int i = 0; i < n; i++) {
        v.n = 0;
        if (kinds[i] == 3) {
            w_tag(&v, 3, 0);
            w_varint(&v, 6);
        } else if (kinds[i]) {
            w_bytes(&v, (uint32_t)kinds[i], "x", empty ? 0 : 1);
        }
        w_sub(&e, 2, &v);
    }
    return map_arg(&e, NULL);
}

/* An Entry's value given twice or thrice, the later of no kind, as protobuf-c 1.4
 * merges it: an int, non-empty bytes or pickle, a list stay; a string (even
 * non-empty), empty bytes leave no kind (refused); two of no kind in a row: refused
 * as undecodable. */
static void test_request_merge_of_no_kind(void **state)
{
    (void)state;
    const int i_none[] = {3, 0}, s_none[] = {5, 0}, b_none[] = {6, 0}, p_none[] = {11, 0},
              l_none[] = {7, 0}, none_none[] = {0, 0}, s_none_s[] = {5, 0, 5},
              s_none_none[] = {5, 0, 0}, i_none_none[] = {3, 0, 0};
    assert_int_equal(value_thrice(i_none, 2, 0), 1);
    assert_int_equal(value_thrice(s_none, 2, 0), 0);
    assert_int_equal(value_thrice(s_none, 2, 1), 0);
    assert_int_equal(value_thrice(b_none, 2, 0), 1);
    assert_int_equal(value_thrice(b_none, 2, 1), 0);
    assert_int_equal(value_thrice(p_none, 2, 0), 1);
    assert_int_equal(value_thrice(l_none, 2, 1), 1);
    assert_int_equal(value_thrice(none_none, 2, 0), 0);
    assert_int_equal(value_thrice(s_none_s, 3, 0), 1);
    assert_int_equal(value_thrice(s_none_none, 3, 0), 0);
    assert_int_equal(value_thrice(i_none_none, 3, 0), 1);
}

/* A field given twice: a scalar's last value counts; an Entry's key or value given
 * twice is merged as protobuf-c merges a message: the later one when it has a kind,
 * else the earlier one (but see test_request_merge_of_no_kind); a Value's oneof given
 * twice: the last member, the earlier one dropped unchecked (a map with a bad entry,
 * a list with a value of no kind). */
static void test_request_repeated_fields(void **state)
{
    (void)state;
    static wbuf w, e, k1, k2, val, v, s, bad;
    breq *r;
    w.n = 0; /* id twice */
    w_tag(&w, 1, 0);
    w_varint(&w, 5);
    w_tag(&w, 1, 0);
    w_varint(&w, 6);
    assert_int_equal(same_both(w.b, w.n, &r), 1);
    assert_int_equal(r->id, 6);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* key given twice, the second of no kind: the first stays */
    k1.n = k2.n = val.n = e.n = 0;
    w_int_value(&k1, 1, 0);
    w_unknown(&k2);
    w_int_value(&val, 2, 0);
    w_sub(&e, 1, &k1);
    w_sub(&e, 1, &k2);
    w_sub(&e, 2, &val);
    assert_int_equal(map_arg(&e, &r), 1);
    assert_int_equal(r->args[0]->map->entries[0]->key->i, 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* key given twice, both with a kind: the second; a value given twice as a list:
     * the second list (a oneof member is replaced, not merged) */
    k2.n = 0;
    w_bytes(&k2, 5, "k", 1);
    s.n = val.n = 0;
    w_sub(&s, 1, &k1);
    w_sub(&val, 7, &s);
    w_sub(&val, 7, &s);
    e.n = 0;
    w_sub(&e, 1, &k1);
    w_sub(&e, 1, &k2);
    w_sub(&e, 2, &val);
    s.n = 0;
    w_int_value(&s, 3, 0);
    w_sub(&e, 2, &s);
    w_sub(&e, 2, &val);
    assert_int_equal(map_arg(&e, &r), 1);
    assert_string_equal(r->args[0]->map->entries[0]->key->s, "k");
    assert_int_equal(r->args[0]->map->entries[0]->value->list->n_items, 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* an entry of no key, in a map then replaced by an int: accepted */
    e.n = bad.n = v.n = 0;
    w_sub(&e, 2, &k1);
    w_sub(&bad, 1, &e);
    w_sub(&v, 9, &bad);
    w_int_value(&v, 4, 0);
    w_arg(&w, &v);
    assert_int_equal(same_both(w.b, w.n, &r), 1);
    assert_int_equal(r->args[0]->i, 4);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* ... and the other way round: refused */
    v.n = 0;
    w_int_value(&v, 4, 0);
    w_sub(&v, 9, &bad);
    w_arg(&w, &v);
    assert_int_equal(same_both(w.b, w.n, NULL), 0);
    /* a list holding a value of no kind, replaced by a string: accepted */
    s.n = v.n = 0;
    w_bytes(&s, 1, "", 0);
    w_sub(&v, 7, &s);
    w_bytes(&v, 5, "s", 1);
    w_arg(&w, &v);
    assert_int_equal(same_both(w.b, w.n, NULL), 1);
}

/* Bools of any wire type (protobuf-c's rule), integers at their extremes: negative
 * sint64s, ten-byte varints (the bits past 64 dropped), an 11-byte one refused; a
 * scalar sent as a length-delimited (packed) field, refused: no field of a Request is
 * a repeated scalar, and protobuf-c takes that form only for those. */
static void test_request_scalars(void **state)
{
    (void)state;
    static wbuf w, v;
    breq *r;
    const uint8_t bools[][12] = {
        {0x12, 0x01, 0x00}, /* b as a length: true */
        {0x12, 0x00},       /* b as an empty length: false */
        {0x09, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, /* none, fixed64 */
        {0x15, 0x00, 0x00, 0x02, 0x00},                         /* b as fixed32: true */
        {0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, /* true */
        {0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, /* false */
    };
    const size_t lens[] = {3, 2, 9, 5, 11, 11};
    const int truth[] = {1, 0, 0, 1, 1, 0};
    for (size_t i = 0; i < 6; i++) {
        v.n = lens[i];
        memcpy(v.b, bools[i], lens[i]);
        w_arg(&w, &v);
        assert_int_equal(same_both(w.b, w.n, &r), 1);
        bv *a = r->args[0];
        assert_int_equal(a->kind_case == BV_BOOL ? a->b : a->none, truth[i]);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    int64_t ints[] = {-1, INT64_MIN, INT64_MAX, 0};
    for (size_t i = 0; i < 4; i++) {
        w.n = 0;
        w_tag(&w, 6, 0);
        w_varint(&w, ((uint64_t)ints[i] << 1) ^ (uint64_t)(ints[i] >> 63));
        w_tag(&w, 1, 0);
        w_varint(&w, ~0ull); /* ten bytes */
        v.n = 0;
        w_int_value(&v, ints[i], 0);
        w_sub(&w, 5, &v);
        assert_int_equal(same_both(w.b, w.n, &r), 1);
        assert_true(r->timeout_ms == ints[i] && r->args[0]->i == ints[i]);
        assert_true(r->id == ~0ull);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    const uint8_t id_wide[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, /* 10 bytes, the */
                               0xff, 0xff, 0xff, 0xff, 0x7f},      /* last one's high */
        id_11[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,       /* bits dropped */
                   0x80, 0x80, 0x80, 0x80, 0x00},
                  id_packed[] = {0x0a, 0x01, 0x05}, timeout_packed[] = {0x32, 0x01, 0x02};
    assert_int_equal(same_both(id_wide, sizeof(id_wide), &r), 1);
    assert_true(r->id == ~0ull);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_int_equal(same_both(id_11, sizeof(id_11), NULL), 0);
    assert_int_equal(same_both(id_packed, sizeof(id_packed), NULL), 0);
    assert_int_equal(same_both(timeout_packed, sizeof(timeout_packed), NULL), 0);
}

/* Empty strings and bytes everywhere; strings that are not UTF-8 (neither decoder
 * checks: protobuf-c does not, and the broker keeps the bytes it was given); tags
 * and length prefixes of five bytes accepted and of six refused (protobuf-c reads no
 * more); a five-byte length past 2^32, which protobuf-c would read modulo 2^32,
 * refused by both (the scan before it reads all of it); a field number past 2^29 - 1
 * inside a typed message, refused by both. */
static void test_request_bytes(void **state)
{
    (void)state;
    static wbuf w, v, t;
    breq *r;
    w.n = t.n = 0;
    w_bytes(&w, 2, "", 0);
    w_bytes(&w, 4, "", 0);
    w_bytes(&w, 8, "", 0);
    w_bytes(&t, 1, "", 0);
    w_bytes(&t, 2, "", 0);
    const int empty[] = {5, 6, 11};
    for (int i = 0; i < 3; i++) {
        v.n = 0;
        w_bytes(&v, (uint32_t)empty[i], "", 0);
        w_sub(&w, 5, &v);
    }
    v.n = 0;
    w_sub(&v, 10, &t);
    w_sub(&w, 5, &v);
    assert_int_equal(same_both(w.b, w.n, &r), 1);
    assert_true(r->n_args == 4 && r->n_batch == 1 && r->batch[0].len == 0);
    assert_string_equal(r->object, "");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    w.n = v.n = 0;
    w_bytes(&w, 2, "\xff\xfe", 2);
    w_bytes(&v, 5, "\xc3\x28\xed\xa0\x80", 5); /* a bad sequence, a surrogate */
    w_sub(&w, 5, &v);
    assert_int_equal(same_both(w.b, w.n, &r), 1);
    assert_string_equal(r->object, "\xff\xfe");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    const uint8_t tag5[] = {0x88, 0x80, 0x80, 0x80, 0x00, 0x05},
                  tag6[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05},
                  prefix5[] = {0x12, 0x82, 0x80, 0x80, 0x80, 0x00, 'h', 'i'},
                  prefix6[] = {0x12, 0x82, 0x80, 0x80, 0x80, 0x80, 0x00, 'h', 'i'},
                  wrap[] = {0x12, 0x82, 0x80, 0x80, 0x80, 0x10, 'h', 'i'},
                  unknown6[] = {0xc0, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05},
                  typed_far[] = {0x2a, 0x08, 0x52, 0x06, 0x0d,
                                 0x80, 0x80, 0x80, 0x40, 0x00},
                  past_end[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x07, 'h'};
    assert_int_equal(same_both(tag5, sizeof(tag5), NULL), 1);
    assert_int_equal(same_both(tag6, sizeof(tag6), NULL), 0);
    assert_int_equal(same_both(prefix5, sizeof(prefix5), NULL), 1);
    assert_int_equal(same_both(prefix6, sizeof(prefix6), NULL), 0);
    assert_int_equal(same_both(wrap, sizeof(wrap), NULL), 0);
    assert_int_equal(same_both(unknown6, sizeof(unknown6), NULL), 0);
    assert_int_equal(same_both(typed_far, sizeof(typed_far), NULL), 0);
    assert_int_equal(same_both(past_end, sizeof(past_end), NULL), 0);
}

/* Every prefix of a request with unknown fields at every level (cut anywhere), and a
 * list nested past the depth limit then replaced by an int (the limit counts what
 * the oneof drops: refused by both). */
static void test_request_cut(void **state)
{
    (void)state;
    static wbuf w, v;
    w_request(&w, 1);
    int accepted = 0;
    for (size_t n = 0; n <= w.n; n++)
        accepted += same_both(w.b, n, NULL);
    assert_true(accepted >= 2 && (size_t)accepted < w.n); /* some cuts land on a field */
    w_nested(&w, SHOAL_BV_MAX_DEPTH + 1);
    v.n = 0;
    memcpy(v.b, w.b, w.n);
    v.n = w.n;
    w_int_value(&v, 1, 0); /* ...then the Request's args end with an int Value */
    static wbuf last;
    last.n = 0;
    w_int_value(&last, 1, 0);
    w_sub(&v, 5, &last);
    assert_int_equal(same_both(v.b, v.n, NULL), 0);
}

/* A copy of buf[len] (malloc'd; *n: its length) changed at random in one of four
 * ways: a few bytes changed, cut short, random bytes added at the end, or one byte
 * changed to a small length or a tag (field number below `fields`, any wire type). */
static uint8_t *mutated(const uint8_t *buf, size_t len, unsigned fields, size_t *n)
{
    uint8_t *bad = malloc(len + 16);
    memcpy(bad, buf, len);
    *n = len;
    switch (below(4)) {
    case 0: /* bytes changed */
        for (size_t k = 0, flips = 1 + below(3); *n && k < flips; k++)
            bad[below(*n)] = (uint8_t)rnd();
        break;
    case 1: /* cut short */
        *n = *n ? below(*n) : 0;
        break;
    case 2: /* bytes added at the end */
        for (size_t k = 0, more = 1 + below(16); k < more; k++)
            bad[(*n)++] = (uint8_t)rnd();
        break;
    default: /* one byte changed to a tag or a small length */
        if (*n)
            bad[below(*n)] =
                (uint8_t)(below(2) ? (below(fields) << 3 | below(8)) : below(4));
    }
    return bad;
}

/* ---- the Request decoder's fast path (dec_request_fast) and its near misses ---- */

/* A request of the common shape, its fields in order: id, object, path {pv} (none
 * when NULL), op, args {av, a string}, timeout, thread (each varint of `wide` bytes
 * when wide > 0: 1 to 10). */
static void w_common(wbuf *w, const wbuf *pv, const wbuf *av, int wide)
{
    w->n = 0;
    uint64_t big = wide > 0 && wide < 10 ? (1ull << (7 * wide - 1)) : ~0ull;
    w_tag(w, 1, 0);
    w_varint(w, wide ? big : 42);
    w_bytes(w, 2, "bench.dict", 10);
    if (pv)
        w_sub(w, 3, pv);
    w_bytes(w, 4, "set", 3);
    if (av)
        w_sub(w, 5, av);
    static wbuf s;
    s.n = 0;
    w_bytes(&s, 5, "xxx", 3);
    w_sub(w, 5, &s);
    w_tag(w, 6, 0);
    w_varint(w, wide ? big : 3);
    w_tag(w, 7, 0);
    w_varint(w, wide ? big : 0x7f1234567890ull); /* a thread id: seven bytes */
}

/* Every value of one scalar member as clients write it (the fast path's), and values
 * that miss it narrowly (left to the general decoder, which accepts or refuses them
 * as protobuf-c does): the two decoders agree on each, as an argument, as a path
 * element, in requests of one- to ten-byte varints; every cut of the common request
 * too. */
static void test_request_fast_shapes(void **state)
{
    (void)state;
    static wbuf w, v;
    static char text[20000];
    memset(text, 'a', sizeof(text));
    const int64_t ints[] = {0, 1, -1, 63, -64, 1 << 20, INT64_MAX, INT64_MIN};
    const size_t lens[] = {0, 1, 127, 128, 300, 16383, 16384, 20000};
    /* the fast path's shapes: all accepted */
    for (int kind = 0; kind < 9; kind++) {
        size_t count = kind == 2 ? 8 : kind >= 4 && kind <= 6 ? 8 : 2;
        for (size_t i = 0; i < count; i++) {
            v.n = 0;
            if (kind <= 1) { /* none, bool: 0 or 1 */
                w_tag(&v, (uint32_t)kind + 1, 0);
                w_varint(&v, i);
            } else if (kind == 2) {
                w_int_value(&v, ints[i], 0);
            } else if (kind == 3) {
                double d = i ? -0.0 : 2.5;
                w_tag(&v, 4, 1);
                memcpy(v.b + v.n, &d, 8);
                v.n += 8;
            } else if (kind <= 6) { /* string, bytes, pickle of every length */
                w_bytes(&v, kind == 4 ? 5 : kind == 5 ? 6 : 11, text, lens[i]);
            } else { /* the string argument alone; then no argument of its own */
                if (kind == 8)
                    continue;
                w_bytes(&v, 5, "k", 1);
            }
            for (int wide = 0; wide <= 10; wide++) {
                w_common(&w, NULL, &v, wide);
                assert_int_equal(same_both(w.b, w.n, NULL), 1);
                w_common(&w, &v, &v, wide);
                assert_int_equal(same_both(w.b, w.n, NULL), 1);
            }
        }
    }
    /* near misses of a value: the same verdict from both */
    static const struct {
        uint8_t b[16];
        size_t n;
        int ok;
    } near[] = {
        {{0}, 0, 0},                                     /* no kind */
        {{0x10, 0x80, 0x01}, 3, 1},                      /* a bool of two bytes */
        {{0x10, 0x02}, 2, 1},                            /* a bool of 2 */
        {{0x08, 0x80, 0x00}, 3, 1},                      /* a none of two bytes */
        {{0x12, 0x01, 0x01}, 3, 1},                      /* a bool as a length */
        {{0x11, 1, 0, 0, 0, 0, 0, 0, 0}, 9, 1},          /* a none as fixed64 */
        {{0x18, 0x01, 0x18, 0x02}, 4, 1},                /* two members */
        {{0x2a, 0x01, 'a', 0x18, 0x01}, 5, 1},           /* a string, then an int */
        {{0x18, 0x01, 0xc0, 0x3e, 0x01}, 5, 1},          /* an unknown field after */
        {{0xc0, 0x3e, 0x01, 0x18, 0x01}, 5, 1},          /* ... before */
        {{0x3a, 0x00}, 2, 1},                            /* an empty list */
        {{0x3a, 0x02, 0x18, 0x01}, 4, 1},                /* a list of one */
        {{0x2a, 0x83, 0x00, 'a', 'b', 'c'}, 6, 1},       /* a long length prefix */
        {{0x2a, 0x83, 0x80, 0x00, 'a', 'b', 'c'}, 7, 1}, /* ... of three bytes */
        {{0xaa, 0x00, 0x01, 'a'}, 4, 1},                 /* a tag of two bytes */
        {{0x2a, 0x02, 'a'}, 3, 0},                       /* a length past the end */
        {{0x21, 1, 2, 3, 4, 5, 6, 7}, 8, 0},             /* a double cut short */
        {{0x18, 0x80}, 2, 0},                            /* an int cut short */
        {{0x19, 1, 2, 3, 4, 5, 6, 7, 8}, 9, 0},          /* an int as fixed64 */
        {{0x2d, 1, 2, 3, 4}, 5, 0},                      /* a string as fixed32 */
        {{0x18, 0x01, 0x00}, 3, 0},                      /* field number 0 after */
    };
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        v.n = near[i].n;
        memcpy(v.b, near[i].b, near[i].n);
        w_common(&w, NULL, &v, 0);
        assert_int_equal(same_both(w.b, w.n, NULL), near[i].ok);
        w_common(&w, &v, NULL, 3);
        assert_int_equal(same_both(w.b, w.n, NULL), near[i].ok);
    }
    /* near misses of the request: fields out of order, given twice, a run of
     * arguments broken, batch items, unknown fields, a tag of two bytes, a varint
     * cut short at the end: the same verdict from both */
    static const struct {
        uint8_t b[40];
        size_t n;
        int ok;
    } reqs[] = {
        {{0}, 0, 1},                                            /* empty */
        {{0x22, 3, 's', 'e', 't', 0x12, 1, 'd'}, 8, 1},         /* op, object */
        {{0x08, 1, 0x08, 2, 0x22, 1, 'x'}, 7, 1},               /* id twice */
        {{0x12, 1, 'd', 0x12, 1, 'e'}, 6, 1},                   /* object twice */
        {{0x2a, 2, 0x18, 1, 0x1a, 2, 0x18, 2}, 8, 1},           /* args, path */
        {{0x2a, 2, 0x18, 1, 0x30, 2, 0x2a, 2, 0x18, 3}, 10, 1}, /* 5, 6, 5 */
        {{0x42, 2, 0x08, 1, 0x22, 1, 'x'}, 7, 1},               /* a batch item */
        {{0x22, 1, 'x', 0xc0, 0x3e, 0x01}, 6, 1},               /* unknown after */
        {{0x48, 1, 0x22, 1, 'x'}, 5, 1},                        /* field 9 */
        {{0x88, 0x00, 0x05, 0x22, 1, 'x'}, 6, 1},               /* id's tag: 2 B */
        {{0x22, 1, 'x', 0x38, 0xff, 0xff}, 6, 0},               /* thread cut */
        {{0x22, 1, 'x', 0x38}, 4, 0},                           /* thread: tag */
        {{0x22, 4, 'x'}, 3, 0},                                 /* op overruns */
        {{0x0a, 1, 5}, 3, 0},                                   /* id as a length */
        {{0x22, 1, 'x', 0x2a, 0}, 5, 0},                        /* arg of no kind */
        {{0x1a, 2, 0x18, 1, 0x1a, 0}, 6, 0},                    /* path: no kind */
        {{0x38, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 10, 1}, /* 9 B */
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        assert_int_equal(same_both(reqs[i].b, reqs[i].n, NULL), reqs[i].ok);
    /* every cut of the common request (its varints at the end read as words) */
    v.n = 0;
    w_int_value(&v, -5, 0);
    for (int wide = 0; wide <= 10; wide++) {
        w_common(&w, &v, &v, wide);
        for (size_t cut = 0; cut <= w.n; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1); /* nothing past it to read */
            memcpy(copy, w.b, cut);
            same_both(copy, cut, NULL);
            free(copy);
        }
    }
}

/* Random requests changed, cut short or lengthened: the decoders agree on each. */
static void test_request_mutated(void **state)
{
    (void)state;
    int accepted = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len;
        uint8_t *buf = rnd_request(&len);
        size_t n;
        uint8_t *bad = mutated(buf, len, 12, &n);
        if (same_both(bad, n, NULL))
            accepted++;
        else
            refused++;
        free(bad);
        free(buf);
    }
    assert_true(accepted > 1000 && refused > 1000); /* both ways exercised */
}

/* ---- replies ---- */

static void test_replies(void **state)
{
    (void)state;
    for (int i = 0; i < 5000; i++) {
        brep r = SHOAL__BROKER__REPLY__INIT;
        r.id = below(4) ? rnd() : 0;
        r.status = below(2) ? 0 : below(2) ? -(int32_t)below(40) : (int32_t)rnd();
        bv *err = below(2) ? rnd_str(below(4) ? 40 : 600) : NULL;
        r.error = err ? err->s : (char *)"";
        r.result = below(4) ? rnd_value(below(3), 0) : NULL;
        size_t want_len, len;
        void *want = shoal__bv_pack(&r.base, &want_len);
        void *got =
            shoal__bv_pack_reply(r.id, r.status, err ? err->s : NULL, r.result, &len);
        assert_non_null(got);
        assert_int_equal(len, want_len);
        assert_memory_equal(got, want, len);
        free(want);
        free(got);
        shoal__bv_free(err);
        shoal__bv_free(r.result);
    }
}

/* ---- the client's codec ---- */

/* The client's Request packer writes protobuf-c's bytes: by hand for the common
 * requests (scalar path and args), into the caller's buffer when they fit (random
 * capacities, none at all included, and an argument larger than the packer's own
 * first buffer) or a new one; the rest through protobuf-c. */
static void test_request_packer(void **state)
{
    (void)state;
    for (int i = 0; i < 5000; i++) {
        breq r;
        rnd_breq(&r, below(4) != 0);
        size_t want_len, len;
        void *want = shoal__bv_pack(&r.base, &want_len);
        uint8_t stack[512];
        size_t cap = below(3) ? sizeof(stack) : below(64);
        void *got = shoal__bv_pack_request(&r, cap ? stack : NULL, cap, &len);
        assert_non_null(got);
        assert_int_equal(len, want_len);
        assert_memory_equal(got, want, len);
        if (got != stack)
            free(got);
        free(want);
        free_request(&r);
    }
    /* an argument larger than any first buffer the packer takes */
    breq r = SHOAL__BROKER__REQUEST__INIT;
    char *big = malloc(20001);
    assert_non_null(big);
    memset(big, 'x', 20000);
    big[20000] = 0;
    bv *arg = shoal__bv_str(big, 20000);
    r.id = 7;
    r.object = (char *)"d";
    r.op = (char *)"set";
    r.args = &arg;
    r.n_args = 1;
    size_t want_len, len;
    uint8_t stack[512];
    void *want = shoal__bv_pack(&r.base, &want_len);
    void *got = shoal__bv_pack_request(&r, stack, sizeof(stack), &len);
    assert_true(got && got != stack);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(got);
    free(want);
    shoal__bv_free(arg);
    free(big);
}

/*
 * Decodes buf[len] as a Reply with the client's decoder and with shoal__bv_unpack:
 * both accept it, giving the same id, status, error and result (1), or both refuse
 * it, naming the broker message (0).
 */
static int both_replies(const void *buf, size_t len)
{
    shoal__err_clear();
    shoal_bv_reply ours;
    int rc = shoal__bv_unpack_reply(buf, len, &ours);
    char our_error[512];
    snprintf(our_error, sizeof(our_error), "%s", shoal_errdetail());
    shoal__err_clear();
    brep *theirs = (brep *)shoal__bv_unpack(&shoal__broker__reply__descriptor, buf, len);
    if ((rc == 0) != (theirs != NULL))
        fail_msg("the Reply decoders disagree: ours %s (%s), protobuf-c's %s",
                 rc == 0 ? "ok" : "refused", our_error, theirs ? "ok" : "refused");
    if (rc < 0) {
        assert_int_equal(rc, SHOAL_EINVALID_DATA);
        assert_int_equal(strncmp(our_error, "broker message", 14), 0);
        assert_int_equal(strncmp(shoal_errdetail(), "broker message", 14), 0);
        return 0;
    }
    assert_true(ours.id == theirs->id);
    assert_int_equal(ours.status, theirs->status);
    /* a NUL in the text: both show what is before it */
    assert_int_equal(strnlen(ours.error, ours.error_len), strlen(theirs->error));
    assert_memory_equal(ours.error, theirs->error, strlen(theirs->error));
    assert_true(same_value(ours.result, theirs->result));
    shoal__bv_reply_free(&ours);
    protobuf_c_message_free_unpacked(&theirs->base, NULL);
    return 1;
}

/* A random Reply, packed with protobuf-c. */
static void *rnd_reply(size_t *len)
{
    brep r = SHOAL__BROKER__REPLY__INIT;
    r.id = below(4) ? rnd() : 0;
    r.status = below(2) ? 0 : below(2) ? -(int32_t)below(40) : (int32_t)rnd();
    bv *err = below(2) ? rnd_str(below(4) ? 40 : 600) : NULL;
    r.error = err ? err->s : (char *)"";
    r.result = below(4) ? rnd_value(below(4) ? 0 : below(3), 0) : NULL;
    void *buf = shoal__bv_pack(&r.base, len);
    shoal__bv_free(err);
    shoal__bv_free(r.result);
    return buf;
}

/* Random replies, then the same with bytes changed, cut short, or added (random
 * bytes: field numbers, wire types, lengths, UTF-8): the client's Reply decoder
 * agrees with protobuf-c's on every one. */
static void test_reply_decoder(void **state)
{
    (void)state;
    int accepted = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len;
        uint8_t *buf = rnd_reply(&len);
        if (i < 3000) {
            assert_int_equal(both_replies(buf, len), 1);
            free(buf);
            continue;
        }
        size_t n;
        uint8_t *bad = mutated(buf, len, 6, &n);
        if (both_replies(bad, n))
            accepted++;
        else
            refused++;
        free(bad);
        free(buf);
    }
    assert_true(accepted > 1000 && refused > 1000); /* both ways exercised */
}

/* The edges of the Reply, given as bytes: a result given twice (protobuf-c merges
 * them), a Value whose oneof is set twice (the last counts) or with unknown fields,
 * an empty result, a result of no kind, a status whose varint is ten bytes, a known
 * field of the wrong wire type, a group, field number 0. */
static void test_reply_edges(void **state)
{
    (void)state;
    static wbuf v1, v2, v, w;
    w_int_value(&v1, 7, 0);
    w_bytes(&v2, 5, "text", 4); /* s */
    w_sub(&w, 4, &v1);
    w_sub(&w, 4, &v2);
    assert_int_equal(both_replies(w.b, w.n), 1); /* merged: the string */
    w.n = 0;
    w_bytes(&v, 5, "a", 1);
    w_int_value(&v, -3, 1); /* then i, with unknown fields around it */
    w_sub(&w, 4, &v);
    w_tag(&w, 1, 0);
    w_varint(&w, 9);
    w_bytes(&w, 3, "first", 5);
    w_bytes(&w, 3, "second", 6);
    assert_int_equal(both_replies(w.b, w.n), 1);
    w.n = 0;
    w_tag(&w, 2, 0);
    w_varint(&w, ~0ull); /* ten bytes: the low 32 bits count */
    assert_int_equal(both_replies(w.b, w.n), 1);
    w.n = 0;
    w_bytes(&w, 4, "", 0); /* a result of no kind */
    assert_int_equal(both_replies(w.b, w.n), 0);
    w.n = 0;
    w_unknown(&v1);
    w_sub(&w, 4, &v1); /* unknown fields in the result: skipped */
    w_unknown(&w);
    assert_int_equal(both_replies(w.b, w.n), 1);
    const uint8_t wrong_wt[] = {0x0a, 0x00},             /* id as a length */
        error_varint[] = {0x18, 0x01},                   /* error as a varint */
        result_fixed[] = {0x21, 0, 0, 0, 0, 0, 0, 0, 0}, /* result as fixed64 */
        group[] = {0x0b, 0x0c}, zero[] = {0x00, 0x01},
                  value_wt[] = {0x22, 0x02, 0x2d, 0x01}; /* s as fixed32 */
    assert_int_equal(both_replies(wrong_wt, sizeof(wrong_wt)), 0);
    assert_int_equal(both_replies(error_varint, sizeof(error_varint)), 0);
    assert_int_equal(both_replies(result_fixed, sizeof(result_fixed)), 0);
    assert_int_equal(both_replies(group, sizeof(group)), 0);
    assert_int_equal(both_replies(zero, sizeof(zero)), 0);
    assert_int_equal(both_replies(value_wt, sizeof(value_wt)), 0);
    /* protobuf-c's own rules: a bool of any wire type, true when a byte after its tag
     * has a low bit set (a length prefix included); no tag nor length prefix longer
     * than five bytes */
    const uint8_t bool_len[] = {0x22, 0x03, 0x12, 0x01, 0x00}, /* true */
        bool_empty[] = {0x22, 0x02, 0x12, 0x00},               /* false */
        none_fixed[] = {0x22, 0x09, 0x09, 0x80, 0x80, 0x80,
                        0x80, 0x80, 0x80, 0x80, 0x80},           /* false */
        bool_i32[] = {0x22, 0x05, 0x15, 0x00, 0x00, 0x02, 0x00}, /* true */
        bool_high[] =
            {0x22, 0x0b, 0x10, 0x80, 0x80, 0x80, 0x80,
             0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, /* true (the value's bits past 64) */
        tag5[] = {0x88, 0x80, 0x80, 0x80, 0x00, 0x05},
                  tag6[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05},
                  prefix5[] = {0x1a, 0x82, 0x80, 0x80, 0x80, 0x00, 'h', 'i'},
                  prefix6[] = {0x1a, 0x82, 0x80, 0x80, 0x80, 0x80, 0x00, 'h', 'i'};
    assert_int_equal(both_replies(bool_len, sizeof(bool_len)), 1);
    assert_int_equal(both_replies(bool_empty, sizeof(bool_empty)), 1);
    assert_int_equal(both_replies(none_fixed, sizeof(none_fixed)), 1);
    assert_int_equal(both_replies(bool_i32, sizeof(bool_i32)), 1);
    assert_int_equal(both_replies(bool_high, sizeof(bool_high)), 1);
    assert_int_equal(both_replies(tag5, sizeof(tag5)), 1);
    assert_int_equal(both_replies(tag6, sizeof(tag6)), 0);
    assert_int_equal(both_replies(prefix5, sizeof(prefix5)), 1);
    assert_int_equal(both_replies(prefix6, sizeof(prefix6)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_requests),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_bad_wire),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_model_checks),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_request_packer),
        cmocka_unit_test(test_reply_decoder),
        cmocka_unit_test(test_reply_edges),
        cmocka_unit_test(test_request_repeated_fields),
        cmocka_unit_test(test_request_merge_of_no_kind),
        cmocka_unit_test(test_request_scalars),
        cmocka_unit_test(test_request_bytes),
        cmocka_unit_test(test_request_cut),
        cmocka_unit_test(test_request_mutated),
        cmocka_unit_test(test_request_fast_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
