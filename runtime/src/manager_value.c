/*
 * manager_value.c — the broker's value model: building, comparing, copying and
 * (safely) decoding the Value trees of schemas/shoal/broker.proto.
 *
 * Values are protobuf-c's generated structs. Every part of a tree is allocated with
 * malloc (strings, byte buffers, item arrays, sub-messages), exactly as protobuf-c's
 * default allocator does when it unpacks, so one function —
 * protobuf_c_message_free_unpacked — frees a tree whether it was decoded or built.
 *
 * Decoding a peer's bytes: protobuf-c's unpack recurses once per nesting level, so a
 * frame of nested lists (four bytes a level) could exhaust a thread's stack. Before
 * unpacking, shoal__bv_unpack walks the wire bytes with typed.c's field reader,
 * knowing which fields of which broker message hold messages (a typed value's too),
 * and refuses a tree deeper than SHOAL_BV_MAX_DEPTH or with more than
 * SHOAL_BV_MAX_VALUES values, and what protobuf-c would let through: a field number
 * past 2^29 - 1, a five-byte length past 2^32 (protobuf-c reads it modulo 2^32). Only
 * then does protobuf-c decode it (which checks the rest: lengths, wire types; not
 * UTF-8, which nothing here checks: strings are kept as the bytes sent), and valid()
 * refuses what protobuf allows but the model does not (a Value of no kind, a map
 * entry without key or value, a key that is not a scalar), so that no code behind it
 * meets a NULL or an unkeyable key.
 *
 * The broker's hot path decodes a Request into an arena instead (shoal_bv_arena: a
 * bump allocator over a caller's buffer, dropped whole) with a decoder of its own
 * (dec_request): one pass over the bytes, pb_wire.h's field reader inlined, the
 * repeated fields' arrays grown in the arena as their items come (no pass to count
 * them first), and every check made on the way — depth and number of values as
 * scan() counts them, the wire type of each known field and protobuf-c's own rules
 * (pbc_field: tags and length prefixes of at most five bytes, a bool of any wire
 * type), unknown fields skipped, a key or value given twice in an entry merged as
 * protobuf-c 1.4 merges it (dec_member), and what valid() refuses, found where it is met
 * and refused once the part that breaks it is known to stay (a later member of a Value's
 * oneof drops it, as in protobuf-c). It accepts, refuses and decodes exactly what
 * shoal__bv_unpack does (tests/fuzz/fuzz_request.c and tests/broker/broker_codec.c
 * compare them). What is kept from such a message is copied out with
 * shoal__bv_clone, which copies field by field with malloc.
 *
 * Before it, a fast path (dec_request_fast) takes the Request every client writes:
 * its fields in order of number, each once (path and args one run each), one-byte
 * tags of the fields' own wire types, no batch items nor unknown fields, and each
 * path element and argument one scalar member written as clients write it (a none or
 * bool as a one-byte varint, a length prefix of one or two bytes). Such a message
 * decodes alike whatever the order of the checks and breaks no rule of the value
 * model, so it is decoded straight: the message copied once into the arena, its
 * strings NUL-terminated there in place (over the tag that follows each, read from
 * the original), its varints read as words. Anything else — or anything it is unsure
 * of, e.g. a value of two members, a three-byte length prefix, a field out of order —
 * goes to the general decoder from the start, which decodes or refuses it as
 * protobuf-c would; broker_codec.c tests each shape and its near misses.
 *
 * Replies: shoal__bv_pack_reply writes the common ones — no result, or a scalar one,
 * with or without an error — by hand with pb_wire.h, the same bytes protobuf-c
 * would write (tests/broker/broker_codec.c compares them), and leaves a container
 * result to protobuf-c; shoal__bv_pack_reply_in writes them into the caller's buffer
 * when they fit (the broker's pending replies: no allocation).
 *
 * The client's side (manager.c) has the mirror images. shoal__bv_pack_request packs
 * a Request whose path and args are scalars, and that has no batch items, by hand in
 * one pass straight into the caller's stack buffer (put_request: each field checked
 * once for room for its worst case, each string measured once, each value's length
 * prefix computed rather than measured by a first pass), else into a buffer of its
 * own; any other goes to protobuf-c. shoal__bv_unpack_reply decodes a
 * Reply that is its id alone (a status-only reply, a set's) with no scan at all, and
 * in one pass when its result is absent or a scalar: the error text stays in
 * the frame, the result is one Value made with malloc (the API hands it over); a
 * container result, or a result given twice (protobuf-c merges the two), sends the
 * whole frame to shoal__bv_unpack. It accepts exactly what shoal__bv_unpack does —
 * its scan (pb_get_field's rules) and protobuf-c's own: no tag or length prefix
 * longer than five bytes, a bool of any wire type, true when any byte after its tag
 * has a low bit set — and decodes the same fields (broker_codec.c and the fuzz
 * target compare both on random and corrupted replies).
 */
#include <endian.h>
#include <malloc.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "manager_internal.h"
#include "pb_wire.h"

static bv *bv_new(int kind)
{
    bv *v = malloc(sizeof(*v));
    if (v) {
        shoal__broker__value__init(v);
        v->kind_case = (Shoal__Broker__Value__KindCase)kind;
    }
    return v;
}

bv *shoal__bv_none(void)
{
    bv *v = bv_new(BV_NONE);
    if (v)
        v->none = 1;
    return v;
}

bv *shoal__bv_bool(bool b)
{
    bv *v = bv_new(BV_BOOL);
    if (v)
        v->b = b;
    return v;
}

bv *shoal__bv_int(int64_t i)
{
    bv *v = bv_new(BV_INT);
    if (v)
        v->i = i;
    return v;
}

bv *shoal__bv_double(double d)
{
    bv *v = bv_new(BV_DOUBLE);
    if (v)
        v->d = d;
    return v;
}

bv *shoal__bv_str(const char *s, size_t len)
{
    bv *v = bv_new(BV_STR);
    char *p = malloc(len + 1);
    if (!v || !p) {
        free(v);
        free(p);
        return NULL;
    }
    memcpy(p, s, len);
    p[len] = 0;
    v->s = p;
    return v;
}

bv *shoal__bv_bytes(int kind, const void *p, size_t len)
{
    bv *v = bv_new(kind);
    uint8_t *d = malloc(len ? len : 1);
    if (!v || !d) {
        free(v);
        free(d);
        return NULL;
    }
    if (len)
        memcpy(d, p, len);
    ProtobufCBinaryData *b = kind == BV_PICKLE ? &v->pickle : &v->bytes;
    *b = (ProtobufCBinaryData){len, d};
    return v;
}

bv *shoal__bv_message(const char *type, const void *p, size_t len)
{
    Shoal__Broker__Typed t = SHOAL__BROKER__TYPED__INIT;
    t.type = (char *)type;
    t.data = (ProtobufCBinaryData){len, (uint8_t *)p};
    bv src;
    shoal__broker__value__init(&src);
    src.kind_case = BV_MSG;
    src.message = &t;
    return shoal__bv_clone(&src);
}

bv *shoal__bv_seq(int kind)
{
    bv *v = bv_new(kind);
    Shoal__Broker__Seq *s = malloc(sizeof(*s));
    if (!v || !s) {
        free(v);
        free(s);
        return NULL;
    }
    shoal__broker__seq__init(s);
    if (kind == BV_TUPLE)
        v->tuple = s;
    else
        v->list = s;
    return v;
}

bv *shoal__bv_map(void)
{
    bv *v = bv_new(BV_MAP);
    Shoal__Broker__Map *m = malloc(sizeof(*m));
    if (!v || !m) {
        free(v);
        free(m);
        return NULL;
    }
    shoal__broker__map__init(m);
    v->map = m;
    return v;
}

static Shoal__Broker__Seq *seq_of(const bv *v)
{
    return v->kind_case == BV_TUPLE ? v->tuple : v->list;
}

