"""Tutorial A.1 — objects passed through a Queue are copies.

The parent puts a dict on a Queue; the child gets it; the parent then changes its own
dict (two Semaphores order the steps); the child still sees the old value: it got a
copy, a different object.

Ported from multiprocessing by changing the import only.

Expected output:

    child got {'key': 'value'}
    parent changed its dict to {'key': 'new-value'}
    child still has {'key': 'value'}
    child's dict is a different object: True
"""
from shoal import Process, Queue, Semaphore


def child(q, got, changed, parent_id):
    d = q.get()
    print("child got", d, flush=True)
    got.release()
    changed.acquire()
    print("child still has", d)
    print("child's dict is a different object:", id(d) != parent_id)


if __name__ == "__main__":
    q = Queue()
    got, changed = Semaphore(0), Semaphore(0)
    d = {"key": "value"}
    p = Process(target=child, args=(q, got, changed, id(d)))
    p.start()
    q.put(d)
    got.acquire()
    d["key"] = "new-value"
    print("parent changed its dict to", d, flush=True)
    changed.release()
    p.join()
