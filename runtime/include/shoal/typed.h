/*
 * shoal/typed.h — the generic half of the code protoc-gen-shoal generates.
 *
 * A generated header (<base>.shoal.h) holds only what its schema decides: the structs,
 * their static assertions, init macros, enums, and one line per message naming the
 * typed API it gets. Everything else — the typed wrappers over Value, Array, Queue and
 * Pipe, the bounded-string setters, the packing and unpacking of encoded messages —
 * is written once, here (macros expanded per message) and in libshoal (typed.c),
 * the way nanopb keeps its generated files small.
 *
 * Generated code and this header must agree on SHOAL_GEN_ABI: a generated header
 * checks it and stops the build with "regenerate" when it was made by another
 * version of the compiler.
 *
 * The typed API of a fixed message Foo (SHOAL_GEN_FIXED), each call validating what
 * goes in (Foo_validate) and what comes out, since any process in any language may
 * have written it; an invalid message gives SHOAL_EINVALID_DATA with
 * shoal_errdetail() naming the field:
 *
 *   Foo_value_open(&v, name, mode, init, attr)  init NULL: every field at its default
 *   Foo_value_close / _name / _read / _write / _snapshot / _data / _get_lock
 *   Foo_value_modify(v) -> Foo*; Foo_value_commit(v, m) validates, then publishes (on
 *       SHOAL_EINVALID_DATA the copy stays claimed: fix it and commit again)
 *   Foo_array_open(&a, name, mode, count, init, attr)  init NULL: zeros
 *   Foo_array_close / _name / _len / _get / _set / _read / _write / _data / _get_lock
 *   Foo_queue_open(&q, name, mode, cfg, attr)  cfg's type is set to Foo_type; a queue
 *       of another layout fails with SHOAL_ELAYOUT naming both types
 *   Foo_queue_close / _name / _put / _try_put / _get / _try_get / _put_batch /
 *       _get_batch / _shutdown / _stats
 *   Foo_queue_loan(q, &slot, t) and Foo_queue_commit(q, slot): build in place (the
 *       slot holds stale bytes); commit validates and keeps the slot loaned on failure
 *   Foo_queue_peek(q, &m, t) and Foo_queue_release(q, m): read in place; an invalid
 *       message is released and refused
 *   Foo_pipe_open(&p, name, end, mode, cfg, attr), Foo_pipe_pair(&e0, &e1, name, cfg,
 *       attr), Foo_pipe_close / _name / _send / _try_send / _recv / _try_recv / _poll
 *
 * Each returns what the runtime call it wraps returns (shoal/value.h, shoal/queue.h,
 * shoal/pipe.h), or SHOAL_EINVALID_DATA.
 *
 * The typed API of an encoded message Foo (SHOAL_GEN_ENCODED_DECLARE in the header,
 * SHOAL_GEN_ENCODED_DEFINE in the .shoal.c) carries protoc-c's struct packed over
 * variable-size queues and pipes: Foo_queue_open / _close / _name / _put / _try_put /
 * _get / _try_get / _shutdown / _stats and Foo_pipe_open / _pair / _close / _name /
 * _send / _try_send / _recv / _try_recv / _poll. put/send validate and pack
 * (SHOAL_EMSGSIZE when the packed message exceeds the channel's max_msg, by default
 * SHOAL_GEN_MAX_MSG); get/recv unpack into a new message that the caller frees with
 * Foo_free, and validate it (bytes that do not decode or validate give
 * SHOAL_EINVALID_DATA; the message is consumed).
 */
#ifndef SHOAL_TYPED_H
#define SHOAL_TYPED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shoal/common.h"
#include "shoal/pipe.h"
#include "shoal/queue.h"
#include "shoal/type.h"
#include "shoal/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the contract between generated code and this header and libshoal.
 * A generated header made for another number stops the build: regenerate it.
 * 3: shoal_pb_bound gained open_enum. */
#define SHOAL_GEN_ABI 3

