/*
 * shoal_node.c — the native part of the Node.js binding: a plain N-API addon over
 * libshoal, built against the Node headers Debian ships (no npm dependency).
 *
 * It is deliberately thin: the JavaScript in lib/ holds the API (classes, Promises,
 * iterators) and calls the functions exported here, which map one for one onto libshoal's
 * C API:
 *
 *  - Handles are napi externals holding the C pointer; the JS objects own them and
 *    close them explicitly (no finalizer closes an object behind a pending wait).
 *  - Element types come from JS either as a typecode ("i", "d", ...) or as a generated
 *    message class's descriptor object {name, hash, size, align, fields}; descriptors
 *    are converted once into C shoal_type structures and interned for the life of the
 *    process (segments reference them while open).
 *  - Failures throw (or reject with) an instance of the JS class registered with
 *    setErrorClass(), built with (message, errno, code name, detail): the detail is
 *    shoal_errdetail() of the thread that failed.
 *  - Blocking operations never run on the main thread: startAsync() runs one of them
 *    (queue put/get, pipe send/recv/poll, semaphore acquire, event wait, barrier wait)
 *    as napi async work on libuv's thread pool and returns a Promise. The JS layer
 *    tries the non-blocking form first, so a busy channel costs no thread hop at all.
 *    Locks are the exception: libshoal records the holding thread, so they are
 *    acquired on the main thread (try, then poll from JS, or acquireSync).
 *  - Message bytes move between libshoal and JS Buffers/TypedArrays directly; a
 *    SharedMemory block is exposed as an external ArrayBuffer over the mapping itself.
 *  - The Manager broker's client (lib/manager.js) converts JS values to and from
 *    shoal_mv trees here and calls shoal/manager.h; its blocking calls run either on
 *    the calling thread or as async work (its section below says which and why).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shoal.h>
#include <shoal/typed.h> /* the protobuf codec of fixed messages */

/* ---- errors ------------------------------------------------------------------------ */

static napi_ref error_class;

static const char *const code_names[] = {
    "OK",        "EINVAL",    "ENOMEM",   "ENOENT",     "EEXIST",    "ENAME",
    "EKIND",     "ELAYOUT",   "ECORRUPT", "ETRUNCATED", "EFOREIGN",  "EVERSION",
    "ENOSPC",    "ETIMEDOUT", "EAGAIN",   "EOWNERDEAD", "EPERM",     "ERANGE",
    "EOVERFLOW", "EMSGSIZE",  "ECLOSED",  "EEOF",       "EPEERDEAD", "EBROKEN",
    "EDEADLK",   "ETYPE",     "EACCES",   "EBUSY",      "ESYS",      "EINVALID_DATA",
    "EINTR",
};

static const char *code_name(int rc)
{
    return rc <= 0 && -rc < (int)(sizeof(code_names) / sizeof(code_names[0]))
               ? code_names[-rc]
               : "EUNKNOWN";
}

/* The JS error for rc with a detail message (made by the registered class). */
static napi_value make_error(napi_env env, int rc, const char *detail)
{
    char msg[1200];
    snprintf(msg, sizeof(msg), "%s%s%s", shoal_strerror(rc), *detail ? ": " : "", detail);
    napi_value args[4], ctor, err;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &args[0]);
    napi_create_int32(env, rc, &args[1]);
    napi_create_string_utf8(env, code_name(rc), NAPI_AUTO_LENGTH, &args[2]);
    napi_create_string_utf8(env, detail, NAPI_AUTO_LENGTH, &args[3]);
    if (error_class && napi_get_reference_value(env, error_class, &ctor) == napi_ok &&
        napi_new_instance(env, ctor, 4, args, &err) == napi_ok)
        return err;
    napi_create_error(env, args[2], args[0], &err);
    return err;
}

/* Throws rc with the calling thread's detail; returns NULL for the caller to return. */
static napi_value throw_rc(napi_env env, int rc)
{
    napi_throw(env, make_error(env, rc, shoal_errdetail()));
    return NULL;
}

static napi_value throw_arg(napi_env env, const char *what)
{
    napi_throw(env, make_error(env, SHOAL_EINVAL, what));
    return NULL;
}

/* ---- argument helpers ----------------------------------------------------------------
 */

#define ARGS(n)                                                                          \
    size_t argc = (n);                                                                   \
    napi_value argv[(n) > 0 ? (n) : 1];                                                  \
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL)

static bool is_nullish(napi_env env, napi_value v)
{
    napi_valuetype t;
    napi_typeof(env, v, &t);
    return t == napi_null || t == napi_undefined;
}

/* The pointer of a handle (an external), or NULL for null/undefined/other. */
static void *ptr_of(napi_env env, napi_value v)
{
    void *p = NULL;
    napi_valuetype t;
    napi_typeof(env, v, &t);
    if (t == napi_external)
        napi_get_value_external(env, v, &p);
    return p;
}

static napi_value handle(napi_env env, void *p)
{
    napi_value r;
    napi_create_external(env, p, NULL, NULL, &r);
    return r;
}

/* A number or a BigInt as int64. */
static int64_t i64_of(napi_env env, napi_value v)
{
    napi_valuetype t;
    napi_typeof(env, v, &t);
    int64_t x = 0;
    bool lossless;
    if (t == napi_bigint)
        napi_get_value_bigint_int64(env, v, &x, &lossless);
    else
        napi_get_value_int64(env, v, &x);
    return x;
}

static uint64_t u64_of(napi_env env, napi_value v)
{
    napi_valuetype t;
    napi_typeof(env, v, &t);
    uint64_t x = 0;
    bool lossless;
    if (t == napi_bigint)
        napi_get_value_bigint_uint64(env, v, &x, &lossless);
    else
        x = (uint64_t)i64_of(env, v);
    return x;
}

/* An int64 result: a Number when exact, else a BigInt. */
static napi_value num(napi_env env, int64_t x)
{
    napi_value r;
    if (x > -(INT64_C(1) << 53) && x < (INT64_C(1) << 53))
        napi_create_int64(env, x, &r);
    else
        napi_create_bigint_int64(env, x, &r);
    return r;
}

static napi_value str(napi_env env, const char *s)
{
    napi_value r;
    if (!s)
        napi_get_null(env, &r);
    else
        napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r);
    return r;
}

static napi_value boolean(napi_env env, bool b)
{
    napi_value r;
    napi_get_boolean(env, b, &r);
    return r;
}

static napi_value undef(napi_env env)
{
    napi_value r;
    napi_get_undefined(env, &r);
    return r;
}

/* A string argument into buf (NULL for null/undefined). */
static const char *str_of(napi_env env, napi_value v, char *buf, size_t cap)
{
    if (is_nullish(env, v))
        return NULL;
    size_t n = 0;
    if (napi_get_value_string_utf8(env, v, buf, cap, &n) != napi_ok)
        return NULL;
    return buf;
}

/* The bytes of a Buffer / TypedArray / DataView argument. */
static bool bytes_of(napi_env env, napi_value v, void **data, size_t *len)
{
    bool is;
    if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
        napi_typedarray_type t;
        size_t n, off;
        napi_value ab;
        if (napi_get_typedarray_info(env, v, &t, &n, data, &ab, &off) != napi_ok)
            return false;
        size_t esize = 1;
        switch (t) {
        case napi_int16_array:
        case napi_uint16_array:
            esize = 2;
            break;
        case napi_int32_array:
        case napi_uint32_array:
        case napi_float32_array:
            esize = 4;
            break;
        case napi_float64_array:
        case napi_bigint64_array:
        case napi_biguint64_array:
            esize = 8;
            break;
        default:
            break;
        }
        *len = n * esize;
        return true;
    }
    if (napi_is_dataview(env, v, &is) == napi_ok && is) {
        napi_value ab;
        size_t off;
        return napi_get_dataview_info(env, v, len, data, &ab, &off) == napi_ok;
    }
    return false;
}

/* Attributes {root, domain, mode, lock} (any may be missing). */
typedef struct attr_buf {
    shoal_attr attr;
    char root[4096], domain[SHOAL_DOMAIN_MAX + 1];
} attr_buf;

static const shoal_attr *attr_of(napi_env env, napi_value v, attr_buf *a)
{
    memset(&a->attr, 0, sizeof(a->attr));
    if (is_nullish(env, v))
        return NULL;
    napi_value x;
    if (napi_get_named_property(env, v, "root", &x) == napi_ok)
        a->attr.root = str_of(env, x, a->root, sizeof(a->root));
    if (napi_get_named_property(env, v, "domain", &x) == napi_ok)
        a->attr.domain = str_of(env, x, a->domain, sizeof(a->domain));
    if (napi_get_named_property(env, v, "mode", &x) == napi_ok && !is_nullish(env, x))
        a->attr.mode = (unsigned)i64_of(env, x);
    if (napi_get_named_property(env, v, "lock", &x) == napi_ok && !is_nullish(env, x))
        a->attr.lock = (int)i64_of(env, x);
    return &a->attr;
}

/* ---- element types ------------------------------------------------------------------
 */

/* Interned descriptors made from JS objects; they live as long as the process. */
typedef struct interned {
    struct interned *next;
    shoal_type type;
} interned;
static interned *types;

static char *dup_prop(napi_env env, napi_value obj, const char *key)
{
    napi_value v;
    size_t n = 0;
    if (napi_get_named_property(env, obj, key, &v) != napi_ok ||
        napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok)
        return NULL;
    char *s = malloc(n + 1);
    if (s)
        napi_get_value_string_utf8(env, v, s, n + 1, &n);
    return s;
}

static uint32_t u32_prop(napi_env env, napi_value obj, const char *key)
{
    napi_value v;
    if (napi_get_named_property(env, obj, key, &v) != napi_ok)
        return 0;
    return (uint32_t)i64_of(env, v);
}

static const shoal_type *type_of(napi_env env, napi_value v);

/* One field entry: [name, number, kind, offset, size, max_count, max_len, nested]. */
static bool field_of(napi_env env, napi_value arr, shoal_field *f)
{
    napi_value e[8];
    for (uint32_t i = 0; i < 8; i++)
        if (napi_get_element(env, arr, i, &e[i]) != napi_ok)
            return false;
    size_t n = 0;
    napi_get_value_string_utf8(env, e[0], NULL, 0, &n);
    char *name = malloc(n + 1);
    if (!name)
        return false;
    napi_get_value_string_utf8(env, e[0], name, n + 1, &n);
    f->name = name;
    f->number = (uint32_t)i64_of(env, e[1]);
    f->kind = (uint32_t)i64_of(env, e[2]);
    f->offset = (uint32_t)i64_of(env, e[3]);
    f->size = (uint32_t)i64_of(env, e[4]);
    f->max_count = (uint32_t)i64_of(env, e[5]);
    f->max_len = (uint32_t)i64_of(env, e[6]);
    f->type = is_nullish(env, e[7]) ? NULL : type_of(env, e[7]);
    return true;
}

/* A descriptor {name, hash, size, align, fields} as an interned shoal_type. */
static const shoal_type *descriptor_of(napi_env env, napi_value obj)
{
    char *name = dup_prop(env, obj, "name");
    napi_value h;
    uint64_t hash = 0;
    if (napi_get_named_property(env, obj, "hash", &h) == napi_ok)
        hash = u64_of(env, h);
    uint32_t size = u32_prop(env, obj, "size"), align = u32_prop(env, obj, "align");
    if (!name)
        return NULL;
    for (interned *t = types; t; t = t->next)
        if (t->type.layout_hash == hash && t->type.size == size &&
            !strcmp(t->type.name, name)) {
            free(name);
            return &t->type;
        }
    interned *t = calloc(1, sizeof(*t));
    napi_value fields;
    uint32_t nf = 0;
    if (!t || napi_get_named_property(env, obj, "fields", &fields) != napi_ok) {
        free(t);
        free(name);
        return NULL;
    }
    napi_get_array_length(env, fields, &nf);
    shoal_field *fs = nf ? calloc(nf, sizeof(*fs)) : NULL;
    for (uint32_t i = 0; i < nf; i++) {
        napi_value e;
        napi_get_element(env, fields, i, &e);
        if (!fs || !field_of(env, e, &fs[i]))
            nf = 0; /* a damaged list: keep the type opaque */
    }
    t->type = (shoal_type){name, hash, size, align, 0, nf, fs};
    t->next = types;
    types = t;
    return &t->type;
}

/* A typecode string or a descriptor object; NULL for null/undefined or bad input. */
static const shoal_type *type_of(napi_env env, napi_value v)
{
    napi_valuetype t;
    napi_typeof(env, v, &t);
    if (t == napi_string) {
        char code[4] = {0};
        size_t n;
        napi_get_value_string_utf8(env, v, code, sizeof(code), &n);
        return n == 1 ? shoal_typecode(code[0]) : NULL;
    }
    if (t == napi_object || t == napi_function)
        return descriptor_of(env, v);
    return NULL;
}

/* A type argument that must be valid (or null when `optional`). */
#define TYPE_ARG(var, v, optional)                                                       \
    const shoal_type *var = type_of(env, v);                                             \
    if (!var && !((optional) && is_nullish(env, v)))                                     \
        return throw_arg(env, "element type: a typecode (\"i\", \"d\", ...) or a "       \
                              "generated message class");

/* ---- the protobuf form of generated messages --------------------------------------- */

/* The string of v, malloc'ed (NULL when it is no string). */
static char *dup_str(napi_env env, napi_value v)
{
    size_t n = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok)
        return NULL;
    char *s = malloc(n + 1);
    if (s)
        napi_get_value_string_utf8(env, v, s, n + 1, &n);
    return s;
}

