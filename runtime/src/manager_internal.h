/*
 * manager_internal.h — the broker's value model (schemas/shoal/broker.proto) as the
 * client (manager.c) and the broker (broker/) both handle it: protobuf-c's generated
 * structs, built and freed with malloc/free so protobuf_c_message_free_unpacked frees
 * any of them, decoded only after a depth and size check (manager_value.c).
 */
#ifndef SHOAL_MANAGER_INTERNAL_H
#define SHOAL_MANAGER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/broker.pb-c.h"

typedef Shoal__Broker__Value bv;
typedef Shoal__Broker__Request breq;
typedef Shoal__Broker__Reply brep;
typedef Shoal__Broker__Object bobjstate;

/* Limits on everything decoded from a peer or from disk. */
#define SHOAL_BV_MAX_DEPTH  48      /* nesting of lists, tuples and maps */
#define SHOAL_BV_MAX_VALUES 1000000 /* values in one message */

#define BV_NONE   SHOAL__BROKER__VALUE__KIND_NONE
#define BV_BOOL   SHOAL__BROKER__VALUE__KIND_B
#define BV_INT    SHOAL__BROKER__VALUE__KIND_I
#define BV_DOUBLE SHOAL__BROKER__VALUE__KIND_D
#define BV_STR    SHOAL__BROKER__VALUE__KIND_S
#define BV_BYTES  SHOAL__BROKER__VALUE__KIND_BYTES
#define BV_LIST   SHOAL__BROKER__VALUE__KIND_LIST
#define BV_TUPLE  SHOAL__BROKER__VALUE__KIND_TUPLE
#define BV_MAP    SHOAL__BROKER__VALUE__KIND_MAP
#define BV_MSG    SHOAL__BROKER__VALUE__KIND_MESSAGE
#define BV_PICKLE SHOAL__BROKER__VALUE__KIND_PICKLE

/* New values (NULL when out of memory). */
bv *shoal__bv_none(void);
bv *shoal__bv_bool(bool b);
bv *shoal__bv_int(int64_t i);
bv *shoal__bv_double(double d);
bv *shoal__bv_str(const char *s, size_t len);
bv *shoal__bv_bytes(int kind, const void *p, size_t len); /* BV_BYTES or BV_PICKLE */
bv *shoal__bv_message(const char *type, const void *p, size_t len); /* copies both */
bv *shoal__bv_seq(int kind); /* empty BV_LIST / BV_TUPLE */
bv *shoal__bv_map(void);     /* empty BV_MAP */
/* Appends v (taken over) to a list or tuple; inserts it at index i (0..n). 0 or -1. */
int shoal__bv_seq_insert(bv *seq, size_t i, bv *v);
/* Removes item i of a list and returns it (the caller frees it). */
bv *shoal__bv_seq_take(bv *seq, size_t i);
/* The entry of map m whose key equals key, or -1. */
long shoal__bv_map_find(const bv *m, const bv *key);
/* Sets m[key] = v (both taken over; an existing entry's value is replaced and the
 * key freed). 0 or -1 (out of memory: both freed). */
int shoal__bv_map_put(bv *m, bv *key, bv *v);
/* Removes entry i of map m, returning its value (the key is freed). */
bv *shoal__bv_map_take(bv *m, size_t i);
/* Whether a and b are equal (1 == 1.0 as in Python; a tuple never equals a list). */
bool shoal__bv_equal(const bv *a, const bv *b);
/* Whether v may be a map key: a scalar, or a tuple of keys. */
bool shoal__bv_is_key(const bv *v);
/* A deep copy, or NULL. */
bv *shoal__bv_clone(const bv *v);
void shoal__bv_free(bv *v);

/*
 * Checks that buf[len] holds a message of type `top` (one of the descriptors of
 * broker.pb-c.h) nested no deeper than SHOAL_BV_MAX_DEPTH and with at most
 * SHOAL_BV_MAX_VALUES values, then decodes it. Returns the message (free with
 * protobuf_c_message_free_unpacked(m, NULL)) or NULL with shoal_errdetail() set.
 */
ProtobufCMessage *shoal__bv_unpack(const ProtobufCMessageDescriptor *top, const void *buf,
                                   size_t len);
