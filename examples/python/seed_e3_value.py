"""Tutorial E.3 — Value('d', 3.14): the child sets 11.24, the parent prints it.

Expected output:

    11.24
"""
from shoal import Process, Value


def change(v):
    v.value = 11.24


if __name__ == "__main__":
    v = Value("d", 3.14)
    p = Process(target=change, args=(v,))
    p.start()
    p.join()
    print(v.value)