static const shoal_pb_message *pb_table_of(napi_env env, napi_value obj);

/* One entry [number, type, flags, offset, has_offset, elem_size, items_offset,
 * max_len, max_count, nested table or null, name] (shoal/typed.h's shoal_pb_field). */
static bool pb_field_of(napi_env env, napi_value arr, shoal_pb_field *f)
{
    napi_value e[11];
    uint32_t v[9];
    for (uint32_t i = 0; i < 11; i++)
        if (napi_get_element(env, arr, i, &e[i]) != napi_ok)
            return false;
    for (uint32_t i = 0; i < 9; i++)
        v[i] = (uint32_t)i64_of(env, e[i]);
    *f = (shoal_pb_field){
        v[0], (uint8_t)v[1], (uint8_t)v[2],      v[3], v[4], v[5], v[6], v[7],
        v[8], NULL,          dup_str(env, e[10])};
    if (!is_nullish(env, e[9]) && !(f->msg = pb_table_of(env, e[9])))
        return false;
    return f->name != NULL;
}

/* A table {name, size, init (the defaults' bytes), fields} as the C table
 * shoal_pb_encode reads; it lives as long as the process (the JS class keeps its
 * handle). NULL on malformed input. */
static const shoal_pb_message *pb_table_of(napi_env env, napi_value obj)
{
    napi_value init, fields;
    void *data;
    size_t len;
    uint32_t nf = 0;
    if (napi_get_named_property(env, obj, "init", &init) != napi_ok ||
        !bytes_of(env, init, &data, &len) ||
        napi_get_named_property(env, obj, "fields", &fields) != napi_ok ||
        napi_get_array_length(env, fields, &nf) != napi_ok ||
        len != u32_prop(env, obj, "size"))
        return NULL;
    shoal_pb_message *m = calloc(1, sizeof(*m));
    shoal_pb_field *fs = calloc(nf ? nf : 1, sizeof(*fs));
    void *copy = malloc(len ? len : 1);
    char *name = dup_prop(env, obj, "name");
    bool ok = m && fs && copy && name;
    for (uint32_t i = 0; ok && i < nf; i++) {
        napi_value e;
        ok = napi_get_element(env, fields, i, &e) == napi_ok &&
             pb_field_of(env, e, &fs[i]);
    }
    if (!ok) { /* what nested tables were made stay: they are the process's anyway */
        free(m);
        free(fs);
        free(copy);
        free(name);
        return NULL;
    }
    memcpy(copy, data, len);
    *m = (shoal_pb_message){name, (uint32_t)len, copy, nf, fs};
    return m;
}

/* pbTable(table) -> handle of the C table */
static napi_value pb_table(napi_env env, napi_callback_info info)
{
    ARGS(1);
    const shoal_pb_message *m = pb_table_of(env, argv[0]);
    if (!m)
        return throw_arg(env, "a protobuf table of a generated message class");
    return handle(env, (void *)m);
}

/* pbEncode(table handle, message bytes) -> Buffer of the protobuf encoding */
static napi_value pb_encode(napi_env env, napi_callback_info info)
{
    ARGS(2);
    const shoal_pb_message *m = ptr_of(env, argv[0]);
    void *data;
    size_t len, need = 0;
    if (!m || !bytes_of(env, argv[1], &data, &len) || len != m->size)
        return throw_arg(env, "pbEncode(table, the message's bytes)");
    uint8_t small[256];
    int rc = shoal_pb_encode(m, data, small, sizeof(small), &need);
    uint8_t *buf = small;
    if (rc == SHOAL_EMSGSIZE && (buf = malloc(need)) != NULL)
        rc = shoal_pb_encode(m, data, buf, need, &need);
    napi_value r = NULL;
    if (!buf)
        return throw_rc(env, SHOAL_ENOMEM);
    if (rc < 0)
        throw_rc(env, rc);
    else
        napi_create_buffer_copy(env, need, buf, NULL, &r);
    if (buf != small)
        free(buf);
    return r;
}

/* pbDecode(table handle, protobuf bytes) -> Buffer of the message (defaults, then the
 * fields the bytes hold); throws EINVALID_DATA when they do not decode or do not fit */
static napi_value pb_decode(napi_env env, napi_callback_info info)
{
    ARGS(2);
    const shoal_pb_message *m = ptr_of(env, argv[0]);
    void *data, *out;
    size_t len;
    napi_value r;
    if (!m || !bytes_of(env, argv[1], &data, &len))
        return throw_arg(env, "pbDecode(table, protobuf bytes)");
    if (napi_create_buffer(env, m->size, &out, &r) != napi_ok)
        return throw_rc(env, SHOAL_ENOMEM);
    memcpy(out, m->init, m->size);
    int rc = shoal_pb_decode(m, out, data, len);
    return rc < 0 ? throw_rc(env, rc) : r;
}

/* ---- SharedMemory, unlink --------------------------------------------------------- */

/* shmOpen(name, mode, size, attr) -> [handle, ArrayBuffer, name] */
static napi_value shm_open(napi_env env, napi_callback_info info)
{
    ARGS(4);
    char name[SHOAL_NAME_MAX + 2];
    attr_buf a;
    shoal_shm *shm;
    int rc = shoal_shm_open(&shm, str_of(env, argv[0], name, sizeof(name)),
                            (int)i64_of(env, argv[1]), (size_t)i64_of(env, argv[2]),
                            attr_of(env, argv[3], &a));
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r, ab;
    size_t size = shoal_shm_size(shm);
    if (napi_create_external_arraybuffer(env, shoal_shm_data(shm), size, NULL, NULL,
                                         &ab) != napi_ok) {
        shoal_shm_close(shm);
        return throw_arg(env, "this Node.js cannot make an ArrayBuffer over external "
                              "memory");
    }
    napi_create_array_with_length(env, 3, &r);
    napi_set_element(env, r, 0, handle(env, shm));
    napi_set_element(env, r, 1, ab);
    napi_set_element(env, r, 2, str(env, shoal_shm_name(shm)));
    return r;
}

static napi_value unlink_name(napi_env env, napi_callback_info info)
{
    ARGS(2);
    char name[SHOAL_NAME_MAX + 2];
    attr_buf a;
    int rc =
        shoal_unlink(str_of(env, argv[0], name, sizeof(name)), attr_of(env, argv[1], &a));
    return rc < 0 ? throw_rc(env, rc) : undef(env);
}

/* close(kind, handle): kind as enum shoal_kind. */
static napi_value close_handle(napi_env env, napi_callback_info info)
{
    ARGS(2);
    void *p = ptr_of(env, argv[1]);
    if (!p)
        return undef(env);
    int rc = 0;
    switch (i64_of(env, argv[0])) {
    case SHOAL_KIND_SHM:
        rc = shoal_shm_close(p);
        break;
    case SHOAL_KIND_VALUE:
        rc = shoal_value_close(p);
        break;
    case SHOAL_KIND_ARRAY:
        rc = shoal_array_close(p);
        break;
    case SHOAL_KIND_LOCK:
    case SHOAL_KIND_RLOCK:
        rc = shoal_lock_close(p);
        break;
    case SHOAL_KIND_SEMAPHORE:
    case SHOAL_KIND_BOUNDED_SEMAPHORE:
        rc = shoal_sem_close(p);
        break;
    case SHOAL_KIND_CONDITION:
        rc = shoal_cond_close(p);
        break;
    case SHOAL_KIND_EVENT:
        rc = shoal_event_close(p);
        break;
    case SHOAL_KIND_BARRIER:
        rc = shoal_barrier_close(p);
        break;
    case SHOAL_KIND_QUEUE:
        rc = shoal_queue_close(p);
        break;
    case SHOAL_KIND_PIPE:
        rc = shoal_pipe_close(p);
        break;
    default:
        return throw_arg(env, "close: unknown kind");
    }
    return rc < 0 ? throw_rc(env, rc) : undef(env);
}

/* ---- Value and Array --------------------------------------------------------------- */

/* valueOpen(name, mode, type, init, attr) -> [handle, name, lock handle | null, size] */
static napi_value value_open(napi_env env, napi_callback_info info)
{
    ARGS(5);
    char name[SHOAL_NAME_MAX + 2];
    attr_buf a;
    TYPE_ARG(type, argv[2], false);
    void *init = NULL;
    size_t len = 0;
    if (!is_nullish(env, argv[3]) &&
        (!bytes_of(env, argv[3], &init, &len) || len != type->size))
        return throw_arg(env, "initial value: bytes of the element's size");
    shoal_value *v;
    int rc = shoal_value_open(&v, str_of(env, argv[0], name, sizeof(name)),
                              (int)i64_of(env, argv[1]), type, init,
                              attr_of(env, argv[4], &a));
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r, lock;
    shoal_lock *l = shoal_value_get_lock(v);
    if (l)
        lock = handle(env, l);
    else
        napi_get_null(env, &lock);
    napi_create_array_with_length(env, 3, &r);
    napi_set_element(env, r, 0, handle(env, v));
    napi_set_element(env, r, 1, str(env, shoal_value_name(v)));
    napi_set_element(env, r, 2, lock);
    return r;
}

/* Copies between a value and a JS buffer of the element's size. */
static napi_value value_copy(napi_env env, napi_callback_info info,
                             int (*op)(shoal_value *, void *))
{
    ARGS(2);
    shoal_value *v = ptr_of(env, argv[0]);
    void *data;
    size_t len;
    if (!v || !bytes_of(env, argv[1], &data, &len) || len < shoal_value_type(v)->size)
        return throw_arg(env, "value: a buffer of the element's size");
    int rc = op(v, data);
    return rc < 0 ? throw_rc(env, rc) : undef(env);
}

static int value_write_op(shoal_value *v, void *d)
{
    return shoal_value_write(v, d);
}

static napi_value value_read(napi_env env, napi_callback_info info)
{
    return value_copy(env, info, shoal_value_read);
}
static napi_value value_write(napi_env env, napi_callback_info info)
{
    return value_copy(env, info, value_write_op);
}
static napi_value value_snapshot(napi_env env, napi_callback_info info)
{
    return value_copy(env, info, shoal_value_snapshot);
}

/* valueAtomic(handle, op, a, b): op 0 add(a), 1 exchange(a), 2 cas(a expected, b
 * desired) -> [ok, current], 3 load, 4 store(a). Returns the old/current value. */
static napi_value value_atomic(napi_env env, napi_callback_info info)
{
    ARGS(4);
    shoal_value *v = ptr_of(env, argv[0]);
    if (!v)
        return throw_arg(env, "value: closed");
    int64_t x = 0, a = argc > 2 ? i64_of(env, argv[2]) : 0;
    int rc;
    switch (i64_of(env, argv[1])) {
    case 0:
        rc = shoal_value_add(v, a, &x);
        break;
    case 1:
        rc = shoal_value_exchange(v, a, &x);
        break;
    case 2: {
        x = a;
        rc = shoal_value_cas(v, &x, i64_of(env, argv[3]));
        if (rc == 0 || rc == SHOAL_EAGAIN) {
            napi_value r;
            napi_create_array_with_length(env, 2, &r);
            napi_set_element(env, r, 0, boolean(env, rc == 0));
            napi_set_element(env, r, 1, num(env, x));
            return r;
        }
        break;
    }
    case 3:
        rc = shoal_value_load(v, &x);
        break;
    default:
        rc = shoal_value_store(v, a);
        break;
    }
    return rc < 0 ? throw_rc(env, rc) : num(env, x);
}

/* arrayOpen(name, mode, type, count, init, attr) -> [handle, name, lock, length] */
static napi_value array_open(napi_env env, napi_callback_info info)
{
    ARGS(6);
    char name[SHOAL_NAME_MAX + 2];
    attr_buf a;
    TYPE_ARG(type, argv[2], false);
    size_t count = (size_t)i64_of(env, argv[3]);
    void *init = NULL;
    size_t len = 0;
    if (!is_nullish(env, argv[4]) &&
        (!bytes_of(env, argv[4], &init, &len) || len != count * type->size))
        return throw_arg(env, "initial elements: bytes of count elements");
    shoal_array *arr;
    int rc = shoal_array_open(&arr, str_of(env, argv[0], name, sizeof(name)),
                              (int)i64_of(env, argv[1]), type, count, init,
                              attr_of(env, argv[5], &a));
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r, lock;
    shoal_lock *l = shoal_array_get_lock(arr);
    if (l)
        lock = handle(env, l);
    else
        napi_get_null(env, &lock);
    napi_create_array_with_length(env, 4, &r);
    napi_set_element(env, r, 0, handle(env, arr));
    napi_set_element(env, r, 1, str(env, shoal_array_name(arr)));
    napi_set_element(env, r, 2, lock);
    napi_set_element(env, r, 3, num(env, (int64_t)shoal_array_len(arr)));
    return r;
}

/* arrayCopy(handle, write, start, n, buffer): reads or writes n elements. */
static napi_value array_copy(napi_env env, napi_callback_info info)
{
    ARGS(5);
    shoal_array *arr = ptr_of(env, argv[0]);
    bool write = false;
    napi_get_value_bool(env, argv[1], &write);
    size_t start = (size_t)i64_of(env, argv[2]), n = (size_t)i64_of(env, argv[3]);
    void *data;
    size_t len;
    if (!arr || !bytes_of(env, argv[4], &data, &len) ||
        len / shoal_array_type(arr)->size < n)
        return throw_arg(env, "array: a buffer of n elements");
    int rc = write ? shoal_array_write(arr, start, n, data)
                   : shoal_array_read(arr, start, n, data);
    return rc < 0 ? throw_rc(env, rc) : undef(env);
}