/* Room for item n in an array of n: doubled when full, whoever allocated it (protobuf-c
 * allocates exactly n), so that appending is not a copy of the array each time. */
static int grow(void ***items, size_t n)
{
    if (*items && malloc_usable_size(*items) >= (n + 1) * sizeof(void *))
        return 0;
    void **p = realloc(*items, (n < 4 ? 4 : n * 2) * sizeof(void *));
    if (!p)
        return -1;
    *items = p;
    return 0;
}

int shoal__bv_seq_insert(bv *seq, size_t i, bv *v)
{
    Shoal__Broker__Seq *s = seq_of(seq);
    if (!v || i > s->n_items || grow((void ***)&s->items, s->n_items) < 0) {
        shoal__bv_free(v);
        return -1;
    }
    memmove(&s->items[i + 1], &s->items[i], (s->n_items - i) * sizeof(bv *));
    s->items[i] = v;
    s->n_items++;
    return 0;
}

bv *shoal__bv_seq_take(bv *seq, size_t i)
{
    Shoal__Broker__Seq *s = seq_of(seq);
    bv *v = s->items[i];
    memmove(&s->items[i], &s->items[i + 1], (s->n_items - i - 1) * sizeof(bv *));
    s->n_items--;
    return v;
}

long shoal__bv_map_find(const bv *m, const bv *key)
{
    for (size_t i = 0; i < m->map->n_entries; i++)
        if (shoal__bv_equal(m->map->entries[i]->key, key))
            return (long)i;
    return -1;
}

int shoal__bv_map_put(bv *m, bv *key, bv *v)
{
    long at = key && v ? shoal__bv_map_find(m, key) : -1;
    if (at >= 0) {
        Shoal__Broker__Entry *e = m->map->entries[at];
        shoal__bv_free(e->value);
        e->value = v;
        shoal__bv_free(key);
        return 0;
    }
    Shoal__Broker__Entry *e = key && v ? malloc(sizeof(*e)) : NULL;
    if (!e || grow((void ***)&m->map->entries, m->map->n_entries) < 0) {
        free(e);
        shoal__bv_free(key);
        shoal__bv_free(v);
        return -1;
    }
    shoal__broker__entry__init(e);
    e->key = key;
    e->value = v;
    m->map->entries[m->map->n_entries++] = e;
    return 0;
}

bv *shoal__bv_map_take(bv *m, size_t i)
{
    Shoal__Broker__Map *map = m->map;
    Shoal__Broker__Entry *e = map->entries[i];
    bv *v = e->value;
    e->value = NULL;
    protobuf_c_message_free_unpacked(&e->base, NULL);
    memmove(&map->entries[i], &map->entries[i + 1],
            (map->n_entries - i - 1) * sizeof(*map->entries));
    map->n_entries--;
    return v;
}

static bool is_number(const bv *v)
{
    return v->kind_case == BV_INT || v->kind_case == BV_DOUBLE || v->kind_case == BV_BOOL;
}

static double number(const bv *v)
{
    return v->kind_case == BV_DOUBLE ? v->d
           : v->kind_case == BV_INT  ? (double)v->i
                                     : v->b;
}

static bool bin_equal(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
    return a.len == b.len && (!a.len || !memcmp(a.data, b.data, a.len));
}

bool shoal__bv_equal(const bv *a, const bv *b)
{
    if (!a || !b)
        return a == b;
    if (is_number(a) && is_number(b)) {
        if (a->kind_case == BV_DOUBLE || b->kind_case == BV_DOUBLE)
            return number(a) == number(b);
        return (a->kind_case == BV_INT ? a->i : a->b) ==
               (b->kind_case == BV_INT ? b->i : b->b);
    }
    if (a->kind_case != b->kind_case)
        return false;
    switch (a->kind_case) {
    case BV_NONE:
        return true;
    case BV_STR:
        return !strcmp(a->s, b->s);
    case BV_BYTES:
        return bin_equal(a->bytes, b->bytes);
    case BV_PICKLE:
        return bin_equal(a->pickle, b->pickle);
    case BV_MSG:
        return !strcmp(a->message->type, b->message->type) &&
               bin_equal(a->message->data, b->message->data);
    case BV_LIST:
    case BV_TUPLE: {
        Shoal__Broker__Seq *x = seq_of(a), *y = seq_of(b);
        if (x->n_items != y->n_items)
            return false;
        for (size_t i = 0; i < x->n_items; i++)
            if (!shoal__bv_equal(x->items[i], y->items[i]))
                return false;
        return true;
    }
    case BV_MAP: {
        if (a->map->n_entries != b->map->n_entries)
            return false;
        for (size_t i = 0; i < a->map->n_entries; i++) {
            long j = shoal__bv_map_find(b, a->map->entries[i]->key);
            if (j < 0 ||
                !shoal__bv_equal(a->map->entries[i]->value, b->map->entries[j]->value))
                return false;
        }
        return true;
    }
    default:
        return false;
    }
}

bool shoal__bv_is_key(const bv *v)
{
    if (!v)
        return false;
    switch (v->kind_case) {
    case BV_NONE:
    case BV_BOOL:
    case BV_INT:
    case BV_DOUBLE:
    case BV_STR:
    case BV_BYTES:
        return !(v->kind_case == BV_DOUBLE && isnan(v->d));
    case BV_TUPLE:
        for (size_t i = 0; i < v->tuple->n_items; i++)
            if (!shoal__bv_is_key(v->tuple->items[i]))
                return false;
        return true;
    default:
        return false;
    }
}

void *shoal__bv_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    void *buf = malloc(*len ? *len : 1);
    if (buf)
        protobuf_c_message_pack(m, buf);
    return buf;
}

/* Writes Value v to o when it is a scalar (or string, bytes, pickle) with no unknown
 * fields, byte for byte as protobuf-c packs it (a oneof member is written even when
 * zero). False, nothing written, for any other value. */
static bool put_scalar(pb_out *o, const bv *v)
{
    if (v->base.n_unknown_fields)
        return false;
    switch (v->kind_case) {
    case BV_NONE:
    case BV_BOOL:
        pb_put_tag(o, (uint32_t)v->kind_case, WT_VARINT);
        pb_put_varint(o, (v->kind_case == BV_NONE ? v->none : v->b) != 0);
        return true;
    case BV_INT:
        pb_put_tag(o, BV_INT, WT_VARINT);
        pb_put_varint(o, pb_zigzag(v->i));
        return true;
    case BV_DOUBLE: {
        uint64_t bits;
        uint8_t le[8];
        memcpy(&bits, &v->d, 8);
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(bits >> (8 * i));
        pb_put_tag(o, BV_DOUBLE, WT_I64);
        pb_put(o, le, 8);
        return true;
    }
    case BV_STR:
        pb_put_len(o, BV_STR, v->s, strlen(v->s));
        return true;
    case BV_BYTES:
    case BV_PICKLE: {
        const ProtobufCBinaryData *b = v->kind_case == BV_BYTES ? &v->bytes : &v->pickle;
        pb_put_len(o, (uint32_t)v->kind_case, b->data, b->len);
        return true;
    }
    default:
        return false;
    }
}

/* The Reply's fields before its result, as protobuf-c packs them (proto3: a zero
 * or empty field is left out). */
static void put_reply_head(pb_out *o, uint64_t id, int32_t status, const char *error)
{
    if (id && o->p && o->len <= o->cap && o->cap - o->len >= 11) { /* in place */
        uint8_t *q = o->p + o->len;
        *q++ = 1 << 3 | WT_VARINT;
        q = pb_write_varint(q, id);
        o->len = (size_t)(q - o->p);
    } else if (id) {
        pb_put_tag(o, 1, WT_VARINT);
        pb_put_varint(o, id);
    }
    if (status) {
        pb_put_tag(o, 2, WT_VARINT);
        pb_put_varint(o, pb_zigzag(status));
    }
    if (error && *error)
        pb_put_len(o, 3, error, strlen(error));
}

