"""Tutorial C.2 — Array('i', range(50)) for array data.

A child adds 1 to every element; the parent sees the new contents.

Expected output:

    sum before: 1225
    sum after: 1275
    first and last: 1 50
"""
from shoal import Array, Process


def add_one(arr):
    for i in range(len(arr)):
        arr[i] += 1


if __name__ == "__main__":
    arr = Array("i", range(50))
    print("sum before:", sum(arr))
    p = Process(target=add_one, args=(arr,))
    p.start()
    p.join()
    print("sum after:", sum(arr))
    print("first and last:", arr[0], arr[-1])
