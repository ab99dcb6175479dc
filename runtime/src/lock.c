/*
 * lock.c — Lock and RLock: robust, process-shared mutexes.
 *
 * The lock is a glibc pthread mutex initialised PTHREAD_PROCESS_SHARED and
 * PTHREAD_MUTEX_ROBUST. glibc's robust mutex is a futex whose word holds the holder's
 * thread id, and every held robust mutex sits on its holder's kernel "robust list":
 * when the holder dies, the kernel marks the word FUTEX_OWNER_DIED and wakes a waiter,
 * so the next acquirer learns of the death at once (EOWNERDEAD) instead of hanging.
 *
 * Beside the mutex we keep the holder's tid, the recursion depth and whether the lock
 * is recursive. Only the holder writes them. The futex word itself is the authority on
 * who holds the lock: the kernel clears the tid in it when the holder dies, so a stale
 * tid in our own field (or a recycled tid) is never mistaken for ownership.
 *
 * Acquiring waits through shoal__wait on the mutex's futex word (platform.h): ready()
 * tries the mutex whenever the word looks free; a sleeper sets FUTEX_WAITERS, as
 * glibc's own lock does, so the unlock wakes it. Once per sleep slice the holder named
 * in the word is looked up: a thread that no longer exists yet holds the lock (the
 * word came from a copied segment file, or from a process whose robust list the
 * kernel never saw) is declared dead as the kernel would have done, so the waiter gets
 * SHOAL_EOWNERDEAD within its timeout instead of timing out.
 *
 * The uncontended path does glibc's work itself. Taking and releasing a free robust
 * mutex through glibc costs more than the rest of a language binding's call (a Python
 * lock.acquire(); lock.release() spends most of its time there), so shoal_lock_try,
 * shoal_lock_acquire and shoal_lock_release first run the same protocol inline:
 *
 *   take:    announce the mutex in the thread's robust list_op_pending; CAS the word
 *            0 -> tid; link the mutex at the head of the thread's robust list (glibc's
 *            doubly linked form: __list.__next points at the next entry's __next,
 *            __list.__prev at the previous entry's, or at the list head); clear
 *            list_op_pending; set __owner and __nusers as glibc does.
 *   release: clear __owner; announce; unlink; exchange the word to 0 and wake one
 *            sleeper if FUTEX_WAITERS was set; clear list_op_pending.
 *
 * A holder killed at any instant is thus seen by the kernel exactly as one that used
 * glibc: the mutex is either on its robust list or in list_op_pending. Anything else —
 * a held word, an owner-died mark, an inconsistent mutex, a word with bits of its own —
 * goes to glibc. The list head is the thread's own (get_robust_list), and the layout
 * is checked once per thread against a real glibc lock and unlock of a private mutex;
 * where it does not match, every call takes the glibc path.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wait.h"

#define LOCK_MAGIC 0x4b434f4cu /* "LOCK" */

struct lock_impl {
    pthread_mutex_t m;
    _Atomic uint32_t depth; /* recursion depth while held */
    uint32_t recursive;
    uint32_t magic;
};

_Static_assert(sizeof(struct lock_impl) <= sizeof(shoal_lock),
               "struct lock_impl must fit in shoal_lock (64 bytes)");
_Static_assert(_Alignof(struct lock_impl) <= _Alignof(shoal_lock),
               "struct lock_impl alignment");

static inline struct lock_impl *impl(shoal_lock *lock)
{
    return (struct lock_impl *)(void *)lock;
}

/* The thread id held in the mutex's futex word (0: free, or its holder died). */
static inline int32_t word_tid(struct lock_impl *lk)
{
    return shoal__mutex_holder(
        atomic_load_explicit(shoal__mutex_word(&lk->m), memory_order_relaxed));
}

/* Initialises m robust, process-shared and of the normal type. Returns 0 or errno. */
static int mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int e = pthread_mutexattr_init(&a);
    if (!e)
        e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!e)
        e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!e)
        e = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
    if (!e)
        e = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return e;
}

/* The kind glibc records for such a mutex. A lock whose bytes say another kind (a
 * damaged segment, a hostile writer) is refused: glibc would treat it as a private or
 * non-robust mutex, which its own holder can wait on forever. */
static _Atomic int kind_cache = -1;

static int mutex_kind(void)
{
    int k = atomic_load_explicit(&kind_cache, memory_order_relaxed);
    if (k < 0) {
        pthread_mutex_t m;
        k = mutex_init(&m) == 0 ? m.__data.__kind : 0;
        atomic_store_explicit(&kind_cache, k, memory_order_relaxed);
    }
    return k;
}

