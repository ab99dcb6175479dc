"""Tutorial C.3 — Pipe: a worker counts to 1,000,000 and sends the total.

Expected output:

    1000000
    Time taken: ... seconds
"""
import time

from shoal import Pipe, Process


def worker(conn):
    total = 0
    for _ in range(1000000):
        total += 1
    conn.send(total)
    conn.close()


if __name__ == "__main__":
    start = time.time()
    parent_conn, child_conn = Pipe()
    p = Process(target=worker, args=(child_conn,))
    p.start()
    print(parent_conn.recv())
    p.join()
    print("Time taken: {:.3f} seconds".format(time.time() - start))
