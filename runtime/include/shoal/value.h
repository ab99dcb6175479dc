/*
 * shoal/value.h — Value and Array: typed scalars, structs and fixed-length arrays in
 * shared memory, like multiprocessing.Value and multiprocessing.Array.
 *
 * Locking (shoal_attr.lock): by default each object carries a robust recursive lock
 * (SHOAL_LOCK_RLOCK) that read/write/get/set take for you and that
 * shoal_value_get_lock() exposes for compound updates; SHOAL_LOCK_NONE gives raw
 * access; SHOAL_LOCK_CALLER uses a named Lock/RLock of the caller's (every process
 * that opens the object then uses that same lock). If a holder of the object's lock
 * died, the operations below take the lock over and carry on: a Value's struct is
 * double-buffered, so a half-finished write is simply discarded.
 *
 * Integer scalars also support lock-free atomic add, exchange and compare-exchange
 * (`v += 1` through read and write is not atomic; shoal_value_add is).
 *
 * shoal_value_snapshot() reads a struct consistently without taking the lock and
 * without ever blocking a writer (a seqlock over two buffers).
 */
#ifndef SHOAL_VALUE_H
#define SHOAL_VALUE_H

#include "common.h"
#include "sync.h"
#include "type.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shoal_value shoal_value;
typedef struct shoal_array shoal_array;

/* ---- Value ------------------------------------------------------------------------- */

/*
 * Opens or creates the Value `name` (NULL: a new anonymous one) of element `type`
 * (e.g. shoal_typecode('d')). `init` (may be NULL: zeros) is the initial value,
 * type->size bytes, used only when creating. With SHOAL_OPEN, type may be NULL to
 * open the value as whatever type it holds (see shoal_value_type()).
 * Returns 0 and sets *out, or SHOAL_EINVAL, SHOAL_ENAME, SHOAL_ENOENT, SHOAL_EEXIST,
 * SHOAL_EKIND, SHOAL_ELAYOUT (the object holds another type), SHOAL_ECORRUPT,
 * SHOAL_ETRUNCATED, SHOAL_EFOREIGN, SHOAL_EVERSION, SHOAL_ENOSPC, SHOAL_EACCES,
 * SHOAL_ENOMEM, SHOAL_ESYS.
 */
SHOAL_API int shoal_value_open(shoal_value **out, const char *name, int mode,
                               const shoal_type *type, const void *init,
                               const shoal_attr *attr);
/* Releases the handle; an anonymous value is removed once its last user closes. */
SHOAL_API int shoal_value_close(shoal_value *v);
SHOAL_API const char *shoal_value_name(const shoal_value *v);
SHOAL_API const shoal_type *shoal_value_type(const shoal_value *v);

/*
 * Copies the value out / in, under the value's lock if it has one, waiting as long as
 * a live thread holds it (a holder that dies is detected: its lock is taken over, the
 * death counted, the value read or written). Returns 0.
 */
SHOAL_API int shoal_value_read(shoal_value *v, void *out);
/*
 * shoal_value_read waiting at most `timeout` for the value's lock. Returns 0, or
 * SHOAL_ETIMEDOUT when a live thread held the lock past the timeout (at once for
 * SHOAL_NOWAIT while it is held): *out is then untouched and the lock is not held.
 */
SHOAL_API int shoal_value_read_timed(shoal_value *v, void *out, shoal_duration timeout);
SHOAL_API int shoal_value_write(shoal_value *v, const void *in);

/* Copies the value out without locking and without blocking writers; the copy is
 * never torn. Returns 0. */
SHOAL_API int shoal_value_snapshot(shoal_value *v, void *out);

/*
 * In-place update of a struct: shoal_value_modify() returns a private copy of the
 * current value to change, shoal_value_commit() publishes it atomically. Hold the
 * value's lock (or own the value exclusively) between the two; with SHOAL_LOCK_NONE
 * modify claims the writer slot itself.
 */
SHOAL_API void *shoal_value_modify(shoal_value *v);
SHOAL_API int shoal_value_commit(shoal_value *v);

/* The current value in place, for reading under the lock. For scalars also for
 * writing; for structs use write or modify/commit. */
SHOAL_API void *shoal_value_data(shoal_value *v);

/* The value's lock (NULL with SHOAL_LOCK_NONE). */
SHOAL_API shoal_lock *shoal_value_get_lock(shoal_value *v);

/*
 * Atomic operations on integer scalars (typecodes b B h H i I l L q Q c); the value is
 * passed sign- or zero-extended to 64 bits and wraps at the type's width.
 * *old (may be NULL) receives the previous value. Return 0, or SHOAL_ETYPE for a
 * float, double or struct. shoal_value_cas stores `desired` if the value equals
 * *expected and returns 0; otherwise stores the current value in *expected and
 * returns SHOAL_EAGAIN.
 */
SHOAL_API int shoal_value_add(shoal_value *v, int64_t delta, int64_t *old);
SHOAL_API int shoal_value_exchange(shoal_value *v, int64_t desired, int64_t *old);
SHOAL_API int shoal_value_cas(shoal_value *v, int64_t *expected, int64_t desired);
/* Atomically loads / stores an integer scalar. Returns 0 or SHOAL_ETYPE. */
SHOAL_API int shoal_value_load(shoal_value *v, int64_t *out);
SHOAL_API int shoal_value_store(shoal_value *v, int64_t in);

/* ---- Array ------------------------------------------------------------------------- */

/*
 * Opens or creates the Array `name` (NULL: anonymous) of `count` elements of `type`.
 * `init` (may be NULL: zeros) holds count elements, used only when creating. With
 * SHOAL_OPEN, count 0 accepts any length and a NULL type any element type. Errors as
 * shoal_value_open, and SHOAL_ELAYOUT when the length differs.
 */
SHOAL_API int shoal_array_open(shoal_array **out, const char *name, int mode,
                               const shoal_type *type, size_t count, const void *init,
                               const shoal_attr *attr);
SHOAL_API int shoal_array_close(shoal_array *a);
SHOAL_API const char *shoal_array_name(const shoal_array *a);
SHOAL_API const shoal_type *shoal_array_type(const shoal_array *a);
SHOAL_API size_t shoal_array_len(const shoal_array *a);

/* Element access under the array's lock. Return 0 or SHOAL_ERANGE. */
SHOAL_API int shoal_array_get(shoal_array *a, size_t index, void *out);
SHOAL_API int shoal_array_set(shoal_array *a, size_t index, const void *in);
/* Copies n elements from/to index start. Return 0 or SHOAL_ERANGE. */
SHOAL_API int shoal_array_read(shoal_array *a, size_t start, size_t n, void *out);
SHOAL_API int shoal_array_write(shoal_array *a, size_t start, size_t n, const void *in);
/* Atomic add on an integer element. Returns 0, SHOAL_ERANGE or SHOAL_ETYPE. */
SHOAL_API int shoal_array_add(shoal_array *a, size_t index, int64_t delta, int64_t *old);

/* The elements in place, for access under the lock. */
SHOAL_API void *shoal_array_data(shoal_array *a);
SHOAL_API shoal_lock *shoal_array_get_lock(shoal_array *a);

#ifdef __cplusplus
}
#endif
#endif
