/*
 * _speedups.c — the hot paths of the shoal Python binding, in C.
 *
 * Through ctypes, every libshoal call costs a few hundred nanoseconds of argument
 * conversion, and every Python-level method call adds its own frame: a locked
 * increment (`with v.get_lock(): v.value += 1`) makes four of each. This module
 * gives the binding's classes C base types whose methods do the common case
 * entirely in C, and hand everything else back to the Python methods of the same
 * object:
 *
 *   LockBase   acquire / release / __enter__ / __exit__ of shoal.Lock and RLock: a
 *              try-acquire that holds the GIL (it never waits); anything but
 *              success (contention, a dead owner, an error, a handle not yet valid
 *              in this process) calls self._acquire_slow(rc, block, timeout,
 *              raise_owner_died) or self._raise_rc(rc), which wait with the GIL
 *              released and raise.
 *   ValueBase  the `value` attribute of shoal.Value for scalars: read or written in
 *              place under the object's lock, taken without releasing the GIL when
 *              it is free, skipped when this thread holds it through its Lock
 *              object; otherwise self._value_slow() / self._value_slow_set(x).
 *   ArrayBase  integer indexing of shoal.Array's scalar elements, the same way;
 *              slices, struct elements and everything else go to
 *              self._getitem_slow(i) / self._setitem_slow(i, x).
 *   TypedBase  put / get of shoal.TypedQueue for elements of its struct class: the
 *              element's bytes go straight between the ctypes object and the ring
 *              slot, checked by the class's generated validation function called
 *              directly; a new element is made without running __init__. Anything
 *              else (conversions, typecodes, timeouts, a full queue, a handle to
 *              re-attach) goes to self._put_py / self._get_py / self._put_wait.
 *   queue_try_put, queue_try_get, pipe_send, pipe_recv: the non-blocking byte
 *              transfers of Queue, TypedQueue and Connection (a bytes-like object
 *              in, a writable buffer out), returning the libshoal rc;
 *   queue_get_wait, pipe_recv_wait: the same receives, waiting as long as it takes;
 *              value_add: Value.fetch_add.
 *   plain      whether an object is only builtin scalars, tuples and lists, which
 *              pickle the same with or without multiprocessing's reducers (so
 *              the faster pickle.dumps serves).
 *   ManagerBase the requests and replies of a shoal.Manager session: one C call per
 *              proxied operation encodes broker.proto's Request, sends it, and waits
 *              for and decodes the Reply, or adds a pipelined write to its thread's
 *              batch (the section's own comment says more); encode_value and
 *              decode_value expose its Value codec.
 *   ProxyBase  the base of shoal.Manager's proxies: their _op and _write, and dict
 *              __getitem__ / __setitem__, list append and a lock's acquire, release,
 *              __enter__ and __exit__, in C over ManagerBase (no Python frame);
 *              with arguments, a lock's acquire and release call the Python methods
 *              _acquire_py / _release_py.
 *
 * The module does not link against libshoal: init() receives the addresses of the
 * few functions it calls from the ctypes-loaded library, so it works with whichever
 * libshoal the package loaded. The Python side keeps the handle and the process id
 * it is valid in (members _ch and _cpid); the id of this process is cached here and
 * refreshed in a forked child by a pthread_atfork handler, so a fork is noticed
 * without a system call per operation, and the Python side re-attaches.
 *
 * Waits (the untimed gets and receives) release the GIL and sleep in libshoal in
 * slices, running the signal handlers between slices so that Ctrl-C raises
 * KeyboardInterrupt; a first try holding the GIL serves a message already there.
 * Timed waits stay in Python (wait_loop), which slices them the same way.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <structmember.h>
#include <unistd.h>

#define E_EAGAIN     (-14)
#define E_EOWNERDEAD (-15)
#define E_EDEADLK    (-24)
#define E_ETIMEDOUT  (-13)

typedef int (*fn_h)(void *);
typedef int (*fn_put)(void *, const void *, size_t);
typedef int (*fn_get)(void *, void *, size_t, size_t *);
typedef int (*fn_send)(void *, const void *, size_t, int64_t);
typedef int (*fn_recv)(void *, void *, size_t, size_t *, int64_t);
typedef int (*fn_add)(void *, int64_t, int64_t *);
typedef int (*fn_getw)(void *, void *, size_t, size_t *, int64_t);

static struct {
    fn_h lock_try, lock_release;
    fn_put queue_try_put;
    fn_get queue_try_get;
    fn_send pipe_send;
    fn_recv pipe_recv;
    fn_add value_add;
    fn_getw queue_get;
} lib;

static long cached_pid;

static void after_fork_child(void)
{
    cached_pid = (long)getpid();
}

/* ---- scalars in place, by typecode -------------------------------------------- */

/* Whether typecode c is handled here ('c' elements go the ctypes way: bytes). */
static int fast_code(int c)
{
    return c && strchr("bBhHiIlLqQfd", c) != NULL;
}

static PyObject *load(const void *p, int code)
{
    switch (code) {
    case 'b':
        return PyLong_FromLong(*(const int8_t *)p);
    case 'B':
        return PyLong_FromLong(*(const uint8_t *)p);
    case 'h':
        return PyLong_FromLong(*(const int16_t *)p);
    case 'H':
        return PyLong_FromLong(*(const uint16_t *)p);
    case 'i':
        return PyLong_FromLong(*(const int32_t *)p);
    case 'I':
        return PyLong_FromUnsignedLong(*(const uint32_t *)p);
    case 'l':
    case 'q':
        return PyLong_FromLongLong(*(const int64_t *)p);
    case 'L':
    case 'Q':
        return PyLong_FromUnsignedLongLong(*(const uint64_t *)p);
    case 'f':
        return PyFloat_FromDouble(*(const float *)p);
    default:
        return PyFloat_FromDouble(*(const double *)p);
    }
}

/* Converts x as ctypes does (integers wrap to the width; floats accept ints);
 * returns 0, or -1 with an exception set. */
static int convert(PyObject *x, int code, unsigned char out[8])
{
    if (code == 'f' || code == 'd') {
        double d = PyFloat_AsDouble(x);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
        if (code == 'f') {
            float f = (float)d;
            memcpy(out, &f, sizeof f);
        } else {
            memcpy(out, &d, sizeof d);
        }
        return 0;
    }
    if (!PyLong_Check(x)) {
        PyErr_Format(PyExc_TypeError, "int expected instead of %s", Py_TYPE(x)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLongMask(x);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    switch (code) {
    case 'b':
    case 'B':
        out[0] = (unsigned char)v;
        break;
    case 'h':
    case 'H': {
        uint16_t s = (uint16_t)v;
        memcpy(out, &s, 2);
        break;
    }
    case 'i':
    case 'I': {
        uint32_t s = (uint32_t)v;
        memcpy(out, &s, 4);
        break;
    }
    default: {
        uint64_t s = (uint64_t)v;
        memcpy(out, &s, 8);
        break;
    }
    }
    return 0;
}

static void store(void *p, int code, const unsigned char in[8])
{
    static const char widths[] = "b1B1h2H2i4I4l8L8q8Q8f4d8";
    const char *w = strchr(widths, code);
    memcpy(p, in, (size_t)(w[1] - '0'));
}

/* ---- LockBase ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD Py_ssize_t h; /* the handle, valid in process pid */
    long pid;
    unsigned long held_tid; /* which thread of which process holds it through us */
    long held_pid;
    long held_depth;
    char owner_died;
} LockBase;

static PyTypeObject LockBase_Type;

/* The handle, re-attached through self._fast() when this process has none yet. */
__attribute__((noinline)) static void *lock_handle_slow(LockBase *self)
{
    PyObject *hp = PyObject_CallMethod((PyObject *)self, "_fast", NULL);
    if (!hp)
        return NULL;
    PyObject *v = PyObject_GetAttrString(hp, "value");
    Py_DECREF(hp);
    if (!v)
        return NULL;
    void *h = v == Py_None ? NULL : PyLong_AsVoidPtr(v);
    Py_DECREF(v);
    if (!h) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "lock is closed");
        return NULL;
    }
    self->h = (Py_ssize_t)h;
    self->pid = cached_pid;
    return h;
}

static inline void *lock_handle(LockBase *self)
{
    if (__builtin_expect(self->h && self->pid == cached_pid, 1))
        return (void *)self->h;
    return lock_handle_slow(self);
}

/* The calling thread's identity as threading.get_ident() gives it (CPython's
 * PyThread_get_thread_ident() is pthread_self() on POSIX), without the call into
 * libpython, cached per thread (a fork child's thread keeps its parent thread's). */
static _Thread_local unsigned long my_ident __attribute__((tls_model("initial-exec")));

static inline unsigned long thread_ident(void)
{
    if (__builtin_expect(!my_ident, 0))
        my_ident = (unsigned long)pthread_self();
    return my_ident;
}

static inline void took(LockBase *self, unsigned long tid)
{
    if (self->held_tid == tid && self->held_pid == cached_pid) {
        self->held_depth++;
    } else {
        self->held_pid = cached_pid;
        self->held_depth = 1;
        self->held_tid = tid;
    }
}

static inline void dropping(LockBase *self)
{
    if (self->held_tid == thread_ident()) {
        if (self->held_depth > 1)
            self->held_depth--;
        else
            self->held_tid = 0;
    }
}

/* Anything but an uncontended acquisition: the Python side waits and raises. */
__attribute__((noinline)) static PyObject *lock_acquire_slow(LockBase *self, int rc,
                                                             PyObject *block,
                                                             PyObject *timeout,
                                                             PyObject *raise_od)
{
    PyObject *rcobj = PyLong_FromLong(rc);
    if (!rcobj)
        return NULL;
    PyObject *r = PyObject_CallMethod((PyObject *)self, "_acquire_slow", "OOOO", rcobj,
                                      block, timeout, raise_od);
    Py_DECREF(rcobj);
    return r;
}

/* Returns a new reference to True/False, or NULL. */
static inline PyObject *lock_acquire_impl(LockBase *self, PyObject *block,
                                          PyObject *timeout, PyObject *raise_od)
{
    void *h = lock_handle(self);
    if (!h)
        return NULL;
    int rc = lib.lock_try(h);
    if (__builtin_expect(rc != 0, 0))
        return lock_acquire_slow(self, rc, block, timeout, raise_od);
    self->owner_died = 0;
    took(self, thread_ident());
    Py_RETURN_TRUE;
}

/* acquire(block=True, timeout=None, *, raise_owner_died=False) with arguments, parsed
 * by hand: building an argument tuple would cost as much as the lock itself. */