/* The Reply (a scalar result of vlen bytes, or none) into o. */
static void put_reply(pb_out *o, uint64_t id, int32_t status, const char *error,
                      const bv *result, size_t vlen)
{
    put_reply_head(o, id, status, error);
    if (result) {
        pb_put_tag(o, 4, WT_LEN);
        pb_put_varint(o, vlen);
        put_scalar(o, result);
    }
}

void *shoal__bv_pack_reply_in(void *buf, size_t cap, uint64_t id, int32_t status,
                              const char *error, const bv *result, size_t *len)
{
    pb_out size = {NULL, 0, 0};
    if (result && !put_scalar(&size, result)) { /* a container: protobuf-c packs it */
        brep r = SHOAL__BROKER__REPLY__INIT;
        r.id = id;
        r.status = status;
        r.error = (char *)(error ? error : "");
        r.result = (bv *)result;
        return shoal__bv_pack(&r.base, len);
    }
    pb_out o = {buf, cap, 0};
    put_reply(&o, id, status, error, result, size.len);
    *len = o.len;
    if (buf && o.len <= cap)
        return buf;
    pb_out big = {malloc(o.len ? o.len : 1), o.len, 0};
    if (big.p)
        put_reply(&big, id, status, error, result, size.len);
    return big.p;
}

void *shoal__bv_pack_reply(uint64_t id, int32_t status, const char *error,
                           const bv *result, size_t *len)
{
    return shoal__bv_pack_reply_in(NULL, 0, id, status, error, result, len);
}

/* ---- the client's Request writer ---- */

/* Room a field needs beyond its payload: its tag and length prefix, the value's tag
 * and its varint or length prefix (10 bytes each at most). */
#define REQ_FIELD_ROOM 24

/* A length-delimited field (number < 16: a one-byte tag). */
static inline uint8_t *req_len(uint8_t *q, uint32_t number, const void *data, size_t n)
{
    *q++ = (uint8_t)(number << 3 | WT_LEN);
    q = pb_write_varint(q, n);
    if (n)
        memcpy(q, data, n);
    return q + n;
}

/* Value v as field `number` of the Request (tag, length, v's one member, as put_scalar
 * writes it) at q when it is a scalar with no unknown fields and fits before end.
 * Returns the end of what it wrote; NULL, *full set when it is only the room that
 * lacks, when it does not. */
static uint8_t *req_value(uint8_t *q, const uint8_t *end, uint32_t number, const bv *v,
                          bool *full)
{
    if (!v || v->base.n_unknown_fields)
        return NULL;
    const void *data = NULL;
    size_t n = 0;
    uint64_t word = 0;
    switch (v->kind_case) {
    case BV_NONE:
    case BV_BOOL:
        word = (v->kind_case == BV_NONE ? v->none : v->b) != 0;
        break;
    case BV_INT:
        word = pb_zigzag(v->i);
        break;
    case BV_DOUBLE:
        n = 8;
        break;
    case BV_STR:
        data = v->s;
        n = strlen(v->s);
        break;
    case BV_BYTES:
    case BV_PICKLE: {
        const ProtobufCBinaryData *b = v->kind_case == BV_BYTES ? &v->bytes : &v->pickle;
        data = b->data;
        n = b->len;
        break;
    }
    default:
        return NULL;
    }
    if ((size_t)(end - q) < REQ_FIELD_ROOM + n) {
        *full = true;
        return NULL;
    }
    uint32_t kind = (uint32_t)v->kind_case;
    *q++ = (uint8_t)(number << 3 | WT_LEN);
    if (kind == BV_DOUBLE) {
        uint64_t bits;
        memcpy(&bits, &v->d, 8);
        *q++ = 9;
        *q++ = (uint8_t)(BV_DOUBLE << 3 | WT_I64);
        for (int i = 0; i < 8; i++)
            *q++ = (uint8_t)(bits >> (8 * i));
    } else if (kind == BV_STR || kind == BV_BYTES || kind == BV_PICKLE) {
        q = pb_write_varint(q, 1 + pb_varint_len(n) + n);
        q = req_len(q, kind, data, n);
    } else {
        *q++ = (uint8_t)(1 + pb_varint_len(word));
        *q++ = (uint8_t)(kind << 3 | WT_VARINT);
        q = pb_write_varint(q, word);
    }
    return q;
}

/* A proto3 string field at q (left out when empty, as protobuf-c does), or NULL, *full
 * set, when it does not fit before end. */
static uint8_t *req_str(uint8_t *q, const uint8_t *end, uint32_t number, const char *s,
                        bool *full)
{
    size_t n = s ? strlen(s) : 0;
    if ((size_t)(end - q) < REQ_FIELD_ROOM + n) {
        *full = true;
        return NULL;
    }
    return n ? req_len(q, number, s, n) : q;
}

/* Request q written into p[cap] in one pass, as protobuf-c packs it (fields in order
 * of number, zero or empty ones left out), when it has no batch items nor unknown
 * fields and its path and args are all scalars: its length. 0, *full set when only
 * the room lacked, for any other (p's bytes useless). */
static size_t put_request(const breq *q, uint8_t *p, size_t cap, bool *full)
{
    *full = false;
    if (q->base.n_unknown_fields || q->n_batch)
        return 0;
    if (!p || cap < 3 * REQ_FIELD_ROOM) {
        *full = true;
        return 0;
    }
    const uint8_t *end = p + cap;
    uint8_t *w = p;
    if (q->id) {
        *w++ = 1 << 3 | WT_VARINT;
        w = pb_write_varint(w, q->id);
    }
    w = req_str(w, end, 2, q->object, full);
    for (size_t i = 0; w && i < q->n_path; i++)
        w = req_value(w, end, 3, q->path[i], full);
    if (w)
        w = req_str(w, end, 4, q->op, full);
    for (size_t i = 0; w && i < q->n_args; i++)
        w = req_value(w, end, 5, q->args[i], full);
    if (w && (size_t)(end - w) < 2 * REQ_FIELD_ROOM)
        *full = true;
    if (*full || !w)
        return 0;
    if (q->timeout_ms) {
        *w++ = 6 << 3 | WT_VARINT;
        w = pb_write_varint(w, pb_zigzag(q->timeout_ms));
    }
    if (q->thread) {
        *w++ = 7 << 3 | WT_VARINT;
        w = pb_write_varint(w, q->thread);
    }
    return (size_t)(w - p);
}

void *shoal__bv_pack_request(const breq *q, void *buf, size_t cap, size_t *len)
{
    bool full;
    size_t n = put_request(q, buf, cap, &full);
    for (size_t big = 4096; !n && full; big *= 2) { /* a larger buffer of its own */
        void *p = malloc(big);
        if (!p)
            return NULL;
        if ((n = put_request(q, p, big, &full))) {
            *len = n;
            return p;
        }
        free(p);
    }
    if (!n) /* containers or batch items: protobuf-c packs it */
        return shoal__bv_pack(&q->base, len);
    *len = n;
    return buf;
}

static int dup_bin(ProtobufCBinaryData *to, ProtobufCBinaryData from)
{
    to->len = from.len;
    to->data = malloc(from.len ? from.len : 1);
    if (to->data && from.len)
        memcpy(to->data, from.data, from.len);
    return to->data ? 0 : -1;
}

/* Copies the items of seq `from` into the empty seq `to`. 0 or -1. */
static int clone_items(Shoal__Broker__Seq *to, const Shoal__Broker__Seq *from)
{
    if (!from->n_items)
        return 0;
    if (!(to->items = malloc(from->n_items * sizeof(*to->items))))
        return -1;
    for (; to->n_items < from->n_items; to->n_items++)
        if (!(to->items[to->n_items] = shoal__bv_clone(from->items[to->n_items])))
            return -1;
    return 0;
}

