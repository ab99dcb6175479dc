"""Tutorial B.1 — processes have separate memory.

A child appends the squares of [1, 2, 3, 4] to a global list; the parent's list is
still empty. (No shoal object here: the point is what happens without one.)

Expected output:

    Result(in process p1): [1, 4, 9, 16]
    Result(in main program): []
"""
import shoal as multiprocessing

result = []


def square_list(mylist):
    global result
    for num in mylist:
        result.append(num * num)
    print("Result(in process p1): {}".format(result))


if __name__ == "__main__":
    mylist = [1, 2, 3, 4]
    p1 = multiprocessing.Process(target=square_list, args=(mylist,))
    p1.start()
    p1.join()
    print("Result(in main program): {}".format(result))