/* Whether lock is a valid, initialised lock, without recording why not: the caller
 * then runs check() for the error. */
static inline bool valid(shoal_lock *lock)
{
    return lock && impl(lock)->magic == LOCK_MAGIC &&
           impl(lock)->m.__data.__kind ==
               atomic_load_explicit(&kind_cache, memory_order_relaxed);
}

static int check(shoal_lock *lock, const char *op)
{
    if (!lock)
        return shoal__err(SHOAL_EINVAL, "%s: lock is NULL", op);
    if (impl(lock)->magic != LOCK_MAGIC)
        return shoal__err(SHOAL_EINVAL, "%s: lock at %p is not initialised", op,
                          (void *)lock);
    if (SHOAL_UNLIKELY(impl(lock)->m.__data.__kind != mutex_kind()))
        return shoal__err(SHOAL_ECORRUPT, "%s: lock at %p is damaged (mutex kind %d)", op,
                          (void *)lock, impl(lock)->m.__data.__kind);
    return 0;
}

static const char *kind(struct lock_impl *lk)
{
    return lk->recursive ? "rlock" : "lock";
}

/* "lock", or 'lock "name"' for a named one, for error messages. */
static const char *noun(shoal_lock *lock)
{
    return shoal__prim_noun(lock, kind(impl(lock)));
}

/* ---- the uncontended path ---------------------------------------------------------- */

/* The kernel's per-thread robust list head (linux/futex.h struct robust_list_head). */
struct robust_head {
    void *list; /* the first entry's __list.__next, or this head when empty */
    long futex_offset;
    void *list_op_pending;
};

/* glibc's list entry: the __list of a pthread_mutex_t. */
typedef struct __pthread_internal_list entry;

/* Where an entry's __next is, which is what the list links point at. */
#define NEXT_OFF offsetof(entry, __next)

/* The calling thread's robust list and id; state 0 until looked up, then 1 (the fast
 * path works here) or -1 (it does not: glibc only). Forgotten in a fork child. */
static _Thread_local struct {
    struct robust_head *head;
    int32_t tid;
    int state;
} me __attribute__((tls_model("initial-exec")));

static pthread_once_t me_once = PTHREAD_ONCE_INIT;

static void me_forget(void)
{
    me.state = 0;
}

static void me_register(void)
{
    pthread_atfork(NULL, NULL, me_forget);
}

/* Whether glibc keeps robust mutexes where the fast path expects them: one real trylock
 * and unlock of a private robust mutex, and the list head seen before and after. */
static bool layout_matches(struct robust_head *h)
{
    pthread_mutex_t t;
    if (mutex_init(&t))
        return false;
    void *before = h->list;
    bool ok = false;
    if (pthread_mutex_trylock(&t) == 0) {
        ok = h->list == (void *)&t.__data.__list.__next &&
             t.__data.__list.__next == before && t.__data.__list.__prev == (void *)h &&
             t.__data.__owner == shoal__tid() && t.__data.__nusers == 1;
        pthread_mutex_unlock(&t);
        ok = ok && h->list == before && t.__data.__owner == 0;
    }
    pthread_mutex_destroy(&t);
    return ok;
}

/* Looks the calling thread's robust list up (once per thread). */
__attribute__((noinline)) static int me_setup(void)
{
    pthread_once(&me_once, me_register);
    struct robust_head *h = NULL;
    size_t len = 0;
    long r = syscall(SYS_get_robust_list, 0, &h, &len);
    me.tid = shoal__tid();
    me.head = h;
    bool ok =
        r == 0 && h && len == sizeof(*h) &&
        h->futex_offset == (long)offsetof(pthread_mutex_t, __data.__lock) -
                               (long)offsetof(pthread_mutex_t, __data.__list.__next);
    me.state = ok && layout_matches(h) ? 1 : -1;
    return me.state;
}

static inline bool fast_ok(void)
{
    int st = me.state;
    return SHOAL_LIKELY(st > 0) || (st == 0 && me_setup() > 0);
}

/* The futex word, as shoal__mutex_word gives it, inline for the fast path. */
static inline _Atomic uint32_t *fast_word(pthread_mutex_t *m)
{
    return (_Atomic uint32_t *)(void *)&m->__data.__lock;
}

