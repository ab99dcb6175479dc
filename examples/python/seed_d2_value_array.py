"""Tutorial D.2 — Value and Array.

The child sets Value('d', 0.0) to 3.1415927 and negates every element of
Array('i', range(10)).

Expected output:

    3.1415927
    [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
"""
from shoal import Array, Process, Value


def f(n, a):
    n.value = 3.1415927
    for i in range(len(a)):
        a[i] = -a[i]


if __name__ == "__main__":
    num = Value("d", 0.0)
    arr = Array("i", range(10))
    p = Process(target=f, args=(num, arr))
    p.start()
    p.join()
    print(num.value)
    print(arr[:])
