"""Tutorial E.4 — Queue: the child puts the squares, the parent prints them.

Expected output:

    4 9 16 25 64 361
"""
from shoal import Process, Queue


def squares(numbers, q):
    for n in numbers:
        q.put(n * n)


if __name__ == "__main__":
    numbers = [2, 3, 4, 5, 8, 19]
    q = Queue()
    p = Process(target=squares, args=(numbers, q))
    p.start()
    p.join()
    print(*[q.get() for _ in numbers])
