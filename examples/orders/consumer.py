"""The orders example's consumer, in Python: the same job as consumer.c.

It creates the typed queue "orders", takes Orders off it until the producer (the C
program orders_producer, started separately) shuts it down, checks every one, then
reads the shared Value "orders.last" with a snapshot and removes both objects.

    python3 consumer.py [COUNT]      (run orders_producer COUNT alongside)

Needs the shoal package (bindings/python) and the module orders_shoal.py made by
`shoal gen --lang python -I examples/orders orders.proto` on its path.
"""

import sys

import shoal
from orders_shoal import Order, Side

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA"]


def make_order(i):
    """Order i, as make_order() in order_gen.h makes it on the C side."""
    quantity = 10 * (i % 7 + 1)
    return Order(id=i, symbol=SYMBOLS[i % 5], price=100.0 + i * 0.25, quantity=quantity,
                 side=Side.BUY if i % 2 else Side.SELL, fills=[quantity // 4] * (i % 4))


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for leftover in ("orders", "orders.last"):  # of an earlier, interrupted run
        try:
            shoal.unlink(leftover)
        except FileNotFoundError:
            pass

    q = Order.Queue(64, name="orders", create=True)
    got = volume = 0
    while True:
        try:
            order = q.get(timeout=30)
        except EOFError:  # the producer shut the queue down and it is drained
            break
        if order != make_order(got + 1):
            sys.exit("consumer.py: unexpected %r" % (order,))
        volume += order.quantity
        got += 1
    print("consumer.py: %d orders, volume %d" % (got, volume))

    last = Order.Value(name="orders.last", create=False).snapshot()
    print("consumer.py: last order (snapshot): #%d %s %s %d @ %.2f" %
          (last.id, last.symbol, last.side.name, last.quantity, last.price))
    q.close()
    shoal.unlink("orders")
    shoal.unlink("orders.last")
    if got != count or last != make_order(count):
        sys.exit("consumer.py: expected %d orders ending with #%d" % (count, count))


if __name__ == "__main__":
    main()