__attribute__((noinline)) static PyObject *lock_acquire_args(LockBase *self,
                                                             PyObject *const *args,
                                                             Py_ssize_t nargs,
                                                             PyObject *kwnames)
{
    PyObject *v[3] = {Py_True, Py_None, Py_False};
    static const char *names[] = {"block", "timeout", "raise_owner_died"};
    if (nargs > 2) {
        PyErr_SetString(PyExc_TypeError,
                        "acquire() takes at most 2 positional arguments");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        v[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int i = 0;
        while (i < 3 && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
            i++;
        if (i == 3 || i < nargs) {
            PyErr_Format(PyExc_TypeError,
                         "acquire() got an unexpected or repeated "
                         "keyword argument %R",
                         key);
            return NULL;
        }
        v[i] = args[nargs + k];
    }
    return lock_acquire_impl(self, v[0], v[1], v[2]);
}

/* acquire(): the common call has no arguments, and keeps to a small frame. */
static PyObject *LockBase_acquire(LockBase *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    if (__builtin_expect(nargs == 0 && !kwnames, 1))
        return lock_acquire_impl(self, Py_True, Py_None, Py_False);
    return lock_acquire_args(self, args, nargs, kwnames);
}

/* A failed release: the Python side raises. */
__attribute__((noinline)) static PyObject *lock_raise(LockBase *self, int rc)
{
    return PyObject_CallMethod((PyObject *)self, "_raise_rc", "i", rc);
}

static inline PyObject *lock_release_impl(LockBase *self)
{
    void *h = lock_handle(self);
    if (!h)
        return NULL;
    dropping(self);
    int rc = lib.lock_release(h);
    if (__builtin_expect(rc != 0, 0))
        return lock_raise(self, rc);
    Py_RETURN_NONE;
}

static PyObject *LockBase_release(LockBase *self, PyObject *unused)
{
    (void)unused;
    return lock_release_impl(self);
}

static PyObject *LockBase_enter(LockBase *self, PyObject *unused)
{
    (void)unused;
    PyObject *r = lock_acquire_impl(self, Py_True, Py_None, Py_False);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *LockBase_exit(LockBase *self, PyObject *args)
{
    (void)args;
    PyObject *r = lock_release_impl(self);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyMethodDef LockBase_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))LockBase_acquire,
     METH_FASTCALL | METH_KEYWORDS,
     "acquire(block=True, timeout=None, *, raise_owner_died=False)"},
    {"release", (PyCFunction)LockBase_release, METH_NOARGS, "release()"},
    {"__enter__", (PyCFunction)LockBase_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)LockBase_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyMemberDef LockBase_members[] = {
    {"_ch", T_PYSSIZET, offsetof(LockBase, h), 0, "handle (0: none)"},
    {"_cpid", T_LONG, offsetof(LockBase, pid), 0, "process the handle is valid in"},
    {"_held_tid", T_ULONG, offsetof(LockBase, held_tid), 0, NULL},
    {"_held_pid", T_LONG, offsetof(LockBase, held_pid), 0, NULL},
    {"_held_depth", T_LONG, offsetof(LockBase, held_depth), 0, NULL},
    {"owner_died", T_BOOL, offsetof(LockBase, owner_died), 0,
     "whether the last acquisition found the previous holder dead"},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject LockBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shoal._speedups.LockBase",
    .tp_basicsize = sizeof(LockBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C fast path of shoal.Lock (see shoal._speedups).",
    .tp_methods = LockBase_methods,
    .tp_members = LockBase_members,
    .tp_new = PyType_GenericNew,
};

/* ---- ValueBase and ArrayBase --------------------------------------------------- */

typedef struct {
    PyObject_HEAD Py_ssize_t
        data;         /* the scalar(s) in place, valid in process pid (0: none) */
    Py_ssize_t lockh; /* the lock's handle, 0 without a lock */
    long pid;
    int code;           /* typecode, 0 when the fast path does not apply */
    Py_ssize_t len;     /* elements (arrays) */
    PyObject *lock_obj; /* the Lock object of get_lock(), or NULL */
} Locked;

static int Locked_traverse(Locked *self, visitproc visit, void *arg)
{
    Py_VISIT(self->lock_obj);
    return 0;
}

static int Locked_clear(Locked *self)
{
    Py_CLEAR(self->lock_obj);
    return 0;
}

/* Heap subclasses (shoal.Value, shoal.Array) dealloc through CPython's subtype
 * dealloc, which clears their dict and weak references and calls this. */
static void Locked_dealloc(Locked *self)
{
    PyObject_GC_UnTrack(self);
    Locked_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Whether this thread holds the lock through the object's Lock (with v.get_lock()). */
static int held_here(Locked *self)
{
    PyObject *o = self->lock_obj;
    if (!o || !PyObject_TypeCheck(o, &LockBase_Type))
        return 0;
    LockBase *l = (LockBase *)o;
    return l->held_tid == thread_ident() && l->held_pid == cached_pid;
}

/* Takes the lock for an access in place: 1 taken (release after), 0 not needed
 * (no lock, or held by this thread), -1 the slow path must do it. */
static int take(Locked *self)
{
    if (!self->lockh || held_here(self))
        return 0;
    int rc = lib.lock_try((void *)self->lockh);
    if (rc == 0 || rc == E_EOWNERDEAD)
        return 1;
    if (rc == E_EDEADLK)
        return 0;
    return -1;
}

static int usable(Locked *self)
{
    return self->data && self->code && self->pid == cached_pid;
}

static PyObject *Value_get(Locked *self, void *closure)
{
    (void)closure;
    if (usable(self)) {
        int t = take(self);
        if (t >= 0) {
            PyObject *r = load((void *)self->data, self->code);
            if (t)
                lib.lock_release((void *)self->lockh);
            return r;
        }
    }
    return PyObject_CallMethod((PyObject *)self, "_value_slow", NULL);
}

static int Value_set(Locked *self, PyObject *x, void *closure)
{
    (void)closure;
    if (!x) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete a Value's value");
        return -1;
    }
    if (usable(self)) {
        unsigned char buf[8];
        if (convert(x, self->code, buf))
            return -1;
        int t = take(self);
        if (t >= 0) {
            store((void *)self->data, self->code, buf);
            if (t)
                lib.lock_release((void *)self->lockh);
            return 0;
        }
    }
    PyObject *r = PyObject_CallMethod((PyObject *)self, "_value_slow_set", "O", x);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static PyGetSetDef Value_getset[] = {
    {"value", (getter)Value_get, (setter)Value_set,
     "The value (under the lock, if the object has one). Structs: a copy.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef Locked_members[] = {
    {"_cdata", T_PYSSIZET, offsetof(Locked, data), 0, "address of the data (0: none)"},
    {"_clock", T_PYSSIZET, offsetof(Locked, lockh), 0, "the lock's handle (0: none)"},
    {"_cpid", T_LONG, offsetof(Locked, pid), 0, "process the addresses are valid in"},
    {"_ccode", T_INT, offsetof(Locked, code), 0, "typecode (0: no fast path)"},
    {"_clen", T_PYSSIZET, offsetof(Locked, len), 0, "elements"},
    {"_lock_obj", T_OBJECT, offsetof(Locked, lock_obj), 0, "the Lock of get_lock()"},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject ValueBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shoal._speedups.ValueBase",
    .tp_basicsize = sizeof(Locked),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C fast path of shoal.Value (see shoal._speedups).",
    .tp_getset = Value_getset,
    .tp_members = Locked_members,
    .tp_traverse = (traverseproc)Locked_traverse,
    .tp_clear = (inquiry)Locked_clear,
    .tp_dealloc = (destructor)Locked_dealloc,
    .tp_new = PyType_GenericNew,
};

/* The element index of key for the fast path, or -1 (not a plain int in range). */
static Py_ssize_t fast_index(Locked *self, PyObject *key)
{
    if (!PyLong_CheckExact(key) || !usable(self))
        return -1;
    Py_ssize_t i = PyLong_AsSsize_t(key);
    if (i == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (i < 0)
        i += self->len;
    return i >= 0 && i < self->len ? i : -1;
}

static size_t width(int code)
{
    return strchr("bB", code) ? 1 : strchr("hH", code) ? 2 : strchr("iIf", code) ? 4 : 8;
}

static PyObject *Array_subscript(Locked *self, PyObject *key)
{
    Py_ssize_t i = fast_index(self, key);
    if (i >= 0) {
        int t = take(self);
        if (t >= 0) {
            PyObject *r =
                load((char *)self->data + (size_t)i * width(self->code), self->code);
            if (t)
                lib.lock_release((void *)self->lockh);
            return r;
        }
    }
    return PyObject_CallMethod((PyObject *)self, "_getitem_slow", "O", key);
}

static int Array_ass_subscript(Locked *self, PyObject *key, PyObject *x)
{
    Py_ssize_t i = x ? fast_index(self, key) : -1;
    if (i >= 0) {
        unsigned char buf[8];
        if (convert(x, self->code, buf))
            return -1;
        int t = take(self);
        if (t >= 0) {
            store((char *)self->data + (size_t)i * width(self->code), self->code, buf);
            if (t)
                lib.lock_release((void *)self->lockh);
            return 0;
        }
    }
    if (!x) {
        PyErr_SetString(PyExc_TypeError, "Array items cannot be deleted");
        return -1;
    }
    PyObject *r = PyObject_CallMethod((PyObject *)self, "_setitem_slow", "OO", key, x);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static PyMappingMethods Array_mapping = {
    .mp_subscript = (binaryfunc)Array_subscript,
    .mp_ass_subscript = (objobjargproc)Array_ass_subscript,
};

static PyTypeObject ArrayBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shoal._speedups.ArrayBase",
    .tp_basicsize = sizeof(Locked),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C fast path of shoal.Array (see shoal._speedups).",
    .tp_as_mapping = &Array_mapping,
    .tp_members = Locked_members,
    .tp_traverse = (traverseproc)Locked_traverse,
    .tp_clear = (inquiry)Locked_clear,
    .tp_dealloc = (destructor)Locked_dealloc,
    .tp_new = PyType_GenericNew,
};

/* ---- bytes through queues and pipes -------------------------------------------- */

/* Parses (handle, buffer): 0, or -1 with an exception set. */
static int handle_and_buffer(PyObject *const *a, Py_ssize_t n, const char *usage,
                             void **h, Py_buffer *b, int flags)
{
    if (n != 2) {
        PyErr_Format(PyExc_TypeError, "%s: two arguments expected", usage);
        return -1;
    }
    *h = PyLong_AsVoidPtr(a[0]);
    if (!*h) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s: the handle is NULL", usage);
        return -1;
    }
    return PyObject_GetBuffer(a[1], b, flags);
}

/* queue_try_put(handle, data) -> rc */
static PyObject *m_queue_try_put(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    void *h;
    Py_buffer b;
    if (handle_and_buffer(a, n, "queue_try_put(handle, data)", &h, &b, PyBUF_SIMPLE))
        return NULL;
    int rc = lib.queue_try_put(h, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    return PyLong_FromLong(rc);
}

/* pipe_send(handle, data) -> rc (never waits) */
static PyObject *m_pipe_send(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    void *h;
    Py_buffer b;
    if (handle_and_buffer(a, n, "pipe_send(handle, data)", &h, &b, PyBUF_SIMPLE))
        return NULL;
    int rc = lib.pipe_send(h, b.buf, (size_t)b.len, 0);
    PyBuffer_Release(&b);
    return PyLong_FromLong(rc);
}

/* The tuple (rc, length), built by hand (Py_BuildValue parses its format each call). */
static PyObject *rc_len(int rc, size_t len)
{
    PyObject *t = PyTuple_New(2);
    if (!t)
        return NULL;
    PyObject *a = PyLong_FromLong(rc), *b = PyLong_FromSize_t(len);
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_DECREF(t);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    return t;
}

/* A receive into a writable buffer: (rc, length). */
static PyObject *receive(PyObject *const *a, Py_ssize_t n, const char *usage, int pipe)
{
    void *h;
    Py_buffer b;
    if (handle_and_buffer(a, n, usage, &h, &b, PyBUF_WRITABLE))
        return NULL;
    size_t len = 0;
    int rc = pipe ? lib.pipe_recv(h, b.buf, (size_t)b.len, &len, 0)
                  : lib.queue_try_get(h, b.buf, (size_t)b.len, &len);
    PyBuffer_Release(&b);
    return rc_len(rc, len);
}

/* queue_try_get(handle, buffer) -> (rc, length) */
static PyObject *m_queue_try_get(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    return receive(a, n, "queue_try_get(handle, buffer)", 0);
}

/* pipe_recv(handle, buffer) -> (rc, length) (never waits) */
static PyObject *m_pipe_recv(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    return receive(a, n, "pipe_recv(handle, buffer)", 1);
}

/* The waiting receive of a pipe (fn lib.pipe_recv) or a queue (lib.queue_get) into
 * buf: waits for a message as long as it takes, with the GIL released, in slices of
 * slice_ns so that signal handlers run between them (Ctrl-C raises KeyboardInterrupt
 * here: returns 1 with the exception set). The first try holds the GIL: a message
 * already there costs no GIL round trip. Otherwise returns 0 with the libshoal rc in
 * *rc. */
static int recv_waiting(fn_getw fn, void *h, void *buf, size_t cap, size_t *len,
                        int64_t slice, int *rc)
{
    int r = fn(h, buf, cap, len, 0);
    while (r == E_EAGAIN || r == E_ETIMEDOUT) {
        PyThreadState *ts = PyEval_SaveThread();
        r = fn(h, buf, cap, len, slice);
        PyEval_RestoreThread(ts);
        if (r == E_ETIMEDOUT && PyErr_CheckSignals())
            return 1;
    }
    *rc = r;
    return 0;
}

/* pipe_recv_wait / queue_get_wait(handle, buffer, slice_ns) -> (rc, length) */
static PyObject *wait_into(PyObject *const *a, Py_ssize_t n, const char *usage,
                           fn_getw fn)
{
    if (n != 3) {
        PyErr_Format(PyExc_TypeError, "%s: three arguments expected", usage);
        return NULL;
    }
    long long slice = PyLong_AsLongLong(a[2]);
    if (slice == -1 && PyErr_Occurred())
        return NULL;
    void *h;
    Py_buffer b;
    if (handle_and_buffer(a, 2, usage, &h, &b, PyBUF_WRITABLE))
        return NULL;
    size_t len = 0;
    int rc = 0, intr = recv_waiting(fn, h, b.buf, (size_t)b.len, &len, slice, &rc);
    PyBuffer_Release(&b);
    return intr ? NULL : rc_len(rc, len);
}

static PyObject *m_pipe_recv_wait(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    return wait_into(a, n, "pipe_recv_wait(handle, buffer, slice_ns)", lib.pipe_recv);
}

static PyObject *m_queue_get_wait(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    return wait_into(a, n, "queue_get_wait(handle, buffer, slice_ns)", lib.queue_get);
}

/* value_add(handle, delta) -> (rc, previous value): shoal_value_add */
static PyObject *m_value_add(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "value_add(handle, delta)");
        return NULL;
    }
    void *h = PyLong_AsVoidPtr(a[0]);
    if (!h) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "value_add: the handle is NULL");
        return NULL;
    }
    long long delta = PyLong_AsLongLong(a[1]);
    if (delta == -1 && PyErr_Occurred())
        return NULL;
    int64_t old = 0;
    int rc = lib.value_add(h, (int64_t)delta, &old);
    return Py_BuildValue("(iL)", rc, (long long)old);
}

/* ---- TypedBase: put and get of generated structs ----------------------------- */

/* Where a ctypes object keeps its bytes: CPython's CDataObject starts with b_ptr
 * after the object header. check_cdata() confirms it on a probe object at start-up;
 * when it does not hold, the buffer protocol serves (slower). */
static int cdata_direct;

static inline void *cdata_ptr(PyObject *o, Py_buffer *b)
{
    if (cdata_direct)
        return *(void **)((char *)o + sizeof(PyObject));
    if (PyObject_GetBuffer(o, b, PyBUF_SIMPLE))
        return NULL;
    PyBuffer_Release(b); /* the object keeps its bytes alive */
    return b->buf;
}

typedef struct {
    PyObject_HEAD Py_ssize_t h; /* the queue's handle, valid in process pid (0: none) */
    long pid;
    PyObject *ct;    /* the element class (a struct), or NULL: no fast path */
    Py_ssize_t size; /* its size */
    PyObject *valid; /* the function validating one element, or NULL */
    long long slice; /* wait slice (ns) */
} TypedBase;

static PyObject *empty_tuple;

static int TypedBase_traverse(TypedBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ct);
    Py_VISIT(self->valid);
    return 0;
}

static int TypedBase_clear(TypedBase *self)
{
    Py_CLEAR(self->ct);
    Py_CLEAR(self->valid);
    return 0;
}