static napi_value array_add(napi_env env, napi_callback_info info)
{
    ARGS(3);
    shoal_array *arr = ptr_of(env, argv[0]);
    int64_t old = 0;
    if (!arr)
        return throw_arg(env, "array: closed");
    int rc =
        shoal_array_add(arr, (size_t)i64_of(env, argv[1]), i64_of(env, argv[2]), &old);
    return rc < 0 ? throw_rc(env, rc) : num(env, old);
}

/* ---- Queue and Pipe ---------------------------------------------------------------- */

static void queue_config(napi_env env, napi_value *argv, shoal_queue_config *cfg,
                         const shoal_type *type)
{
    cfg->type = type;
    cfg->max_msg = (size_t)i64_of(env, argv[0]);
    cfg->capacity = (size_t)i64_of(env, argv[1]);
    bool spsc = false;
    napi_get_value_bool(env, argv[2], &spsc);
    cfg->spsc = spsc;
}

/* queueOpen(name, mode, type|null, maxMsg, capacity, spsc, attr) -> [handle, name, stats]
 */
static napi_value queue_open(napi_env env, napi_callback_info info)
{
    ARGS(7);
    char name[SHOAL_NAME_MAX + 2];
    attr_buf a;
    TYPE_ARG(type, argv[2], true);
    shoal_queue_config cfg;
    queue_config(env, argv + 3, &cfg, type);
    shoal_queue *q;
    int rc = shoal_queue_open(&q, str_of(env, argv[0], name, sizeof(name)),
                              (int)i64_of(env, argv[1]), &cfg, attr_of(env, argv[6], &a));
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r;
    napi_create_array_with_length(env, 2, &r);
    napi_set_element(env, r, 0, handle(env, q));
    napi_set_element(env, r, 1, str(env, shoal_queue_name(q)));
    return r;
}

/* queueStats(handle) -> {capacity, depth, maxMsg, puts, gets, closed, spsc, ...} */
static napi_value queue_stats(napi_env env, napi_callback_info info)
{
    ARGS(1);
    shoal_queue *q = ptr_of(env, argv[0]);
    shoal_queue_stats st;
    if (!q)
        return throw_arg(env, "queue: closed");
    int rc = shoal_queue_stats_get(q, &st);
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r;
    napi_create_object(env, &r);
    const struct {
        const char *k;
        uint64_t v;
    } kv[] = {{"capacity", st.capacity},
              {"depth", st.depth},
              {"maxMsg", st.max_msg},
              {"puts", st.puts},
              {"gets", st.gets},
              {"fullWaits", st.full_waits},
              {"emptyWaits", st.empty_waits}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        napi_set_named_property(env, r, kv[i].k, num(env, (int64_t)kv[i].v));
    napi_set_named_property(env, r, "closed", boolean(env, st.closed));
    napi_set_named_property(env, r, "spsc", boolean(env, st.spsc));
    return r;
}

static napi_value queue_shutdown(napi_env env, napi_callback_info info)
{
    ARGS(1);
    shoal_queue *q = ptr_of(env, argv[0]);
    if (!q)
        return throw_arg(env, "queue: closed");
    shoal_queue_shutdown(q);
    return undef(env);
}

/* pipeOpen(name, end, mode, maxMsg, capacity, attr) -> [handle, name] */
static napi_value pipe_open(napi_env env, napi_callback_info info)
{
    ARGS(6);
    char name[SHOAL_NAME_MAX + 2];
    attr_buf a;
    shoal_queue_config cfg = {NULL, (size_t)i64_of(env, argv[3]),
                              (size_t)i64_of(env, argv[4]), 0};
    shoal_pipe *p;
    int rc = shoal_pipe_open(&p, str_of(env, argv[0], name, sizeof(name)),
                             (int)i64_of(env, argv[1]), (int)i64_of(env, argv[2]), &cfg,
                             attr_of(env, argv[5], &a));
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r;
    napi_create_array_with_length(env, 2, &r);
    napi_set_element(env, r, 0, handle(env, p));
    napi_set_element(env, r, 1, str(env, shoal_pipe_name(p)));
    return r;
}

/* pipePair(name, maxMsg, capacity, attr) -> [end0, end1, name] */
static napi_value pipe_pair(napi_env env, napi_callback_info info)
{
    ARGS(4);
    char name[SHOAL_NAME_MAX + 2];
    attr_buf a;
    shoal_queue_config cfg = {NULL, (size_t)i64_of(env, argv[1]),
                              (size_t)i64_of(env, argv[2]), 0};
    shoal_pipe *p0, *p1;
    int rc = shoal_pipe_pair(&p0, &p1, str_of(env, argv[0], name, sizeof(name)), &cfg,
                             attr_of(env, argv[3], &a));
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r;
    napi_create_array_with_length(env, 3, &r);
    napi_set_element(env, r, 0, handle(env, p0));
    napi_set_element(env, r, 1, handle(env, p1));
    napi_set_element(env, r, 2, str(env, shoal_pipe_name(p0)));
    return r;
}

/* ---- operations with a try form and a blocking form ---------------------------------
 */

/* What startAsync() and tryOp() can run. */
enum op {
    OP_QUEUE_PUT,
    OP_QUEUE_GET,
    OP_PIPE_SEND,
    OP_PIPE_RECV,
    OP_PIPE_POLL,
    OP_SEM_ACQUIRE,
    OP_EVENT_WAIT,
    OP_BARRIER_WAIT,
};

typedef struct job {
    enum op op;
    void *h;
    void *buf;
    size_t cap, len;
    int64_t timeout;
    int rc;
    char detail[1024];
    napi_ref buf_ref;
    napi_deferred deferred;
    napi_async_work work;
} job;

/* Runs an operation (timeout SHOAL_NOWAIT: its try form). Returns rc; *len gets the
 * received length or moved count. */
static int run_op(enum op op, void *h, void *buf, size_t cap, size_t *len,
                  int64_t timeout)
{
    switch (op) {
    case OP_QUEUE_PUT:
        return shoal_queue_put(h, buf, cap, timeout);
    case OP_QUEUE_GET:
        return shoal_queue_get(h, buf, cap, len, timeout);
    case OP_PIPE_SEND:
        return shoal_pipe_send(h, buf, cap, timeout);
    case OP_PIPE_RECV:
        return shoal_pipe_recv(h, buf, cap, len, timeout);
    case OP_PIPE_POLL: {
        int rc = shoal_pipe_poll(h, timeout);
        return rc == 0 ? SHOAL_ETIMEDOUT : rc; /* 0: nothing ready in time */
    }
    case OP_SEM_ACQUIRE:
        return shoal_sem_acquire(h, timeout);
    case OP_EVENT_WAIT:
        return shoal_event_wait(h, timeout);
    case OP_BARRIER_WAIT:
        return shoal_barrier_wait(h, timeout);
    }
    return SHOAL_EINVAL;
}

/* The JS result of a successful operation: the length, count or index. */
static napi_value op_result(napi_env env, enum op op, int rc, size_t len)
{
    if (op == OP_QUEUE_GET || op == OP_PIPE_RECV)
        return num(env, (int64_t)len);
    return num(env, rc);
}

/* Arguments shared by tryOp and startAsync: (op, handle, buffer|null, timeoutNs). */
static bool op_args(napi_env env, napi_value *argv, enum op *op, void **h, void **buf,
                    size_t *cap)
{
    *op = (enum op)i64_of(env, argv[0]);
    *h = ptr_of(env, argv[1]);
    *buf = NULL;
    *cap = 0;
    if (!is_nullish(env, argv[2]) && !bytes_of(env, argv[2], buf, cap))
        return false;
    return *h != NULL && *op <= OP_BARRIER_WAIT;
}

/* tryOp(op, handle, buffer) -> result, or the code (< 0) for EAGAIN / ETIMEDOUT /
 * EEOF; throws any other error. */
static napi_value try_op(napi_env env, napi_callback_info info)
{
    ARGS(3);
    enum op op;
    void *h, *buf;
    size_t cap, len = 0;
    if (!op_args(env, argv, &op, &h, &buf, &cap))
        return throw_arg(env, "tryOp: bad arguments (closed object?)");
    int rc = run_op(op, h, buf, cap, &len, SHOAL_NOWAIT);
    if (rc == SHOAL_EAGAIN || rc == SHOAL_ETIMEDOUT)
        return num(env, rc);
    return rc < 0 ? throw_rc(env, rc) : op_result(env, op, rc, len);
}

static void job_execute(napi_env env, void *data)
{
    (void)env;
    job *j = data;
    j->rc = run_op(j->op, j->h, j->buf, j->cap, &j->len, j->timeout);
    if (j->rc < 0)
        snprintf(j->detail, sizeof(j->detail), "%s", shoal_errdetail());
}

static void job_complete(napi_env env, napi_status status, void *data)
{
    job *j = data;
    if (status != napi_ok)
        napi_reject_deferred(env, j->deferred, make_error(env, SHOAL_ESYS, "cancelled"));
    else if (j->rc < 0)
        napi_reject_deferred(env, j->deferred, make_error(env, j->rc, j->detail));
    else
        napi_resolve_deferred(env, j->deferred, op_result(env, j->op, j->rc, j->len));
    if (j->buf_ref)
        napi_delete_reference(env, j->buf_ref);
    napi_delete_async_work(env, j->work);
    free(j);
}

/* startAsync(op, handle, buffer|null, timeoutNs) -> Promise of the result; the buffer
 * is kept alive until the operation ends. */
static napi_value start_async(napi_env env, napi_callback_info info)
{
    ARGS(4);
    job *j = calloc(1, sizeof(*j));
    if (!j)
        return throw_rc(env, SHOAL_ENOMEM);
    if (!op_args(env, argv, &j->op, &j->h, &j->buf, &j->cap)) {
        free(j);
        return throw_arg(env, "startAsync: bad arguments (closed object?)");
    }
    j->timeout = i64_of(env, argv[3]);
    if (j->buf)
        napi_create_reference(env, argv[2], 1, &j->buf_ref);
    napi_value promise, name;
    napi_create_promise(env, &j->deferred, &promise);
    napi_create_string_utf8(env, "shoal", NAPI_AUTO_LENGTH, &name);
    napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work);
    napi_queue_async_work(env, j->work);
    return promise;
}

/* ---- rpc clients ---------------------------------------------------------------------
 *
 * A channel and its calls are externals over shoal_rpc_channel / rpc_call_box. Every
 * step that may wait (connecting, sending into a full window, receiving, finishing) is
 * an rpc_job on libuv's thread pool returning a Promise; the JS layer (lib/rpc.js)
 * runs at most one at a time per call and frees a call only when none is pending.
 */

/* A call and the method table it references (rpc.h: the table must outlive it). */
typedef struct rpc_call_box {
    shoal_rpc_call *call;
    shoal_rpc_method m;
    char name[];
} rpc_call_box;

enum rpc_op {
    RPC_OPEN,
    RPC_SEND,
    RPC_RECV,
    RPC_FINISH,
    RPC_CTX_SEND,
    RPC_CTX_RECV,
    RPC_STOP
};

typedef struct node_call node_call;
typedef struct node_server node_server;
static void server_stop_wait(node_server *s);
static void server_free(napi_env env, node_server *s);

typedef struct rpc_job {
    enum rpc_op op;
    shoal_rpc_channel *ch;
    rpc_call_box *box;
    node_call *nc;
    node_server *server;
    char *address, *token;
    attr_buf attr;
    bool has_attr;
    int64_t timeout;
    void *msg; /* RPC_SEND: a copy of the message; RPC_RECV: the response */
    size_t len;
    int rc;
    char detail[SHOAL_RPC_DETAIL_MAX + 512];
    napi_deferred deferred;
    napi_async_work work;
} rpc_job;

static void rpc_execute(napi_env env, void *data)
{
    (void)env;
    rpc_job *j = data;
    switch (j->op) {
    case RPC_OPEN: {
        shoal_rpc_channel_config cfg = {.connect_timeout = j->timeout,
                                        .attr = j->has_attr ? &j->attr.attr : NULL,
                                        .token = j->token};
        j->rc = shoal_rpc_channel_open(&j->ch, j->address, &cfg);
        break;
    }
    case RPC_SEND:
        j->rc = shoal_rpc_call_send(j->box->call, j->msg, j->len);
        break;
    case RPC_RECV:
        j->rc = shoal_rpc_call_recv(j->box->call, &j->msg, &j->len);
        break;
    case RPC_FINISH:
        j->rc = shoal_rpc_call_finish(j->box->call, j->detail, SHOAL_RPC_DETAIL_MAX);
        return;
    case RPC_CTX_SEND:
        j->rc = shoal_rpc_ctx_send(*(shoal_rpc_ctx **)j->nc, j->msg, j->len);
        break;
    case RPC_CTX_RECV:
        j->rc = shoal_rpc_ctx_recv(*(shoal_rpc_ctx **)j->nc, &j->msg, &j->len);
        break;
    case RPC_STOP:
        server_stop_wait(j->server);
        return;
    }
    if (j->rc < 0)
        snprintf(j->detail, sizeof(j->detail), "%s", shoal_errdetail());
}

/* [[key, value], ...] of a metadata list. */
static napi_value md_value(napi_env env, const shoal_rpc_md *md)
{
    napi_value arr;
    napi_create_array_with_length(env, md->count, &arr);
    for (size_t i = 0; i < md->count; i++) {
        napi_value pair;
        napi_create_array_with_length(env, 2, &pair);
        napi_set_element(env, pair, 0, str(env, md->items[i].key));
        napi_set_element(env, pair, 1, str(env, md->items[i].value));
        napi_set_element(env, arr, (uint32_t)i, pair);
    }
    return arr;
}

