"""The Python side of the four-language test (see four_lang.c for the protocol).

    python3 four_lang.py writer LANG N
    python3 four_lang.py reader N

The generated modules orders_shoal and tally_shoal must be on sys.path (the test puts
the directory it generated them in on PYTHONPATH).
"""

import sys

import shoal

import orders_shoal
import tally_shoal

LANGS = ["c", "python", "rust", "node"]
TIMEOUT = 60


def fail(msg):
    print("four_lang (python): %s" % msg, file=sys.stderr)
    sys.exit(1)


def open_both():
    q = shoal.TypedQueue(orders_shoal.Order, 256, name="four.orders")
    v = shoal.Value(tally_shoal.Tally, name="four.tally")
    return q, v


def writer(lang, n):
    q, v = open_both()
    for i in range(n):
        o = orders_shoal.Order(id=lang * 1000000 + i, symbol=LANGS[lang - 1], price=i * 0.5,
                               quantity=i,
                               side=orders_shoal.Side.BUY if i % 2 == 0 else orders_shoal.Side.SELL,
                               fills=[lang])
        q.put(o, timeout=TIMEOUT)
        with v.get_lock():
            t = v.value
            t.total += o.id
            t.adds += 1
            by = list(t.by_lang) or [0, 0, 0, 0]
            by[lang - 1] += 1
            t.by_lang = by
            t.last = "python"
            v.value = t


def reader(n):
    q, v = open_both()
    seen = set()
    while True:
        try:
            o = q.get(timeout=TIMEOUT)
        except shoal.EndOfStream:
            break
        lang, i = divmod(o.id, 1000000)
        if not 1 <= lang <= 4 or i >= n:
            fail("unexpected order id %d" % o.id)
        if (o.symbol != LANGS[lang - 1] or o.quantity != i or o.price != i * 0.5
                or list(o.fills) != [lang]
                or o.side != (orders_shoal.Side.BUY if i % 2 == 0 else orders_shoal.Side.SELL)):
            fail("order %d garbled: %s" % (o.id, o.to_dict()))
        if o.id in seen:
            fail("order %d arrived twice" % o.id)
        seen.add(o.id)
    if len(seen) != 4 * n:
        fail("%d orders arrived, expected %d" % (len(seen), 4 * n))
    t = v.value
    expect = sum(lang * 1000000 * n + n * (n - 1) // 2 for lang in range(1, 5))
    if t.total != expect or t.adds != 4 * n or list(t.by_lang) != [n] * 4:
        fail("tally %s, expected total %d" % (t.to_dict(), expect))
    print("python reader: %d orders exactly once, total %d" % (len(seen), t.total))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "writer":
        writer(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "reader":
        reader(int(sys.argv[2]))
    else:
        print("usage: four_lang.py writer LANG N | reader N", file=sys.stderr)
        sys.exit(2)