static void TypedBase_dealloc(TypedBase *self)
{
    PyObject_GC_UnTrack(self);
    TypedBase_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static inline int typed_usable(TypedBase *self)
{
    return self->h && self->ct && self->pid == cached_pid;
}

/* The Python method `name` of self with the call's own arguments. */
__attribute__((noinline)) static PyObject *typed_python(TypedBase *self, const char *name,
                                                        PyObject *const *args,
                                                        Py_ssize_t nargs,
                                                        PyObject *kwnames)
{
    PyObject *fn = PyObject_GetAttrString((PyObject *)self, name);
    if (!fn)
        return NULL;
    PyObject *r = PyObject_Vectorcall(fn, args, (size_t)nargs, kwnames);
    Py_DECREF(fn);
    return r;
}

/* put(obj, block=True, timeout=None): an instance of the element class, validated and
 * copied into a slot in C; everything else (conversions, a full queue, a handle to
 * re-attach) is TypedQueue._put_py's. */
static PyObject *TypedBase_put(TypedBase *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    if (nargs != 1 || kwnames || !typed_usable(self) ||
        (PyObject *)Py_TYPE(args[0]) != self->ct)
        return typed_python(self, "_put_py", args, nargs, kwnames);
    PyObject *obj = args[0];
    if (self->valid && self->valid != Py_None) {
        PyObject *r = PyObject_CallOneArg(self->valid, obj);
        if (!r)
            return NULL;
        Py_DECREF(r);
    }
    Py_buffer b;
    void *p = cdata_ptr(obj, &b);
    if (!p)
        return NULL;
    int rc = lib.queue_try_put((void *)self->h, p, (size_t)self->size);
    if (rc == 0)
        Py_RETURN_NONE;
    return PyObject_CallMethod((PyObject *)self, "_put_wait", "iOOO", rc, obj, Py_True,
                               Py_None);
}

/* get(block=True, timeout=None): a new instance filled from the oldest slot (waiting
 * with the GIL released), validated; anything else is TypedQueue._get_py's. */
static PyObject *TypedBase_get(TypedBase *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    if (nargs || kwnames || !typed_usable(self))
        return typed_python(self, "_get_py", args, nargs, kwnames);
    PyTypeObject *ct = (PyTypeObject *)self->ct;
    PyObject *out = ct->tp_new(ct, empty_tuple, NULL); /* zeroed, no __init__ */
    if (!out)
        return NULL;
    Py_buffer b;
    void *p = cdata_ptr(out, &b);
    size_t len = 0;
    int rc = 0;
    if (!p || recv_waiting(lib.queue_get, (void *)self->h, p, (size_t)self->size, &len,
                           self->slice, &rc))
        goto fail;
    if (rc) {
        PyObject *r = PyObject_CallMethod((PyObject *)self, "_raise_get", "i", rc);
        Py_XDECREF(r);
        goto fail;
    }
    if (self->valid && self->valid != Py_None) {
        PyObject *r = PyObject_CallOneArg(self->valid, out);
        if (!r)
            goto fail;
        Py_DECREF(r);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef TypedBase_methods[] = {
    {"put", (PyCFunction)(void (*)(void))TypedBase_put, METH_FASTCALL | METH_KEYWORDS,
     "put(obj, block=True, timeout=None)"},
    {"get", (PyCFunction)(void (*)(void))TypedBase_get, METH_FASTCALL | METH_KEYWORDS,
     "get(block=True, timeout=None)"},
    {NULL, NULL, 0, NULL}};

static PyMemberDef TypedBase_members[] = {
    {"_ch", T_PYSSIZET, offsetof(TypedBase, h), 0, "handle (0: none)"},
    {"_cpid", T_LONG, offsetof(TypedBase, pid), 0, "process the handle is valid in"},
    {"_cct", T_OBJECT, offsetof(TypedBase, ct), 0, "element class (None: no fast path)"},
    {"_csize", T_PYSSIZET, offsetof(TypedBase, size), 0, "element size"},
    {"_cvalid", T_OBJECT, offsetof(TypedBase, valid), 0, "validating function or None"},
    {"_cslice", T_LONGLONG, offsetof(TypedBase, slice), 0, "wait slice (ns)"},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject TypedBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shoal._speedups.TypedBase",
    .tp_basicsize = sizeof(TypedBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C fast path of shoal.TypedQueue (see shoal._speedups).",
    .tp_methods = TypedBase_methods,
    .tp_members = TypedBase_members,
    .tp_traverse = (traverseproc)TypedBase_traverse,
    .tp_clear = (inquiry)TypedBase_clear,
    .tp_dealloc = (destructor)TypedBase_dealloc,
    .tp_new = PyType_GenericNew,
};

/* check_cdata(probe, address): whether a ctypes object's bytes are found in place
 * (address is ctypes.addressof(probe)); enables that path when they are. */
static PyObject *m_check_cdata(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "check_cdata(probe, address)");
        return NULL;
    }
    void *addr = PyLong_AsVoidPtr(a[1]);
    if (!addr)
        return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(a[0], &b, PyBUF_SIMPLE))
        return NULL;
    cdata_direct = b.buf == addr && *(void **)((char *)a[0] + sizeof(PyObject)) == addr;
    PyBuffer_Release(&b);
    return PyBool_FromLong(cdata_direct);
}

/* Whether o is made only of types whose pickling no reducer changes: None, bool,
 * int, float, str, bytes, and tuples and lists of them (nested at most `depth`
 * deep, at most 64 items each). */
static int plain(PyObject *o, int depth)
{
    PyTypeObject *t = Py_TYPE(o);
    if (o == Py_None || t == &PyBool_Type || t == &PyLong_Type || t == &PyFloat_Type ||
        t == &PyUnicode_Type || t == &PyBytes_Type)
        return 1;
    if ((t != &PyTuple_Type && t != &PyList_Type) || depth == 0)
        return 0;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(o);
    if (len > 64)
        return 0;
    PyObject **items = PySequence_Fast_ITEMS(o);
    for (Py_ssize_t i = 0; i < len; i++)
        if (!plain(items[i], depth - 1))
            return 0;
    return 1;
}

static PyObject *m_plain(PyObject *m, PyObject *o)
{
    (void)m;
    return PyBool_FromLong(plain(o, 3));
}

/* ---- ManagerBase: the Manager broker's requests and replies -------------------- */

/*
 * A shoal.Manager session (managers._Session) derives from ManagerBase: each proxied
 * operation is one call here that encodes broker.proto's Request straight into a
 * buffer on the stack, sends it with shoal_manager_send_raw, and (unless pipelined)
 * waits for the Reply and decodes its Value into Python objects. The common value
 * types — None, bool, int (64-bit), float, str, bytes, bytearray, and lists, tuples
 * and dicts of them — are done here; anything else (a proxy travelling as a
 * reference, a pickled object, an int out of range, a subclass) is handed to the
 * Python encoder managers._enc_value, and a reply Value of another kind (a message,
 * a pickle) to managers._dec_value, so the two paths cannot disagree. A request that
 * waits is sent and waited for in one stretch with the GIL released once (roundtrip,
 * through shoal_manager_call_raw: over shm:// a pure read may be answered there from
 * the broker's read view, with no round trip).
 *
 * Pipelined writes are batched per thread (broker.proto's Request.batch, docs/broker.md
 * "Batches"): write() encodes the Request on its stack and appends it as an item of
 * the thread's open batch — a buffer of encoded items and an array of (proxy, op,
 * args) references, no Python object made — and the batch goes out as one frame once
 * it holds `depth` writes or BATCH_BYTES, or when the thread's next request() or
 * flush() comes (they send it and collect every batch in flight first). Up to
 * BATCHES_IN_FLIGHT batches of a thread are in flight: sending one more collects the
 * oldest reply first. A batch's reply lists only its failed items; the first error
 * is made by proxy._exception(op, args, status, error) of the failed write and
 * raised once, by the thread's next request() or flush(). The GIL is released while
 * libshoal sends and waits. A thread's batch buffer is its own; each call encodes
 * its Request on its own stack first (an encoder calling back into Python can never
 * leave half an item in a batch).
 *
 * Idle flush: a thread that writes and then sleeps or computes must not keep its
 * writes from the other processes. One daemon thread per process (idle_loop, started
 * by the first batch opened) sleeps with the GIL released while no batch is open;
 * otherwise it runs a round every IDLE_NS (1 ms): it advances its tick and sends,
 * with send_batch, every open batch whose first write noted an earlier tick. A write
 * that opens a batch notes the tick and, when its session is not on the flusher's
 * list, puts it there and wakes the flusher (one signal per batch at most), unless
 * the write is sent at once (a lock released, an event set: the batch does not wait,
 * and waking the flusher for it would only take the GIL and a CPU from the writer);
 * a round drops the sessions with nothing open. The flusher runs send_batch for another
 * thread: everything it touches is re-found after each GIL release, a collection
 * takes its batch out of fl[] before waiting, and `sending` keeps two senders of one
 * thread's batches from overtaking each other (the owner waits its turn; the flusher
 * skips to its next round). An error it collects is kept for the owner thread, as
 * above; any other (a dead session) is dropped: the owner's next call fails anyway.
 * close() first takes the session off the flusher (_idle_stop); a forked child,
 * where the thread does not exist, forgets its state (manager_after_fork).
 */

static int fetch(PyObject *addrs, const char *name, void **out);

typedef uint64_t (*fn_next_id)(void *);
typedef int (*fn_send_raw)(void *, const void *, size_t);
typedef int (*fn_wait_raw)(void *, uint64_t, void **, size_t *);
typedef void (*fn_free)(void *);
typedef int (*fn_enter)(void *);
typedef void (*fn_leave)(void *);
typedef int (*fn_call_raw)(void *, const void *, size_t, void **, size_t *);

static struct {
    fn_next_id next_id;
    fn_send_raw send_raw;
    fn_wait_raw wait_raw;
    fn_free free;
    fn_enter enter; /* shoal_manager_enter / _leave: see call_begin */
    fn_leave leave;
    fn_call_raw call_raw; /* send and wait, or the broker's read view (roundtrip) */
    /* managers._enc_value, _dec_value, _dec_reply and _lib.error */
    PyObject *enc_value, *dec_value, *dec_reply, *error;
} mlib;

/* A growing buffer, on the stack until it outgrows `local`. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    uint8_t local[480];
} wbuf;

static void wbuf_init(wbuf *b)
{
    b->p = b->local;
    b->len = 0;
    b->cap = sizeof(b->local);
}

static void wbuf_done(wbuf *b)
{
    if (b->p != b->local)
        PyMem_Free(b->p);
}

/* wbuf_room's growing. */
static __attribute__((noinline)) int wbuf_grow(wbuf *b, size_t n)
{
    size_t cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n + 256;
    uint8_t *p = b->p == b->local ? PyMem_Malloc(cap) : PyMem_Realloc(b->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    if (b->p == b->local)
        memcpy(p, b->local, b->len);
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Room for n more bytes: 0, or -1 with MemoryError set. */
static inline int wbuf_room(wbuf *b, size_t n)
{
    return b->len + n <= b->cap ? 0 : wbuf_grow(b, n);
}

static int put_bytes(wbuf *b, const void *p, size_t n)
{
    if (wbuf_room(b, n))
        return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes varint v at p: the end of what it wrote. */
static uint8_t *varint_at(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A tag byte (every field number here is below 16) and a varint. */
static int put_tag_varint(wbuf *b, uint8_t tag, uint64_t v)
{
    if (wbuf_room(b, 11))
        return -1;
    b->p[b->len] = tag;
    b->len = (size_t)(varint_at(b->p + b->len + 1, v) - b->p);
    return 0;
}

static int put_len_field(wbuf *b, uint8_t tag, const void *p, size_t n)
{
    return put_tag_varint(b, tag, n) || put_bytes(b, p, n) ? -1 : 0;
}

/* A length-delimited field whose length is known at its end: the tag and one byte
 * are written now (the position of that byte is returned), the rest moved along at
 * close_len when the length takes more bytes. */
static Py_ssize_t open_len(wbuf *b, uint8_t tag)
{
    if (wbuf_room(b, 2))
        return -1;
    b->p[b->len++] = tag;
    b->p[b->len++] = 0;
    return (Py_ssize_t)b->len - 1;
}

static int close_len(wbuf *b, Py_ssize_t at)
{
    size_t n = b->len - (size_t)at - 1, extra = varint_len(n) - 1;
    if (extra) {
        if (wbuf_room(b, extra))
            return -1;
        memmove(b->p + at + 1 + extra, b->p + at + 1, n);
        b->len += extra;
    }
    varint_at(b->p + at, n);
    return 0;
}

static int enc_value(wbuf *b, PyObject *v, int pickle, int depth);

/* A value the C encoder does not do: managers._enc_value's bytes. */
static int enc_value_py(wbuf *b, PyObject *v, int pickle)
{
    PyObject *r = PyObject_CallFunctionObjArgs(mlib.enc_value, v,
                                               pickle ? Py_True : Py_False, NULL);
    if (!r)
        return -1;
    int rc =
        PyBytes_Check(r)
            ? put_bytes(b, PyBytes_AS_STRING(r), PyBytes_GET_SIZE(r))
            : (PyErr_SetString(PyExc_TypeError, "_enc_value did not return bytes"), -1);
    Py_DECREF(r);
    return rc;
}

/* A Value inside a length-delimited field `tag` (an item, key, value or argument). */
static int enc_field(wbuf *b, uint8_t tag, PyObject *v, int pickle, int depth)
{
    Py_ssize_t at = open_len(b, tag);
    return at < 0 || enc_value(b, v, pickle, depth) || close_len(b, at) ? -1 : 0;
}

static int enc_seq(wbuf *b, PyObject *v, int pickle, int depth)
{
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(v); i++) {
        PyObject *x = PySequence_Fast_GET_ITEM(v, i);
        Py_INCREF(x); /* the Python encoder may run code that changes a list */
        int rc = enc_field(b, 0x0a, x, pickle, depth);
        Py_DECREF(x);
        if (rc)
            return -1;
    }
    return 0;
}

static int enc_map(wbuf *b, PyObject *v, int pickle, int depth)
{
    Py_ssize_t pos = 0;
    PyObject *k, *x;
    while (PyDict_Next(v, &pos, &k, &x)) {
        Py_INCREF(k);
        Py_INCREF(x);
        Py_ssize_t at = open_len(b, 0x0a);
        int rc = at < 0 || enc_field(b, 0x0a, k, pickle, depth) ||
                 enc_field(b, 0x12, x, pickle, depth) || close_len(b, at);
        Py_DECREF(k);
        Py_DECREF(x);
        if (rc)
            return -1;
    }
    return 0;
}

/* broker.proto's Value for v (the fields of managers._enc_value, in the same order). */
static int enc_value(wbuf *b, PyObject *v, int pickle, int depth)
{
    PyTypeObject *t = Py_TYPE(v);
    if (v == Py_None)
        return put_bytes(b, "\x08\x01", 2);
    if (t == &PyBool_Type)
        return put_bytes(b, v == Py_True ? "\x10\x01" : "\x10\x00", 2);
    if (t == &PyLong_Type) {
        int overflow;
        long long i = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (i == -1 && PyErr_Occurred())
            return -1;
        if (!overflow)
            return put_tag_varint(b, 0x18,
                                  ((uint64_t)i << 1) ^ (uint64_t)(i >> 63)); /* zigzag */
    } else if (t == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(v);
        uint8_t le[9] = {0x21};
        uint64_t u;
        memcpy(&u, &d, 8);
        for (int i = 0; i < 8; i++)
            le[1 + i] = (uint8_t)(u >> (8 * i));
        return put_bytes(b, le, 9);
    } else if (t == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        return s ? put_len_field(b, 0x2a, s, (size_t)n) : -1;
    } else if (t == &PyBytes_Type) {
        return put_len_field(b, 0x32, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v));
    } else if (t == &PyByteArray_Type) {
        return put_len_field(b, 0x32, PyByteArray_AS_STRING(v),
                             (size_t)PyByteArray_GET_SIZE(v));
    } else if ((t == &PyList_Type || t == &PyTuple_Type || t == &PyDict_Type) &&
               depth < 32) {
        Py_ssize_t at = open_len(b, t == &PyList_Type    ? 0x3a
                                    : t == &PyTuple_Type ? 0x42
                                                         : 0x4a);
        if (at < 0 || (t == &PyDict_Type ? enc_map : enc_seq)(b, v, pickle, depth + 1))
            return -1;
        return close_len(b, at);
    }
    return enc_value_py(b, v, pickle);
}

/* ---- decoding ---- */

typedef struct {
    uint32_t num;
    int wt;
    uint64_t v;         /* varint, or the 8 bytes of a fixed64 */
    const uint8_t *sub; /* length-delimited: the bytes */
    size_t len;
} pbfield;

static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* The next field at *p: 1, 0 at the end, -1 when it does not decode. */
static int rd_field(const uint8_t **p, const uint8_t *end, pbfield *f)
{
    uint64_t key;
    if (*p >= end)
        return 0;
    if (rd_varint(p, end, &key))
        return -1;
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    switch (f->wt) {
    case 0:
        return rd_varint(p, end, &f->v) ? -1 : 1;
    case 1:
        if (end - *p < 8)
            return -1;
        f->v = 0;
        for (int i = 0; i < 8; i++)
            f->v |= (uint64_t)(*p)[i] << (8 * i);
        *p += 8;
        return 1;
    case 2:
        if (rd_varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
            return -1;
        f->sub = *p;
        f->len = (size_t)f->v;
        *p += f->len;
        return 1;
    case 5:
        if (end - *p < 4)
            return -1;
        *p += 4;
        return 1;
    default:
        return -1;
    }
}

static PyObject *dec_value(const uint8_t *p, size_t n, int depth);

/* Counts the Values decoded by managers._dec_value: a result whose decoding left it
 * unchanged holds no reference to an object (ProxyBase, below). */
static unsigned long py_decoded;

/* A Value the C decoder does not do (a message, a pickle, an oddity):
 * managers._dec_value. */
static PyObject *dec_value_py(const uint8_t *p, size_t n)
{
    PyObject *buf = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    if (!buf)
        return NULL;
    PyObject *r = PyObject_CallFunctionObjArgs(mlib.dec_value, buf, NULL);
    Py_DECREF(buf);
    py_decoded++;
    return r;
}

/* The items of a Seq as a list; NULL (no exception) when something in it is not for
 * this decoder, NULL with an exception on a Python error. */
static PyObject *dec_items(const uint8_t *p, size_t n, int depth)
{
    const uint8_t *end = p + n;
    PyObject *out = PyList_New(0);
    pbfield f;
    int r;
    while (out && (r = rd_field(&p, end, &f)) != 0) {
        if (r < 0 || (f.num == 1 && f.wt != 2)) {
            Py_CLEAR(out);
            break;
        }
        if (f.num != 1)
            continue;
        PyObject *x = dec_value(f.sub, f.len, depth + 1);
        if (!x || PyList_Append(out, x)) {
            Py_XDECREF(x);
            Py_CLEAR(out);
        } else {
            Py_DECREF(x);
        }
    }
    return out;
}

static PyObject *dec_map(const uint8_t *p, size_t n, int depth)
{
    const uint8_t *end = p + n;
    PyObject *out = PyDict_New();
    pbfield f, e;
    int r;
    while (out && (r = rd_field(&p, end, &f)) != 0) {
        if (r < 0 || (f.num == 1 && f.wt != 2)) {
            Py_CLEAR(out);
            break;
        }
        if (f.num != 1)
            continue;
        PyObject *kv[2] = {NULL, NULL};
        const uint8_t *q = f.sub, *qend = f.sub + f.len;
        int bad = 0;
        while (!bad && (r = rd_field(&q, qend, &e)) != 0) {
            if (r < 0 || ((e.num == 1 || e.num == 2) && e.wt != 2)) {
                bad = 1;
            } else if (e.num == 1 || e.num == 2) {
                Py_XSETREF(kv[e.num - 1], dec_value(e.sub, e.len, depth + 1));
                bad = !kv[e.num - 1];
            }
        }
        for (int i = 0; !bad && i < 2; i++)
            if (!kv[i]) {
                kv[i] = Py_None;
                Py_INCREF(Py_None);
            }
        if (bad || PyDict_SetItem(out, kv[0], kv[1]))
            Py_CLEAR(out);
        Py_XDECREF(kv[0]);
        Py_XDECREF(kv[1]);
    }
    return out;
}

/* A Value as a Python object (managers._dec_value's results), or NULL with an
 * exception set. */
static PyObject *dec_value(const uint8_t *p, size_t n, int depth)
{
    const uint8_t *q = p, *end = p + n;
    pbfield f;
    int r;
    while ((r = rd_field(&q, end, &f)) == 1) {
        if (f.num < 1 || f.num > 11)
            continue;
        int want = f.num <= 3 ? 0 : f.num == 4 ? 1 : 2;
        if (f.wt != want || f.num >= 10 || depth >= 32)
            break; /* the Python decoder's case */
        switch (f.num) {
        case 1:
            Py_RETURN_NONE;
        case 2:
            return PyBool_FromLong(f.v != 0);
        case 3:
            return PyLong_FromLongLong((long long)((f.v >> 1) ^ (~(f.v & 1) + 1)));
        case 4: {
            double d;
            memcpy(&d, &f.v, 8);
            return PyFloat_FromDouble(d);
        }
        case 5:
            return PyUnicode_DecodeUTF8((const char *)f.sub, (Py_ssize_t)f.len, NULL);
        case 6:
            return PyBytes_FromStringAndSize((const char *)f.sub, (Py_ssize_t)f.len);
        default: {
            PyObject *o = f.num == 9 ? dec_map(f.sub, f.len, depth)
                                     : dec_items(f.sub, f.len, depth);
            if (!o && PyErr_Occurred())
                return NULL;
            if (o && f.num == 8)
                Py_SETREF(o, PyList_AsTuple(o));
            if (o)
                return o;
            return dec_value_py(p, n);
        }
        }
    }
    if (r == 0)
        Py_RETURN_NONE; /* an empty Value */
    return dec_value_py(p, n);
}

/* The status, error text (a new reference or NULL) and, when result is not NULL, the
 * result of a Reply: 0; 1 when it does not decode here (no exception set); -1 with an
 * exception set. */
static int dec_reply(const uint8_t *p, size_t n, int *status, PyObject **err,
                     PyObject **result)
{
    const uint8_t *end = p + n;
    pbfield f;
    int r;
    *status = 0;
    *err = NULL;
    if (result)
        *result = NULL;
    while ((r = rd_field(&p, end, &f)) == 1) {
        if (f.num == 2 && f.wt == 0) {
            *status = (int32_t)(uint32_t)((f.v >> 1) ^ (~(f.v & 1) + 1));
        } else if (f.num == 3 && f.wt == 2) {
            Py_XSETREF(*err, PyUnicode_DecodeUTF8((const char *)f.sub, (Py_ssize_t)f.len,
                                                  "replace"));
            if (!*err)
                goto fail;
        } else if (f.num == 4 && f.wt == 2 && result) {
            Py_XSETREF(*result, dec_value(f.sub, f.len, 0));
            if (!*result)
                goto fail;
        }
    }
    if (r == 0)
        return 0;
    Py_CLEAR(*err);
    if (result)
        Py_CLEAR(*result);
    return 1;
fail:
    Py_CLEAR(*err);
    if (result)
        Py_CLEAR(*result);
    return -1;
}

/* A Reply the C decoder refuses: managers._dec_reply's (status, error, result). */
static int dec_reply_py(const void *p, size_t n, int *status, PyObject **err,
                        PyObject **result)
{
    PyObject *buf = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    PyObject *r = buf ? PyObject_CallFunctionObjArgs(mlib.dec_reply, buf, NULL) : NULL;
    Py_XDECREF(buf);
    if (r && (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 3)) {
        PyErr_SetString(PyExc_TypeError, "_dec_reply did not return a triple");
        Py_CLEAR(r);
    }
    long st = r ? PyLong_AsLong(PyTuple_GET_ITEM(r, 0)) : -1;
    if (!r || (st == -1 && PyErr_Occurred())) {
        Py_XDECREF(r);
        return -1;
    }
    *status = (int)st;
    *err = PyTuple_GET_ITEM(r, 1);
    Py_INCREF(*err);
    if (result) {
        *result = PyTuple_GET_ITEM(r, 2);
        Py_INCREF(*result);
    }
    Py_DECREF(r);
    return 0;
}

/* ---- the session ---- */

/* A pipelined write: what its error is made from (owned references). */
typedef struct {
    PyObject *proxy, *op, *args;
} pend;

/* A batch sent: the id of its request and its writes, in order. */
typedef struct {
    uint64_t rid;
    size_t n;
    pend *e;
} sent;

/* At most this many batches of a thread in flight: the broker runs one while the
 * thread fills the next. */
#define BATCHES_IN_FLIGHT 2
/* A batch is sent once its items take this many bytes. */
#define BATCH_BYTES 32768

/* A thread's pipelined writes: the open batch (its encoded items in buf, their
 * writes in open), the batches sent (oldest at fl[0]), the first error not raised. */
typedef struct {
    unsigned long tid;
    wbuf *buf; /* on the heap, made on first use */
    pend *open;
    size_t nopen, capopen;
    sent fl[BATCHES_IN_FLIGHT];
    size_t nfl;
    PyObject *error;
    uint64_t tick; /* the idle flusher's round when the open batch got its first write */
    int sending;   /* a batch of this thread is being sent (by it or the flusher) */
} tpend;

typedef struct {
    PyObject_HEAD void *h; /* the shoal_manager, NULL when detached */
    tpend *t;              /* per thread, nt of them */
    size_t nt;
    size_t last;    /* the index last found */
    int listed;     /* on the idle flusher's list */
    int idle_busy;  /* the idle flusher is sending or collecting for it */
    int closing;    /* _idle_stop() called: the flusher leaves it alone */
    long pid;       /* `pid`: the process the session is this one of (_Session sets it) */
    PyObject *held; /* `held`: the locks taken through it, not released (a dict) */
} ManagerBase;

static tpend *find_thread(ManagerBase *s, unsigned long tid, int make)
{
    if (s->last < s->nt && s->t[s->last].tid == tid)
        return &s->t[s->last];
    for (size_t i = 0; i < s->nt; i++)
        if (s->t[i].tid == tid) {
            s->last = i;
            return &s->t[i];
        }
    if (!make)
        return NULL;
    tpend *t = PyMem_Realloc(s->t, (s->nt + 1) * sizeof(*t));
    if (!t) {
        PyErr_NoMemory();
        return NULL;
    }
    s->t = t;
    s->t[s->nt] = (tpend){.tid = tid};
    s->last = s->nt++;
    return &s->t[s->last];
}

static void pends_free(pend *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Py_CLEAR(e[i].proxy);
        Py_CLEAR(e[i].op);
        Py_CLEAR(e[i].args);
    }
    PyMem_Free(e);
}

static int pends_visit(pend *e, size_t n, visitproc visit, void *arg)
{
    for (size_t i = 0; i < n; i++) {
        Py_VISIT(e[i].proxy);
        Py_VISIT(e[i].op);
        Py_VISIT(e[i].args);
    }
    return 0;
}

static int ManagerBase_traverse(ManagerBase *s, visitproc visit, void *arg)
{
    for (size_t i = 0; i < s->nt; i++) {
        tpend *t = &s->t[i];
        int rc = pends_visit(t->open, t->nopen, visit, arg);
        for (size_t j = 0; !rc && j < t->nfl; j++)
            rc = pends_visit(t->fl[j].e, t->fl[j].n, visit, arg);
        if (rc)
            return rc;
        Py_VISIT(t->error);
    }
    Py_VISIT(s->held);
    return 0;
}

/* Forgets every thread's writes, open or in flight (their replies are never
 * collected). */
static int ManagerBase_clear(ManagerBase *s)
{
    tpend *ts = s->t;
    size_t nt = s->nt;
    s->t = NULL;
    s->nt = s->last = 0;
    for (size_t i = 0; i < nt; i++) {
        pends_free(ts[i].open, ts[i].nopen);
        for (size_t j = 0; j < ts[i].nfl; j++)
            pends_free(ts[i].fl[j].e, ts[i].fl[j].n);
        if (ts[i].buf) {
            wbuf_done(ts[i].buf);
            PyMem_Free(ts[i].buf);
        }
        Py_CLEAR(ts[i].error);
    }
    PyMem_Free(ts);
    return 0;
}

static int ManagerBase_tp_clear(ManagerBase *s)
{
    Py_CLEAR(s->held);
    return ManagerBase_clear(s);
}

static void ManagerBase_dealloc(ManagerBase *s)
{
    PyObject_GC_UnTrack(s);
    ManagerBase_tp_clear(s); /* the handle is the Python side's to close */
    Py_TYPE(s)->tp_free((PyObject *)s);
}

/* Raises managers' error(rc, "manager") (the exception libshoal's detail describes). */
static void *raise_rc(int rc)
{
    PyObject *e = PyObject_CallFunction(mlib.error, "is", rc, "manager");
    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

static void *h_of(ManagerBase *s)
{
    if (!s->h) {
        PyErr_SetString(PyExc_ValueError, "shoal.Manager: the session is closed");
        return NULL;
    }
    return s->h;
}

/* Encodes a Request into b: id rid (0: none, a batch item), the target, op, the
 * arguments args[0, nargs), timeout and the calling thread. 0, or -1 with an
 * exception set. */
static int enc_request(wbuf *b, uint64_t rid, PyObject *target, int pickle, PyObject *op,
                       PyObject *const *args, Py_ssize_t nargs, long long timeout_ms)
{
    if (!PyBytes_Check(target) || !PyUnicode_Check(op) || nargs < 0) {
        PyErr_SetString(PyExc_TypeError, "ManagerBase: target (bytes), op (str), args "
                                         "(tuple) expected");
        return -1;
    }
    Py_ssize_t oplen;
    const char *ops = PyUnicode_AsUTF8AndSize(op, &oplen);
    if (!ops)
        return -1;
    int rc = (rid && put_tag_varint(b, 0x08, rid)) ||
             put_bytes(b, PyBytes_AS_STRING(target), (size_t)PyBytes_GET_SIZE(target)) ||
             put_len_field(b, 0x22, ops, (size_t)oplen);
    for (Py_ssize_t i = 0; !rc && i < nargs; i++)
        rc = enc_field(b, 0x2a, args[i], pickle, 0);
    if (!rc && timeout_ms)
        rc = put_tag_varint(b, 0x30,
                            ((uint64_t)timeout_ms << 1) ^ (uint64_t)(timeout_ms >> 63));
    if (!rc)
        rc = put_tag_varint(b, 0x38, (uint64_t)thread_ident());
    return rc ? -1 : 0;
}

/*
 * A call into libshoal with the GIL released counts its thread as inside a call on the
 * shoal_manager (shoal_manager_enter, libshoal's own count of the threads inside), so
 * that close() frees it only once no thread is inside one: a thread takes the handle
 * and enters in one stretch under the GIL (call_begin), and leaves before it takes
 * the GIL again (call_end) — at the interpreter's exit a daemon thread never gets the
 * GIL back. _quiesce() (close(), before shoal_manager_close) drops the handle, so no
 * thread takes it any more; shoal_manager_close waits for those inside to leave.
 */
static void *call_begin(ManagerBase *s)
{
    void *h = h_of(s);
    int rc = h ? mlib.enter(h) : 0;
    return rc < 0 ? raise_rc(rc) : h;
}

static void call_end(void *h)
{
    mlib.leave(h);
}

/* Sends p[len] (the GIL released). 0, or -1 with an exception set. */
static int send_frame(ManagerBase *s, const void *p, size_t len)
{
    void *h = call_begin(s);
    if (!h)
        return -1;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = mlib.send_raw(h, p, len);
    call_end(h);
    PyEval_RestoreThread(ts);
    return rc < 0 ? (raise_rc(rc), -1) : 0;
}

/* Decodes and frees reply buf[len] (libshoal's): as wait_reply. */
static int take_reply(void *buf, size_t len, int *status, PyObject **err,
                      PyObject **result)
{
    int rc = dec_reply(buf, len, status, err, result);
    if (rc > 0)
        rc = dec_reply_py(buf, len, status, err, result);
    mlib.free(buf);
    return rc;
}

/* Waits for the reply to rid and decodes it: its status, error text (a new reference
 * or NULL) and, when result is not NULL, its result. 0, or -1 with an exception. */
static int wait_reply(ManagerBase *s, uint64_t rid, int *status, PyObject **err,
                      PyObject **result)
{
    void *h = call_begin(s);
    if (!h)
        return -1;
    void *buf;
    size_t len;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = mlib.wait_raw(h, rid, &buf, &len);
    call_end(h);
    PyEval_RestoreThread(ts);
    if (rc < 0) {
        raise_rc(rc);
        return -1;
    }
    return take_reply(buf, len, status, err, result);
}

/* A request and its reply (the calling thread's writes collected before): encoded
 * on the stack, then sent and waited for in one stretch without the GIL; as
 * wait_reply. */
static int roundtrip(ManagerBase *s, PyObject *target, int pickle, PyObject *op,
                     PyObject *const *args, Py_ssize_t nargs, long long timeout_ms,
                     int *status, PyObject **err, PyObject **result)
{
    void *h = h_of(s);
    if (!h)
        return -1;
    wbuf b;
    wbuf_init(&b);
    uint64_t rid = mlib.next_id(h);
    if (enc_request(&b, rid, target, pickle, op, args, nargs, timeout_ms) ||
        !(h = call_begin(s))) {
        wbuf_done(&b);
        return -1;
    }
    void *buf;
    size_t len;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = mlib.call_raw(h, b.p, b.len, &buf, &len); /* over shm://, maybe the view */
    call_end(h);
    PyEval_RestoreThread(ts);
    wbuf_done(&b);
    if (rc < 0) {
        raise_rc(rc);
        return -1;
    }
    return take_reply(buf, len, status, err, result);
}

/* Keeps the error of write e (status, err) as thread tid's first, unless it has one. */
static int keep_error(ManagerBase *s, unsigned long tid, pend *e, int status,
                      PyObject *err)
{
    tpend *t = find_thread(s, tid, 0);
    if (!t || t->error)
        return 0;
    PyObject *exc = PyObject_CallMethod(e->proxy, "_exception", "OOiO", e->op, e->args,
                                        status, err ? err : Py_None);
    if (!exc)
        return -1;
    if ((t = find_thread(s, tid, 0)) != NULL && !t->error)
        t->error = exc;
    else
        Py_DECREF(exc);
    return 0;
}

/* The first failure a batch reply's result lists: its index, status and error (a
 * borrowed reference), or index -1. */
static Py_ssize_t first_failure(PyObject *result, int *status, PyObject **err)
{
    if (!result || !PyList_Check(result) || !PyList_GET_SIZE(result))
        return -1;
    PyObject *f = PyList_GET_ITEM(result, 0);
    if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 3)
        return -1;
    Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(f, 0));
    long st = PyLong_AsLong(PyTuple_GET_ITEM(f, 1));
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    *status = (int)st;
    *err = PyTuple_GET_ITEM(f, 2);
    return i;
}

/* Collects the reply to thread tid's oldest batch in flight; keeps the first error
 * (a failed batch: its first write's). */
static int collect_one(ManagerBase *s, unsigned long tid)
{
    tpend *t = find_thread(s, tid, 0);
    if (!t || !t->nfl)
        return 0;
    sent b = t->fl[0];
    memmove(&t->fl[0], &t->fl[1], --t->nfl * sizeof(sent));
    int status;
    PyObject *err = NULL, *result = NULL;
    int rc = wait_reply(s, b.rid, &status, &err, &result);
    if (rc == 0) {
        Py_ssize_t i = 0;
        PyObject *ferr = err;
        if (status >= 0 && (i = first_failure(result, &status, &ferr)) >= (Py_ssize_t)b.n)
            i = -1;
        if (i >= 0)
            rc = keep_error(s, tid, &b.e[i], status, ferr);
    }
    Py_XDECREF(err);
    Py_XDECREF(result);
    pends_free(b.e, b.n);
    return rc;
}

/* Lets the other threads run for a moment (the GIL released). */
static void yield_gil(void)
{
    PyThreadState *ts = PyEval_SaveThread();
    sched_yield();
    PyEval_RestoreThread(ts);
}

/* Sends thread tid's open batch (collecting the oldest in flight first when
 * BATCHES_IN_FLIGHT are). A batch of tid being sent by another thread (the idle
 * flusher, or tid itself while the flusher runs) goes first: the caller waits for it,
 * or with idle (the flusher) leaves the batch for later. 0, or -1 with an exception
 * set. */
static int send_batch(ManagerBase *s, unsigned long tid, int idle)
{
    tpend *t;
    for (;;) {
        if (!(t = find_thread(s, tid, 0)) || !t->nopen)
            return 0;
        if (t->sending) {
            if (idle)
                return 0;
            yield_gil();
        } else if (t->nfl < BATCHES_IN_FLIGHT)
            break;
        else if (collect_one(s, tid))
            return -1;
    }
    void *h = h_of(s);
    if (!h)
        return -1;
    wbuf *b = t->buf;
    sent sb = {mlib.next_id(h), t->nopen, t->open};
    t->buf = NULL; /* this call's while it sends */
    t->open = NULL;
    t->nopen = t->capopen = 0;
    t->fl[t->nfl++] = sb;
    t->sending = 1;
    int rc = put_tag_varint(b, 0x08, sb.rid) || send_frame(s, b->p, b->len);
    if ((t = find_thread(s, tid, 0)) != NULL)
        t->sending = 0;
    if (t && !t->buf) {
        b->len = 0;
        t->buf = b;
    } else {
        wbuf_done(b);
        PyMem_Free(b);
    }
    if (rc && t && t->nfl && t->fl[t->nfl - 1].rid == sb.rid) {
        t->nfl--; /* not sent: no reply to wait for */
        pends_free(sb.e, sb.n);
    }
    return rc ? -1 : 0;
}

/* Sends thread tid's open batch and collects all of its batches in flight; raises
 * the first error they carried. 0, or -1 with an exception set. */
static int flush_thread(ManagerBase *s, unsigned long tid)
{
    tpend *t = find_thread(s, tid, 0);
    if (!t)
        return 0;
    if ((t->nopen || t->nfl) && send_batch(s, tid, 0))
        return -1;
    while ((t = find_thread(s, tid, 0)) != NULL && t->nfl)
        if (collect_one(s, tid))
            return -1;
    if (t && t->error) {
        PyObject *e = t->error;
        t->error = NULL;
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
        return -1;
    }
    return 0;
}

/* Sends every thread's open batch: before a call that waits (its thread's batch
 * then collected by flush_thread), the writes of the session's other threads go out
 * too, as the call may wait for one of them. 0, or -1 with an exception set. */
static int send_all(ManagerBase *s)
{
    for (size_t i = 0; i < s->nt; i++)
        if (s->t[i].nopen && send_batch(s, s->t[i].tid, 0))
            return -1;
    return 0;
}

static int ll_arg(PyObject *o, long long *v)
{
    *v = PyLong_AsLongLong(o);
    return *v == -1 && PyErr_Occurred() ? -1 : 0;
}

/* After the calling thread's pipelined writes (raising their first error; the other
 * threads' open batches sent too), a request and its reply: as wait_reply. */
static int session_request(ManagerBase *s, PyObject *target, int pickle, PyObject *op,
                           PyObject *const *args, Py_ssize_t nargs, long long timeout_ms,
                           int *status, PyObject **err, PyObject **result)
{
    if (send_all(s) || flush_thread(s, thread_ident()))
        return -1;
    return roundtrip(s, target, pickle, op, args, nargs, timeout_ms, status, err, result);
}

static PyObject *tuple_of(PyObject *const *a, Py_ssize_t n)
{
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        Py_INCREF(a[i]);
        PyTuple_SET_ITEM(t, i, a[i]);
    }
    return t;
}

/* The exception proxy._exception(op, args, status, err) raised; NULL. err: stolen. */
static PyObject *raise_status(PyObject *proxy, PyObject *op, PyObject *args, int status,
                              PyObject *err)
{
    if (!err && !(err = PyUnicode_FromStringAndSize("", 0)))
        return NULL;
    PyObject *exc =
        PyObject_CallMethod(proxy, "_exception", "OOiO", op, args, status, err);
    Py_DECREF(err);
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* session_request() of a call with no timeout that only success suits: its result
 * (a new reference), or NULL with proxy._exception(...) raised (the arguments' tuple
 * made for it then only). */
static PyObject *session_op(ManagerBase *s, PyObject *proxy, PyObject *target, int pickle,
                            PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    int status;
    PyObject *err, *result;
    if (session_request(s, target, pickle, op, args, nargs, 0, &status, &err, &result))
        return NULL;
    if (status >= 0) {
        Py_XDECREF(err);
        if (!result)
            Py_RETURN_NONE;
        return result;
    }
    Py_XDECREF(result);
    PyObject *t = tuple_of(args, nargs);
    if (!t) {
        Py_XDECREF(err);
        return NULL;
    }
    PyObject *r = raise_status(proxy, op, t, status, err);
    Py_DECREF(t);
    return r;
}

/* A tuple argument's items: 0, or -1 with TypeError set (what is not a tuple). */
static int tuple_items(PyObject *t, PyObject *const **items, Py_ssize_t *n)
{
    if (!PyTuple_Check(t)) {
        PyErr_SetString(PyExc_TypeError, "ManagerBase: args (tuple) expected");
        return -1;
    }
    *items = &PyTuple_GET_ITEM(t, 0);
    *n = PyTuple_GET_SIZE(t);
    return 0;
}

/* request(target, pickle, op, args, timeout_ms) -> (status, error text, result) */
static PyObject *ManagerBase_request(ManagerBase *s, PyObject *const *a, Py_ssize_t n)
{
    long long timeout;
    if (n != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "request(target, pickle, op, args, timeout_ms) expected");
        return NULL;
    }
    int status;
    PyObject *err, *result, *const *args;
    Py_ssize_t nargs;
    if (ll_arg(a[4], &timeout) || tuple_items(a[3], &args, &nargs) ||
        session_request(s, a[0], PyObject_IsTrue(a[1]) == 1, a[2], args, nargs, timeout,
                        &status, &err, &result))
        return NULL;
    PyObject *out = PyTuple_New(3);
    if (!out) {
        Py_XDECREF(err);
        Py_XDECREF(result);
        return NULL;
    }
    if (!err)
        err = PyUnicode_FromStringAndSize("", 0);
    if (!result) {
        result = Py_None;
        Py_INCREF(result);
    }
    PyTuple_SET_ITEM(out, 0, PyLong_FromLong(status));
    PyTuple_SET_ITEM(out, 1, err);
    PyTuple_SET_ITEM(out, 2, result);
    if (!PyTuple_GET_ITEM(out, 0) || !err)
        Py_CLEAR(out);
    return out;
}

/* op(proxy, target, pickle, op, args) -> result: request() for the calls that take no
 * timeout and accept only success: the result itself, or the exception
 * proxy._exception(op, args, status, error) raised (no tuple made on the way). */
static PyObject *ManagerBase_op(ManagerBase *s, PyObject *const *a, Py_ssize_t n)
{
    if (n != 5) {
        PyErr_SetString(PyExc_TypeError, "op(proxy, target, pickle, op, args) expected");
        return NULL;
    }
    PyObject *const *args;
    Py_ssize_t nargs;
    if (tuple_items(a[4], &args, &nargs))
        return NULL;
    return session_op(s, a[0], a[1], a[2] == Py_True || PyObject_IsTrue(a[2]) == 1, a[3],
                      args, nargs);
}

/* ---- the idle flusher ---- */

/* The process's idle flusher: a daemon thread running idle_loop. `list` (the
 * sessions with an open batch, strong references), `tick`, `started` and the
 * sessions' `listed` are the GIL's; `want` (list not empty) and `sleeping` are also
 * read by the flusher with the GIL released, under `mu`. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int want, sleeping, started;
    uint64_t tick;
    PyObject *list;
} idle = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 1, NULL};

#define IDLE_NS 1000000 /* an open batch waits at most about this long */

static PyMethodDef idle_loop_def;

/* Starts the flusher thread (threading.Thread(target=idle_loop, daemon=True)). */
static void idle_start(void)
{
    PyObject *th = PyImport_ImportModule("threading");
    PyObject *cls = th ? PyObject_GetAttrString(th, "Thread") : NULL;
    PyObject *fn = cls ? PyCFunction_New(&idle_loop_def, NULL) : NULL;
    PyObject *kw = fn ? Py_BuildValue("{sOsOss}", "target", fn, "daemon", Py_True, "name",
                                      "shoal-idle-flush")
                      : NULL;
    PyObject *t = kw ? PyObject_Call(cls, empty_tuple, kw) : NULL;
    idle.started = 1; /* set first: start() lets other threads run */
    PyObject *r = t ? PyObject_CallMethod(t, "start", NULL) : NULL;
    if (!r) {
        idle.started = 0; /* not now (the interpreter ending): the next batch retries */
        PyErr_Clear();
    }
    Py_XDECREF(r);
    Py_XDECREF(t);
    Py_XDECREF(kw);
    Py_XDECREF(fn);
    Py_XDECREF(cls);
    Py_XDECREF(th);
}

static void idle_want(int want)
{
    pthread_mutex_lock(&idle.mu);
    idle.want = want;
    if (want && idle.sleeping)
        pthread_cond_signal(&idle.cv);
    pthread_mutex_unlock(&idle.mu);
}

/* Thread t of s opened a batch: it is sent at the latest after the flusher's next
 * round. Best effort: a batch not listed goes out at its thread's next call. */
static void idle_note(ManagerBase *s, tpend *t)
{
    t->tick = idle.tick;
    if (s->listed || s->closing || !idle.list)
        return;
    if (PyList_Append(idle.list, (PyObject *)s)) {
        PyErr_Clear();
        return;
    }
    s->listed = 1;
    idle_want(1);
    if (!idle.started)
        idle_start();
}

static int has_open(ManagerBase *s)
{
    for (size_t i = 0; i < s->nt; i++)
        if (s->t[i].nopen)
            return 1;
    return 0;
}

/* Sends the batches of s opened before this round. An error is the owner thread's:
 * one found in a reply is kept for it; a dead session fails its next call anyway. */
static void idle_send(ManagerBase *s)
{
    s->idle_busy++;
    for (size_t i = 0; i < s->nt && !s->closing; i++) {
        tpend *t = &s->t[i];
        if (t->nopen && t->tick < idle.tick && send_batch(s, t->tid, 1))
            PyErr_Clear();
    }
    s->idle_busy--;
}

/* One round (the GIL held): the open batches of an earlier round are sent; the
 * sessions with nothing open leave the list. */
static void idle_round(void)
{
    idle.tick++;
    PyObject *snap = PyList_GetSlice(idle.list, 0, PY_SSIZE_T_MAX);
    if (!snap) {
        PyErr_Clear();
        return;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snap); i++)
        idle_send((ManagerBase *)PyList_GET_ITEM(snap, i));
    Py_DECREF(snap);
    PyObject *keep = PyList_New(0);
    if (!keep) {
        PyErr_Clear();
        return;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(idle.list); i++) {
        ManagerBase *s = (ManagerBase *)PyList_GET_ITEM(idle.list, i);
        if (!s->closing && has_open(s) && !PyList_Append(keep, (PyObject *)s))
            continue;
        PyErr_Clear();
        s->listed = 0; /* its next batch lists it again */
    }
    Py_SETREF(idle.list, keep);
    idle_want(PyList_GET_SIZE(keep) > 0);
}

