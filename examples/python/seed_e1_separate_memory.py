"""Tutorial E.1 — without shared memory, the child's squares stay in the child.

Expected output:

    []
"""
from shoal import Process

result = []


def squares(numbers):
    for n in numbers:
        result.append(n * n)


if __name__ == "__main__":
    p = Process(target=squares, args=([2, 3, 4, 5, 8, 19],))
    p.start()
    p.join()
    print(result)