/* Takes a free, consistent mutex as glibc's robust trylock does: 1, or 0 when it is not
 * free (or not plain) and glibc must decide. */
static inline int fast_take(struct lock_impl *lk)
{
    pthread_mutex_t *m = &lk->m;
    if (m->__data.__owner != 0) /* held, inconsistent or not recoverable */
        return 0;
    struct robust_head *h = me.head;
    void *mine = &m->__data.__list.__next;
    h->list_op_pending = mine;
    atomic_signal_fence(memory_order_seq_cst);
    uint32_t expect = 0;
    if (!atomic_compare_exchange_strong_explicit(fast_word(m), &expect, (uint32_t)me.tid,
                                                 memory_order_acquire,
                                                 memory_order_relaxed)) {
        h->list_op_pending = NULL;
        return 0;
    }
    void *first = h->list;
    ((entry *)((char *)first - NEXT_OFF))->__prev = mine;
    m->__data.__list.__next = first;
    m->__data.__list.__prev = (void *)h;
    atomic_signal_fence(memory_order_seq_cst); /* linked before the head names it */
    h->list = mine;
    atomic_signal_fence(memory_order_seq_cst);
    h->list_op_pending = NULL;
    m->__data.__owner = me.tid;
    m->__data.__nusers++;
    return 1;
}

/* Whether the calling thread holds m plainly (no owner-died or inconsistent state). */
static inline bool fast_mine(pthread_mutex_t *m)
{
    uint32_t w = atomic_load_explicit(fast_word(m), memory_order_relaxed);
    return (w & ~(uint32_t)FUTEX_WAITERS) == (uint32_t)me.tid &&
           m->__data.__owner == me.tid;
}

/* Releases a mutex the calling thread holds plainly (fast_mine) as glibc's robust unlock
 * does. */
static inline void fast_drop(pthread_mutex_t *m)
{
    _Atomic uint32_t *word = fast_word(m);
    struct robust_head *h = me.head;
    m->__data.__owner = 0;
    m->__data.__nusers--;
    void *mine = &m->__data.__list.__next;
    h->list_op_pending = mine;
    atomic_signal_fence(memory_order_seq_cst);
    void *next = m->__data.__list.__next, *prev = m->__data.__list.__prev;
    ((entry *)((char *)next - NEXT_OFF))->__prev = prev;
    *(void **)prev = next; /* the previous entry's __next, or the head's list */
    atomic_signal_fence(memory_order_seq_cst); /* unlinked before the entry is cleared */
    m->__data.__list.__prev = NULL;
    m->__data.__list.__next = NULL;
    if (atomic_exchange_explicit(word, 0, memory_order_release) & FUTEX_WAITERS)
        shoal__futex_wake(word, 1);
    atomic_signal_fence(memory_order_seq_cst);
    h->list_op_pending = NULL;
}

/* The whole uncontended acquisition: 1 taken, 0 the full path must run. */
static inline int try_fast(shoal_lock *lock)
{
    if (!valid(lock) || !fast_ok() || !fast_take(impl(lock)))
        return 0;
    atomic_store_explicit(&impl(lock)->depth, 1, memory_order_relaxed);
    shoal__test_point("lock.held");
    return 1;
}

bool shoal__lock_live(shoal_lock *lock)
{
    return shoal__mutex_holder(atomic_load_explicit(shoal__mutex_word(&impl(lock)->m),
                                                    memory_order_acquire)) != 0;
}

int shoal_lock_init(shoal_lock *lock, int recursive)
{
    if (!lock)
        return shoal__err(SHOAL_EINVAL, "lock init: lock is NULL");
    struct lock_impl *lk = impl(lock);
    memset(lock, 0, sizeof(*lock));
    int e = mutex_init(&lk->m);
    if (e)
        return shoal__err(SHOAL_ESYS, "lock init: pthread mutex: %s", strerror(e));
    lk->recursive = recursive != 0;
    mutex_kind(); /* primes the check of the fast path */
    atomic_thread_fence(memory_order_release);
    lk->magic = LOCK_MAGIC;
    return 0;
}