/* The flusher's body: sleeps (the GIL released) while no batch is open, else runs a
 * round every IDLE_NS. Never returns; at the interpreter's end, it is a daemon thread
 * asleep or stopped by CPython when it asks for the GIL. */
static PyObject *idle_loop(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    for (;;) {
        PyThreadState *ts = PyEval_SaveThread();
        pthread_mutex_lock(&idle.mu);
        while (!idle.want) {
            idle.sleeping = 1;
            pthread_cond_wait(&idle.cv, &idle.mu);
        }
        idle.sleeping = 0;
        pthread_mutex_unlock(&idle.mu);
        struct timespec nap = {0, IDLE_NS};
        nanosleep(&nap, NULL);
        PyEval_RestoreThread(ts);
        idle_round();
    }
    Py_UNREACHABLE();
}

static PyMethodDef idle_loop_def = {"_idle_loop", idle_loop, METH_NOARGS,
                                    "the idle flusher's thread body"};

/* manager_after_fork(): in a forked child, where the flusher thread does not exist:
 * forgets its list and state (the next batch starts a new one). */
static PyObject *m_manager_after_fork(PyObject *m, PyObject *unused)
{
    (void)m;
    (void)unused;
    pthread_mutex_init(&idle.mu, NULL);
    pthread_cond_init(&idle.cv, NULL);
    idle.want = idle.sleeping = idle.started = 0;
    for (Py_ssize_t i = 0; idle.list && i < PyList_GET_SIZE(idle.list); i++) {
        ManagerBase *s = (ManagerBase *)PyList_GET_ITEM(idle.list, i);
        s->listed = s->idle_busy = 0;
    }
    if (idle.list && PyList_SetSlice(idle.list, 0, PY_SSIZE_T_MAX, NULL))
        return NULL;
    Py_RETURN_NONE;
}