/* The value a job resolves with: the channel; nothing; the response (a Buffer) or
 * null at the end; [code, detail, headers, trailers]. */
static napi_value rpc_result(napi_env env, rpc_job *j)
{
    napi_value r;
    switch (j->op) {
    case RPC_OPEN:
        return handle(env, j->ch);
    case RPC_SEND:
    case RPC_CTX_SEND:
    case RPC_STOP:
        return undef(env);
    case RPC_RECV:
    case RPC_CTX_RECV:
        if (j->rc == 0) {
            napi_get_null(env, &r);
            return r;
        }
        void *data;
        napi_create_buffer_copy(env, j->len, j->msg ? j->msg : "", &data, &r);
        return r;
    case RPC_FINISH:
        napi_create_array_with_length(env, 4, &r);
        napi_set_element(env, r, 0, num(env, j->rc));
        napi_set_element(env, r, 1, str(env, j->detail));
        napi_set_element(env, r, 2, md_value(env, shoal_rpc_call_headers(j->box->call)));
        napi_set_element(env, r, 3, md_value(env, shoal_rpc_call_trailers(j->box->call)));
        return r;
    }
    return undef(env);
}

static void rpc_complete(napi_env env, napi_status status, void *data)
{
    rpc_job *j = data;
    if (status != napi_ok)
        napi_reject_deferred(env, j->deferred, make_error(env, SHOAL_ESYS, "cancelled"));
    else if (j->rc < 0 && j->op != RPC_FINISH)
        napi_reject_deferred(env, j->deferred, make_error(env, j->rc, j->detail));
    else
        napi_resolve_deferred(env, j->deferred, rpc_result(env, j));
    if (j->op == RPC_STOP)
        server_free(env, j->server);
    napi_delete_async_work(env, j->work);
    free(j->msg);
    free(j->address);
    free(j->token);
    free(j);
}

static napi_value rpc_queue(napi_env env, rpc_job *j)
{
    napi_value promise, name;
    napi_create_promise(env, &j->deferred, &promise);
    napi_create_string_utf8(env, "shoal-rpc", NAPI_AUTO_LENGTH, &name);
    napi_create_async_work(env, NULL, name, rpc_execute, rpc_complete, j, &j->work);
    napi_queue_async_work(env, j->work);
    return promise;
}

static rpc_job *rpc_job_new(napi_env env, enum rpc_op op)
{
    rpc_job *j = calloc(1, sizeof(*j));
    if (!j)
        throw_rc(env, SHOAL_ENOMEM);
    else
        j->op = op;
    return j;
}

/* A heap copy of s (NULL for NULL, or when out of memory). */
static char *copy_str(const char *s)
{
    char *c = s ? malloc(strlen(s) + 1) : NULL;
    return c ? strcpy(c, s) : NULL;
}

/* rpcOpen(address, token|null, connectTimeoutNs, attr|null) -> Promise of a channel. */
static napi_value rpc_open(napi_env env, napi_callback_info info)
{
    ARGS(4);
    char address[1024], token[1024];
    const char *a = str_of(env, argv[0], address, sizeof(address));
    const char *t = str_of(env, argv[1], token, sizeof(token));
    if (!a)
        return throw_arg(env, "rpcOpen: the address must be a string");
    rpc_job *j = rpc_job_new(env, RPC_OPEN);
    if (!j)
        return NULL;
    j->address = copy_str(a);
    j->token = copy_str(t);
    j->timeout = i64_of(env, argv[2]);
    j->has_attr = attr_of(env, argv[3], &j->attr) != NULL;
    return rpc_queue(env, j);
}

/* rpcChannelClose(channel): cancels its calls and disconnects. */
static napi_value rpc_channel_close(napi_env env, napi_callback_info info)
{
    ARGS(1);
    shoal_rpc_channel_close(ptr_of(env, argv[0]));
    return undef(env);
}

/* Metadata [[key, value], ...] into md. */
static bool md_of(napi_env env, napi_value v, shoal_rpc_md *md)
{
    uint32_t n = 0;
    if (is_nullish(env, v))
        return true;
    if (napi_get_array_length(env, v, &n) != napi_ok)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        napi_value pair, k, x;
        char key[SHOAL_RPC_KEY_MAX + 1], value[SHOAL_RPC_VALUE_MAX + 1];
        if (napi_get_element(env, v, i, &pair) != napi_ok ||
            napi_get_element(env, pair, 0, &k) != napi_ok ||
            napi_get_element(env, pair, 1, &x) != napi_ok ||
            !str_of(env, k, key, sizeof(key)) || !str_of(env, x, value, sizeof(value)) ||
            shoal_rpc_md_add(md, key, value) < 0)
            return false;
    }
    return true;
}

/* rpcStart(channel, service, method, kind, request|null, timeoutNs, metadata) -> call.
 * A unary or server-streaming call's request goes with its start. */
static napi_value rpc_start(napi_env env, napi_callback_info info)
{
    ARGS(7);
    char service[256], method[256];
    shoal_rpc_channel *ch = ptr_of(env, argv[0]);
    void *req = NULL;
    size_t len = 0;
    bool has_req = !is_nullish(env, argv[4]);
    if (!ch || !str_of(env, argv[1], service, sizeof(service)) ||
        !str_of(env, argv[2], method, sizeof(method)) ||
        (has_req && !bytes_of(env, argv[4], &req, &len)))
        return throw_arg(env, "rpcStart: bad arguments (closed channel?)");
    shoal_rpc_md md = {0};
    if (!md_of(env, argv[6], &md)) {
        shoal_rpc_md_clear(&md);
        return throw_arg(env, "rpcStart: metadata must be [key, value] string pairs "
                              "within the length limits");
    }
    rpc_call_box *box = calloc(1, sizeof(*box) + strlen(method) + 1);
    if (!box) {
        shoal_rpc_md_clear(&md);
        return throw_rc(env, SHOAL_ENOMEM);
    }
    strcpy(box->name, method);
    box->m.name = box->name;
    box->m.kind = (int)i64_of(env, argv[3]);
    shoal_rpc_options opts = {.timeout = i64_of(env, argv[5]), .metadata = &md};
    int rc = has_req ? shoal_rpc_call_start_request(&box->call, ch, service, &box->m, req,
                                                    len, &opts)
                     : shoal_rpc_call_start(&box->call, ch, service, &box->m, &opts);
    shoal_rpc_md_clear(&md);
    if (rc < 0) {
        free(box);
        return throw_rc(env, rc);
    }
    return handle(env, box);
}

/* A job of op on the client call or handler call `target` (NULL after throwing). */
static rpc_job *rpc_call_job(napi_env env, napi_value target, enum rpc_op op)
{
    void *p = ptr_of(env, target);
    if (!p) {
        throw_arg(env, "rpc: not a live call");
        return NULL;
    }
    rpc_job *j = rpc_job_new(env, op);
    if (j && (op == RPC_CTX_SEND || op == RPC_CTX_RECV))
        j->nc = p;
    else if (j)
        j->box = p;
    return j;
}

/* rpcSend(call, bytes) / rpcCtxSend(handlerCall, bytes) -> Promise: sends a copy of
 * the bytes, waiting while the other side's window is full. */
static napi_value rpc_send_op(napi_env env, napi_callback_info info, enum rpc_op op)
{
    ARGS(2);
    void *data;
    size_t len;
    if (!bytes_of(env, argv[1], &data, &len))
        return throw_arg(env, "rpc send: the message must be bytes");
    rpc_job *j = rpc_call_job(env, argv[0], op);
    if (!j)
        return NULL;
    j->len = len;
    j->msg = malloc(len ? len : 1);
    if (!j->msg) {
        free(j);
        return throw_rc(env, SHOAL_ENOMEM);
    }
    if (len) /* an empty message may have no data pointer */
        memcpy(j->msg, data, len);
    return rpc_queue(env, j);
}

static napi_value rpc_send(napi_env env, napi_callback_info info)
{
    return rpc_send_op(env, info, RPC_SEND);
}

/* rpcRecv(call) / rpcFinish(call) / rpcCtxRecv(handlerCall) -> Promise. */
static napi_value rpc_wait_op(napi_env env, napi_callback_info info, enum rpc_op op)
{
    ARGS(1);
    rpc_job *j = rpc_call_job(env, argv[0], op);
    return j ? rpc_queue(env, j) : NULL;
}

static napi_value rpc_recv(napi_env env, napi_callback_info info)
{
    return rpc_wait_op(env, info, RPC_RECV);
}

static napi_value rpc_finish(napi_env env, napi_callback_info info)
{
    return rpc_wait_op(env, info, RPC_FINISH);
}

/* rpcCallOp(call, what): 0 close_send (returns its rc), 1 cancel, 2 free. */
static napi_value rpc_call_op(napi_env env, napi_callback_info info)
{
    ARGS(2);
    rpc_call_box *box = ptr_of(env, argv[0]);
    if (!box)
        return throw_arg(env, "rpc: freed call");
    switch (i64_of(env, argv[1])) {
    case 0:
        return num(env, shoal_rpc_call_close_send(box->call));
    case 1:
        shoal_rpc_call_cancel(box->call);
        break;
    default:
        shoal_rpc_call_free(box->call);
        free(box);
    }
    return undef(env);
}

/* rpcCodeName(code) -> gRPC's name, or null. */
static napi_value rpc_code_name(napi_env env, napi_callback_info info)
{
    ARGS(1);
    const char *n = shoal_rpc_code_name((int)i64_of(env, argv[0]));
    if (!n) {
        napi_value r;
        napi_get_null(env, &r);
        return r;
    }
    return str(env, n);
}

/* ---- rpc servers ---------------------------------------------------------------------
 *
 * A node_server runs a shoal_loop and a shoal_rpc_server on a thread of its own. Every
 * method is registered `blocking`, so libshoal runs each call's handler on a thread of
 * its own: that thread hands the call (a node_call on its stack) to JavaScript through
 * a threadsafe function and sleeps until JavaScript says rpcCtxDone(call, code,
 * detail). Meanwhile the JS handler receives and sends through rpc_jobs (off the main
 * thread), so the handler thread and the jobs never use the context at once. Stopping
 * runs off the main thread too: it waits for the handlers, which need the main thread
 * to finish.
 */

struct node_call {
    shoal_rpc_ctx *ctx; /* first: the jobs read it through the node_call pointer */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int code;
    char detail[SHOAL_RPC_DETAIL_MAX];
};

struct node_server {
    pthread_t thread;
    shoal_loop *loop;
    napi_threadsafe_function tsfn;
    shoal_rpc_service *svcs;
    size_t n_svcs;
    char **strings; /* every name the tables point to, and the addresses */
    size_t n_strings;
    char **addresses;
    size_t n_addresses;
    const char *token;
    attr_buf attr;
    bool has_attr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state; /* 0 starting, 1 serving, < 0 failed with that code */
    char detail[1024];
};

static int node_handler(shoal_rpc_ctx *ctx, void *arg)
{
    node_server *s = arg;
    node_call c = {.ctx = ctx, .code = SHOAL_RPC_INTERNAL};
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    if (napi_call_threadsafe_function(s->tsfn, &c, napi_tsfn_blocking) != napi_ok) {
        c.code = SHOAL_RPC_UNAVAILABLE;
        snprintf(c.detail, sizeof(c.detail), "the Node.js server is stopping");
        c.done = true;
    }
    pthread_mutex_lock(&c.mu);
    while (!c.done)
        pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    if (c.detail[0])
        shoal_rpc_ctx_set_detail(ctx, "%s", c.detail);
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    return c.code;
}

/* On the main thread: handler(call, "pkg.Service/Method"). */
static void node_call_js(napi_env env, napi_value fn, void *context, void *data)
{
    (void)context;
    node_call *c = data;
    if (!env) { /* the function is being released */
        pthread_mutex_lock(&c->mu);
        c->code = SHOAL_RPC_UNAVAILABLE;
        c->done = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    napi_value argv[2], undefined, r;
    argv[0] = handle(env, c);
    argv[1] = str(env, shoal_rpc_ctx_method(c->ctx));
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, fn, 2, argv, &r);
}

static void *serve_main(void *arg)
{
    node_server *s = arg;
    shoal_rpc_server *srv = NULL;
    int rc = shoal_loop_create(&s->loop);
    if (rc == 0)
        rc = shoal_rpc_server_create(&srv, s->loop);
    for (size_t i = 0; rc == 0 && i < s->n_svcs; i++)
        rc = shoal_rpc_server_add_service(srv, &s->svcs[i]);
    if (rc == 0 && s->token)
        rc = shoal_rpc_server_set_token(srv, s->token);
    for (size_t i = 0; rc == 0 && i < s->n_addresses; i++)
        rc = shoal_rpc_server_listen(srv, s->addresses[i],
                                     s->has_attr ? &s->attr.attr : NULL);
    pthread_mutex_lock(&s->mu);
    s->state = rc < 0 ? rc : 1;
    if (rc < 0)
        snprintf(s->detail, sizeof(s->detail), "%s", shoal_errdetail());
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        shoal_loop_run(s->loop);
    shoal_rpc_server_destroy(srv); /* cancels the calls, waits for their handlers */
    if (s->loop)
        shoal_loop_destroy(s->loop);
    s->loop = NULL;
    return NULL;
}

/* Stops the loop and waits for the server thread (off the main thread). */
static void server_stop_wait(node_server *s)
{
    pthread_mutex_lock(&s->mu);
    shoal_loop *loop = s->loop;
    pthread_mutex_unlock(&s->mu);
    if (loop)
        shoal_loop_stop(loop);
    pthread_join(s->thread, NULL);
}