/* Records ownership after the mutex was taken; turns EOWNERDEAD into a usable lock. */
static int took(shoal_lock *lock, int e)
{
    struct lock_impl *lk = impl(lock);
    int rc = 0;
    if (e == EOWNERDEAD) {
        /* The holder died: the data may be half updated, but the lock is fine. */
        pthread_mutex_consistent(&lk->m);
        shoal__seg *seg = shoal__registry_find(lock);
        if (seg)
            shoal__seg_note_owner_died(seg);
        rc = shoal__err(SHOAL_EOWNERDEAD, "%s: previous holder died holding it",
                        noun(lock));
    } else if (e) {
        return shoal__err(SHOAL_ESYS, "%s acquire: %s", noun(lock), strerror(e));
    }
    atomic_store_explicit(&lk->depth, 1, memory_order_relaxed);
    shoal__test_point("lock.held");
    return rc;
}

/* One acquisition as a shoal__waitable. */
struct lock_wait {
    struct lock_impl *lk;
    int e;      /* pthread result once ready */
    bool armed; /* has announced itself as a sleeper */
};

/* Tries the mutex when its word looks free (or its holder died). */
static int lw_ready(void *obj)
{
    struct lock_wait *w = obj;
    uint32_t v = atomic_load_explicit(shoal__mutex_word(&w->lk->m), memory_order_relaxed);
    if (shoal__mutex_holder(v))
        return 0;
    int e = pthread_mutex_trylock(&w->lk->m);
    if (e == EBUSY)
        return 0;
    w->e = e;
    /* Having slept, we may not be the last sleeper: make our unlock wake the next. */
    if (w->armed && (e == 0 || e == EOWNERDEAD))
        atomic_fetch_or(shoal__mutex_word(&w->lk->m), SHOAL__MUTEX_WAITERS);
    return 1;
}

static uint32_t lw_arm(void *obj)
{
    struct lock_wait *w = obj;
    w->armed = true;
    shoal__mutex_arm(&w->lk->m);
    return 0;
}

/* A holder that no longer exists is declared dead. */
static int lw_check(void *obj)
{
    struct lock_wait *w = obj;
    uint32_t v = atomic_load(shoal__mutex_word(&w->lk->m));
    int32_t holder = shoal__mutex_holder(v);
    if (holder && !shoal__tid_alive(holder) && shoal__mutex_mark_dead(&w->lk->m, v))
        return lw_ready(obj);
    return 0;
}

/* Everything but the uncontended acquisition. */
__attribute__((noinline)) static int acquire_full(shoal_lock *lock,
                                                  shoal_duration timeout)
{
    int rc = check(lock, "lock acquire");
    if (rc)
        return rc;
    struct lock_impl *lk = impl(lock);
    int32_t self = shoal__tid();
    if (word_tid(lk) == self) {
        if (!lk->recursive)
            return shoal__err(SHOAL_EDEADLK, "%s: already held by this thread (%d)",
                              noun(lock), (int)self);
        uint32_t depth = atomic_load_explicit(&lk->depth, memory_order_relaxed);
        if (depth == UINT32_MAX)
            return shoal__err(SHOAL_EOVERFLOW, "rlock: recursion depth overflow");
        atomic_store_explicit(&lk->depth, depth + 1, memory_order_relaxed);
        return 0;
    }
    int e = pthread_mutex_trylock(&lk->m);
    if (e != EBUSY)
        return took(lock, e);
    if (timeout == SHOAL_NOWAIT)
        return shoal__err(SHOAL_EAGAIN, "%s: held by thread %d", kind(lk),
                          (int)word_tid(lk));
    shoal__deadline d = shoal__deadline_from(timeout);
    struct lock_wait w = {lk, 0, false};
    shoal__waitable wt = {
        shoal__mutex_word(&lk->m), lw_ready, lw_arm, NULL, lw_check, &w, NULL};
    if (shoal__wait(&wt, &d) == SHOAL_ETIMEDOUT)
        return shoal__err(SHOAL_ETIMEDOUT, "%s: timed out; held by thread %d", noun(lock),
                          (int)word_tid(lk));
    return took(lock, w.e);
}

int shoal_lock_acquire(shoal_lock *lock, shoal_duration timeout)
{
    return try_fast(lock) ? 0 : acquire_full(lock, timeout);
}

int shoal_lock_try(shoal_lock *lock)
{
    return try_fast(lock) ? 0 : acquire_full(lock, SHOAL_NOWAIT);
}

/* Releases the last level of a lock the calling thread holds plainly: 1, or 0 when
 * the full path must run. */
static inline int drop_fast(shoal_lock *lock)
{
    if (!valid(lock) || me.state <= 0)
        return 0;
    struct lock_impl *lk = impl(lock);
    if (!fast_mine(&lk->m) || atomic_load_explicit(&lk->depth, memory_order_relaxed) != 1)
        return 0;
    atomic_store_explicit(&lk->depth, 0, memory_order_relaxed);
    fast_drop(&lk->m);
    return 1;
}