/* _idle_stop(): before the session closes: the flusher leaves it (waiting for a send
 * or collection of its own to end). */
static PyObject *ManagerBase_idle_stop(ManagerBase *s, PyObject *unused)
{
    (void)unused;
    s->closing = 1;
    while (s->idle_busy)
        yield_gil();
    Py_RETURN_NONE;
}

/* Appends write a (its Request encoded in item) to thread tid's open batch, sending
 * the batch first when the item would take it past BATCH_BYTES. A batch opened by a
 * write sent at once (now) is not noted for the idle flusher: it does not wait. */
static int append_write(ManagerBase *s, unsigned long tid, const wbuf *item,
                        PyObject *const *a, int now)
{
    tpend *t = find_thread(s, tid, 1);
    if (t && t->nopen && t->buf && t->buf->len + item->len > BATCH_BYTES &&
        (send_batch(s, tid, 0) || !(t = find_thread(s, tid, 1))))
        return -1;
    if (!t)
        return -1;
    if (!t->buf) {
        if (!(t->buf = PyMem_Malloc(sizeof(wbuf)))) {
            PyErr_NoMemory();
            return -1;
        }
        wbuf_init(t->buf);
    }
    if (t->nopen == t->capopen) {
        size_t cap = t->capopen ? t->capopen * 2 : 16;
        pend *e = PyMem_Realloc(t->open, cap * sizeof(*e));
        if (!e) {
            PyErr_NoMemory();
            return -1;
        }
        t->open = e;
        t->capopen = cap;
    }
    if (wbuf_room(t->buf, item->len + 11) ||
        put_len_field(t->buf, 0x42, item->p, item->len))
        return -1;
    pend *e = &t->open[t->nopen++];
    Py_INCREF(a[0]);
    Py_INCREF(a[3]);
    Py_INCREF(a[4]);
    e->proxy = a[0];
    e->op = a[3];
    e->args = a[4];
    if (t->nopen == 1 && !now)
        idle_note(s, t); /* last: it may let other threads run */
    return 0;
}

