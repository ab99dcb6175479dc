"""Tutorial B.3 — Manager (server process): a list of records shared through a manager.

p1 appends a record; p2 then prints all four.

Expected output:

    New record added!

    Name: Sam
    Score: 10

    Name: Adam
    Score: 9

    Name: Kevin
    Score: 9

    Name: Jeff
    Score: 8
"""
from shoal import Manager, Process


def print_records(records):
    for record in records:
        print("Name: {0}\nScore: {1}\n".format(record[0], record[1]))


def insert_record(record, records):
    records.append(record)
    print("New record added!\n", flush=True)


if __name__ == "__main__":
    with Manager() as manager:
        records = manager.list([("Sam", 10), ("Adam", 9), ("Kevin", 9)])
        new_record = ("Jeff", 8)

        p1 = Process(target=insert_record, args=(new_record, records))
        p2 = Process(target=print_records, args=(records,))

        p1.start()
        p1.join()

        p2.start()
        p2.join()