#ifdef __cplusplus
#define SHOAL_GEN_ASSERT(cond, what) static_assert(cond, what)
#define SHOAL_GEN_ALIGNOF(type)      alignof(type)
#else
#define SHOAL_GEN_ASSERT(cond, what) _Static_assert(cond, what)
#define SHOAL_GEN_ALIGNOF(type)      _Alignof(type)
#endif

#ifndef SHOAL_GEN_MAX_MSG
/* Default largest packed message of an encoded queue or pipe, in bytes. */
#define SHOAL_GEN_MAX_MSG 4096
#endif

/* ---- helpers of generated code (libshoal) ------------------------------------------ */

/*
 * Whether the n bytes at p are well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF), as protobuf requires of a string field.
 */
SHOAL_API bool shoal_utf8_valid(const void *p, size_t n);

/*
 * Stores the n bytes at p in a bounded string or bytes member (its uint32 `len`, then
 * `cap` bytes of data) and sets *has (if has is not NULL). Returns 0, or
 * SHOAL_EINVALID_DATA naming `what` (the field's full name) when n is over cap, or
 * when `utf8` is set and the bytes are not UTF-8; the member is then unchanged.
 */
SHOAL_API int shoal_gen_set_text(uint32_t *len, void *data, size_t cap, const void *p,
                                 size_t n, bool utf8, bool *has, const char *what);

/* Whether the byte of a bool member (which another language may have written) is
 * neither 0 nor 1. */
static inline bool shoal_gen_bad_bool(const void *p)
{
    unsigned char c;
    memcpy(&c, p, 1);
    return c > 1;
}

/* ---- fixed messages ---------------------------------------------------------------- */

/* Setters of the bounded string or bytes member `m_` of T (schema field f, full name
 * `what`); HAS is `&m->has_<f>` for a field with a has_ flag, else NULL. They return
 * 0 or SHOAL_EINVALID_DATA (too long; a string that is not UTF-8). */
#define SHOAL_GEN_SET_STRING(T, f, m_, what, HAS)                                        \
    static inline int T##_set_##f##_n(T *m, const char *p, size_t n)                     \
    {                                                                                    \
        return shoal_gen_set_text(&m->m_.len, m->m_.data, sizeof(m->m_.data), p, n,      \
                                  true, HAS, what);                                      \
    }                                                                                    \
    static inline int T##_set_##f(T *m, const char *s)                                   \
    {                                                                                    \
        return T##_set_##f##_n(m, s, strlen(s));                                         \
    }
#define SHOAL_GEN_SET_BYTES(T, f, m_, what, HAS)                                         \
    static inline int T##_set_##f(T *m, const void *p, size_t n)                         \
    {                                                                                    \
        return shoal_gen_set_text(&m->m_.len, m->m_.data, sizeof(m->m_.data), p, n,      \
                                  false, HAS, what);                                     \
    }

/* The typed API of fixed message T (see the top of this file). */
#define SHOAL_GEN_FIXED(T)                                                               \
    extern const shoal_type T##_type;                                                    \
    int T##_validate(const T *m);                                                        \
    SHOAL_GEN_VALUE_(T)                                                                  \
    SHOAL_GEN_ARRAY_(T)                                                                  \
    SHOAL_GEN_QUEUE_(T)                                                                  \
    SHOAL_GEN_PIPE_(T)                                                                   \
    SHOAL_GEN_PB(T)

