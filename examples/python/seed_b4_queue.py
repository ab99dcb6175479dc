"""Tutorial B.4 — Queue.

Process p1 puts the squares of [1, 2, 3, 4]; after it ends, p2 prints them.

Expected output:

    Queue elements:
    1
    4
    9
    16
    Queue is now empty!
"""
import shoal as multiprocessing


def square_list(mylist, q):
    for num in mylist:
        q.put(num * num)


def print_queue(q):
    print("Queue elements:")
    while not q.empty():
        print(q.get())
    print("Queue is now empty!")


if __name__ == "__main__":
    mylist = [1, 2, 3, 4]
    q = multiprocessing.Queue()
    p1 = multiprocessing.Process(target=square_list, args=(mylist, q))
    p2 = multiprocessing.Process(target=print_queue, args=(q,))
    p1.start()
    p1.join()
    p2.start()
    p2.join()