static int clone_entries(Shoal__Broker__Map *to, const Shoal__Broker__Map *from)
{
    if (!from->n_entries)
        return 0;
    if (!(to->entries = malloc(from->n_entries * sizeof(*to->entries))))
        return -1;
    for (; to->n_entries < from->n_entries; to->n_entries++) {
        const Shoal__Broker__Entry *f = from->entries[to->n_entries];
        Shoal__Broker__Entry *e = malloc(sizeof(*e));
        if (!e)
            return -1;
        shoal__broker__entry__init(e);
        to->entries[to->n_entries] = e;
        if ((f->key && !(e->key = shoal__bv_clone(f->key))) ||
            (f->value && !(e->value = shoal__bv_clone(f->value)))) {
            to->n_entries++; /* freed with the rest */
            return -1;
        }
    }
    return 0;
}

/* A deep copy made field by field, every part with malloc (as protobuf-c's default
 * allocator would), so it may come from a message decoded into an arena. */
bv *shoal__bv_clone(const bv *v)
{
    bv *c = bv_new(v->kind_case);
    if (!c)
        return NULL;
    int rc = 0;
    switch (v->kind_case) {
    case BV_STR:
        rc = (c->s = strdup(v->s)) ? 0 : -1;
        break;
    case BV_BYTES:
        rc = dup_bin(&c->bytes, v->bytes);
        break;
    case BV_PICKLE:
        rc = dup_bin(&c->pickle, v->pickle);
        break;
    case BV_LIST:
    case BV_TUPLE: {
        Shoal__Broker__Seq *s = malloc(sizeof(*s));
        if (s)
            shoal__broker__seq__init(s);
        *(v->kind_case == BV_LIST ? &c->list : &c->tuple) = s;
        rc = s ? clone_items(s, seq_of(v)) : -1;
        break;
    }
    case BV_MAP:
        if ((c->map = malloc(sizeof(*c->map))))
            shoal__broker__map__init(c->map);
        rc = c->map ? clone_entries(c->map, v->map) : -1;
        break;
    case BV_MSG:
        if ((c->message = malloc(sizeof(*c->message)))) {
            shoal__broker__typed__init(c->message);
            c->message->type = NULL;
            rc = (c->message->type = strdup(v->message->type)) ? 0 : -1;
            rc = rc ? rc : dup_bin(&c->message->data, v->message->data);
        } else {
            rc = -1;
        }
        break;
    default: /* the scalars */
        *c = *v;
        c->base.n_unknown_fields = 0;
        c->base.unknown_fields = NULL;
    }
    if (rc < 0) {
        shoal__bv_free(c);
        return NULL;
    }
    return c;
}

void shoal__bv_free(bv *v)
{
    if (!v)
        return;
    if (v->base.n_unknown_fields) /* decoded with some: protobuf-c frees those too */
        return protobuf_c_message_free_unpacked(&v->base, NULL);
    switch (v->kind_case) { /* the common leaves directly, the rest by descriptor */
    case BV_STR:
        free(v->s);
        break;
    case BV_BYTES:
        free(v->bytes.data);
        break;
    case BV_PICKLE:
        free(v->pickle.data);
        break;
    case BV_LIST:
    case BV_TUPLE:
    case BV_MAP:
    case BV_MSG:
        return protobuf_c_message_free_unpacked(&v->base, NULL);
    default:
        break;
    }
    free(v);
}

/* ---- the arena ---- */

/* A block the arena took from malloc once its first buffer was full. */
struct shoal_bv_block {
    struct shoal_bv_block *next;
    size_t cap;
    max_align_t data[];
};

#define ALIGN sizeof(max_align_t)

static void *arena_more(shoal_bv_arena *a, size_t size);

static inline void *arena_alloc(void *data, size_t size)
{
    shoal_bv_arena *a = data;
    size = (size + ALIGN - 1) & ~(ALIGN - 1);
    if (__builtin_expect((size_t)(a->end - a->p) < size, 0))
        return arena_more(a, size);
    void *r = a->p;
    a->p += size;
    return r;
}

/* arena_alloc when the current buffer is full: a new block from malloc. */
static void *arena_more(shoal_bv_arena *a, size_t size)
{
    size_t cap = a->blocks ? a->blocks->cap * 2 : 4096;
    if (cap < size)
        cap = size;
    struct shoal_bv_block *k = malloc(sizeof(*k) + cap);
    if (!k)
        return NULL;
    k->next = a->blocks;
    k->cap = cap;
    a->blocks = k;
    a->p = (char *)k->data + size;
    a->end = (char *)k->data + cap;
    return k->data;
}

static void arena_free(void *data, void *p)
{
    (void)data; /* all of it goes at once: shoal__bv_arena_reset */
    (void)p;
}

void shoal__bv_arena_init(shoal_bv_arena *a, void *buf, size_t cap)
{
    a->pa = (ProtobufCAllocator){arena_alloc, arena_free, a};
    a->first = buf;
    a->cap = cap;
    a->blocks = NULL;
    shoal__bv_arena_reset(a);
}

