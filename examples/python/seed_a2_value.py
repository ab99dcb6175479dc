"""Tutorial A.2 — Value: a typed number in shared memory.

Value('d', 3.1415) holds a double. By default the value is wrapped with a recursive
lock (get_lock()); lock=False gives raw access; a lock of the caller's may be passed.
Typecodes are the array module's: 'd' double, 'i' int, 'h' short, 'L' unsigned long...

Expected output:

    3.1415
    default lock: RLock
    raw value: 7
    with my lock: 42 (get_lock() is my lock: True)
    short: -2, unsigned long: 18446744073709551615
"""
from shoal import Lock, Value

if __name__ == "__main__":
    v = Value("d", 3.1415)
    print(v.value)
    print("default lock:", type(v.get_lock()).__name__)

    raw = Value("i", 7, lock=False)
    print("raw value:", raw.value)

    lock = Lock()
    mine = Value("i", 42, lock=lock)
    print("with my lock:", mine.value, "(get_lock() is my lock: %s)"
          % (mine.get_lock() is lock))

    print("short: %d, unsigned long: %d" % (Value("h", -2).value,
                                            Value("L", 2**64 - 1).value))
