/*
 * interop_helper.c — the C side of the cross-language tests (test_interop.py): each
 * subcommand does one thing to objects a Python process made or will open, by name.
 *
 *   interop_helper produce-orders QUEUE N   put orders 1..N (examples/orders/order_gen.h)
 *   interop_helper consume-orders QUEUE N   get N orders, check each field; then EOF
 *   interop_helper add-value VALUE N        N times: under the value's lock, v += 1
 *   interop_helper hold-lock LOCK           acquire, print "held", wait to be killed
 *   interop_helper acquire-lock LOCK        acquire; print "owner-died" or "acquired"
 *   interop_helper open-v2 VALUE            open an Order Value as the changed type;
 *                                           print the error (expects a layout mismatch)
 *
 * Exit status 0 when the step did what it should, 1 otherwise (with a message).
 */
#define _POSIX_C_SOURCE 200809L
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "order_gen.h"
#include "orders_v2.shoal.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "interop_helper: %s: %s: %s\n", what, shoal_strerror(rc),
            shoal_errdetail());
    return 1;
}

static int produce(const char *name, long n)
{
    Order_queue *q;
    int rc = Order_queue_open(&q, name, SHOAL_OPEN, NULL, NULL);
    if (rc)
        return fail("open queue", rc);
    Order o;
    for (long i = 1; i <= n; i++) {
        make_order(&o, i);
        if ((rc = Order_queue_put(q, &o, SHOAL_SEC(60))))
            return fail("put", rc);
    }
    Order_queue_close(q);
    return 0;
}

static int consume(const char *name, long n)
{
    Order_queue *q;
    int rc = Order_queue_open(&q, name, SHOAL_OPEN, NULL, NULL);
    if (rc)
        return fail("open queue", rc);
    Order got, want;
    for (long i = 1; i <= n; i++) {
        if ((rc = Order_queue_get(q, &got, SHOAL_SEC(60))))
            return fail("get", rc);
        make_order(&want, i);
        if (!same_order(&got, &want)) {
            print_order("interop_helper: got", &got);
            print_order("interop_helper: expected", &want);
            return 1;
        }
    }
    rc = Order_queue_get(q, &got, SHOAL_SEC(60));
    if (rc != SHOAL_EEOF)
        return fail("after the last order, expected end-of-stream", rc);
    Order_queue_close(q);
    printf("consumed %ld orders\n", n);
    return 0;
}

static int add_value(const char *name, long n)
{
    shoal_value *v;
    int rc = shoal_value_open(&v, name, SHOAL_OPEN, shoal_typecode('i'), NULL, NULL);
    if (rc)
        return fail("open value", rc);
    shoal_lock *lock = shoal_value_get_lock(v);
    for (long i = 0; i < n; i++) {
        if ((rc = shoal_lock_acquire(lock, SHOAL_SEC(60))) < 0 && rc != SHOAL_EOWNERDEAD)
            return fail("acquire", rc);
        int32_t x;
        shoal_value_read(v, &x);
        sched_yield(); /* invite a lost update, should the lock not work */
        x += 1;
        shoal_value_write(v, &x);
        shoal_lock_release(lock);
    }
    shoal_value_close(v);
    return 0;
}

static int hold_lock(const char *name)
{
    shoal_lock *lock;
    int rc = shoal_lock_open(&lock, name, SHOAL_OPEN, NULL);
    if (rc)
        return fail("open lock", rc);
    if ((rc = shoal_lock_acquire(lock, SHOAL_SEC(60))) < 0)
        return fail("acquire", rc);
    printf("held\n");
    fflush(stdout);
    for (;;)
        pause(); /* until the test kills us, holding the lock */
}

static int acquire_lock(const char *name)
{
    shoal_lock *lock;
    int rc = shoal_lock_open(&lock, name, SHOAL_OPEN, NULL);
    if (rc)
        return fail("open lock", rc);
    rc = shoal_lock_acquire(lock, SHOAL_SEC(20));
    if (rc != 0 && rc != SHOAL_EOWNERDEAD)
        return fail("acquire", rc);
    printf("%s\n", rc == SHOAL_EOWNERDEAD ? "owner-died" : "acquired");
    shoal_lock_release(lock);
    shoal_lock_close(lock);
    return 0;
}

static int open_v2(const char *name)
{
    v2_Order_value *v;
    int rc = v2_Order_value_open(&v, name, SHOAL_OPEN, NULL, NULL);
    if (rc == 0) {
        fprintf(stderr, "interop_helper: the changed type opened without an error\n");
        return 1;
    }
    printf("%s: %s\n", shoal_strerror(rc), shoal_errdetail());
    return rc == SHOAL_ELAYOUT ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: interop_helper COMMAND NAME [N]\n");
        return 2;
    }
    const char *cmd = argv[1], *name = argv[2];
    long n = argc > 3 ? atol(argv[3]) : 0;
    if (!strcmp(cmd, "produce-orders"))
        return produce(name, n);
    if (!strcmp(cmd, "consume-orders"))
        return consume(name, n);
    if (!strcmp(cmd, "add-value"))
        return add_value(name, n);
    if (!strcmp(cmd, "hold-lock"))
        return hold_lock(name);
    if (!strcmp(cmd, "acquire-lock"))
        return acquire_lock(name);
    if (!strcmp(cmd, "open-v2"))
        return open_v2(name);
    fprintf(stderr, "interop_helper: unknown command %s\n", cmd);
    return 2;
}
