"""Tutorial C.1 — nine processes share Value('i', 0), each adding 1 fifty times.

The tutorial's `v.value += 1` prints 450 only by luck: the read and the write are
separate steps. Here each increment holds the value's lock (tutorial D.3's fix), so
450 is certain; `v.fetch_add(1)`, a lock-free atomic add, would do as well.

Expected output:

    450
"""
from shoal import Process, Value


def f(v):
    for _ in range(50):
        with v.get_lock():
            v.value += 1


if __name__ == "__main__":
    v = Value("i", 0)
    procs = [Process(target=f, args=(v,)) for _ in range(9)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(v.value)
