"""Tutorial A.3 — a Value is really shared.

Value('I', 1) is passed to a child; after a semaphore handshake the parent does
var.value += 2; the child then prints 3.

Expected output:

    child sees 1
    child sees 3
"""
from shoal import Process, Semaphore, Value


def child(var, ready, done):
    print("child sees", var.value, flush=True)
    ready.release()
    done.acquire()
    print("child sees", var.value)


if __name__ == "__main__":
    var = Value("I", 1)
    ready, done = Semaphore(0), Semaphore(0)
    p = Process(target=child, args=(var, ready, done))
    p.start()
    ready.acquire()
    var.value += 2
    done.release()
    p.join()