static void server_free(napi_env env, node_server *s)
{
    (void)env;
    if (s->tsfn)
        napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
    for (size_t i = 0; i < s->n_svcs; i++)
        free((void *)s->svcs[i].methods);
    free(s->svcs);
    for (size_t i = 0; i < s->n_strings; i++)
        free(s->strings[i]);
    free(s->strings);
    free(s->addresses);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* A string property or element kept for the server's life. */
static char *server_string(napi_env env, node_server *s, napi_value v)
{
    char buf[1024];
    char *c = copy_str(str_of(env, v, buf, sizeof(buf)));
    if (!c)
        return NULL;
    char **grown = realloc(s->strings, (s->n_strings + 1) * sizeof(*grown));
    if (!grown) {
        free(c);
        return NULL;
    }
    s->strings = grown;
    s->strings[s->n_strings++] = c;
    return c;
}

/* The services [{name, methods: [[name, kind], ...]}, ...] into s's tables. */
static bool server_tables(napi_env env, node_server *s, napi_value services)
{
    uint32_t n = 0;
    if (napi_get_array_length(env, services, &n) != napi_ok || !n)
        return false;
    s->svcs = calloc(n, sizeof(*s->svcs));
    if (!s->svcs)
        return false;
    s->n_svcs = n;
    for (uint32_t i = 0; i < n; i++) {
        napi_value svc, name, methods;
        uint32_t m = 0;
        if (napi_get_element(env, services, i, &svc) != napi_ok ||
            napi_get_named_property(env, svc, "name", &name) != napi_ok ||
            napi_get_named_property(env, svc, "methods", &methods) != napi_ok ||
            napi_get_array_length(env, methods, &m) != napi_ok)
            return false;
        shoal_rpc_method *table = calloc(m ? m : 1, sizeof(*table));
        s->svcs[i] = (shoal_rpc_service){.name = server_string(env, s, name),
                                         .methods = table,
                                         .n_methods = m,
                                         .arg = s};
        if (!table || !s->svcs[i].name)
            return false;
        for (uint32_t k = 0; k < m; k++) {
            napi_value pair, mname, kind;
            if (napi_get_element(env, methods, k, &pair) != napi_ok ||
                napi_get_element(env, pair, 0, &mname) != napi_ok ||
                napi_get_element(env, pair, 1, &kind) != napi_ok)
                return false;
            table[k] = (shoal_rpc_method){.name = server_string(env, s, mname),
                                          .kind = (int)i64_of(env, kind),
                                          .handler = node_handler,
                                          .blocking = 1};
            if (!table[k].name)
                return false;
        }
    }
    return true;
}

/* rpcServe(services, addresses, token|null, attr|null, handler) -> server: serves until
 * rpcServerStop; handler(call, "pkg.Service/Method") runs each call. Throws the
 * listening error (EBUSY, EINVAL, ...) with nothing left running. */
static napi_value rpc_serve(napi_env env, napi_callback_info info)
{
    ARGS(5);
    node_server *s = calloc(1, sizeof(*s));
    if (!s)
        return throw_rc(env, SHOAL_ENOMEM);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    uint32_t n = 0;
    bool ok = server_tables(env, s, argv[0]) &&
              napi_get_array_length(env, argv[1], &n) == napi_ok &&
              (s->addresses = calloc(n ? n : 1, sizeof(char *))) != NULL;
    for (uint32_t i = 0; ok && i < n; i++) {
        napi_value a;
        ok = napi_get_element(env, argv[1], i, &a) == napi_ok &&
             (s->addresses[s->n_addresses++] = server_string(env, s, a)) != NULL;
    }
    if (ok && !is_nullish(env, argv[2]))
        ok = (s->token = server_string(env, s, argv[2])) != NULL;
    s->has_attr = attr_of(env, argv[3], &s->attr) != NULL;
    napi_value name;
    napi_create_string_utf8(env, "shoal-rpc-server", NAPI_AUTO_LENGTH, &name);
    if (!ok || napi_create_threadsafe_function(env, argv[4], NULL, name, 0, 1, NULL, NULL,
                                               NULL, node_call_js, &s->tsfn) != napi_ok) {
        server_free(env, s);
        return throw_arg(env, "rpcServe: bad arguments");
    }
    if (pthread_create(&s->thread, NULL, serve_main, s) != 0) {
        server_free(env, s);
        return throw_rc(env, SHOAL_ESYS);
    }
    pthread_mutex_lock(&s->mu);
    while (s->state == 0)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->state < 0) {
        napi_value err = make_error(env, s->state, s->detail);
        pthread_join(s->thread, NULL);
        server_free(env, s);
        napi_throw(env, err);
        return NULL;
    }
    return handle(env, s);
}

/* rpcServerStop(server) -> Promise, resolved once every handler has returned. */
static napi_value rpc_server_stop(napi_env env, napi_callback_info info)
{
    ARGS(1);
    node_server *s = ptr_of(env, argv[0]);
    if (!s)
        return throw_arg(env, "rpcServerStop: not a server");
    rpc_job *j = rpc_job_new(env, RPC_STOP);
    if (!j)
        return NULL;
    j->server = s;
    return rpc_queue(env, j);
}

/* rpcCtxRecv(call) / rpcCtxSend(call, bytes) -> Promise: a request (null at their end)
 * / nothing. */
static napi_value rpc_ctx_recv(napi_env env, napi_callback_info info)
{
    return rpc_wait_op(env, info, RPC_CTX_RECV);
}

static napi_value rpc_ctx_send(napi_env env, napi_callback_info info)
{
    return rpc_send_op(env, info, RPC_CTX_SEND);
}

/* rpcCtxInfo(call) -> [metadata, timeRemainingNs (-1: none), cancelled]. */
static napi_value rpc_ctx_info(napi_env env, napi_callback_info info)
{
    ARGS(1);
    node_call *c = ptr_of(env, argv[0]);
    if (!c)
        return throw_arg(env, "rpcCtxInfo: not a call");
    napi_value r;
    napi_create_array_with_length(env, 3, &r);
    napi_set_element(env, r, 0, md_value(env, shoal_rpc_ctx_metadata(c->ctx)));
    napi_set_element(env, r, 1, num(env, shoal_rpc_ctx_time_remaining(c->ctx)));
    napi_set_element(env, r, 2, boolean(env, shoal_rpc_ctx_cancelled(c->ctx) != 0));
    return r;
}

/* rpcCtxAddMd(call, trailer, key, value): a response header (trailer false) or trailer.
 */
static napi_value rpc_ctx_add_md(napi_env env, napi_callback_info info)
{
    ARGS(4);
    node_call *c = ptr_of(env, argv[0]);
    bool trailer = false;
    char key[SHOAL_RPC_KEY_MAX + 1], value[SHOAL_RPC_VALUE_MAX + 1];
    napi_get_value_bool(env, argv[1], &trailer);
    if (!c || !str_of(env, argv[2], key, sizeof(key)) ||
        !str_of(env, argv[3], value, sizeof(value)))
        return throw_arg(env, "rpcCtxAddMd: bad arguments");
    int rc = trailer ? shoal_rpc_ctx_add_trailer(c->ctx, key, value)
                     : shoal_rpc_ctx_add_header(c->ctx, key, value);
    return rc < 0 ? throw_rc(env, rc) : undef(env);
}

/* rpcCtxDone(call, code, detail): the handler's end; the call handle is invalid after. */
static napi_value rpc_ctx_done(napi_env env, napi_callback_info info)
{
    ARGS(3);
    node_call *c = ptr_of(env, argv[0]);
    if (!c)
        return throw_arg(env, "rpcCtxDone: not a call");
    pthread_mutex_lock(&c->mu);
    c->code = (int)i64_of(env, argv[1]);
    str_of(env, argv[2], c->detail, sizeof(c->detail));
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return undef(env);
}

/* ---- primitives -------------------------------------------------------------------- */

/* syncOpen(kind, name, mode, value, attr) -> [handle, name]: value is a semaphore's
 * initial value or a barrier's parties. */
static napi_value sync_open(napi_env env, napi_callback_info info)
{
    ARGS(5);
    char name[SHOAL_NAME_MAX + 2];
    attr_buf a;
    const char *n = str_of(env, argv[1], name, sizeof(name));
    int mode = (int)i64_of(env, argv[2]);
    uint32_t value = (uint32_t)i64_of(env, argv[3]);
    const shoal_attr *at = attr_of(env, argv[4], &a);
    void *p = NULL;
    int rc;
    switch (i64_of(env, argv[0])) {
    case SHOAL_KIND_LOCK:
        rc = shoal_lock_open((shoal_lock **)&p, n, mode, at);
        break;
    case SHOAL_KIND_RLOCK:
        rc = shoal_rlock_open((shoal_lock **)&p, n, mode, at);
        break;
    case SHOAL_KIND_SEMAPHORE:
        rc = shoal_sem_open((shoal_sem **)&p, n, mode, value, at);
        break;
    case SHOAL_KIND_BOUNDED_SEMAPHORE:
        rc = shoal_bsem_open((shoal_sem **)&p, n, mode, value, at);
        break;
    case SHOAL_KIND_CONDITION:
        rc = shoal_cond_open((shoal_cond **)&p, n, mode, at);
        break;
    case SHOAL_KIND_EVENT:
        rc = shoal_event_open((shoal_event **)&p, n, mode, at);
        break;
    case SHOAL_KIND_BARRIER:
        rc = shoal_barrier_open((shoal_barrier **)&p, n, mode, value, at);
        break;
    default:
        return throw_arg(env, "syncOpen: unknown kind");
    }
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r;
    napi_create_array_with_length(env, 2, &r);
    napi_set_element(env, r, 0, handle(env, p));
    napi_set_element(env, r, 1, str(env, shoal_sync_name(p)));
    return r;
}

/* lockAcquire(handle, timeoutNs) -> 0 or SHOAL_EOWNERDEAD (held), or SHOAL_EAGAIN /
 * SHOAL_ETIMEDOUT (not held); other errors throw. Runs on the calling (main) thread. */
static napi_value lock_acquire(napi_env env, napi_callback_info info)
{
    ARGS(2);
    shoal_lock *l = ptr_of(env, argv[0]);
    if (!l)
        return throw_arg(env, "lock: closed");
    int rc = shoal_lock_acquire(l, i64_of(env, argv[1]));
    if (rc == 0 || rc == SHOAL_EOWNERDEAD || rc == SHOAL_EAGAIN || rc == SHOAL_ETIMEDOUT)
        return num(env, rc);
    return throw_rc(env, rc);
}

/* Small calls on a primitive: syncCall(what, handle[, arg]) -> number. */
enum sync_call {
    LOCK_RELEASE,
    LOCK_LOCKED,
    LOCK_HOLDER_DIED,
    SEM_RELEASE,
    SEM_VALUE,
    COND_NOTIFY,
    COND_NOTIFY_ALL,
    EVENT_SET,
    EVENT_CLEAR,
    EVENT_IS_SET,
    BARRIER_ABORT,
    BARRIER_RESET,
    BARRIER_PARTIES,
    BARRIER_WAITING,
    BARRIER_BROKEN,
};

static napi_value sync_call(napi_env env, napi_callback_info info)
{
    ARGS(3);
    void *p = ptr_of(env, argv[1]);
    if (!p)
        return throw_arg(env, "closed object");
    uint32_t parties = 0, waiting = 0;
    int broken = 0, rc;
    switch (i64_of(env, argv[0])) {
    case LOCK_RELEASE:
        rc = shoal_lock_release(p);
        break;
    case LOCK_LOCKED:
        rc = shoal_lock_locked(p);
        break;
    case LOCK_HOLDER_DIED:
        rc = shoal_lock_holder_died(p);
        break;
    case SEM_RELEASE:
        rc = shoal_sem_release(p);
        break;
    case SEM_VALUE:
        rc = (int)shoal_sem_value(p);
        break;
    case COND_NOTIFY:
        rc = shoal_cond_notify(p, (uint32_t)i64_of(env, argv[2]));
        break;
    case COND_NOTIFY_ALL:
        rc = shoal_cond_notify_all(p);
        break;
    case EVENT_SET:
        rc = shoal_event_set(p);
        break;
    case EVENT_CLEAR:
        rc = shoal_event_clear(p);
        break;
    case EVENT_IS_SET:
        rc = shoal_event_is_set(p);
        break;
    case BARRIER_ABORT:
        rc = shoal_barrier_abort(p);
        break;
    case BARRIER_RESET:
        rc = shoal_barrier_reset(p);
        break;
    default:
        shoal_barrier_state(p, &parties, &waiting, &broken);
        rc = i64_of(env, argv[0]) == BARRIER_PARTIES   ? (int)parties
             : i64_of(env, argv[0]) == BARRIER_WAITING ? (int)waiting
                                                       : broken;
        break;
    }
    return rc < 0 ? throw_rc(env, rc) : num(env, rc);
}

/* condWait(cond, lock, timeoutNs) -> 0 or SHOAL_ETIMEDOUT / SHOAL_EOWNERDEAD; blocks
 * the calling thread (the lock's holder). */
static napi_value cond_wait(napi_env env, napi_callback_info info)
{
    ARGS(3);
    shoal_cond *c = ptr_of(env, argv[0]);
    shoal_lock *l = ptr_of(env, argv[1]);
    if (!c || !l)
        return throw_arg(env, "condition: closed");
    /* Returns holding the lock, at its depth, but for a lock that cannot be taken. */
    int rc = shoal_cond_wait(c, l, i64_of(env, argv[2]));
    if (rc == 0 || rc == SHOAL_ETIMEDOUT || rc == SHOAL_EOWNERDEAD)
        return num(env, rc);
    return throw_rc(env, rc);
}