#define SHOAL_GEN_VALUE_(T)                                                              \
    typedef struct T##_value T##_value;                                                  \
    static inline int T##_value_open(T##_value **out, const char *name, int mode,        \
                                     const T *init, const shoal_attr *attr)              \
    {                                                                                    \
        static const T dflt = T##_INIT;                                                  \
        shoal_value *v = NULL;                                                           \
        int rc = T##_validate(init ? init : &dflt);                                      \
        if (rc == 0)                                                                     \
            rc = shoal_value_open(&v, name, mode, &T##_type, init ? init : &dflt, attr); \
        *out = (T##_value *)v;                                                           \
        return rc;                                                                       \
    }                                                                                    \
    static inline int T##_value_close(T##_value *v)                                      \
    {                                                                                    \
        return shoal_value_close((shoal_value *)v);                                      \
    }                                                                                    \
    static inline const char *T##_value_name(const T##_value *v)                         \
    {                                                                                    \
        return shoal_value_name((const shoal_value *)v);                                 \
    }                                                                                    \
    static inline int T##_value_read(T##_value *v, T *out)                               \
    {                                                                                    \
        int rc = shoal_value_read((shoal_value *)v, out);                                \
        return rc ? rc : T##_validate(out);                                              \
    }                                                                                    \
    static inline int T##_value_write(T##_value *v, const T *in)                         \
    {                                                                                    \
        int rc = T##_validate(in);                                                       \
        return rc ? rc : shoal_value_write((shoal_value *)v, in);                        \
    }                                                                                    \
    static inline int T##_value_snapshot(T##_value *v, T *out)                           \
    {                                                                                    \
        int rc = shoal_value_snapshot((shoal_value *)v, out);                            \
        return rc ? rc : T##_validate(out);                                              \
    }                                                                                    \
    static inline T *T##_value_modify(T##_value *v)                                      \
    {                                                                                    \
        return (T *)shoal_value_modify((shoal_value *)v);                                \
    }                                                                                    \
    static inline int T##_value_commit(T##_value *v, const T *m)                         \
    {                                                                                    \
        int rc = T##_validate(m);                                                        \
        return rc ? rc : shoal_value_commit((shoal_value *)v);                           \
    }                                                                                    \
    static inline const T *T##_value_data(T##_value *v)                                  \
    {                                                                                    \
        return (const T *)shoal_value_data((shoal_value *)v);                            \
    }                                                                                    \
    static inline shoal_lock *T##_value_get_lock(T##_value *v)                           \
    {                                                                                    \
        return shoal_value_get_lock((shoal_value *)v);                                   \
    }

#define SHOAL_GEN_ARRAY_(T)                                                              \
    typedef struct T##_array T##_array;                                                  \
    static inline int T##_array_check_(const T *m, size_t n)                             \
    {                                                                                    \
        int rc = 0;                                                                      \
        for (size_t i = 0; rc == 0 && i < n; i++)                                        \
            rc = T##_validate(&m[i]);                                                    \
        return rc;                                                                       \
    }                                                                                    \
    static inline int T##_array_open(T##_array **out, const char *name, int mode,        \
                                     size_t count, const T *init,                        \
                                     const shoal_attr *attr)                             \
    {                                                                                    \
        shoal_array *a = NULL;                                                           \
        int rc = init ? T##_array_check_(init, count) : 0;                               \
        if (rc == 0)                                                                     \
            rc = shoal_array_open(&a, name, mode, &T##_type, count, init, attr);         \
        *out = (T##_array *)a;                                                           \
        return rc;                                                                       \
    }                                                                                    \
    static inline int T##_array_close(T##_array *a)                                      \
    {                                                                                    \
        return shoal_array_close((shoal_array *)a);                                      \
    }                                                                                    \
    static inline const char *T##_array_name(const T##_array *a)                         \
    {                                                                                    \
        return shoal_array_name((const shoal_array *)a);                                 \
    }                                                                                    \
    static inline size_t T##_array_len(const T##_array *a)                               \
    {                                                                                    \
        return shoal_array_len((const shoal_array *)a);                                  \
    }                                                                                    \
    static inline int T##_array_get(T##_array *a, size_t index, T *out)                  \
    {                                                                                    \
        int rc = shoal_array_get((shoal_array *)a, index, out);                          \
        return rc ? rc : T##_validate(out);                                              \
    }                                                                                    \
    static inline int T##_array_set(T##_array *a, size_t index, const T *in)             \
    {                                                                                    \
        int rc = T##_validate(in);                                                       \
        return rc ? rc : shoal_array_set((shoal_array *)a, index, in);                   \
    }                                                                                    \
    static inline int T##_array_read(T##_array *a, size_t start, size_t n, T *out)       \
    {                                                                                    \
        int rc = shoal_array_read((shoal_array *)a, start, n, out);                      \
        return rc ? rc : T##_array_check_(out, n);                                       \
    }                                                                                    \
    static inline int T##_array_write(T##_array *a, size_t start, size_t n, const T *in) \
    {                                                                                    \
        int rc = T##_array_check_(in, n);                                                \
        return rc ? rc : shoal_array_write((shoal_array *)a, start, n, in);              \
    }                                                                                    \
    static inline T *T##_array_data(T##_array *a)                                        \
    {                                                                                    \
        return (T *)shoal_array_data((shoal_array *)a);                                  \
    }                                                                                    \
    static inline shoal_lock *T##_array_get_lock(T##_array *a)                           \
    {                                                                                    \
        return shoal_array_get_lock((shoal_array *)a);                                   \
    }

/* A copy of cfg (or zeros) whose element type is t. */
static inline shoal_queue_config shoal_gen_typed_config(const shoal_queue_config *cfg,
                                                        const shoal_type *t)
{
    shoal_queue_config c;
    memset(&c, 0, sizeof(c));
    if (cfg)
        c = *cfg;
    c.type = t;
    return c;
}

/*
 * The inner macros of the typed channels: what a queue and a pipe of T share, once
 * K (queue or pipe) names the channel and P / G its blocking put and get (put / get,
 * send / recv) declared before. OUT is the type of G's out parameter.
 */
#define SHOAL_GEN_CHANNEL_(T, K, P, G, OUT)                                              \
    static inline int T##_##K##_close(T##_##K *c)                                        \
    {                                                                                    \
        return shoal_##K##_close((shoal_##K *)c);                                        \
    }                                                                                    \
    static inline const char *T##_##K##_name(const T##_##K *c)                           \
    {                                                                                    \
        return shoal_##K##_name((const shoal_##K *)c);                                   \
    }                                                                                    \
    static inline int T##_##K##_try_##P(T##_##K *c, const T *m)                          \
    {                                                                                    \
        return T##_##K##_##P(c, m, SHOAL_NOWAIT);                                        \
    }                                                                                    \
    static inline int T##_##K##_try_##G(T##_##K *c, OUT out)                             \
    {                                                                                    \
        return T##_##K##_##G(c, out, SHOAL_NOWAIT);                                      \
    }

/* A fixed message's blocking put and get on channel K: validated on the way in and
 * on the way out (another language may have written it). */
#define SHOAL_GEN_FIXED_IO_(T, K, P, G)                                                  \
    static inline int T##_##K##_##P(T##_##K *c, const T *m, shoal_duration timeout)      \
    {                                                                                    \
        int rc = T##_validate(m);                                                        \
        return rc ? rc : shoal_##K##_##P((shoal_##K *)c, m, sizeof(*m), timeout);        \
    }                                                                                    \
    static inline int T##_##K##_##G(T##_##K *c, T *out, shoal_duration timeout)          \
    {                                                                                    \
        size_t len = 0;                                                                  \
        int rc = shoal_##K##_##G((shoal_##K *)c, out, sizeof(*out), &len, timeout);      \
        return rc ? rc : T##_validate(out);                                              \
    }                                                                                    \
    SHOAL_GEN_CHANNEL_(T, K, P, G, T *)

/* A queue's end of stream and counters; a pipe's poll. */
#define SHOAL_GEN_QUEUE_CTL_(T)                                                          \
    static inline int T##_queue_shutdown(T##_queue *q)                                   \
    {                                                                                    \
        return shoal_queue_shutdown((shoal_queue *)q);                                   \
    }                                                                                    \
    static inline int T##_queue_stats(T##_queue *q, shoal_queue_stats *st)               \
    {                                                                                    \
        return shoal_queue_stats_get((shoal_queue *)q, st);                              \
    }

#define SHOAL_GEN_PIPE_POLL_(T)                                                          \
    static inline int T##_pipe_poll(T##_pipe *p, shoal_duration timeout)                 \
    {                                                                                    \
        return shoal_pipe_poll((shoal_pipe *)p, timeout);                                \
    }

#define SHOAL_GEN_QUEUE_(T)                                                              \
    typedef struct T##_queue T##_queue;                                                  \
    static inline int T##_queue_open(T##_queue **out, const char *name, int mode,        \
                                     const shoal_queue_config *cfg,                      \
                                     const shoal_attr *attr)                             \
    {                                                                                    \
        shoal_queue_config c = shoal_gen_typed_config(cfg, &T##_type);                   \
        shoal_queue *q = NULL;                                                           \
        int rc = shoal_queue_open(&q, name, mode, &c, attr);                             \
        *out = (T##_queue *)q;                                                           \
        return rc;                                                                       \
    }                                                                                    \
    static inline int T##_queue_put_batch(T##_queue *q, const T *m, size_t n,            \
                                          size_t *done, shoal_duration timeout)          \
    {                                                                                    \
        int rc = T##_array_check_(m, n);                                                 \
        if (rc) {                                                                        \
            *done = 0;                                                                   \
            return rc;                                                                   \
        }                                                                                \
        return shoal_queue_put_batch((shoal_queue *)q, m, n, done, timeout);             \
    }                                                                                    \
    static inline int T##_queue_get_batch(T##_queue *q, T *m, size_t max, size_t *done,  \
                                          shoal_duration timeout)                        \
    {                                                                                    \
        int rc = shoal_queue_get_batch((shoal_queue *)q, m, max, done, timeout);         \
        return rc ? rc : T##_array_check_(m, *done);                                     \
    }                                                                                    \
    static inline int T##_queue_loan(T##_queue *q, T **slot, shoal_duration timeout)     \
    {                                                                                    \
        void *p = NULL;                                                                  \
        size_t cap = 0;                                                                  \
        int rc = shoal_queue_loan((shoal_queue *)q, &p, &cap, timeout);                  \
        *slot = rc ? NULL : (T *)p;                                                      \
        return rc;                                                                       \
    }                                                                                    \
    static inline int T##_queue_commit(T##_queue *q, T *slot)                            \
    {                                                                                    \
        int rc = T##_validate(slot);                                                     \
        return rc ? rc : shoal_queue_commit((shoal_queue *)q, slot, sizeof(*slot));      \
    }                                                                                    \
    static inline int T##_queue_peek(T##_queue *q, const T **m, shoal_duration timeout)  \
    {                                                                                    \
        const void *p = NULL;                                                            \
        size_t len = 0;                                                                  \
        int rc = shoal_queue_peek((shoal_queue *)q, &p, &len, timeout);                  \
        *m = NULL;                                                                       \
        if (rc == 0 && (rc = T##_validate((const T *)p)) != 0)                           \
            shoal_queue_release((shoal_queue *)q, p);                                    \
        else if (rc == 0)                                                                \
            *m = (const T *)p;                                                           \
        return rc;                                                                       \
    }                                                                                    \
    static inline int T##_queue_release(T##_queue *q, const T *m)                        \
    {                                                                                    \
        return shoal_queue_release((shoal_queue *)q, m);                                 \
    }                                                                                    \
    SHOAL_GEN_FIXED_IO_(T, queue, put, get)                                              \
    SHOAL_GEN_QUEUE_CTL_(T)

#define SHOAL_GEN_PIPE_(T)                                                               \
    typedef struct T##_pipe T##_pipe;                                                    \
    static inline int T##_pipe_open(T##_pipe **out, const char *name, int end, int mode, \
                                    const shoal_queue_config *cfg,                       \
                                    const shoal_attr *attr)                              \
    {                                                                                    \
        shoal_queue_config c = shoal_gen_typed_config(cfg, &T##_type);                   \
        shoal_pipe *p = NULL;                                                            \
        int rc = shoal_pipe_open(&p, name, end, mode, &c, attr);                         \
        *out = (T##_pipe *)p;                                                            \
        return rc;                                                                       \
    }                                                                                    \
    static inline int T##_pipe_pair(T##_pipe **end0, T##_pipe **end1, const char *name,  \
                                    const shoal_queue_config *cfg,                       \
                                    const shoal_attr *attr)                              \
    {                                                                                    \
        shoal_queue_config c = shoal_gen_typed_config(cfg, &T##_type);                   \
        shoal_pipe *p0 = NULL, *p1 = NULL;                                               \
        int rc = shoal_pipe_pair(&p0, &p1, name, &c, attr);                              \
        *end0 = (T##_pipe *)p0;                                                          \
        *end1 = (T##_pipe *)p1;                                                          \
        return rc;                                                                       \
    }                                                                                    \
    SHOAL_GEN_FIXED_IO_(T, pipe, send, recv)                                             \
    SHOAL_GEN_PIPE_POLL_(T)

/* ---- the protobuf form of fixed messages ------------------------------------------- */

/* How a fixed message's fields travel in protobuf's encoding (generated per message,
 * read by shoal_pb_encode and shoal_pb_decode). */
enum {
    SHOAL_PB_REPEATED = 1, /* count word, then max_count elements */
    SHOAL_PB_PACKED = 2,   /* repeated scalars written packed */
    SHOAL_PB_HAS = 4,      /* present when the bool at has_offset is set */
    SHOAL_PB_ONEOF = 8     /* present when the uint32 at has_offset equals number */
};

struct shoal_pb_message;

typedef struct shoal_pb_field {
    uint32_t number; /* the field number */
    uint8_t type;    /* protobuf's FieldDescriptorProto.Type: 1 double ... 18 sint64 */
    uint8_t flags;   /* SHOAL_PB_* */
    uint32_t offset; /* of the member (a oneof member: of the union) */
    uint32_t has_offset;   /* of its has_ flag or oneof case word */
    uint32_t elem_size;    /* one element (strings and bytes: with their len word) */
    uint32_t items_offset; /* repeated: of the first element within the member */
    uint32_t max_len, max_count;
    const struct shoal_pb_message *msg; /* a nested message's description */
    const char *name;                   /* the field's name, for errors */
} shoal_pb_field;

typedef struct shoal_pb_message {
    const char *name; /* full name, for errors */
    uint32_t size;    /* of the struct */
    const void *init; /* an instance with every field at its default */
    uint32_t nfields;
    const shoal_pb_field *fields;
} shoal_pb_message;

/*
 * Writes fixed message m (described by d) in protobuf's encoding into buf (cap bytes),
 * as protoc's generated code would: *len receives the size. Returns 0, or
 * SHOAL_EMSGSIZE when cap is too small (*len then says how much is needed). m should
 * be valid (Foo_to_pb validates first).
 */
SHOAL_API int shoal_pb_encode(const shoal_pb_message *d, const void *m, void *buf,
                              size_t cap, size_t *len);
/*
 * Reads protobuf bytes into *m (merged over its current contents, as protobuf merges;
 * start from the defaults to parse). Unknown fields are skipped. Returns 0, or
 * SHOAL_EINVALID_DATA naming the message and field when the bytes do not decode or a
 * value does not fit its bounds (a string over max_len, more elements than max_count):
 * never truncation.
 */
SHOAL_API int shoal_pb_decode(const shoal_pb_message *d, void *m, const void *buf,
                              size_t len);

/* Foo_to_pb(m, buf, cap, &len) validates and encodes; Foo_from_pb(m, buf, len) sets
 * *m to the defaults, decodes and validates (SHOAL_EINVALID_DATA on failure). */
#define SHOAL_GEN_PB(T)                                                                  \
    extern const shoal_pb_message T##_pb;                                                \
    static inline int T##_to_pb(const T *m, void *buf, size_t cap, size_t *len)          \
    {                                                                                    \
        int rc = T##_validate(m);                                                        \
        return rc ? rc : shoal_pb_encode(&T##_pb, m, buf, cap, len);                     \
    }                                                                                    \
    static inline int T##_from_pb(T *m, const void *buf, size_t len)                     \
    {                                                                                    \
        int rc;                                                                          \
        memcpy(m, T##_pb.init, sizeof(*m));                                              \
        rc = shoal_pb_decode(&T##_pb, m, buf, len);                                      \
        return rc ? rc : T##_validate(m);                                                \
    }

/* ---- encoded messages (protoc-c's structs, packed) --------------------------------- */

struct ProtobufCMessage;
struct ProtobufCMessageDescriptor;

/* A schema bound of a field of an encoded message (or of one it reaches). */
typedef struct shoal_pb_bound {
    const struct ProtobufCMessageDescriptor *desc; /* protoc-c's message descriptor */
    uint32_t number;                               /* the field */
    uint32_t max_len, max_count;                   /* 0: unbounded */
    /* 1: an enum field whose enum is open (declared in a proto3 file): a number the
     * enum does not name is kept, as protobuf does, not refused. 0: the enum's values
     * only (closed, proto2). */
    uint32_t open_enum;
} shoal_pb_bound;

/* The bounds a generated file knows (shoal_pb_check's third argument). */
typedef struct shoal_pb_bounds {
    const shoal_pb_bound *v;
    size_t n;
} shoal_pb_bounds;

/*
 * Validates protoc-c message m and every message it holds: lengths and counts within
 * the bounds `b` lists, enum values known (except in fields `b` marks open_enum),
 * strings UTF-8. Returns 0 or
 * SHOAL_EINVALID_DATA naming the field.
 */
SHOAL_API int shoal_pb_check(const struct ProtobufCMessage *m, const shoal_pb_bounds *b);
/* Validates m, packs it and puts it on q (or sends it on p when q is NULL). */
SHOAL_API int shoal_pb_send(shoal_queue *q, shoal_pipe *p,
                            const struct ProtobufCMessage *m, const shoal_pb_bounds *b,
                            shoal_duration timeout);
/* Takes the next message off q (or p when q is NULL), unpacks it as a message of d
 * into a new *out (free it with shoal_pb_free) and validates it. */
SHOAL_API int shoal_pb_recv(shoal_queue *q, shoal_pipe *p,
                            const struct ProtobufCMessageDescriptor *d,
                            const shoal_pb_bounds *b, struct ProtobufCMessage **out,
                            shoal_duration timeout);
/* Frees a message shoal_pb_recv returned (NULL is fine). */
SHOAL_API void shoal_pb_free(struct ProtobufCMessage *m);
/* The configuration of a variable-size channel: cfg without a type; when creating,
 * max_msg defaults to max_msg. Returns NULL (any channel) for SHOAL_OPEN without cfg. */
SHOAL_API const shoal_queue_config *shoal_pb_config(shoal_queue_config *c,
                                                    const shoal_queue_config *cfg,
                                                    int mode, size_t max_msg);

/* The declarations of encoded message T's API (in the header). */
#define SHOAL_GEN_ENCODED_DECLARE(T)                                                     \
    int T##_validate(const T *m);                                                        \
    void T##_free(T *m);                                                                 \
    typedef struct T##_queue T##_queue;                                                  \
    int T##_queue_open(T##_queue **out, const char *name, int mode,                      \
                       const shoal_queue_config *cfg, const shoal_attr *attr);           \
    int T##_queue_put(T##_queue *q, const T *m, shoal_duration timeout);                 \
    int T##_queue_get(T##_queue *q, T **out, shoal_duration timeout);                    \
    SHOAL_GEN_CHANNEL_(T, queue, put, get, T **)                                         \
    SHOAL_GEN_QUEUE_CTL_(T)                                                              \
    typedef struct T##_pipe T##_pipe;                                                    \
    int T##_pipe_open(T##_pipe **out, const char *name, int end, int mode,               \
                      const shoal_queue_config *cfg, const shoal_attr *attr);            \
    int T##_pipe_pair(T##_pipe **end0, T##_pipe **end1, const char *name,                \
                      const shoal_queue_config *cfg, const shoal_attr *attr);            \
    int T##_pipe_send(T##_pipe *p, const T *m, shoal_duration timeout);                  \
    int T##_pipe_recv(T##_pipe *p, T **out, shoal_duration timeout);                     \
    SHOAL_GEN_CHANNEL_(T, pipe, send, recv, T **)                                        \
    SHOAL_GEN_PIPE_POLL_(T)

/* The definitions of encoded message T's API (in the .shoal.c): D is protoc-c's
 * descriptor of the message, B the file's shoal_pb_bounds. */
#define SHOAL_GEN_ENCODED_DEFINE(T, D, B)                                                \
    int T##_validate(const T *m)                                                         \
    {                                                                                    \
        return shoal_pb_check(&m->base, &B);                                             \
    }                                                                                    \
    void T##_free(T *m)                                                                  \
    {                                                                                    \
        shoal_pb_free(m ? &m->base : NULL);                                              \
    }                                                                                    \
    int T##_queue_open(T##_queue **out, const char *name, int mode,                      \
                       const shoal_queue_config *cfg, const shoal_attr *attr)            \
    {                                                                                    \
        shoal_queue_config c;                                                            \
        shoal_queue *q = NULL;                                                           \
        int rc = shoal_queue_open(                                                       \
            &q, name, mode, shoal_pb_config(&c, cfg, mode, SHOAL_GEN_MAX_MSG), attr);    \
        *out = (T##_queue *)q;                                                           \
        return rc;                                                                       \
    }                                                                                    \
    int T##_queue_put(T##_queue *q, const T *m, shoal_duration timeout)                  \
    {                                                                                    \
        return shoal_pb_send((shoal_queue *)q, NULL, &m->base, &B, timeout);             \
    }                                                                                    \
    int T##_queue_get(T##_queue *q, T **out, shoal_duration timeout)                     \
    {                                                                                    \
        return shoal_pb_recv((shoal_queue *)q, NULL, &D, &B,                             \
                             (struct ProtobufCMessage **)out, timeout);                  \
    }                                                                                    \
    int T##_pipe_open(T##_pipe **out, const char *name, int end, int mode,               \
                      const shoal_queue_config *cfg, const shoal_attr *attr)             \
    {                                                                                    \
        shoal_queue_config c;                                                            \
        shoal_pipe *p = NULL;                                                            \
        int rc =                                                                         \
            shoal_pipe_open(&p, name, end, mode,                                         \
                            shoal_pb_config(&c, cfg, mode, SHOAL_GEN_MAX_MSG), attr);    \
        *out = (T##_pipe *)p;                                                            \
        return rc;                                                                       \
    }                                                                                    \
    int T##_pipe_pair(T##_pipe **end0, T##_pipe **end1, const char *name,                \
                      const shoal_queue_config *cfg, const shoal_attr *attr)             \
    {                                                                                    \
        shoal_queue_config c;                                                            \
        shoal_pipe *p0 = NULL, *p1 = NULL;                                               \
        int rc = shoal_pipe_pair(                                                        \
            &p0, &p1, name, shoal_pb_config(&c, cfg, SHOAL_CREATE, SHOAL_GEN_MAX_MSG),   \
            attr);                                                                       \
        *end0 = (T##_pipe *)p0;                                                          \
        *end1 = (T##_pipe *)p1;                                                          \
        return rc;                                                                       \
    }                                                                                    \
    int T##_pipe_send(T##_pipe *p, const T *m, shoal_duration timeout)                   \
    {                                                                                    \
        return shoal_pb_send(NULL, (shoal_pipe *)p, &m->base, &B, timeout);              \
    }                                                                                    \
    int T##_pipe_recv(T##_pipe *p, T **out, shoal_duration timeout)                      \
    {                                                                                    \
        return shoal_pb_recv(NULL, (shoal_pipe *)p, &D, &B,                              \
                             (struct ProtobufCMessage **)out, timeout);                  \
    }

#ifdef __cplusplus
}
#endif
#endif
