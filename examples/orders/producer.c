/*
 * producer.c — the sending side of the orders example. It waits for the consumer's
 * queue "orders", puts COUNT Orders on it (each validated: a symbol over 8 bytes would
 * be refused), publishes the latest one in the shared Value "orders.last", then shuts
 * the queue down so the consumer sees the end of the stream.
 *
 *   orders_producer [COUNT]
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdlib.h>
#include <time.h>

#include "order_gen.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "producer: %s: %s: %s\n", what, shoal_strerror(rc),
            shoal_errdetail());
    return 1;
}

/* The consumer creates the queue: wait up to 60 s for it to appear (a Python consumer
 * under a sanitizer on a busy machine can take many seconds to start). */
static int open_queue(Order_queue **q)
{
    int rc = SHOAL_ENOENT;
    for (int tries = 0; tries < 6000 && rc == SHOAL_ENOENT; tries++) {
        rc = Order_queue_open(q, ORDERS_QUEUE, SHOAL_OPEN, NULL, NULL);
        if (rc == SHOAL_ENOENT)
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return rc;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 1000;
    Order_queue *q;
    int rc = open_queue(&q);
    if (rc)
        return fail("opening the queue", rc);
    Order o = Order_INIT;
    Order_value *last;
    if ((rc = Order_value_open(&last, ORDERS_LAST, SHOAL_OPEN_OR_CREATE, &o, NULL)))
        return fail("opening the last order", rc);

    /* validation at work: this one never reaches the queue */
    Order bad = Order_INIT;
    if (Order_set_symbol(&bad, "TOO-LONG-SYMBOL") == SHOAL_EINVALID_DATA)
        printf("producer: refused as expected: %s\n", shoal_errdetail());

    for (long i = 1; i <= count; i++) {
        make_order(&o, i);
        if ((rc = Order_queue_put(q, &o, SHOAL_SEC(30))))
            return fail("putting an order", rc);
        if ((rc = Order_value_write(last, &o)))
            return fail("publishing the last order", rc);
    }
    print_order("producer: last order", &o);
    Order_queue_shutdown(q);
    Order_value_close(last);
    Order_queue_close(q);
    printf("producer: %ld orders sent\n", count);
    return 0;
}