/* ---- the Manager broker's client ----------------------------------------------------
 *
 * A connection is an external over shoal_manager (shoal/manager.h); lib/manager.js
 * owns it and closes it explicitly. Values cross as shoal_mv trees: mv_of() builds one
 * from a JS value and js_of() reads one back (the mapping is lib/manager.js's, in its
 * top comment). Every shoal_mv built here is taken by the C client or freed here, on
 * every path, errors included.
 *
 * A call runs on the calling thread: shoal_manager_submit then shoal_manager_wait (so
 * a pure read over shm:// is answered from the broker's read view, and a path reaches
 * a container nested in the object); an acquire without path or arguments runs as
 * shoal_manager_call, so over shm:// a Lock or RLock that must wait waits in the
 * broker's lock table instead of being parked in the broker. mgrCallAsync runs one on
 * libuv's thread pool (queue get/put, event and barrier waits, semaphore acquire, join,
 * and a lock's acquire after the main thread's try): the values are converted on the
 * main thread; an acquire is encoded here with the main thread's id in its thread
 * field and run by shoal_manager_call_raw (mgr_acquire_as), so the lock it takes,
 * waiting in the lock table or in the broker, is the main thread's; the connection is
 * counted as in use (shoal_manager_enter) from the moment the job is queued until its
 * call returned, so a close meanwhile wakes the call (SHOAL_ECLOSED) and waits for it
 * before freeing anything.
 */

#define MV_DEPTH 48 /* broker.proto's nesting limit (docs/broker.md, "Values") */

/* The JS classes and helpers of lib/manager.js: Tuple, Double, Pickled, Message, Map and
 * Object.prototype. */
enum { MC_TUPLE, MC_DOUBLE, MC_PICKLED, MC_MESSAGE, MC_MAP, MC_OBJECT_PROTO, MC_N };
static napi_ref mgr_classes[MC_N];

/* A conversion: its first error (code and text). */
typedef struct conv {
    napi_env env;
    int rc;
    char err[512];
} conv;

static shoal_mv *conv_fail(conv *c, int rc, const char *fmt, const char *what)
{
    if (c->rc == 0) {
        c->rc = rc;
        snprintf(c->err, sizeof(c->err), fmt, what);
    }
    return NULL;
}

static napi_value mgr_class(napi_env env, int which)
{
    napi_value v = NULL;
    if (mgr_classes[which])
        napi_get_reference_value(env, mgr_classes[which], &v);
    return v;
}

static bool is_instance(napi_env env, napi_value v, int which)
{
    napi_value cls = mgr_class(env, which);
    bool r = false;
    return cls && napi_instanceof(env, v, cls, &r) == napi_ok && r;
}

/* The name of v's constructor (for errors), into buf. */
static const char *ctor_name(napi_env env, napi_value v, char *buf, size_t cap)
{
    napi_value ctor, name;
    size_t n = 0;
    buf[0] = 0;
    if (napi_get_named_property(env, v, "constructor", &ctor) == napi_ok &&
        napi_get_named_property(env, ctor, "name", &name) == napi_ok &&
        napi_get_value_string_utf8(env, name, buf, cap, &n) == napi_ok && n)
        return buf;
    return "object";
}

static shoal_mv *mv_of(conv *c, napi_value v, int depth);

static shoal_mv *mv_string(conv *c, napi_value v)
{
    char stack[256], *s = stack;
    size_t n = 0;
    napi_get_value_string_utf8(c->env, v, stack, sizeof(stack), &n);
    if (n + 4 >= sizeof(stack)) { /* perhaps cut short (before a whole character) */
        napi_get_value_string_utf8(c->env, v, NULL, 0, &n);
        if (!(s = malloc(n + 1)))
            return conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
        napi_get_value_string_utf8(c->env, v, s, n + 1, &n);
    }
    shoal_mv *r = strlen(s) == n ? shoal_mv_str(s)
                                 : conv_fail(c, SHOAL_EINVAL, "%s",
                                             "a string holding a NUL character does not "
                                             "travel to the broker");
    if (s != stack)
        free(s);
    return r || c->rc ? r : conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
}

static shoal_mv *mv_number(conv *c, napi_value v)
{
    double d;
    napi_get_value_double(c->env, v, &d);
    /* a safe integer is an Int; any other number (1.5, 1e300, NaN) a Double */
    if (d >= -9007199254740991.0 && d <= 9007199254740991.0 && d == (double)(int64_t)d)
        return shoal_mv_int((int64_t)d);
    return shoal_mv_double(d);
}

static shoal_mv *mv_bigint(conv *c, napi_value v)
{
    int64_t x;
    bool lossless;
    napi_get_value_bigint_int64(c->env, v, &x, &lossless);
    if (!lossless)
        return conv_fail(c, SHOAL_ERANGE, "%s",
                         "a BigInt outside the 64-bit signed range of the broker's ints");
    return shoal_mv_int(x);
}

/* Items 0..n-1 of a JS array appended to seq (taken); seq, or NULL. */
static shoal_mv *mv_items(conv *c, shoal_mv *seq, napi_value arr, int depth)
{
    uint32_t n = 0;
    napi_get_array_length(c->env, arr, &n);
    for (uint32_t i = 0; seq && i < n; i++) {
        napi_value e;
        napi_get_element(c->env, arr, i, &e);
        shoal_mv *item = mv_of(c, e, depth + 1);
        if (!item || shoal_mv_append(seq, item) < 0) {
            shoal_mv_free(seq);
            seq = NULL;
        }
    }
    return seq || c->rc ? seq : conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
}

/* Entry k -> v put into map (taken); false (map freed) on failure. */
static bool mv_entry(conv *c, shoal_mv *map, napi_value k, napi_value v, int depth)
{
    shoal_mv *key = mv_of(c, k, depth + 1);
    shoal_mv *val = key ? mv_of(c, v, depth + 1) : NULL;
    if (!val) {
        shoal_mv_free(key);
        shoal_mv_free(map);
        return false;
    }
    if (shoal_mv_put(map, key, val) < 0) {
        shoal_mv_free(map);
        conv_fail(c, SHOAL_ETYPE, "%s",
                  "a map key must be null, a boolean, a number, a BigInt, a string, a "
                  "Buffer or a Tuple of those");
        return false;
    }
    return true;
}

/* A JS Map: its entries through Map.prototype.forEach would need a callback; the
 * entries() iterator is walked instead. */
static shoal_mv *mv_map(conv *c, napi_value m, int depth)
{
    napi_env env = c->env;
    shoal_mv *map = shoal_mv_map();
    napi_value fn, it, next, step, done, pair, k, v;
    bool d = false;
    if (!map)
        return conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
    if (napi_get_named_property(env, m, "entries", &fn) != napi_ok ||
        napi_call_function(env, m, fn, 0, NULL, &it) != napi_ok ||
        napi_get_named_property(env, it, "next", &next) != napi_ok) {
        shoal_mv_free(map);
        return conv_fail(c, SHOAL_EINVAL, "%s", "a Map whose entries cannot be read");
    }
    for (;;) {
        if (napi_call_function(env, it, next, 0, NULL, &step) != napi_ok ||
            napi_get_named_property(env, step, "done", &done) != napi_ok) {
            shoal_mv_free(map);
            return conv_fail(c, SHOAL_EINVAL, "%s", "a Map whose entries cannot be read");
        }
        napi_get_value_bool(env, done, &d);
        if (d)
            return map;
        napi_get_named_property(env, step, "value", &pair);
        napi_get_element(env, pair, 0, &k);
        napi_get_element(env, pair, 1, &v);
        if (!mv_entry(c, map, k, v, depth))
            return NULL;
    }
}

/* A plain object: its own enumerable string keys. */
static shoal_mv *mv_object(conv *c, napi_value o, int depth)
{
    napi_value keys, k, v;
    uint32_t n = 0;
    shoal_mv *map = shoal_mv_map();
    if (!map)
        return conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
    napi_get_all_property_names(c->env, o, napi_key_own_only,
                                napi_key_enumerable | napi_key_skip_symbols,
                                napi_key_numbers_to_strings, &keys);
    napi_get_array_length(c->env, keys, &n);
    for (uint32_t i = 0; i < n; i++) {
        napi_get_element(c->env, keys, i, &k);
        napi_get_property(c->env, o, k, &v);
        if (!mv_entry(c, map, k, v, depth))
            return NULL;
    }
    return map;
}

static shoal_mv *mv_bytes_of(conv *c, napi_value v, bool *handled)
{
    void *data = NULL;
    size_t len = 0;
    bool is = false;
    *handled = true;
    if (bytes_of(c->env, v, &data, &len))
        return shoal_mv_bytes(data, len);
    if (napi_is_arraybuffer(c->env, v, &is) == napi_ok && is &&
        napi_get_arraybuffer_info(c->env, v, &data, &len) == napi_ok)
        return shoal_mv_bytes(data, len);
    *handled = false;
    return NULL;
}

/* A Pickled (its bytes) or a Message (its type name and bytes), passed on as read. */
static shoal_mv *mv_opaque(conv *c, napi_value v, bool message)
{
    napi_value b, t;
    void *data = NULL;
    size_t len = 0, tlen = 0;
    char type[256];
    const char *what = message ? "a Message" : "a Pickled";
    if (napi_get_named_property(c->env, v, message ? "data" : "bytes", &b) != napi_ok ||
        !bytes_of(c->env, b, &data, &len))
        return conv_fail(c, SHOAL_ETYPE, "%s whose bytes are not a Buffer", what);
    if (!message) {
        shoal_mv *r = shoal_mv_pickle(data, len);
        return r ? r : conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
    }
    if (napi_get_named_property(c->env, v, "type", &t) != napi_ok ||
        napi_get_value_string_utf8(c->env, t, type, sizeof(type), &tlen) != napi_ok ||
        tlen == 0 || tlen >= sizeof(type) - 1 || strlen(type) != tlen)
        return conv_fail(c, SHOAL_ETYPE, "%s",
                         "a Message whose type is not a name (a string of 1 to 254 "
                         "characters, no NUL)");
    shoal_mv *r = shoal_mv_message(type, data, len);
    return r ? r : conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
}

static shoal_mv *mv_of_object(conv *c, napi_value v, int depth)
{
    napi_env env = c->env;
    bool is = false, handled;
    char name[64];
    if (napi_is_array(env, v, &is) == napi_ok && is)
        return mv_items(
            c, is_instance(env, v, MC_TUPLE) ? shoal_mv_tuple() : shoal_mv_list(), v,
            depth);
    shoal_mv *b = mv_bytes_of(c, v, &handled);
    if (handled)
        return b ? b : conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
    if (is_instance(env, v, MC_DOUBLE)) {
        napi_value x;
        double d = 0;
        napi_get_named_property(env, v, "value", &x);
        if (napi_get_value_double(env, x, &d) != napi_ok)
            return conv_fail(c, SHOAL_ETYPE, "%s", "a Double holding no number");
        return shoal_mv_double(d);
    }
    if (is_instance(env, v, MC_MAP))
        return mv_map(c, v, depth);
    if (is_instance(env, v, MC_MESSAGE))
        return mv_opaque(c, v, true);
    if (is_instance(env, v, MC_PICKLED))
        return mv_opaque(c, v, false);
    napi_value proto, object_proto = mgr_class(env, MC_OBJECT_PROTO);
    napi_valuetype pt;
    napi_get_prototype(env, v, &proto);
    napi_typeof(env, proto, &pt);
    bool plain = pt == napi_null;
    if (!plain && object_proto)
        napi_strict_equals(env, proto, object_proto, &plain);
    if (plain)
        return mv_object(c, v, depth);
    return conv_fail(c, SHOAL_ETYPE,
                     "a %s does not travel to the broker (values: null, boolean, number, "
                     "BigInt, string, Buffer, Array, Tuple, Map, plain object)",
                     ctor_name(env, v, name, sizeof(name)));
}

/* The shoal_mv of JS value v, or NULL with c's error set. */
static shoal_mv *mv_of(conv *c, napi_value v, int depth)
{
    if (depth > MV_DEPTH)
        return conv_fail(c, SHOAL_EINVAL, "%s",
                         "a value nested deeper than 48 levels (the broker's limit)");
    napi_valuetype t;
    napi_typeof(c->env, v, &t);
    shoal_mv *r = NULL;
    switch (t) {
    case napi_undefined:
    case napi_null:
        r = shoal_mv_none();
        break;
    case napi_boolean: {
        bool b;
        napi_get_value_bool(c->env, v, &b);
        r = shoal_mv_bool(b);
        break;
    }
    case napi_number:
        r = mv_number(c, v);
        break;
    case napi_bigint:
        return mv_bigint(c, v);
    case napi_string:
        return mv_string(c, v);
    case napi_object:
        return mv_of_object(c, v, depth);
    case napi_function:
        return conv_fail(c, SHOAL_ETYPE, "%s",
                         "a function does not travel to the broker");
    case napi_symbol:
        return conv_fail(c, SHOAL_ETYPE, "%s", "a Symbol does not travel to the broker");
    default:
        return conv_fail(c, SHOAL_ETYPE, "%s",
                         "this value does not travel to the broker");
    }
    return r ? r : conv_fail(c, SHOAL_ENOMEM, "%s", "out of memory");
}

/* The JS value of v (NULL with a pending exception when it cannot be read). */
static napi_value js_of(napi_env env, const shoal_mv *v);