/*
 * An arena for decoding: protobuf-c's allocator bumping a pointer through a buffer
 * the caller gives (a stack array: no malloc for a small message), then through
 * blocks of its own taken from malloc. Freeing is a no-op; shoal__bv_arena_reset
 * drops everything decoded into the arena at once (and returns its blocks). A
 * message decoded into it must not be freed with protobuf_c_message_free_unpacked,
 * nor a part of it kept: shoal__bv_clone copies a value out with malloc.
 */
typedef struct shoal_bv_arena {
    ProtobufCAllocator pa;
    char *p, *end;                 /* the free part of the current buffer */
    void *first;                   /* the caller's buffer */
    size_t cap;                    /* its size */
    struct shoal_bv_block *blocks; /* taken from malloc, newest first */
} shoal_bv_arena;
void shoal__bv_arena_init(shoal_bv_arena *a, void *buf, size_t cap);
void shoal__bv_arena_reset(shoal_bv_arena *a);
/* shoal__bv_unpack into arena a (NULL: malloc); the message lives until the arena's
 * next reset. */
ProtobufCMessage *shoal__bv_unpack_in(const ProtobufCMessageDescriptor *top,
                                      const void *buf, size_t len, shoal_bv_arena *a);
/* Packs m into a new buffer (*len set), or NULL. */
void *shoal__bv_pack(const ProtobufCMessage *m, size_t *len);
/* Packs the Reply {id, status, error, result} (error NULL or "": none; result NULL:
 * none; not taken over) into a new buffer (*len set), or NULL: the bytes protobuf-c
 * would write, without it for no result or a scalar one. */
void *shoal__bv_pack_reply(uint64_t id, int32_t status, const char *error,
                           const bv *result, size_t *len);
/* shoal__bv_pack_reply into buf (cap bytes) when it fits there (returns buf), else
 * into a new buffer; *len set either way. NULL: out of memory. */
void *shoal__bv_pack_reply_in(void *buf, size_t cap, uint64_t id, int32_t status,
                              const char *error, const bv *result, size_t *len);

/*
 * Packs Request q, byte for byte as protobuf-c would: by hand, in one pass, when it
 * has no batch items nor unknown fields and its path and args are all scalars (the
 * client's common requests), else with protobuf-c. Into buf[cap] when it is packed
 * by hand and fits, else into a new buffer. Returns buf or the new buffer (the
 * caller frees it when it is not buf), *len set; NULL when out of memory.
 */
void *shoal__bv_pack_request(const breq *q, void *buf, size_t cap, size_t *len);

/*
 * The id of an encoded Reply or Request that begins with it (field 1, a varint of at
 * most nine bytes, as every packer here writes it first) into *id: its length in
 * bytes (tag included), or 0 when buf does not begin so (decode it in full then).
 */
static inline size_t shoal__bv_lead_id(const void *buf, size_t len, uint64_t *id)
{
    const uint8_t *p = buf;
    if (len < 2 || p[0] != (1 << 3 | 0))
        return 0;
    uint64_t v = 0;
    for (size_t i = 1; i < len && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
        if (!(p[i] & 0x80)) {
            *id = v;
            return i + 1;
        }
    }
    return 0;
}

/* A Reply as the client decodes it. */
typedef struct shoal_bv_reply {
    uint64_t id;
    int32_t status;
    const char *error; /* error_len bytes (not terminated), in the frame or in msg */
    size_t error_len;
    bv *result; /* NULL: none; the caller may take it (setting it NULL) */
    brep *msg;  /* protobuf-c's decoding, when it was needed (else NULL) */
} shoal_bv_reply;
/*
 * Decodes the Reply buf[len] into *r, accepting and refusing exactly what
 * shoal__bv_unpack does: in one pass when its result is absent or a scalar (the
 * error text left in buf, the result the one malloc'd Value), else (a container
 * result, or one given twice, which protobuf-c merges) with shoal__bv_unpack.
 * Returns 0 (free with shoal__bv_reply_free, buf kept until then),
 * SHOAL_EINVALID_DATA when it does not decode or SHOAL_ENOMEM, with
 * shoal_errdetail() set.
 */
int shoal__bv_unpack_reply(const void *buf, size_t len, shoal_bv_reply *r);
void shoal__bv_reply_free(shoal_bv_reply *r);

#endif
