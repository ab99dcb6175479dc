/* order_gen.h — the orders both example programs agree on: order i, made the same way
 * by the producer (to send) and the consumer (to check what arrived). */
#ifndef ORDER_GEN_H
#define ORDER_GEN_H

#include <stdio.h>

#include "orders.shoal.h"

#define ORDERS_QUEUE "orders"
#define ORDERS_LAST  "orders.last"

static inline void make_order(Order *o, long i)
{
    static const char *const symbols[] = {"AAPL", "MSFT", "GOOG", "AMZN", "NVDA"};
    *o = (Order)Order_INIT;
    o->id = i;
    Order_set_symbol(o, symbols[i % 5]);
    o->price = 100.0 + (double)i * 0.25;
    o->quantity = 10 * (uint32_t)(i % 7 + 1);
    o->side = i % 2 ? Side_BUY : Side_SELL;
    o->fills.count = (uint32_t)(i % 4);
    for (uint32_t k = 0; k < o->fills.count; k++)
        o->fills.items[k] = o->quantity / 4;
}

static inline int same_order(const Order *a, const Order *b)
{
    if (a->id != b->id || a->symbol.len != b->symbol.len ||
        memcmp(a->symbol.data, b->symbol.data, a->symbol.len) || a->price != b->price ||
        a->quantity != b->quantity || a->side != b->side ||
        a->fills.count != b->fills.count)
        return 0;
    for (uint32_t k = 0; k < a->fills.count; k++)
        if (a->fills.items[k] != b->fills.items[k])
            return 0;
    return 1;
}

static inline void print_order(const char *label, const Order *o)
{
    printf("%s: #%lld %s %.*s %u @ %.2f (%u fills)\n", label, (long long)o->id,
           o->side == Side_BUY ? "BUY" : "SELL", (int)o->symbol.len, o->symbol.data,
           o->quantity, o->price, o->fills.count);
}

#endif