static napi_value js_new(napi_env env, int which)
{
    napi_value cls = mgr_class(env, which), r = NULL;
    if (cls)
        napi_new_instance(env, cls, 0, NULL, &r);
    return r;
}

static napi_value js_seq(napi_env env, const shoal_mv *v, bool tuple)
{
    size_t n = shoal_mv_len(v);
    napi_value r = tuple ? js_new(env, MC_TUPLE) : NULL;
    if (!r)
        napi_create_array_with_length(env, n, &r);
    for (size_t i = 0; i < n; i++) {
        napi_value e = js_of(env, shoal_mv_item(v, i));
        if (!e)
            return NULL;
        napi_set_element(env, r, (uint32_t)i, e);
    }
    return r;
}

static napi_value js_map(napi_env env, const shoal_mv *v)
{
    napi_value r = js_new(env, MC_MAP), set;
    if (!r || napi_get_named_property(env, r, "set", &set) != napi_ok)
        return NULL;
    for (size_t i = 0, n = shoal_mv_len(v); i < n; i++) {
        napi_value kv[2] = {js_of(env, shoal_mv_key(v, i)), NULL}, ignored;
        if (!kv[0] || !(kv[1] = js_of(env, shoal_mv_value(v, i))))
            return NULL;
        napi_call_function(env, r, set, 2, kv, &ignored);
    }
    return r;
}

static napi_value js_buffer(napi_env env, const shoal_mv *v)
{
    size_t n;
    const void *p = shoal_mv_as_bytes(v, &n);
    napi_value r;
    void *copy;
    napi_create_buffer_copy(env, n, n ? p : "", &copy, &r);
    return r;
}

static napi_value js_of(napi_env env, const shoal_mv *v)
{
    napi_value r = NULL;
    switch (v ? shoal_mv_type(v) : SHOAL_MV_NONE) {
    case SHOAL_MV_NONE:
        napi_get_null(env, &r);
        return r;
    case SHOAL_MV_BOOL:
        return boolean(env, shoal_mv_as_bool(v));
    case SHOAL_MV_INT:
        return num(env, shoal_mv_as_int(v));
    case SHOAL_MV_DOUBLE:
        napi_create_double(env, shoal_mv_as_double(v), &r);
        return r;
    case SHOAL_MV_STR:
        return str(env, shoal_mv_as_str(v));
    case SHOAL_MV_BYTES:
        return js_buffer(env, v);
    case SHOAL_MV_LIST:
        return js_seq(env, v, false);
    case SHOAL_MV_TUPLE:
        return js_seq(env, v, true);
    case SHOAL_MV_MAP:
        return js_map(env, v);
    case SHOAL_MV_PICKLE: {
        napi_value cls = mgr_class(env, MC_PICKLED), b = js_buffer(env, v);
        if (cls)
            napi_new_instance(env, cls, 1, &b, &r);
        return r;
    }
    case SHOAL_MV_MESSAGE: {
        napi_value cls = mgr_class(env, MC_MESSAGE);
        napi_value args[2] = {str(env, shoal_mv_message_type(v)), js_buffer(env, v)};
        if (cls)
            napi_new_instance(env, cls, 2, args, &r);
        return r;
    }
    default:
        napi_throw(env, make_error(env, SHOAL_ETYPE,
                                   "a value of a kind this client "
                                   "does not know"));
        return NULL;
    }
}

/* mgrSetClasses(Tuple, Double, Pickled, Message, Map, Object.prototype) */
static napi_value mgr_set_classes(napi_env env, napi_callback_info info)
{
    ARGS(MC_N);
    for (int i = 0; i < MC_N; i++) {
        if (mgr_classes[i])
            napi_delete_reference(env, mgr_classes[i]);
        napi_create_reference(env, argv[i], 1, &mgr_classes[i]);
    }
    return undef(env);
}

static shoal_manager *mgr_of(napi_env env, napi_value v)
{
    shoal_manager *m = ptr_of(env, v);
    if (!m)
        throw_arg(env, "manager: closed");
    return m;
}

/* mgrConnect(address, {connectTimeoutNs, token, root, domain, tlsCa, tlsCert, tlsKey,
 * tlsServerName}) -> handle. Waits for the connection on the calling thread. */
static napi_value mgr_connect(napi_env env, napi_callback_info info)
{
    ARGS(2);
    char *address = dup_str(env, argv[0]);
    char *s[5] = {0};
    static const char *const keys[5] = {"token", "tlsCa", "tlsCert", "tlsKey",
                                        "tlsServerName"};
    attr_buf a;
    shoal_manager_config cfg = {0};
    if (!address)
        return throw_arg(env, "manager: the address must be a string");
    if (!is_nullish(env, argv[1])) {
        napi_value x;
        for (int i = 0; i < 5; i++)
            if (napi_get_named_property(env, argv[1], keys[i], &x) == napi_ok &&
                !is_nullish(env, x))
                s[i] = dup_str(env, x);
        if (napi_get_named_property(env, argv[1], "connectTimeoutNs", &x) == napi_ok &&
            !is_nullish(env, x))
            cfg.connect_timeout = i64_of(env, x);
        cfg.attr = attr_of(env, argv[1], &a);
    }
    cfg.token = s[0];
    cfg.tls_ca_file = s[1];
    cfg.tls_cert_file = s[2];
    cfg.tls_key_file = s[3];
    cfg.tls_server_name = s[4];
    shoal_manager *m = NULL;
    int rc = shoal_manager_connect(&m, address, &cfg);
    free(address);
    for (int i = 0; i < 5; i++)
        free(s[i]);
    return rc < 0 ? throw_rc(env, rc) : handle(env, m);
}

/* mgrClose(handle): ends the session (what was sent has run) and frees it. */
static napi_value mgr_close(napi_env env, napi_callback_info info)
{
    ARGS(1);
    shoal_manager_close(ptr_of(env, argv[0]));
    return undef(env);
}

/* The most arguments (and path keys) of a request: the broker's operations take 3. */
#define MGR_MAX_ARGS 8
/* The fixed arguments of mgrCall, mgrSubmit and mgrCallAsync: (handle, name, path|null,
 * op, timeoutNs, soft), then the operation's arguments. */
#define MGR_FIXED 6

/* A request's parts, converted from JS (freed by mgr_req_free unless submitted). */
typedef struct mgr_req {
    shoal_manager_request r;
    char name[SHOAL_NAME_MAX + 64], op[32];
    char *long_name; /* a name longer than name[] holds (malloc'ed), or NULL */
    shoal_mv *path[MV_DEPTH], *args[MGR_MAX_ARGS];
} mgr_req;

static void mv_free_all(shoal_mv **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        shoal_mv_free(v[i]);
}

static void mgr_req_free(mgr_req *q)
{
    free(q->long_name);
    q->long_name = NULL;
    mv_free_all(q->path, q->r.npath);
    mv_free_all(q->args, q->r.nargs);
    q->r.npath = q->r.nargs = 0;
}

/* The keys of a path (a JS array, or null: none) into v[*n] (at most MV_DEPTH). */
static bool mv_array(conv *c, napi_value arr, shoal_mv **v, size_t *n)
{
    uint32_t len = 0;
    *n = 0;
    if (is_nullish(c->env, arr))
        return true;
    napi_get_array_length(c->env, arr, &len);
    if (len > MV_DEPTH) {
        conv_fail(c, SHOAL_EINVAL, "%s",
                  "a path of more than 48 keys (the broker's limit)");
        return false;
    }
    for (uint32_t i = 0; i < len; i++) {
        napi_value e;
        napi_get_element(c->env, arr, i, &e);
        if (!(v[i] = mv_of(c, e, 1)))
            return false;
        *n = i + 1;
    }
    return true;
}

/* The values vals[n] into v[n] (n <= MGR_MAX_ARGS). */
static bool mv_list(conv *c, const napi_value *vals, size_t n, shoal_mv **v, size_t *done)
{
    *done = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] = mv_of(c, vals[i], 1)))
            return false;
        *done = i + 1;
    }
    return true;
}

/* (handle, name, path|null, op, timeoutNs, soft, args...) — argc values — into q;
 * false with an exception thrown (q freed). */
static bool mgr_req_of(napi_env env, const napi_value *argv, size_t argc, mgr_req *q)
{
    conv c = {env, 0, ""};
    memset(&q->r, 0, sizeof(q->r));
    size_t n = 0, nop = 0;
    q->long_name = NULL;
    if (napi_get_value_string_utf8(env, argv[1], q->name, sizeof(q->name), &n) !=
            napi_ok ||
        napi_get_value_string_utf8(env, argv[3], q->op, sizeof(q->op), &nop) != napi_ok) {
        throw_arg(env, "manager: the object's name and the operation must be strings");
        return false;
    }
    /* a name perhaps cut short (before a whole character) is read again, whole (the
     * broker says what is too long) */
    if (n + 4 >= sizeof(q->name) && !(q->long_name = dup_str(env, argv[1]))) {
        throw_rc(env, SHOAL_ENOMEM);
        return false;
    }
    q->r.name = q->long_name ? q->long_name : q->name;
    q->r.op = q->op;
    q->r.timeout = i64_of(env, argv[4]);
    q->r.path = q->path;
    q->r.args = q->args;
    bool ok = mv_array(&c, argv[2], q->path, &q->r.npath) &&
              mv_list(&c, argv + MGR_FIXED, argc - MGR_FIXED, q->args, &q->r.nargs);
    if (!ok) {
        mgr_req_free(q);
        char msg[700];
        snprintf(msg, sizeof(msg), "%s %s: %s", q->name, q->op, c.err);
        napi_throw(env, make_error(env, c.rc, msg));
    }
    return ok;
}

/* Submits q (its values taken); the id, or a negative code. */
static int mgr_submit_req(shoal_manager *m, mgr_req *q, uint64_t *id)
{
    int rc = shoal_manager_submit(m, &q->r, id);
    free(q->long_name);
    q->long_name = NULL;
    return rc;
}

/* The JS result of a reply: its value (null when none); the shoal_mv is freed. */
static napi_value mgr_result(napi_env env, shoal_mv *res)
{
    napi_value r = js_of(env, res);
    shoal_mv_free(res);
    return r;
}

/* The arguments of mgrCall, mgrSubmit and mgrCallAsync (the fixed ones, then the
 * operation's): argc of them in argv. */
#define MGR_ARGS                                                                         \
    size_t argc = MGR_FIXED + MGR_MAX_ARGS + 1;                                          \
    napi_value argv[MGR_FIXED + MGR_MAX_ARGS + 1];                                       \
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);                                \
    if (argc < MGR_FIXED || argc > MGR_FIXED + MGR_MAX_ARGS)                             \
        return throw_arg(env, "manager: a request of 0 to 8 arguments");

/* mgrCall(handle, name, path, op, timeoutNs, soft, args...) -> result; throws the
 * reply's error. soft: returns [rc, result] instead, rc 0 or a negative code (for
 * waits whose timeout and owner-died are results, not errors). */
static napi_value mgr_call(napi_env env, napi_callback_info info)
{
    MGR_ARGS;
    shoal_manager *m = mgr_of(env, argv[0]);
    mgr_req q;
    if (!m || !mgr_req_of(env, argv, argc, &q))
        return NULL;
    bool soft = false;
    napi_get_value_bool(env, argv[5], &soft);
    uint64_t id;
    shoal_mv *res = NULL;
    int rc;
    if (!q.r.npath && !q.r.nargs && !strcmp(q.op, "acquire")) {
        /* a call: a lock's acquire that must wait waits in the lock table */
        rc = shoal_manager_call(m, q.r.name, q.op, q.r.timeout, &res, 0);
        free(q.long_name);
    } else {
        rc = mgr_submit_req(m, &q, &id);
        if (rc == 0)
            rc = shoal_manager_wait(m, id, &res);
    }
    if (!soft)
        return rc < 0 ? throw_rc(env, rc) : mgr_result(env, res);
    napi_value pair, value = mgr_result(env, res);
    if (!value)
        return NULL;
    napi_create_array_with_length(env, 2, &pair);
    napi_set_element(env, pair, 0, num(env, rc));
    napi_set_element(env, pair, 1, value);
    if (rc < 0) /* the detail, for the caller's error */
        napi_set_named_property(env, pair, "detail", str(env, shoal_errdetail()));
    return pair;
}

/* mgrSubmit(handle, name, path, op, timeoutNs, soft, args...) -> id (pipelining). */
static napi_value mgr_submit(napi_env env, napi_callback_info info)
{
    MGR_ARGS;
    shoal_manager *m = mgr_of(env, argv[0]);
    mgr_req q;
    if (!m || !mgr_req_of(env, argv, argc, &q))
        return NULL;
    uint64_t id;
    int rc = mgr_submit_req(m, &q, &id);
    return rc < 0 ? throw_rc(env, rc) : num(env, (int64_t)id);
}

/* mgrWait(handle, id) -> the result of the submitted request id; throws its error. */
static napi_value mgr_wait(napi_env env, napi_callback_info info)
{
    ARGS(2);
    shoal_manager *m = mgr_of(env, argv[0]);
    if (!m)
        return NULL;
    shoal_mv *res = NULL;
    int rc = shoal_manager_wait(m, u64_of(env, argv[1]), &res);
    return rc < 0 ? throw_rc(env, rc) : mgr_result(env, res);
}

/* mgrFlush(handle): writes what submits kept (ipc://, tcp://). */
static napi_value mgr_flush(napi_env env, napi_callback_info info)
{
    ARGS(1);
    shoal_manager *m = mgr_of(env, argv[0]);
    int rc = m ? shoal_manager_flush(m) : 0;
    return !m ? NULL : rc < 0 ? throw_rc(env, rc) : undef(env);
}