void shoal__bv_arena_reset(shoal_bv_arena *a)
{
    for (struct shoal_bv_block *k = a->blocks, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    a->blocks = NULL;
    /* the first buffer, its start aligned */
    uintptr_t start = ((uintptr_t)a->first + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
    uintptr_t end = (uintptr_t)a->first + a->cap;
    a->p = (char *)(start < end ? start : end);
    a->end = (char *)end;
}

/* ---- the depth and size check before unpacking ---- */

enum {
    M_VALUE,
    M_SEQ,
    M_MAP,
    M_ENTRY,
    M_TYPED,
    M_REQUEST,
    M_REPLY,
    M_OBJECT,
    M_WATCH,
    M_CHANGE,
    M_OTHER
};

/* The message type of field `number` of a message of type t (M_OTHER: not one). */
static int sub_type(int t, uint32_t number)
{
    switch (t) {
    case M_VALUE:
        return number == 7 || number == 8 ? M_SEQ
               : number == 9              ? M_MAP
               : number == 10             ? M_TYPED
                                          : M_OTHER;
    case M_SEQ:
        return number == 1 ? M_VALUE : M_OTHER;
    case M_MAP:
        return number == 1 ? M_ENTRY : M_OTHER;
    case M_ENTRY:
        return number == 1 || number == 2 ? M_VALUE : M_OTHER;
    case M_REQUEST:
        return number == 3 || number == 5 ? M_VALUE : M_OTHER;
    case M_REPLY:
        return number == 4 ? M_VALUE : M_OTHER;
    case M_OBJECT:
    case M_WATCH:
        return number == 2 ? M_VALUE : M_OTHER;
    case M_CHANGE:
        return number >= 3 && number <= 6 ? M_VALUE : M_OTHER;
    default:
        return M_OTHER;
    }
}

static int scan(int t, const uint8_t *p, const uint8_t *end, int depth, size_t *values)
{
    if (t == M_VALUE && (++*values > SHOAL_BV_MAX_VALUES || ++depth > SHOAL_BV_MAX_DEPTH))
        return shoal__err(SHOAL_EINVALID_DATA,
                          "broker message: nested deeper than %d or more than %d values",
                          SHOAL_BV_MAX_DEPTH, SHOAL_BV_MAX_VALUES);
    while (p < end) {
        uint32_t number;
        int wt;
        uint64_t value;
        const uint8_t *sub;
        size_t sub_len;
        if (shoal__pb_field(&p, end, &number, &wt, &value, &sub, &sub_len) < 0)
            return shoal__err(SHOAL_EINVALID_DATA, "broker message: does not decode");
        int st = sub ? sub_type(t, number) : M_OTHER;
        if (st != M_OTHER) {
            int rc = scan(st, sub, sub + sub_len, depth, values);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int top_type(const ProtobufCMessageDescriptor *d)
{
    return d == &shoal__broker__request__descriptor         ? M_REQUEST
           : d == &shoal__broker__reply__descriptor         ? M_REPLY
           : d == &shoal__broker__object__descriptor        ? M_OBJECT
           : d == &shoal__broker__value__descriptor         ? M_VALUE
           : d == &shoal__broker__watch_request__descriptor ? M_WATCH
           : d == &shoal__broker__change__descriptor        ? M_CHANGE
                                                            : M_OTHER;
}

/* What protobuf-c accepts but the value model does not: a Value of no kind, a map
 * entry without its key or value, a key that is not a scalar (or tuple of them). */
static bool valid(const bv *v)
{
    if (!v || v->kind_case == SHOAL__BROKER__VALUE__KIND__NOT_SET)
        return false;
    if (v->kind_case == BV_LIST || v->kind_case == BV_TUPLE) {
        Shoal__Broker__Seq *s = seq_of(v);
        for (size_t i = 0; i < s->n_items; i++)
            if (!valid(s->items[i]))
                return false;
    }
    if (v->kind_case == BV_MAP)
        for (size_t i = 0; i < v->map->n_entries; i++) {
            const Shoal__Broker__Entry *e = v->map->entries[i];
            if (!valid(e->key) || !valid(e->value) || !shoal__bv_is_key(e->key))
                return false;
        }
    return true;
}

static bool valid_all(bv *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!valid(v[i]))
            return false;
    return true;
}

static bool valid_message(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &shoal__broker__request__descriptor) {
        const breq *r = (const breq *)m;
        return valid_all(r->path, r->n_path) && valid_all(r->args, r->n_args);
    }
    if (d == &shoal__broker__reply__descriptor)
        return !((const brep *)m)->result || valid(((const brep *)m)->result);
    if (d == &shoal__broker__object__descriptor)
        return valid(((const bobjstate *)m)->data);
    if (d == &shoal__broker__watch_request__descriptor) {
        const Shoal__Broker__WatchRequest *w = (const void *)m;
        return !w->key || (valid(w->key) && shoal__bv_is_key(w->key));
    }
    if (d == &shoal__broker__change__descriptor) {
        const Shoal__Broker__Change *c = (const void *)m;
        return valid_all(c->path, c->n_path) && valid_all(c->args, c->n_args) &&
               (!c->result || valid(c->result)) && (!c->value || valid(c->value));
    }
    return d != &shoal__broker__value__descriptor || valid((const bv *)m);
}

/* ---- the Request decoder (into an arena) ---- */

/* Decoding state: the arena and the number of values met so far. */
typedef struct dec {
    shoal_bv_arena *a;
    size_t values;
} dec;

/* The wire types of the fields of the messages decoded here, by field number (-1:
 * no such field, skipped). */
static const int8_t value_wt[12] = {-1,     WT_VARINT, WT_VARINT, WT_VARINT,
                                    WT_I64, WT_LEN,    WT_LEN,    WT_LEN,
                                    WT_LEN, WT_LEN,    WT_LEN,    WT_LEN};
static const int8_t request_wt[9] = {-1,     WT_VARINT, WT_LEN,    WT_LEN, WT_LEN,
                                     WT_LEN, WT_VARINT, WT_VARINT, WT_LEN};
static const int8_t len_wt[3] = {-1, WT_LEN, WT_LEN}; /* Seq, Map, Entry, Typed */

static int bad_data(void)
{
    return shoal__err(SHOAL_EINVALID_DATA, "broker message: does not decode");
}

static int no_memory(void)
{
    return shoal__err(SHOAL_ENOMEM, "broker message: out of memory");
}

/* Reads the next field of in into f as shoal__bv_unpack would (its scan reads with
 * pb_get_field, then protobuf-c decodes): refused besides, a tag or a length prefix
 * longer than five bytes (protobuf-c reads no more), a known field (below nwt) of
 * another wire type than wts[] — except a bool (fields 1..nbool), which protobuf-c
 * takes of any wire type, true when any of its bytes after the tag (a length prefix
 * included) has one of its low seven bits set: f->value is that truth. The checks
 * of the longer forms cost nothing to a one-byte tag or length prefix. */
static inline __attribute__((always_inline)) bool
pbc_field(pb_in *in, pb_field *f, const int8_t *wts, uint32_t nwt, uint32_t nbool)
{
    const uint8_t *tag = in->p, *raw = tag + 1;
    if (!pb_get_field(in, f))
        return false;
    if (SHOAL_UNLIKELY(*tag & 0x80)) {
        while (raw[-1] & 0x80)
            raw++;
        if (raw - tag > 5)
            return false;
    }
    if (f->wt == WT_LEN && SHOAL_UNLIKELY(f->sub - raw > 5))
        return false;
    if (SHOAL_UNLIKELY(f->number <= nbool)) {
        f->value = 0;
        for (; raw < in->p && !f->value; raw++)
            f->value = *raw & 0x7f;
        return true;
    }
    return f->number >= nwt || f->wt == wts[f->number];
}

/* pbc_field for the Request decoder: 0, or SHOAL_EINVALID_DATA (detail set). */
static inline __attribute__((always_inline)) int
next_field(pb_in *in, pb_field *f, const int8_t *wts, uint32_t nwt, uint32_t nbool)
{
    return pbc_field(in, f, wts, nwt, nbool) ? 0 : bad_data();
}

static char *dec_str(dec *d, const pb_field *f)
{
    char *s = arena_alloc(d->a, f->len + 1);
    if (s) {
        memcpy(s, f->sub, f->len);
        s[f->len] = 0;
    }
    return s;
}

static int dec_bin(dec *d, ProtobufCBinaryData *b, const pb_field *f)
{
    b->len = f->len;
    if (!(b->data = arena_alloc(d->a, f->len ? f->len : 1)))
        return no_memory();
    memcpy(b->data, f->sub, f->len);
    return 0;
}

/* Room for element n (of `size` bytes) of the array *arr of capacity *cap in the
 * arena: doubled when full (the old one stays in the arena, dropped with it), so a
 * repeated field is decoded in one pass. NULL when out of memory. */
static inline void *slot(dec *d, void **arr, size_t n, size_t *cap, size_t size)
{
    if (n == *cap) {
        size_t c = n ? n * 2 : 4;
        void *p = arena_alloc(d->a, c * size);
        if (!p)
            return NULL;
        if (n)
            memcpy(p, *arr, n * size);
        *arr = p;
        *cap = c;
    }
    return (char *)*arr + n * size;
}

/* What the decoders of a Value's parts return besides 0 and a negative code: the part
 * decodes, but breaks the value model (a value of no kind, a map entry without its
 * key or value or with a key that is not a scalar). protobuf-c decodes such a part,
 * and valid() refuses it where it survives into the message; where a later member of
 * a Value's oneof replaces it, protobuf-c drops it, and so does this decoder: a part
 * that breaks the model is refused only once it is known to stay. */
#define MODEL_BAD 1

static int dec_value_any(dec *d, const uint8_t *p, size_t len, int depth, bv **out);

static bool has_kind(const bv *v)
{
    return v && v->kind_case != SHOAL__BROKER__VALUE__KIND__NOT_SET;
}

/* One more Value (field f's bytes) of the repeated field *items (*n of them, room
 * for *cap), which must have a kind. */
static int dec_item(dec *d, const pb_field *f, int depth, bv ***items, size_t *n,
                    size_t *cap)
{
    bv **v = slot(d, (void **)items, *n, cap, sizeof(**items));
    if (!v)
        return no_memory();
    ++*n;
    int rc = dec_value_any(d, f->sub, f->len, depth, v);
    return rc < 0 ? rc : rc || !has_kind(*v) ? MODEL_BAD : 0;
}

static int dec_seq(dec *d, const uint8_t *p, size_t len, int depth, Shoal__Broker__Seq *s)
{
    pb_in in = {p, p + len};
    pb_field f = {0};
    size_t cap = 0;
    int bad = 0;
    while (in.p < in.end) {
        if (next_field(&in, &f, len_wt, 2, 0) < 0)
            return SHOAL_EINVALID_DATA;
        int rc = f.number == 1 ? dec_item(d, &f, depth, &s->items, &s->n_items, &cap) : 0;
        if (rc < 0)
            return rc;
        bad |= rc;
    }
    return bad;
}

/* Whether protobuf-c's merge of a Value of no kind into the earlier Value e keeps e's
 * member (merge_messages, protobuf-c 1.4): a string never (the later one's empty
 * pointer is not the field's default), bytes and a pickle when not empty, any other
 * kind always. */
static bool merge_keeps(const bv *e)
{
    switch (e->kind_case) {
    case BV_STR:
        return false;
    case BV_BYTES:
        return e->bytes.len != 0;
    case BV_PICKLE:
        return e->pickle.len != 0;
    default:
        return true;
    }
}

/* An occurrence (field f) of an Entry's key or value *v (*bad: whether it breaks the
 * model): protobuf-c merges it into the earlier one, which for a Value (a oneof)
 * gives the later one when it has a kind; when it has none, the earlier one if
 * merge_keeps, else the later one (of no kind: the model refuses it); and when
 * neither has a kind, protobuf-c refuses the message. */
static int dec_member(dec *d, const pb_field *f, int depth, bv **v, int *bad)
{
    bv *later = NULL;
    int rc = dec_value_any(d, f->sub, f->len, depth, &later);
    if (rc < 0)
        return rc;
    if (*v && !has_kind(later) && !has_kind(*v))
        return shoal__err(SHOAL_EINVALID_DATA,
                          "broker message: a map entry's key or value given twice, "
                          "with no kind both times");
    if (!*v || has_kind(later) || !merge_keeps(*v)) {
        *v = later;
        *bad = rc;
    }
    return 0;
}

/* An Entry: its key (1) and value (2), both required, the key a scalar (or a tuple
 * of them). */
static int dec_entry(dec *d, const uint8_t *p, size_t len, int depth,
                     Shoal__Broker__Entry *e)
{
    shoal__broker__entry__init(e);
    pb_in in = {p, p + len};
    pb_field f = {0};
    int rc = 0, key_bad = 0, value_bad = 0;
    while (rc == 0 && in.p < in.end)
        rc = next_field(&in, &f, len_wt, 3, 0) < 0 ? SHOAL_EINVALID_DATA
             : f.number == 1 ? dec_member(d, &f, depth, &e->key, &key_bad)
             : f.number == 2 ? dec_member(d, &f, depth, &e->value, &value_bad)
                             : 0;
    if (rc < 0)
        return rc;
    return key_bad || value_bad || !has_kind(e->key) || !has_kind(e->value) ||
                   !shoal__bv_is_key(e->key)
               ? MODEL_BAD
               : 0;
}

static int dec_map(dec *d, const uint8_t *p, size_t len, int depth, Shoal__Broker__Map *m)
{
    pb_in in = {p, p + len};
    pb_field f = {0};
    size_t cap = 0;
    int bad = 0;
    while (in.p < in.end) {
        if (next_field(&in, &f, len_wt, 2, 0) < 0)
            return SHOAL_EINVALID_DATA;
        if (f.number != 1)
            continue;
        Shoal__Broker__Entry **e =
            slot(d, (void **)&m->entries, m->n_entries, &cap, sizeof(*m->entries));
        if (!e || !(*e = arena_alloc(d->a, sizeof(**e))))
            return no_memory();
        m->n_entries++;
        int rc = dec_entry(d, f.sub, f.len, depth, *e);
        if (rc < 0)
            return rc;
        bad |= rc;
    }
    return bad;
}

static int dec_typed(dec *d, const uint8_t *p, size_t len, Shoal__Broker__Typed *t)
{
    pb_in in = {p, p + len};
    pb_field f = {0};
    while (in.p < in.end) {
        if (next_field(&in, &f, len_wt, 3, 0) < 0)
            return SHOAL_EINVALID_DATA;
        if (f.number == 1 && !(t->type = dec_str(d, &f)))
            return no_memory();
        if (f.number == 2 && dec_bin(d, &t->data, &f) < 0)
            return SHOAL_ENOMEM;
    }
    return 0;
}

/* The container member (list, tuple, map, message) of v that field f sets. */
static int dec_container(dec *d, bv *v, const pb_field *f, int depth)
{
    if (v->kind_case == BV_MAP) {
        if (!(v->map = arena_alloc(d->a, sizeof(*v->map))))
            return no_memory();
        shoal__broker__map__init(v->map);
        return dec_map(d, f->sub, f->len, depth, v->map);
    }
    if (v->kind_case == BV_MSG) {
        if (!(v->message = arena_alloc(d->a, sizeof(*v->message))))
            return no_memory();
        shoal__broker__typed__init(v->message);
        return dec_typed(d, f->sub, f->len, v->message);
    }
    Shoal__Broker__Seq *s = arena_alloc(d->a, sizeof(*s));
    if (!s)
        return no_memory();
    shoal__broker__seq__init(s);
    *(v->kind_case == BV_LIST ? &v->list : &v->tuple) = s;
    return dec_seq(d, f->sub, f->len, depth, s);
}

/* One Value (p[len]) nested at depth, of any kind or none (the caller decides); a
 * repeated member of the oneof: the last one counts (protobuf-c frees the earlier
 * one, merging nothing). MODEL_BAD when the member that counts breaks the model. */
static int dec_value_any(dec *d, const uint8_t *p, size_t len, int depth, bv **out)
{
    if (++d->values > SHOAL_BV_MAX_VALUES || ++depth > SHOAL_BV_MAX_DEPTH)
        return shoal__err(SHOAL_EINVALID_DATA,
                          "broker message: nested deeper than %d or more than %d values",
                          SHOAL_BV_MAX_DEPTH, SHOAL_BV_MAX_VALUES);
    bv *v = *out = arena_alloc(d->a, sizeof(*v));
    if (!v)
        return no_memory();
    shoal__broker__value__init(v);
    pb_in in = {p, p + len};
    pb_field f = {0};
    int rc = 0, bad = 0;
    while (in.p < in.end) {
        if (next_field(&in, &f, value_wt, 12, BV_BOOL) < 0)
            return SHOAL_EINVALID_DATA;
        if (f.number >= 12)
            continue; /* unknown: skipped */
        v->kind_case = (Shoal__Broker__Value__KindCase)f.number;
        rc = 0;
        switch (f.number) {
        case BV_NONE: /* f.value: the bool's truth (pbc_field) */
            v->none = f.value != 0;
            break;
        case BV_BOOL:
            v->b = f.value != 0;
            break;
        case BV_INT:
            v->i = pb_unzigzag(f.value);
            break;
        case BV_DOUBLE:
            memcpy(&v->d, &f.value, 8);
            break;
        case BV_STR:
            rc = (v->s = dec_str(d, &f)) ? 0 : no_memory();
            break;
        case BV_BYTES:
            rc = dec_bin(d, &v->bytes, &f);
            break;
        case BV_PICKLE:
            rc = dec_bin(d, &v->pickle, &f);
            break;
        default: /* list, tuple, map, message */
            rc = dec_container(d, v, &f, depth);
        }
        if (rc < 0)
            return rc;
        bad = rc;
    }
    return bad;
}

static int model_refused(const char *message)
{
    return shoal__err(SHOAL_EINVALID_DATA,
                      "broker message %s: a value of no kind, a map entry without its "
                      "key or value, or a key that is not a scalar",
                      message);
}

/* ---- the Request decoder's fast path ---- */

/* The common Request's decoding (dec_request_fast): the message's bytes, copied once
 * into the arena, hold its strings and bytes: each string is NUL-terminated in the
 * copy over the byte after it (the next field's tag, or one byte past the message),
 * which is read from the original. */
typedef struct fast {
    dec *d;
    pb_in in;     /* the original */
    ptrdiff_t to; /* copy - original */
} fast;

/* A length prefix of one or two bytes (what a client writes for a field of under
 * 16 KiB) into *n, its bytes then within f->in. False for any other (longer, cut
 * short, overrunning): left to the general decoder. */
static inline bool fast_len(fast *f, size_t *n)
{
    const uint8_t *q = f->in.p;
    if (q >= f->in.end)
        return false;
    size_t v = *q++;
    if (v & 0x80) {
        if (q >= f->in.end || (*q & 0x80))
            return false;
        v = (v & 0x7f) | (size_t)*q++ << 7;
    }
    if (v > (size_t)(f->in.end - q))
        return false;
    f->in.p = q;
    *n = v;
    return true;
}

/* The next n bytes of f->in (after fast_len) as they are in the copy, NUL-terminated
 * there when str. */
static inline uint8_t *fast_bytes(fast *f, size_t n, bool str)
{
    uint8_t *s = (uint8_t *)f->in.p + f->to;
    if (str)
        s[n] = 0;
    f->in.p += n;
    return s;
}

/* The Value of n bytes at f->in when it is one scalar member written as every client
 * writes it: a one-byte tag of the member's own wire type, then its value, filling
 * the Value (a none or bool as a one-byte varint, a length prefix of one or two
 * bytes). NULL for any other (several members, unknown fields, a container, another
 * form): left to the general decoder, as is running out of memory. */
static inline __attribute__((always_inline)) bv *fast_value(fast *f, size_t n)
{
    const uint8_t *p = f->in.p, *end = p + n;
    bv *v = n >= 2 ? arena_alloc(f->d->a, sizeof(*v)) : NULL;
    if (!v)
        return NULL;
    *v = (bv)SHOAL__BROKER__VALUE__INIT;
    f->in.p++;
    pb_in sub = {f->in.p, end};
    uint64_t x;
    size_t len;
    if (p[0] == (BV_STR << 3 | WT_LEN)) { /* the most common */
        if (!fast_len(f, &len) || f->in.p + len != end)
            return NULL;
        v->s = (char *)fast_bytes(f, len, true);
        v->kind_case = BV_STR;
        return v;
    }
    switch (p[0]) {
    case BV_NONE << 3 | WT_VARINT:
    case BV_BOOL << 3 | WT_VARINT:
        if (n != 2 || (p[1] & 0x80))
            return NULL;
        *(p[0] >> 3 == BV_NONE ? &v->none : &v->b) = p[1] != 0;
        break;
    case BV_INT << 3 | WT_VARINT:
        if (!pb_get_varint(&sub, &x) || sub.p != end)
            return NULL;
        v->i = pb_unzigzag(x);
        break;
    case BV_DOUBLE << 3 | WT_I64:
        if (n != 9 || !pb_get_fixed(&sub, 8, &x))
            return NULL;
        memcpy(&v->d, &x, 8);
        break;
    case BV_BYTES << 3 | WT_LEN:
    case BV_PICKLE << 3 | WT_LEN:
        if (!fast_len(f, &len) || f->in.p + len != end)
            return NULL;
        *(p[0] >> 3 == BV_BYTES ? &v->bytes : &v->pickle) =
            (ProtobufCBinaryData){len, fast_bytes(f, len, false)};
        break;
    default:
        return NULL;
    }
    v->kind_case = (Shoal__Broker__Value__KindCase)(p[0] >> 3);
    f->in.p = end;
    return v;
}

/* Whether the next field of f->in has the one-byte tag `tag`. */
static inline bool fast_at(const fast *f, uint8_t tag)
{
    return f->in.p < f->in.end && *f->in.p == tag;
}

/* The string field at f->in (its tag checked: fast_at) into *s. */
static inline bool fast_str(fast *f, char **s)
{
    size_t n;
    f->in.p++;
    if (!fast_len(f, &n))
        return false;
    *s = (char *)fast_bytes(f, n, true);
    return true;
}

/* The run of Values of tag `tag` at f->in (a path, the arguments) into *items. */
static inline bool fast_values(fast *f, uint8_t tag, bv ***items, size_t *n)
{
    size_t cap = 0, len;
    while (fast_at(f, tag)) {
        f->in.p++;
        bv **v = slot(f->d, (void **)items, *n, &cap, sizeof(**items));
        if (!v || !fast_len(f, &len) || ++f->d->values > SHOAL_BV_MAX_VALUES ||
            !(*v = fast_value(f, len)))
            return false;
        ++*n;
    }
    return true;
}

/* The varint field at f->in (its tag checked: fast_at) into *v: one of up to eight
 * bytes read from the copy (which has room for a word past the message) as one word,
 * its seven-bit groups gathered by shifts; a longer one by pb_get_varint. */
static inline bool fast_varint(fast *f, uint64_t *v)
{
    uint64_t w, x, stop;
    f->in.p++;
    memcpy(&w, f->in.p + f->to, 8);
    w = le64toh(w);
    stop = ~w & 0x8080808080808080ull; /* the high bit of each last byte */
    if (!stop)
        return pb_get_varint(&f->in, v);
    size_t n = (size_t)__builtin_ctzll(stop) / 8 + 1;
    if (n > (size_t)(f->in.end - f->in.p))
        return false;
    x = w & (stop ^ (stop - 1)) & 0x7f7f7f7f7f7f7f7full;
    x = ((x & 0x7f007f007f007f00ull) >> 1) | (x & 0x007f007f007f007full);
    x = ((x & 0x3fff00003fff0000ull) >> 2) | (x & 0x00003fff00003fffull);
    x = ((x & 0x0fffffff00000000ull) >> 4) | (x & 0x000000000fffffffull);
    *v = x;
    f->in.p += n;
    return true;
}

#define TAG(number, wt) ((uint8_t)((number) << 3 | (wt)))

/* The common Request (dec_request's fast path): its fields in order of number, each
 * once (path and args: one run each) and with a one-byte tag of its own wire type,
 * no batch items, no unknown fields, every path element and argument a fast_value.
 * Such a message decodes alike whatever the order of the checks, and breaks no rule
 * of the value model, so it is decoded straight. NULL (the arena's use aside) for any
 * other: the general decoder decodes or refuses it from the start. */
static breq *dec_request_fast(dec *d, const uint8_t *p, size_t len)
{
    breq *r = arena_alloc(d->a, sizeof(*r));
    uint8_t *copy = arena_alloc(d->a, len + 8); /* fast_varint's word past the end */
    if (!r || !copy)
        return NULL;
    memcpy(copy, p, len);
    *r = (breq)SHOAL__BROKER__REQUEST__INIT;
    fast f = {d, {p, p + len}, copy - p};
    uint64_t timeout = 0;
    bool ok = (!fast_at(&f, TAG(1, WT_VARINT)) || fast_varint(&f, &r->id)) &&
              (!fast_at(&f, TAG(2, WT_LEN)) || fast_str(&f, &r->object)) &&
              fast_values(&f, TAG(3, WT_LEN), &r->path, &r->n_path) &&
              (!fast_at(&f, TAG(4, WT_LEN)) || fast_str(&f, &r->op)) &&
              fast_values(&f, TAG(5, WT_LEN), &r->args, &r->n_args) &&
              (!fast_at(&f, TAG(6, WT_VARINT)) || fast_varint(&f, &timeout)) &&
              (!fast_at(&f, TAG(7, WT_VARINT)) || fast_varint(&f, &r->thread)) &&
              f.in.p == f.in.end;
    r->timeout_ms = pb_unzigzag(timeout);
    return ok ? r : NULL;
}

/* Decodes a Request into arena a in one pass, checking on the way what scan() and
 * valid() check before and after protobuf-c's unpack (depth, number of values, a
 * value of no kind, a map entry without its key or value or with a key that is not
 * a scalar), the wire types of its known fields and protobuf-c's own rules
 * (pbc_field): it accepts and refuses what shoal__bv_unpack does, and decodes the
 * same message (tests/fuzz/fuzz_request.c compares them), except that unknown fields
 * are dropped. The batch's items (field 8, each a packed Request that batch.c decodes
 * when it runs it) are copied as they are. NULL with shoal_errdetail() set. */
static breq *dec_request(const uint8_t *p, size_t len, shoal_bv_arena *a)
{
    dec d = {a, 0};
    char *mark = a->p;
    struct shoal_bv_block *blocks = a->blocks;
    breq *r = dec_request_fast(&d, p, len);
    if (r)
        return r;
    if (a->blocks == blocks) /* what the fast path took is reused */
        a->p = mark;
    d.values = 0;
    r = arena_alloc(a, sizeof(*r));
    if (!r) {
        no_memory();
        return NULL;
    }
    shoal__broker__request__init(r);
    pb_in in = {p, p + len};
    pb_field f = {0};
    size_t cap_path = 0, cap_args = 0, cap_batch = 0;
    int rc = 0, bad = 0;
    while (in.p < in.end) {
        if (next_field(&in, &f, request_wt, 9, 0) < 0)
            return NULL;
        switch (f.number) {
        case 1:
            r->id = f.value;
            break;
        case 2:
        case 4:
            rc = (*(f.number == 2 ? &r->object : &r->op) = dec_str(&d, &f)) ? 0
                                                                            : no_memory();
            break;
        case 3:
            rc = dec_item(&d, &f, 0, &r->path, &r->n_path, &cap_path);
            break;
        case 5:
            rc = dec_item(&d, &f, 0, &r->args, &r->n_args, &cap_args);
            break;
        case 6:
            r->timeout_ms = pb_unzigzag(f.value);
            break;
        case 7:
            r->thread = f.value;
            break;
        case 8: {
            ProtobufCBinaryData *item =
                slot(&d, (void **)&r->batch, r->n_batch, &cap_batch, sizeof(*r->batch));
            rc = item ? dec_bin(&d, item, &f) : no_memory();
            r->n_batch += item != NULL;
            break;
        }
        }
        if (rc < 0)
            return NULL;
        bad |= rc;
        rc = 0;
    }
    if (bad) {
        model_refused(r->base.descriptor->name);
        return NULL;
    }
    return r;
}

/* ---- the client's Reply decoder ---- */

static const int8_t reply_wt[5] = {-1, WT_VARINT, WT_VARINT, WT_LEN, WT_LEN};

static int reply_refused(const char *what)
{
    return shoal__err(SHOAL_EINVALID_DATA, "broker message shoal.broker.Reply: %s", what);
}

/* pbc_field for the Reply decoder: 0, or SHOAL_EINVALID_DATA (detail set). */
static int next_field_pbc(pb_in *in, pb_field *f, const int8_t *wts, uint32_t nwt,
                          uint32_t nbool)
{
    return pbc_field(in, f, wts, nwt, nbool) ? 0 : reply_refused("does not decode");
}

/* The Value p[len]'s member (the last one set: a oneof) into *last when it is a
 * scalar: 1. 0 when a list, tuple, map or message appears (left to protobuf-c);
 * SHOAL_EINVALID_DATA when it does not decode or has no kind. Unknown fields are
 * skipped. */
static int last_scalar(const uint8_t *p, size_t len, pb_field *last)
{
    pb_in in = {p, p + len};
    pb_field f = {0};
    last->number = 0;
    while (in.p < in.end) {
        if (next_field_pbc(&in, &f, value_wt, 12, BV_BOOL) < 0)
            return SHOAL_EINVALID_DATA;
        if (f.number >= BV_LIST && f.number <= BV_MSG)
            return 0;
        if (f.number < 12)
            *last = f;
    }
    return last->number ? 1 : reply_refused("a value of no kind");
}

/* A new scalar Value from the field pb_get_field read. NULL when out of memory. */
static bv *scalar_value(const pb_field *f)
{
    bv *v;
    double d;
    switch (f->number) {
    case BV_NONE:
        if ((v = shoal__bv_none()))
            v->none = f->value != 0;
        return v;
    case BV_BOOL:
        return shoal__bv_bool(f->value != 0);
    case BV_INT:
        return shoal__bv_int(pb_unzigzag(f->value));
    case BV_DOUBLE:
        memcpy(&d, &f->value, 8);
        return shoal__bv_double(d);
    case BV_STR:
        return shoal__bv_str((const char *)f->sub, f->len);
    default: /* bytes, pickle */
        return shoal__bv_bytes((int)f->number, f->sub, f->len);
    }
}

/* The Reply through shoal__bv_unpack (protobuf-c), its result taken out. */
static int reply_by_protobuf_c(const void *buf, size_t len, shoal_bv_reply *r)
{
    brep *m = (brep *)shoal__bv_unpack(&shoal__broker__reply__descriptor, buf, len);
    if (!m)
        return SHOAL_EINVALID_DATA;
    *r = (shoal_bv_reply){m->id, m->status, m->error, strlen(m->error), m->result, m};
    m->result = NULL;
    return 0;
}

int shoal__bv_unpack_reply(const void *buf, size_t len, shoal_bv_reply *r)
{
    *r = (shoal_bv_reply){0, 0, "", 0, NULL, NULL};
    if (len && shoal__bv_lead_id(buf, len, &r->id) == len)
        return 0; /* the id alone: a status-only reply (a set's) */
    pb_in in = {buf, (const uint8_t *)buf + len};
    pb_field f = {0}, result = {0}, last = {0};
    int results = 0;
    while (in.p < in.end) {
        if (next_field_pbc(&in, &f, reply_wt, 5, 0) < 0)
            return SHOAL_EINVALID_DATA;
        if (f.number == 1)
            r->id = f.value;
        else if (f.number == 2) /* sint32: the varint's low 32 bits, as protobuf-c */
            r->status = (int32_t)pb_unzigzag((uint32_t)f.value);
        else if (f.number == 3) {
            r->error = (const char *)f.sub;
            r->error_len = f.len;
        } else if (f.number == 4) {
            result = f;
            results++;
        }
    }
    int rc = results == 1 ? last_scalar(result.sub, result.len, &last) : 1;
    if (rc < 0)
        return rc;
    if (rc == 0 || results > 1) /* a container, or results to merge */
        return reply_by_protobuf_c(buf, len, r);
    if (results && !(r->result = scalar_value(&last)))
        return shoal__err(SHOAL_ENOMEM,
                          "broker message shoal.broker.Reply: out of memory");
    return 0;
}

void shoal__bv_reply_free(shoal_bv_reply *r)
{
    shoal__bv_free(r->result);
    r->result = NULL;
    if (r->msg)
        protobuf_c_message_free_unpacked(&r->msg->base, NULL);
    r->msg = NULL;
}

ProtobufCMessage *shoal__bv_unpack(const ProtobufCMessageDescriptor *top, const void *buf,
                                   size_t len)
{
    return shoal__bv_unpack_in(top, buf, len, NULL);
}

ProtobufCMessage *shoal__bv_unpack_in(const ProtobufCMessageDescriptor *top,
                                      const void *buf, size_t len, shoal_bv_arena *a)
{
    size_t values = 0;
    ProtobufCMessage *m;
    if (a && top == &shoal__broker__request__descriptor) { /* checked as it decodes */
        breq *r = dec_request(buf, len, a);
        return r ? &r->base : NULL;
    } else {
        if (scan(top_type(top), buf, (const uint8_t *)buf + len, 0, &values) < 0)
            return NULL;
        m = protobuf_c_message_unpack(top, a ? &a->pa : NULL, len, buf);
    }
    if (!m) {
        shoal__err(SHOAL_EINVALID_DATA, "broker message %s: does not decode", top->name);
    } else if (!valid_message(m)) {
        if (!a)
            protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
        model_refused(top->name);
    }
    return m;
}
