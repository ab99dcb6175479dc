"""Tutorial B.5 — Pipe.

A sender process sends "hello", "hey", "hru?", "END" through one end of a Pipe; a
receiver process prints each message from the other end until "END". (The two
processes print concurrently, so their lines may interleave in any order.)

Expected output (any order):

    Sent the message: hello
    Sent the message: hey
    Sent the message: hru?
    Sent the message: END
    Received the message: hello
    Received the message: hey
    Received the message: hru?
"""
import shoal as multiprocessing


def sender(conn, msgs):
    for msg in msgs:
        conn.send(msg)
        print("Sent the message: {}".format(msg), flush=True)
    conn.close()


def receiver(conn):
    while 1:
        msg = conn.recv()
        if msg == "END":
            break
        print("Received the message: {}".format(msg), flush=True)


if __name__ == "__main__":
    msgs = ["hello", "hey", "hru?", "END"]
    parent_conn, child_conn = multiprocessing.Pipe()
    p1 = multiprocessing.Process(target=sender, args=(parent_conn, msgs))
    p2 = multiprocessing.Process(target=receiver, args=(child_conn,))
    p1.start()
    p2.start()
    p1.join()
    p2.join()
