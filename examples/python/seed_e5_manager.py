"""Tutorial E.5 — Manager dict: the child sets three keys, the parent prints the dict.

Expected output:

    {'a': 10, 'b': 20, 'c': 30}
"""
from shoal import Manager, Process


def fill(d):
    d["a"], d["b"], d["c"] = 10, 20, 30


if __name__ == "__main__":
    with Manager() as manager:
        d = manager.dict()
        p = Process(target=fill, args=(d,))
        p.start()
        p.join()
        print(d)
