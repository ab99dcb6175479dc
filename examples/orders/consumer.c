/*
 * consumer.c — the receiving side of the orders example. It creates the typed queue
 * "orders", takes Orders off it until the producer shuts it down, checks every one,
 * then reads the shared Value "orders.last" with a snapshot (no lock, never blocking
 * the writer) and removes both objects.
 *
 *   orders_consumer [COUNT]     (run orders_producer COUNT alongside)
 * Exit status 0 when all COUNT orders arrived intact and in order.
 */
#include <stdlib.h>

#include "order_gen.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "consumer: %s: %s: %s\n", what, shoal_strerror(rc),
            shoal_errdetail());
    return 1;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 1000;
    shoal_unlink(ORDERS_QUEUE, NULL); /* leftovers of an earlier, interrupted run */
    shoal_unlink(ORDERS_LAST, NULL);

    Order_queue *q;
    shoal_queue_config cfg = {.capacity = 64};
    int rc = Order_queue_open(&q, ORDERS_QUEUE, SHOAL_CREATE, &cfg, NULL);
    if (rc)
        return fail("creating the queue", rc);

    long got = 0;
    uint64_t volume = 0;
    Order o, want;
    while ((rc = Order_queue_get(q, &o, SHOAL_SEC(30))) == 0) {
        make_order(&want, got + 1);
        if (!same_order(&o, &want)) {
            print_order("consumer: unexpected", &o);
            return 1;
        }
        volume += o.quantity;
        got++;
    }
    if (rc != SHOAL_EEOF)
        return fail("getting an order", rc);
    printf("consumer: %ld orders, volume %llu\n", got, (unsigned long long)volume);

    Order_value *last;
    if ((rc = Order_value_open(&last, ORDERS_LAST, SHOAL_OPEN, NULL, NULL)))
        return fail("opening the last order", rc);
    if ((rc = Order_value_snapshot(last, &o)))
        return fail("reading the last order", rc);
    print_order("consumer: last order (snapshot)", &o);
    make_order(&want, count);
    int ok = got == count && same_order(&o, &want);

    Order_value_close(last);
    Order_queue_close(q);
    shoal_unlink(ORDERS_QUEUE, NULL);
    shoal_unlink(ORDERS_LAST, NULL);
    if (!ok)
        fprintf(stderr, "consumer: expected %ld orders ending with #%ld\n", count, count);
    return ok ? 0 : 1;
}
