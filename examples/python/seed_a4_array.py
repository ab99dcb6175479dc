"""Tutorial A.4 — Array.

Array('i', range(5)) is passed to a child; the parent does arr[0] += 100; the child
then sees 100.

Expected output:

    child sees [0, 1, 2, 3, 4]
    child sees [100, 1, 2, 3, 4]
"""
from shoal import Array, Process, Semaphore


def child(arr, ready, done):
    print("child sees", arr[:], flush=True)
    ready.release()
    done.acquire()
    print("child sees", arr[:])


if __name__ == "__main__":
    arr = Array("i", range(5))
    ready, done = Semaphore(0), Semaphore(0)
    p = Process(target=child, args=(arr, ready, done))
    p.start()
    ready.acquire()
    arr[0] += 100
    done.release()
    p.join()
