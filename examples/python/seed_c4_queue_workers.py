"""Tutorial C.4 — Queue: five workers each count to 1,000,000 and put their total;
the parent sums them.

Expected output:

    5000000
"""
from shoal import Process, Queue


def worker(q):
    total = 0
    for _ in range(1000000):
        total += 1
    q.put(total)


if __name__ == "__main__":
    q = Queue()
    procs = [Process(target=worker, args=(q,)) for _ in range(5)]
    for p in procs:
        p.start()
    print(sum(q.get() for _ in procs))
    for p in procs:
        p.join()
