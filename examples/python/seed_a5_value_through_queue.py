"""Tutorial A.5 — a shared Value sent through a Queue.

With multiprocessing, shared ctypes objects can only be inherited by child processes:
putting Value('I', 1, lock=False) on a Queue raises an error. shoal objects have a
name and pickle by it, so the Value travels through the Queue — even to a process
started with the "spawn" method, which inherits nothing — and stays shared.

Expected output:

    child got the value through the queue: 1
    parent sees what the child wrote: 2
"""
import multiprocessing

from shoal import Queue, Value


def child(q):
    var = q.get()
    print("child got the value through the queue:", var.value, flush=True)
    var.value = 2


if __name__ == "__main__":
    var = Value("I", 1, lock=False)
    q = Queue()
    q.put(var)
    p = multiprocessing.get_context("spawn").Process(target=child, args=(q,))
    p.start()
    p.join()
    print("parent sees what the child wrote:", var.value)
