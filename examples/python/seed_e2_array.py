"""Tutorial E.2 — Array: the child fills it with squares, the parent prints them.

Expected output:

    [4, 9, 16, 25, 64, 361]
"""
from shoal import Array, Process


def squares(numbers, result):
    for i, n in enumerate(numbers):
        result[i] = n * n


if __name__ == "__main__":
    numbers = [2, 3, 4, 5, 8, 19]
    result = Array("i", len(numbers))
    p = Process(target=squares, args=(numbers, result))
    p.start()
    p.join()
    print(result[:])