/* A pipelined write of proxy's: an item of the thread's open batch, sent at once with
 * now, else once the batch holds depth writes or BATCH_BYTES (see write()). 0, or -1
 * with an exception set. */
static int session_write(ManagerBase *s, PyObject *proxy, PyObject *target, int pickle,
                         PyObject *op, PyObject *args, long long timeout, long long depth,
                         int now)
{
    if (!h_of(s))
        return -1;
    wbuf b;
    wbuf_init(&b);
    unsigned long tid = thread_ident();
    PyObject *a[5] = {proxy, target, NULL, op, args}; /* append_write's references */
    PyObject *const *items;
    Py_ssize_t n;
    int rc = tuple_items(args, &items, &n) ||
             enc_request(&b, 0, target, pickle, op, items, n, timeout) ||
             append_write(s, tid, &b, a, now);
    wbuf_done(&b);
    if (rc)
        return -1;
    tpend *t = find_thread(s, tid, 0);
    if (t &&
        (now || (long long)t->nopen >= depth || (t->buf && t->buf->len >= BATCH_BYTES)) &&
        send_batch(s, tid, 0))
        return -1;
    return 0;
}

/* write(proxy, target, pickle, op, args, timeout_ms, depth, send=True): a write
 * whose reply nobody waits for: an item of the thread's open batch, sent at once
 * with send (a write that may wake another client: the batch carries the writes
 * before it), else once the batch holds depth writes or BATCH_BYTES, or by the
 * thread's next request or flush. */
static PyObject *ManagerBase_write(ManagerBase *s, PyObject *const *a, Py_ssize_t n)
{
    long long timeout, depth;
    if (n != 7 && n != 8) {
        PyErr_SetString(PyExc_TypeError, "write(proxy, target, pickle, op, args, "
                                         "timeout_ms, depth, send=True) expected");
        return NULL;
    }
    int now =
        n == 7 || a[7] == Py_True || (a[7] != Py_False && PyObject_IsTrue(a[7]) == 1);
    if (ll_arg(a[5], &timeout) || ll_arg(a[6], &depth) ||
        session_write(s, a[0], a[1], a[2] == Py_True || PyObject_IsTrue(a[2]) == 1, a[3],
                      a[4], timeout, depth, now))
        return NULL;
    Py_RETURN_NONE;
}

/* flush(tid=None) */
static PyObject *ManagerBase_flush(ManagerBase *s, PyObject *const *a, Py_ssize_t n)
{
    unsigned long tid = thread_ident();
    if (n > 1) {
        PyErr_SetString(PyExc_TypeError, "flush(tid=None)");
        return NULL;
    }
    if (n == 1 && a[0] != Py_None) {
        tid = PyLong_AsUnsignedLong(a[0]);
        if (tid == (unsigned long)-1 && PyErr_Occurred())
            return NULL;
    }
    if (flush_thread(s, tid))
        return NULL;
    Py_RETURN_NONE;
}

/* _send_open(): sends every thread's open batch (before a fork: the child and the
 * broker see the writes made so far). */
static PyObject *ManagerBase_send_open(ManagerBase *s, PyObject *unused)
{
    (void)unused;
    if (send_all(s))
        return NULL;
    Py_RETURN_NONE;
}

/* _pending_tids() -> the threads with writes in flight or an error not raised */
static PyObject *ManagerBase_pending_tids(ManagerBase *s, PyObject *unused)
{
    (void)unused;
    PyObject *out = PyList_New(0);
    for (size_t i = 0; out && i < s->nt; i++)
        if (s->t[i].nopen || s->t[i].nfl || s->t[i].error) {
            PyObject *x = PyLong_FromUnsignedLong(s->t[i].tid);
            if (!x || PyList_Append(out, x))
                Py_CLEAR(out);
            Py_XDECREF(x);
        }
    return out;
}

/* _quiesce(): before the session is freed (shoal_manager_close, which waits for the
 * threads inside a call: see call_begin): no thread takes the handle any more. */
static PyObject *ManagerBase_quiesce(ManagerBase *s, PyObject *unused)
{
    (void)unused;
    s->h = NULL;
    Py_RETURN_NONE;
}

/* _attach(handle): the shoal_manager to use (None or 0: none; forgets the writes in
 * flight). */
static PyObject *ManagerBase_attach(ManagerBase *s, PyObject *h)
{
    void *p = h == Py_None ? NULL : PyLong_AsVoidPtr(h);
    if (!p && PyErr_Occurred())
        return NULL;
    if (!p)
        ManagerBase_clear(s);
    s->h = p;
    Py_RETURN_NONE;
}

