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
#include <stdint.h>
#include <string.h>
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
        PyType_Ready(&ArrayBase_Type) < 0 || PyType_Ready(&TypedBase_Type) < 0)
        return NULL;
    empty_tuple = PyTuple_New(0);
    if (!empty_tuple)
        return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (!mod)
        return NULL;
    Py_INCREF(&LockBase_Type);
    Py_INCREF(&ValueBase_Type);
    Py_INCREF(&ArrayBase_Type);
    Py_INCREF(&TypedBase_Type);
    if (PyModule_AddObject(mod, "LockBase", (PyObject *)&LockBase_Type) ||
        PyModule_AddObject(mod, "TypedBase", (PyObject *)&TypedBase_Type) ||
        PyModule_AddObject(mod, "ValueBase", (PyObject *)&ValueBase_Type) ||
        PyModule_AddObject(mod, "ArrayBase", (PyObject *)&ArrayBase_Type)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