/* mgrCreate(handle, name, kind, init, typecode|null) -> 1 created, 0 opened. */
static napi_value mgr_create(napi_env env, napi_callback_info info)
{
    ARGS(5);
    shoal_manager *m = mgr_of(env, argv[0]);
    char tc[8];
    conv c = {env, 0, ""};
    if (!m)
        return NULL;
    const char *typecode = str_of(env, argv[4], tc, sizeof(tc));
    shoal_mv *init = is_nullish(env, argv[3]) ? NULL : mv_of(&c, argv[3], 1);
    if (c.rc)
        return napi_throw(env, make_error(env, c.rc, c.err)), NULL;
    char *n = dup_str(env, argv[1]); /* whole: the broker says what is too long */
    if (!n)
        return shoal_mv_free(init), throw_arg(env, "manager: the name must be a string");
    int rc = shoal_manager_create(m, n, (shoal_manager_kind)i64_of(env, argv[2]), init,
                                  typecode);
    free(n);
    return rc < 0 ? throw_rc(env, rc) : num(env, rc);
}

/* mgrDelete(handle, name) */
static napi_value mgr_delete(napi_env env, napi_callback_info info)
{
    ARGS(2);
    shoal_manager *m = mgr_of(env, argv[0]);
    char *name = m ? dup_str(env, argv[1]) : NULL;
    if (!name)
        return m ? throw_arg(env, "manager: the name must be a string") : NULL;
    int rc = shoal_manager_delete(m, name);
    free(name);
    return rc < 0 ? throw_rc(env, rc) : undef(env);
}

/* mgrViewStats(handle) -> [uses a view (bool), hits, misses] */
static napi_value mgr_view_stats(napi_env env, napi_callback_info info)
{
    ARGS(1);
    shoal_manager *m = mgr_of(env, argv[0]);
    uint64_t hits = 0, misses = 0;
    if (!m)
        return NULL;
    int rc = shoal_manager_view_stats(m, &hits, &misses);
    if (rc < 0)
        return throw_rc(env, rc);
    napi_value r;
    napi_create_array_with_length(env, 3, &r);
    napi_set_element(env, r, 0, boolean(env, rc == 1));
    napi_set_element(env, r, 1, num(env, (int64_t)hits));
    napi_set_element(env, r, 2, num(env, (int64_t)misses));
    return r;
}

/* A call run on libuv's thread pool (see the top of this section). */
typedef struct mgr_job {
    shoal_manager *m;
    mgr_req q;
    uint64_t thread; /* a lock's acquire: the main thread's id, else 0 */
    int rc;
    shoal_mv *res;
    char detail[1024];
    napi_deferred deferred;
    napi_async_work work;
} mgr_job;

/* A lock's acquire as broker.proto's Request (the fields it has), and its Reply (the
 * fields read: the result is skipped), for shoal_pb_encode / shoal_pb_decode. */
typedef struct {
    uint64_t id;
    struct {
        uint32_t len;
        char data[SHOAL_NAME_MAX + 64];
    } object, op;
    int64_t timeout_ms;
    uint64_t thread;
} mgr_pb_request;
typedef struct {
    uint64_t id;
    int32_t status;
    struct {
        uint32_t len;
        char data[1024];
    } error;
} mgr_pb_reply;

#define MGR_PB_STR(n, T, f)                                                              \
    {                                                                                    \
        n, 9, 0, offsetof(T, f), 0, sizeof(((T *)0)->f), 0, sizeof(((T *)0)->f.data), 0, \
            NULL, #f                                                                     \
    }
static const shoal_pb_field mgr_pb_request_fields[] = {
    {1, 4, 0, offsetof(mgr_pb_request, id), 0, 8, 0, 0, 0, NULL, "id"},
    MGR_PB_STR(2, mgr_pb_request, object),
    MGR_PB_STR(4, mgr_pb_request, op),
    {6, 18, 0, offsetof(mgr_pb_request, timeout_ms), 0, 8, 0, 0, 0, NULL, "timeout_ms"},
    {7, 4, 0, offsetof(mgr_pb_request, thread), 0, 8, 0, 0, 0, NULL, "thread"},
};
static const mgr_pb_request mgr_pb_request_init;
static const shoal_pb_message mgr_pb_request_msg = {
    "shoal.broker.Request", sizeof(mgr_pb_request), &mgr_pb_request_init, 5,
    mgr_pb_request_fields};
static const shoal_pb_field mgr_pb_reply_fields[] = {
    {1, 4, 0, offsetof(mgr_pb_reply, id), 0, 8, 0, 0, 0, NULL, "id"},
    {2, 17, 0, offsetof(mgr_pb_reply, status), 0, 4, 0, 0, 0, NULL, "status"},
    MGR_PB_STR(3, mgr_pb_reply, error),
};
static const mgr_pb_reply mgr_pb_reply_init;
static const shoal_pb_message mgr_pb_reply_msg = {
    "shoal.broker.Reply", sizeof(mgr_pb_reply), &mgr_pb_reply_init, 3,
    mgr_pb_reply_fields};

/*
 * Runs j's acquire (of a Lock, RLock or Condition: no path, no arguments) as the main
 * thread, j->thread, with shoal_manager_call_raw: over shm:// a lock of the broker's
 * lock table that must wait waits there, on this pool thread, and the lock is held by
 * the main thread (which releases it), as when acquired there. The status, or a
 * negative code.
 */
static int mgr_acquire_as(mgr_job *j)
{
    mgr_pb_request q = {.id = shoal_manager_next_id(j->m),
                        .timeout_ms =
                            j->q.r.timeout < 0 ? -1 : (j->q.r.timeout + 999999) / 1000000,
                        .thread = j->thread};
    q.object.len = (uint32_t)strlen(j->q.r.name);
    memcpy(q.object.data, j->q.r.name, q.object.len);
    q.op.len = 7;
    memcpy(q.op.data, "acquire", 7);
    uint8_t buf[sizeof(q) + 64];
    size_t len, rlen;
    void *reply;
    int rc = shoal_pb_encode(&mgr_pb_request_msg, &q, buf, sizeof(buf), &len);
    if (rc == 0)
        rc = shoal_manager_call_raw(j->m, buf, len, &reply, &rlen);
    if (rc < 0)
        return rc;
    mgr_pb_reply r = mgr_pb_reply_init;
    rc = shoal_pb_decode(&mgr_pb_reply_msg, &r, reply, rlen);
    shoal_manager_free(reply);
    if (rc == 0 && r.status < 0)
        snprintf(j->detail, sizeof(j->detail), "%.*s", (int)r.error.len, r.error.data);
    return rc < 0 ? rc : r.status;
}

static void mgr_job_execute(napi_env env, void *data)
{
    (void)env;
    mgr_job *j = data;
    uint64_t id;
    if (j->thread) {
        j->rc = mgr_acquire_as(j);
        mgr_req_free(&j->q);
    } else {
        j->rc = mgr_submit_req(j->m, &j->q, &id);
        if (j->rc == 0)
            j->rc = shoal_manager_wait(j->m, id, &j->res);
    }
    if (j->rc < 0 && !j->detail[0])
        snprintf(j->detail, sizeof(j->detail), "%s", shoal_errdetail());
    shoal_manager_leave(j->m); /* from here on a close may free m */
}

/* Resolves [rc, result] (rc 0 or a negative code: the caller decides what is an
 * error; the detail in .detail). */
static void mgr_job_complete(napi_env env, napi_status status, void *data)
{
    mgr_job *j = data;
    napi_value pair, value = NULL, exc;
    if (status == napi_ok)
        value = mgr_result(env, j->res);
    else
        shoal_mv_free(j->res);
    if (!value) {
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (pending)
            napi_get_and_clear_last_exception(env, &exc);
        else
            exc = make_error(env, SHOAL_ESYS, "manager: the call was cancelled");
        napi_reject_deferred(env, j->deferred, exc);
    } else {
        napi_create_array_with_length(env, 2, &pair);
        napi_set_element(env, pair, 0, num(env, j->rc));
        napi_set_element(env, pair, 1, value);
        napi_set_named_property(env, pair, "detail", str(env, j->detail));
        napi_resolve_deferred(env, j->deferred, pair);
    }
    napi_delete_async_work(env, j->work);
    free(j);
}

/* mgrCallAsync(handle, name, path, op, timeoutNs, soft, args...) -> Promise of
 * [rc, result] (soft is ignored: the caller decides). */
static napi_value mgr_call_async(napi_env env, napi_callback_info info)
{
    MGR_ARGS;
    shoal_manager *m = mgr_of(env, argv[0]);
    if (!m)
        return NULL;
    mgr_job *j = calloc(1, sizeof(*j));
    if (!j)
        return throw_rc(env, SHOAL_ENOMEM);
    if (!mgr_req_of(env, argv, argc, &j->q)) {
        free(j);
        return NULL;
    }
    int rc = shoal_manager_enter(m);
    if (rc < 0) {
        mgr_req_free(&j->q);
        free(j);
        return throw_rc(env, rc);
    }
    j->m = m;
    if (!j->q.r.npath && !j->q.r.nargs && !j->q.long_name && !strcmp(j->q.op, "acquire"))
        j->thread = (uint64_t)pthread_self(); /* the holder, as in mgrCall */
    napi_value promise, name;
    napi_create_promise(env, &j->deferred, &promise);
    napi_create_string_utf8(env, "shoal.manager", NAPI_AUTO_LENGTH, &name);
    napi_create_async_work(env, NULL, name, mgr_job_execute, mgr_job_complete, j,
                           &j->work);
    napi_queue_async_work(env, j->work);
    return promise;
}

/* ---- misc -------------------------------------------------------------------------- */

static napi_value set_error_class(napi_env env, napi_callback_info info)
{
    ARGS(1);
    if (error_class)
        napi_delete_reference(env, error_class);
    napi_create_reference(env, argv[0], 1, &error_class);
    return undef(env);
}

static napi_value set_spin_ns(napi_env env, napi_callback_info info)
{
    ARGS(1);
    shoal_set_spin_ns(i64_of(env, argv[0]));
    return undef(env);
}

/* typeInfo(type) -> {name, size, hash} as libshoal sees it (checks descriptors). */
static napi_value type_info(napi_env env, napi_callback_info info)
{
    ARGS(1);
    TYPE_ARG(t, argv[0], false);
    napi_value r, h;
    napi_create_object(env, &r);
    napi_set_named_property(env, r, "name", str(env, t->name));
    napi_set_named_property(env, r, "size", num(env, t->size));
    napi_set_named_property(env, r, "align", num(env, t->align));
    napi_create_bigint_uint64(env, t->layout_hash, &h);
    napi_set_named_property(env, r, "hash", h);
    return r;
}

#define FN(name, fn)                                                                     \
    {                                                                                    \
        name, NULL, fn, NULL, NULL, NULL, napi_default, NULL                             \
    }

static napi_value init(napi_env env, napi_value exports)
{
    napi_property_descriptor fns[] = {
        FN("setErrorClass", set_error_class),
        FN("setSpinNs", set_spin_ns),
        FN("typeInfo", type_info),
        FN("close", close_handle),
        FN("unlink", unlink_name),
        FN("shmOpen", shm_open),
        FN("valueOpen", value_open),
        FN("valueRead", value_read),
        FN("valueWrite", value_write),
        FN("valueSnapshot", value_snapshot),
        FN("valueAtomic", value_atomic),
        FN("arrayOpen", array_open),
        FN("arrayCopy", array_copy),
        FN("arrayAdd", array_add),
        FN("queueOpen", queue_open),
        FN("queueStats", queue_stats),
        FN("queueShutdown", queue_shutdown),
        FN("pipeOpen", pipe_open),
        FN("pipePair", pipe_pair),
        FN("tryOp", try_op),
        FN("startAsync", start_async),
        FN("syncOpen", sync_open),
        FN("syncCall", sync_call),
        FN("lockAcquire", lock_acquire),
        FN("condWait", cond_wait),
        FN("rpcOpen", rpc_open),
        FN("rpcChannelClose", rpc_channel_close),
        FN("rpcStart", rpc_start),
        FN("rpcSend", rpc_send),
        FN("rpcRecv", rpc_recv),
        FN("rpcFinish", rpc_finish),
        FN("rpcCallOp", rpc_call_op),
        FN("rpcCodeName", rpc_code_name),
        FN("rpcServe", rpc_serve),
        FN("rpcServerStop", rpc_server_stop),
        FN("rpcCtxRecv", rpc_ctx_recv),
        FN("rpcCtxSend", rpc_ctx_send),
        FN("rpcCtxInfo", rpc_ctx_info),
        FN("rpcCtxAddMd", rpc_ctx_add_md),
        FN("rpcCtxDone", rpc_ctx_done),
        FN("pbTable", pb_table),
        FN("pbEncode", pb_encode),
        FN("pbDecode", pb_decode),
        FN("mgrSetClasses", mgr_set_classes),
        FN("mgrConnect", mgr_connect),
        FN("mgrClose", mgr_close),
        FN("mgrCreate", mgr_create),
        FN("mgrDelete", mgr_delete),
        FN("mgrCall", mgr_call),
        FN("mgrCallAsync", mgr_call_async),
        FN("mgrSubmit", mgr_submit),
        FN("mgrWait", mgr_wait),
        FN("mgrFlush", mgr_flush),
        FN("mgrViewStats", mgr_view_stats),
    };
    napi_define_properties(env, exports, sizeof(fns) / sizeof(fns[0]), fns);
    return exports;
}

NAPI_MODULE(shoal, init)