/* Everything but the plain release of the last level. */
__attribute__((noinline)) static int release_full(shoal_lock *lock)
{
    int rc = check(lock, "lock release");
    if (rc)
        return rc;
    struct lock_impl *lk = impl(lock);
    int32_t self = shoal__tid(), holder = word_tid(lk);
    if (holder != self)
        return holder ? shoal__err(SHOAL_EPERM,
                                   "%s release: held by thread %d, not by caller %d",
                                   noun(lock), (int)holder, (int)self)
                      : shoal__err(SHOAL_EPERM, "%s release: not held", noun(lock));
    uint32_t depth = atomic_load_explicit(&lk->depth, memory_order_relaxed);
    if (depth > 1) {
        atomic_store_explicit(&lk->depth, depth - 1, memory_order_relaxed);
        return 0;
    }
    atomic_store_explicit(&lk->depth, 0, memory_order_relaxed);
    int e = pthread_mutex_unlock(&lk->m);
    if (e)
        return shoal__err(SHOAL_ESYS, "%s release: %s", noun(lock), strerror(e));
    return 0;
}

int shoal_lock_release(shoal_lock *lock)
{
    return drop_fast(lock) ? 0 : release_full(lock);
}

int shoal_lock_locked(shoal_lock *lock)
{
    if (check(lock, "lock locked"))
        return 0;
    return word_tid(impl(lock)) != 0;
}

void shoal_lock_state(shoal_lock *lock, int *recursive, int32_t *owner_tid,
                      uint32_t *depth)
{
    int rec = 0;
    int32_t owner = 0;
    uint32_t dep = 0;
    if (check(lock, "lock state") == 0) {
        struct lock_impl *lk = impl(lock);
        rec = (int)lk->recursive;
        owner = word_tid(lk);
        /* The depth is only meaningful to, and only exact for, the holder. */
        if (owner)
            dep = atomic_load_explicit(&lk->depth, memory_order_relaxed);
        if (owner && dep == 0)
            dep = 1; /* taken, depth not yet recorded */
    }
    if (recursive)
        *recursive = rec;
    if (owner_tid)
        *owner_tid = owner;
    if (depth)
        *depth = dep;
}

int shoal_lock_holder_died(shoal_lock *lock)
{
    if (check(lock, "lock state"))
        return 0;
    /* The kernel sets FUTEX_OWNER_DIED (and clears the tid) when a holder dies; the next
     * acquirer takes it over. */
    return shoal__mutex_died(atomic_load(shoal__mutex_word(&impl(lock)->m)));
}

/* ---- named forms ----------------------------------------------------------------- */

static int init_named(shoal__seg *seg, void *arg)
{
    return shoal_lock_init((shoal_lock *)(void *)seg->payload, *(int *)arg);
}

static int open_named(shoal_lock **out, const char *name, int mode,
                      const shoal_attr *attr, int recursive)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "%s open: out is NULL",
                          recursive ? "rlock" : "lock");
    void *p = NULL;
    int rc = shoal__prim_open(&p, recursive ? SHOAL_KIND_RLOCK : SHOAL_KIND_LOCK,
                              recursive ? "rlock" : "lock", sizeof(shoal_lock), name,
                              mode, init_named, &recursive, attr);
    if (rc == 0)
        *out = p;
    return rc;
}

int shoal_lock_open(shoal_lock **out, const char *name, int mode, const shoal_attr *attr)
{
    return open_named(out, name, mode, attr, 0);
}

int shoal_rlock_open(shoal_lock **out, const char *name, int mode, const shoal_attr *attr)
{
    return open_named(out, name, mode, attr, 1);
}

/* Whether thread tid belongs to the calling process. */
static bool own_thread(int32_t tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
    return access(path, F_OK) == 0;
}

int shoal_lock_close(shoal_lock *lock)
{
    int rc = check(lock, "lock close");
    if (rc)
        return rc;
    /* A held robust mutex is linked into its holder's robust list by address:
     * unmapping it would leave that list pointing at nothing. */
    int32_t holder = word_tid(impl(lock));
    if (holder && own_thread(holder))
        return shoal__err(SHOAL_EBUSY, "%s close: held by thread %d of this process",
                          noun(lock), (int)holder);
    return shoal__prim_close(lock);
}