static PyMethodDef ManagerBase_methods[] = {
    {"request", (PyCFunction)(void (*)(void))ManagerBase_request, METH_FASTCALL,
     "request(target, pickle, op, args, timeout_ms) -> (status, error, result): "
     "after this thread's pipelined writes, sends a request and waits for its reply"},
    {"op", (PyCFunction)(void (*)(void))ManagerBase_op, METH_FASTCALL,
     "op(proxy, target, pickle, op, args) -> result: request() of a call with no "
     "timeout; raises proxy._exception(...) for an error status"},
    {"write", (PyCFunction)(void (*)(void))ManagerBase_write, METH_FASTCALL,
     "write(proxy, target, pickle, op, args, timeout_ms, depth, send=True): a pipelined "
     "write (send=False: it may wait in the thread's batch)"},
    {"flush", (PyCFunction)(void (*)(void))ManagerBase_flush, METH_FASTCALL,
     "flush(tid=None): collects a thread's pipelined writes, raises their first error"},
    {"_send_open", (PyCFunction)ManagerBase_send_open, METH_NOARGS,
     "_send_open(): sends every thread's open batch of pipelined writes"},
    {"_pending_tids", (PyCFunction)ManagerBase_pending_tids, METH_NOARGS,
     "the threads with pipelined writes in flight"},
    {"_idle_stop", (PyCFunction)ManagerBase_idle_stop, METH_NOARGS,
     "_idle_stop(): the idle flusher leaves this session (before it closes)"},
    {"_quiesce", (PyCFunction)ManagerBase_quiesce, METH_NOARGS,
     "_quiesce(): drops the handle (before shoal_manager_close: no thread takes it)"},
    {"_attach", (PyCFunction)ManagerBase_attach, METH_O,
     "_attach(handle): the shoal_manager (None: detach, forgetting writes in flight)"},
    {NULL, NULL, 0, NULL}};

