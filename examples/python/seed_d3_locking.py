"""Tutorial D.3 — locking: `v.value += 1` is not process-safe,
`with v.get_lock(): v.value += 1` is.

Ten processes add 1 a hundred times each under the value's lock (lock=True, the
default, is a recursive lock); then ten more do the same through a lock of the
caller's (lock=RLock(): the lock is taken again by .value, so it must be recursive).

Expected output:

    with the default lock: 1000
    with my lock: 1000
"""
from shoal import Process, RLock, Value


def add(v):
    for _ in range(100):
        with v.get_lock():
            v.value += 1


def run(v):
    procs = [Process(target=add, args=(v,)) for _ in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return v.value


if __name__ == "__main__":
    print("with the default lock:", run(Value("i", 0)))
    print("with my lock:", run(Value("i", 0, lock=RLock())))