static PyMemberDef ManagerBase_members[] = {
    {"pid", T_LONG, offsetof(ManagerBase, pid), 0, "the process the session is of"},
    {"held", T_OBJECT, offsetof(ManagerBase, held), 0,
     "(lock name, thread ident or 0) -> times acquired here and not released"},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject ManagerBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shoal._speedups.ManagerBase",
    .tp_basicsize = sizeof(ManagerBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C requests and replies of shoal.Manager's session (see "
              "shoal._speedups).",
    .tp_methods = ManagerBase_methods,
    .tp_traverse = (traverseproc)ManagerBase_traverse,
    .tp_members = ManagerBase_members,
    .tp_clear = (inquiry)ManagerBase_tp_clear,
    .tp_dealloc = (destructor)ManagerBase_dealloc,
    .tp_new = PyType_GenericNew,
};

/* ---- ProxyBase: the proxies' hot methods ---- */

/*
 * managers.BaseProxy derives from ProxyBase, which keeps the proxy's session, encoded
 * target, pickle flag and name in C (the members _s, _tgt, _pickle, _name) and has
 * in C what BaseProxy's _op and _write do in Python, so a proxied operation makes no
 * Python frame: _op(op, *args) and _write(op, *args) themselves, and, installed as
 * the proxies' methods, dict's __getitem__ / __setitem__, list's append, and a
 * Lock's (RLock's, Condition's, semaphore's) acquire, release, __enter__ and
 * __exit__ without arguments (with arguments they call the Python methods
 * _acquire_py / _release_py; a status other than success after an acquire goes to
 * self._acquired). The session is the proxy's _s while that is open and this
 * process's, else self._ses() finds it; pipeline_depth, _resolve (a result that
 * managers._dec_value decoded may hold references to objects) and _nested are read
 * from the managers module (proxy_init).
 */

typedef struct {
    PyObject_HEAD PyObject *s; /* _s: the session once used (a ManagerBase), or None */
    PyObject *tgt;             /* _tgt: the Request's object and path fields (bytes) */
    PyObject *pickle;          /* _pickle */
    PyObject *name;            /* _name */
} ProxyBase;

static struct {
    PyObject *globals; /* managers' module dict */
    PyObject *set, *get, *append, *acquire, *release, *pipeline_depth, *resolve, *nested,
        *signals, *per_thread, *ses, *acquired, *acquire_py, *release_py;
} pst;

static int ProxyBase_traverse(ProxyBase *p, visitproc visit, void *arg)
{
    Py_VISIT(p->s);
    Py_VISIT(p->tgt);
    Py_VISIT(p->pickle);
    Py_VISIT(p->name);
    return 0;
}

static int ProxyBase_clear(ProxyBase *p)
{
    Py_CLEAR(p->s);
    Py_CLEAR(p->tgt);
    Py_CLEAR(p->pickle);
    Py_CLEAR(p->name);
    return 0;
}

static void ProxyBase_dealloc(ProxyBase *p)
{
    PyObject_GC_UnTrack(p);
    ProxyBase_clear(p);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

/* A call's needs: the session (this process's, open), the target and pickle flag
 * (new references to the first two: the GIL is let go on the way). */
typedef struct {
    ManagerBase *s;
    PyObject *tgt;
    int pickle;
} pcall;

static void pcall_done(pcall *c)
{
    Py_XDECREF(c->s);
    Py_XDECREF(c->tgt);
}

static int pcall_begin(ProxyBase *p, pcall *c)
{
    *c = (pcall){NULL, NULL, 0};
    if (!pst.globals) {
        PyErr_SetString(PyExc_RuntimeError, "proxy_init() was not called");
        return -1;
    }
    PyObject *s = p->s;
    if (s && PyObject_TypeCheck(s, &ManagerBase_Type) && ((ManagerBase *)s)->h &&
        ((ManagerBase *)s)->pid == cached_pid)
        Py_INCREF(s);
    else if (!(s = PyObject_CallMethodNoArgs((PyObject *)p, pst.ses)))
        return -1;
    if (!PyObject_TypeCheck(s, &ManagerBase_Type) || !p->tgt || !PyBytes_Check(p->tgt)) {
        Py_DECREF(s);
        PyErr_SetString(PyExc_TypeError, "ProxyBase: no session or target");
        return -1;
    }
    c->s = (ManagerBase *)s;
    c->tgt = p->tgt;
    Py_INCREF(c->tgt);
    c->pickle = p->pickle == Py_True ||
                (p->pickle && p->pickle != Py_False && PyObject_IsTrue(p->pickle) == 1);
    return 0;
}

/* A borrowed reference to managers' global `key`. */
static PyObject *global(PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(pst.globals, key);
    if (!v && !PyErr_Occurred())
        PyErr_SetObject(PyExc_NameError, key);
    return v;
}

/* op(args[0, nargs)) on p, waited for: its result (references made proxies) or NULL
 * raised. */
static PyObject *proxy_do(ProxyBase *p, PyObject *op, PyObject *const *args,
                          Py_ssize_t nargs)
{
    pcall c;
    if (pcall_begin(p, &c))
        return NULL;
    unsigned long before = py_decoded;
    PyObject *r = session_op(c.s, (PyObject *)p, c.tgt, c.pickle, op, args, nargs);
    pcall_done(&c);
    if (r && py_decoded != before) {
        PyObject *fn = global(pst.resolve);
        PyObject *out =
            fn ? PyObject_CallFunctionObjArgs(fn, (PyObject *)p, r, NULL) : NULL;
        Py_DECREF(r);
        r = out;
    }
    return r;
}

/* managers.pipeline_depth: 0, or -1 with an exception set. */
static int pipeline_depth(long long *depth)
{
    PyObject *v = global(pst.pipeline_depth);
    return v ? ll_arg(v, depth) : -1;
}

/* proxy_write's pipelined way, the arguments in tuple args. */
static int proxy_write_tuple(ProxyBase *p, PyObject *op, PyObject *args, int now,
                             long long depth)
{
    if (now < 0) {
        PyObject *v = PyObject_GetAttr((PyObject *)p, pst.signals);
        now = v ? PyObject_IsTrue(v) : -1;
        Py_XDECREF(v);
        if (now < 0)
            return -1;
    }
    pcall c;
    if (pcall_begin(p, &c))
        return -1;
    int rc = session_write(c.s, (PyObject *)p, c.tgt, c.pickle, op, args, 0, depth, now);
    pcall_done(&c);
    return rc;
}

/* A write whose result nobody needs (BaseProxy._write) of op(args[0, nargs)):
 * pipelined, sent at once when the class's _signals says it may wake someone (now <
 * 0: look it up); waited for when pipeline_depth is 0 (no tuple of the arguments made
 * then, unless for an error). 0, or -1 raised. */
static int proxy_write(ProxyBase *p, PyObject *op, PyObject *const *args,
                       Py_ssize_t nargs, int now)
{
    long long depth;
    if (pipeline_depth(&depth))
        return -1;
    if (depth <= 0) {
        PyObject *r = proxy_do(p, op, args, nargs);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    PyObject *t = tuple_of(args, nargs); /* kept with the batch item, for its error */
    int rc = t ? proxy_write_tuple(p, op, t, now, depth) : -1;
    Py_XDECREF(t);
    return rc;
}

/* _op(op, *args) -> result: BaseProxy._op */
static PyObject *ProxyBase_op(ProxyBase *p, PyObject *const *a, Py_ssize_t n)
{
    if (n < 1) {
        PyErr_SetString(PyExc_TypeError, "_op(op, *args)");
        return NULL;
    }
    return proxy_do(p, a[0], a + 1, n - 1);
}

/* _write(op, *args): BaseProxy._write */
static PyObject *ProxyBase_write(ProxyBase *p, PyObject *const *a, Py_ssize_t n)
{
    if (n < 1) {
        PyErr_SetString(PyExc_TypeError, "_write(op, *args)");
        return NULL;
    }
    if (proxy_write(p, a[0], a + 1, n - 1, -1))
        return NULL;
    Py_RETURN_NONE;
}

/* _write_set(key, value): a dict's __setitem__ (a write of op "set") */
static PyObject *ProxyBase_write_set(ProxyBase *p, PyObject *const *a, Py_ssize_t n)
{
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "__setitem__(key, value)");
        return NULL;
    }
    if (proxy_write(p, pst.set, a, 2, -1))
        return NULL;
    Py_RETURN_NONE;
}

/* _write_append(x): a list's append */
static PyObject *ProxyBase_write_append(ProxyBase *p, PyObject *x)
{
    if (proxy_write(p, pst.append, &x, 1, -1))
        return NULL;
    Py_RETURN_NONE;
}

/* _get_nested(key): a dict's __getitem__: the value, a list or dict in it as a proxy
 * to it (managers._nested) */
static PyObject *ProxyBase_get_nested(ProxyBase *p, PyObject *key)
{
    PyObject *r = proxy_do(p, pst.get, &key, 1);
    if (r && (PyList_CheckExact(r) || PyDict_CheckExact(r))) {
        PyObject *fn = global(pst.nested);
        PyObject *out =
            fn ? PyObject_CallFunctionObjArgs(fn, (PyObject *)p, key, r, NULL) : NULL;
        Py_DECREF(r);
        r = out;
    }
    return r;
}

/* The key of what this thread (this process, for semaphores) holds of lock p in its
 * session's `held`: (name, thread ident or 0). */
static PyObject *held_key(ProxyBase *p)
{
    PyObject *v = PyObject_GetAttr((PyObject *)p, pst.per_thread);
    int per = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    if (per < 0)
        return NULL;
    PyObject *tid = PyLong_FromUnsignedLong(per ? thread_ident() : 0);
    PyObject *key = tid ? PyTuple_Pack(2, p->name ? p->name : Py_None, tid) : NULL;
    Py_XDECREF(tid);
    return key;
}

/* held[key] += delta, from 0 when absent; the count before, or -1 raised. */
static long long held_add(ManagerBase *s, PyObject *key, long long delta)
{
    if (!s->held || !PyDict_Check(s->held)) {
        PyErr_SetString(PyExc_TypeError, "ManagerBase: held is not a dict");
        return -1;
    }
    PyObject *v = PyDict_GetItemWithError(s->held, key);
    long long n = 0;
    if (!v && PyErr_Occurred())
        return -1;
    if (v && ll_arg(v, &n))
        return -1;
    PyObject *nv = PyLong_FromLongLong(n + delta);
    int rc = nv ? PyDict_SetItem(s->held, key, nv) : -1;
    Py_XDECREF(nv);
    return rc ? -1 : n;
}

/* acquire() with no arguments: True once taken; any other status is
 * self._acquired(session, status, error, -1, False)'s. */
static PyObject *lock_acquire(ProxyBase *p)
{
    pcall c;
    if (pcall_begin(p, &c))
        return NULL;
    int status;
    PyObject *err = NULL, *result = NULL, *out = NULL;
    if (session_request(c.s, c.tgt, c.pickle, pst.acquire, NULL, 0, -1, &status, &err,
                        &result))
        goto done;
    if (status == 0) {
        PyObject *key = held_key(p);
        if (key && held_add(c.s, key, 1) >= 0)
            out = Py_True;
        Py_XINCREF(out);
        Py_XDECREF(key);
    } else {
        if (!err)
            err = PyUnicode_FromStringAndSize("", 0);
        PyObject *st = err ? PyLong_FromLong(status) : NULL;
        PyObject *t = st ? PyLong_FromLong(-1) : NULL;
        if (t)
            out = PyObject_CallMethodObjArgs((PyObject *)p, pst.acquired, (PyObject *)c.s,
                                             st, err, t, Py_False, NULL);
        Py_XDECREF(st);
        Py_XDECREF(t);
    }
done:
    Py_XDECREF(err);
    Py_XDECREF(result);
    pcall_done(&c);
    return out;
}

/* release() with no arguments: pipelined (sent at once) when this thread took it
 * through this session, else waited for (its error raised at once). */
static int lock_release(ProxyBase *p)
{
    pcall c;
    if (pcall_begin(p, &c))
        return -1;
    PyObject *key = held_key(p);
    PyObject *v = key && c.s->held && PyDict_Check(c.s->held)
                      ? PyDict_GetItemWithError(c.s->held, key)
                      : NULL;
    long long n = 0;
    int rc = !key || (!v && PyErr_Occurred()) || (v && ll_arg(v, &n)) ? -1 : 0;
    if (!rc && n >= 1)
        rc = held_add(c.s, key, -1) < 0 ? -1 : 0;
    Py_XDECREF(key);
    pcall_done(&c);
    if (rc)
        return -1;
    if (n >= 1)
        return proxy_write(p, pst.release, NULL, 0, 1);
    PyObject *r = proxy_do(p, pst.release, NULL, 0);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* acquire(*args, **kw): the call without arguments here, else self._acquire_py */
static PyObject *ProxyBase_acquire(ProxyBase *p, PyObject *const *a, size_t nargsf,
                                   PyObject *kw)
{
    if (PyVectorcall_NARGS(nargsf) || (kw && PyTuple_GET_SIZE(kw))) {
        PyObject *fn = PyObject_GetAttr((PyObject *)p, pst.acquire_py);
        PyObject *r = fn ? PyObject_Vectorcall(fn, a, nargsf, kw) : NULL;
        Py_XDECREF(fn);
        return r;
    }
    return lock_acquire(p);
}

/* release(*n): the call without arguments here, else self._release_py */
static PyObject *ProxyBase_release(ProxyBase *p, PyObject *const *a, Py_ssize_t n)
{
    if (n) {
        PyObject *fn = PyObject_GetAttr((PyObject *)p, pst.release_py);
        PyObject *r = fn ? PyObject_Vectorcall(fn, a, (size_t)n, NULL) : NULL;
        Py_XDECREF(fn);
        return r;
    }
    if (lock_release(p))
        return NULL;
    Py_RETURN_NONE;
}

/* __enter__(): acquire(), then self */
static PyObject *ProxyBase_enter(ProxyBase *p, PyObject *unused)
{
    (void)unused;
    PyObject *r = lock_acquire(p);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_INCREF(p);
    return (PyObject *)p;
}

/* __exit__(*exc): release() */
static PyObject *ProxyBase_exit(ProxyBase *p, PyObject *const *a, Py_ssize_t n)
{
    (void)a;
    (void)n;
    if (lock_release(p))
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef ProxyBase_methods[] = {
    {"_op", (PyCFunction)(void (*)(void))ProxyBase_op, METH_FASTCALL,
     "_op(op, *args) -> result: runs op and waits for its reply; raises its error"},
    {"_write", (PyCFunction)(void (*)(void))ProxyBase_write, METH_FASTCALL,
     "_write(op, *args): a write whose result nobody needs (pipelined)"},
    {"_write_set", (PyCFunction)(void (*)(void))ProxyBase_write_set, METH_FASTCALL,
     "_write_set(key, value): _write('set', key, value)"},
    {"_write_append", (PyCFunction)ProxyBase_write_append, METH_O,
     "_write_append(x): _write('append', x)"},
    {"_get_nested", (PyCFunction)ProxyBase_get_nested, METH_O,
     "_get_nested(key): _op('get', key), a list or dict as a proxy to it"},
    {"_lock_acquire", (PyCFunction)(void (*)(void))ProxyBase_acquire,
     METH_FASTCALL | METH_KEYWORDS, "acquire(...): a lock's acquire"},
    {"_lock_release", (PyCFunction)(void (*)(void))ProxyBase_release, METH_FASTCALL,
     "release(*n): a lock's release"},
    {"_lock_enter", (PyCFunction)ProxyBase_enter, METH_NOARGS, "__enter__: acquire()"},
    {"_lock_exit", (PyCFunction)(void (*)(void))ProxyBase_exit, METH_FASTCALL,
     "__exit__(*exc): release()"},
    {NULL, NULL, 0, NULL}};

static PyMemberDef ProxyBase_members[] = {
    {"_s", T_OBJECT, offsetof(ProxyBase, s), 0, "the session, once used"},
    {"_tgt", T_OBJECT, offsetof(ProxyBase, tgt), 0, "the encoded object and path"},
    {"_pickle", T_OBJECT, offsetof(ProxyBase, pickle), 0, "values may travel pickled"},
    {"_name", T_OBJECT, offsetof(ProxyBase, name), 0, "the object's name"},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject ProxyBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shoal._speedups.ProxyBase",
    .tp_basicsize = sizeof(ProxyBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C hot methods of shoal.managers.BaseProxy (see shoal._speedups).",
    .tp_methods = ProxyBase_methods,
    .tp_members = ProxyBase_members,
    .tp_traverse = (traverseproc)ProxyBase_traverse,
    .tp_clear = (inquiry)ProxyBase_clear,
    .tp_dealloc = (destructor)ProxyBase_dealloc,
    .tp_new = PyType_GenericNew,
};

/* proxy_init(globals): managers' module dict (pipeline_depth, _resolve, _nested) */
static PyObject *m_proxy_init(PyObject *m, PyObject *g)
{
    (void)m;
    if (!PyDict_Check(g)) {
        PyErr_SetString(PyExc_TypeError, "proxy_init(globals)");
        return NULL;
    }
    struct {
        PyObject **at;
        const char *s;
    } names[] = {{&pst.set, "set"},
                 {&pst.get, "get"},
                 {&pst.append, "append"},
                 {&pst.acquire, "acquire"},
                 {&pst.release, "release"},
                 {&pst.pipeline_depth, "pipeline_depth"},
                 {&pst.resolve, "_resolve"},
                 {&pst.nested, "_nested"},
                 {&pst.signals, "_signals"},
                 {&pst.per_thread, "_per_thread"},
                 {&pst.ses, "_ses"},
                 {&pst.acquired, "_acquired"},
                 {&pst.acquire_py, "_acquire_py"},
                 {&pst.release_py, "_release_py"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!*names[i].at && !(*names[i].at = PyUnicode_InternFromString(names[i].s)))
            return NULL;
    Py_INCREF(g);
    Py_XSETREF(pst.globals, g);
    Py_RETURN_NONE;
}

/* manager_init({name: address}, enc_value, dec_value, dec_reply, error): libshoal's
 * manager functions; managers' Python encoder and decoders, and the exception maker. */
static PyObject *m_manager_init(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    if (n != 5 || !PyDict_Check(a[0])) {
        PyErr_SetString(
            PyExc_TypeError,
            "manager_init(addresses, enc_value, dec_value, dec_reply, error)");
        return NULL;
    }
    void *p[7];
    static const char *names[] = {"shoal_manager_next_id",  "shoal_manager_send_raw",
                                  "shoal_manager_wait_raw", "shoal_manager_free",
                                  "shoal_manager_enter",    "shoal_manager_leave",
                                  "shoal_manager_call_raw"};
    for (int i = 0; i < 7; i++)
        if (fetch(a[0], names[i], &p[i]))
            return NULL;
    mlib.next_id = (fn_next_id)p[0];
    mlib.send_raw = (fn_send_raw)p[1];
    mlib.wait_raw = (fn_wait_raw)p[2];
    mlib.free = (fn_free)p[3];
    mlib.enter = (fn_enter)p[4];
    mlib.leave = (fn_leave)p[5];
    mlib.call_raw = (fn_call_raw)p[6];
    for (int i = 0; i < 4; i++)
        Py_INCREF(a[1 + i]);
    Py_XSETREF(mlib.enc_value, a[1]);
    Py_XSETREF(mlib.dec_value, a[2]);
    Py_XSETREF(mlib.dec_reply, a[3]);
    Py_XSETREF(mlib.error, a[4]);
    Py_RETURN_NONE;
}

static int mlib_ready(void)
{
    if (mlib.enc_value)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "manager_init() was not called");
    return 0;
}

/* encode_value(v, pickle) -> bytes: broker.proto's Value, as the requests carry it */
static PyObject *m_encode_value(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "encode_value(v, pickle)");
        return NULL;
    }
    if (!mlib_ready())
        return NULL;
    wbuf b;
    wbuf_init(&b);
    PyObject *out = enc_value(&b, a[0], PyObject_IsTrue(a[1]) == 1, 0)
                        ? NULL
                        : PyBytes_FromStringAndSize((const char *)b.p, (Py_ssize_t)b.len);
    wbuf_done(&b);
    return out;
}

/* decode_value(bytes) -> the Value's Python object, as replies are decoded */
static PyObject *m_decode_value(PyObject *m, PyObject *buf)
{
    (void)m;
    if (!mlib_ready())
        return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(buf, &b, PyBUF_SIMPLE))
        return NULL;
    PyObject *out = dec_value(b.buf, (size_t)b.len, 0);
    PyBuffer_Release(&b);
    return out;
}

/* ---- module -------------------------------------------------------------------- */

static int fetch(PyObject *addrs, const char *name, void **out)
{
    PyObject *v = PyDict_GetItemString(addrs, name);
    if (!v) {
        PyErr_Format(PyExc_KeyError, "init: no address for %s", name);
        return -1;
    }
    *out = PyLong_AsVoidPtr(v);
    return *out ? 0 : -1;
}

/* init({name: address}) with the libshoal functions used above. */
static PyObject *m_init(PyObject *m, PyObject *addrs)
{
    (void)m;
    if (!PyDict_Check(addrs)) {
        PyErr_SetString(PyExc_TypeError, "init() needs a dict of function addresses");
        return NULL;
    }
    void *p[8];
    static const char *names[] = {"shoal_lock_try",      "shoal_lock_release",
                                  "shoal_queue_try_put", "shoal_queue_try_get",
                                  "shoal_pipe_send",     "shoal_pipe_recv",
                                  "shoal_value_add",     "shoal_queue_get"};
    for (int i = 0; i < 8; i++)
        if (fetch(addrs, names[i], &p[i]))
            return NULL;
    lib.lock_try = (fn_h)p[0];
    lib.lock_release = (fn_h)p[1];
    lib.queue_try_put = (fn_put)p[2];
    lib.queue_try_get = (fn_get)p[3];
    lib.pipe_send = (fn_send)p[4];
    lib.pipe_recv = (fn_recv)p[5];
    lib.value_add = (fn_add)p[6];
    lib.queue_get = (fn_getw)p[7];
    Py_RETURN_NONE;
}

static PyObject *m_fast_code(PyObject *m, PyObject *code)
{
    (void)m;
    if (!PyUnicode_Check(code) || PyUnicode_GetLength(code) != 1)
        Py_RETURN_FALSE;
    return PyBool_FromLong(fast_code((int)PyUnicode_ReadChar(code, 0)));
}

static PyMethodDef module_methods[] = {
    {"init", m_init, METH_O, "init({name: address}): the libshoal functions to call"},
    {"fast_code", m_fast_code, METH_O, "Whether a typecode has the C fast path."},
    {"queue_try_put", (PyCFunction)(void (*)(void))m_queue_try_put, METH_FASTCALL,
     "queue_try_put(handle, data) -> rc"},
    {"queue_try_get", (PyCFunction)(void (*)(void))m_queue_try_get, METH_FASTCALL,
     "queue_try_get(handle, buffer) -> (rc, length)"},
    {"pipe_send", (PyCFunction)(void (*)(void))m_pipe_send, METH_FASTCALL,
     "pipe_send(handle, data) -> rc"},
    {"pipe_recv", (PyCFunction)(void (*)(void))m_pipe_recv, METH_FASTCALL,
     "pipe_recv(handle, buffer) -> (rc, length)"},
    {"pipe_recv_wait", (PyCFunction)(void (*)(void))m_pipe_recv_wait, METH_FASTCALL,
     "pipe_recv_wait(handle, buffer, slice_ns) -> (rc, length), waiting"},
    {"queue_get_wait", (PyCFunction)(void (*)(void))m_queue_get_wait, METH_FASTCALL,
     "queue_get_wait(handle, buffer, slice_ns) -> (rc, length), waiting"},
    {"value_add", (PyCFunction)(void (*)(void))m_value_add, METH_FASTCALL,
     "value_add(handle, delta) -> (rc, previous value)"},
    {"check_cdata", (PyCFunction)(void (*)(void))m_check_cdata, METH_FASTCALL,
     "check_cdata(probe, address): whether ctypes bytes are found in place"},
    {"plain", m_plain, METH_O,
     "Whether pickling o involves only builtin scalars, tuples and lists."},
    {"manager_init", (PyCFunction)(void (*)(void))m_manager_init, METH_FASTCALL,
     "manager_init(addresses, enc_value, dec_value, dec_reply, error)"},
    {"proxy_init", m_proxy_init, METH_O,
     "proxy_init(globals): managers' module dict, for ProxyBase"},
    {"manager_after_fork", m_manager_after_fork, METH_NOARGS,
     "manager_after_fork(): in a forked child, forgets the parent's idle flusher"},
    {"encode_value", (PyCFunction)(void (*)(void))m_encode_value, METH_FASTCALL,
     "encode_value(v, pickle) -> bytes: a Manager request's Value"},
    {"decode_value", m_decode_value, METH_O,
     "decode_value(bytes) -> object: a Manager reply's Value"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_speedups",
    "The binding's hot paths in C (see the comment at the top of _speedups.c).",
    -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL};

PyMODINIT_FUNC PyInit__speedups(void)
{
    cached_pid = (long)getpid();
    if (pthread_atfork(NULL, NULL, after_fork_child))
        return PyErr_NoMemory();
    if (PyType_Ready(&LockBase_Type) < 0 || PyType_Ready(&ValueBase_Type) < 0 ||
        PyType_Ready(&ArrayBase_Type) < 0 || PyType_Ready(&TypedBase_Type) < 0 ||
        PyType_Ready(&ManagerBase_Type) < 0 || PyType_Ready(&ProxyBase_Type) < 0)
        return NULL;
    empty_tuple = PyTuple_New(0);
    idle.list = PyList_New(0);
    if (!empty_tuple || !idle.list)
        return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (!mod)
        return NULL;
    Py_INCREF(&LockBase_Type);
    Py_INCREF(&ValueBase_Type);
    Py_INCREF(&ArrayBase_Type);
    Py_INCREF(&TypedBase_Type);
    Py_INCREF(&ManagerBase_Type);
    Py_INCREF(&ProxyBase_Type);
    if (PyModule_AddObject(mod, "LockBase", (PyObject *)&LockBase_Type) ||
        PyModule_AddObject(mod, "TypedBase", (PyObject *)&TypedBase_Type) ||
        PyModule_AddObject(mod, "ValueBase", (PyObject *)&ValueBase_Type) ||
        PyModule_AddObject(mod, "ArrayBase", (PyObject *)&ArrayBase_Type) ||
        PyModule_AddObject(mod, "ManagerBase", (PyObject *)&ManagerBase_Type) ||
        PyModule_AddObject(mod, "ProxyBase", (PyObject *)&ProxyBase_Type)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
