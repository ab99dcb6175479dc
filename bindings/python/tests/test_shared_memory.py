"""shoal.shared_memory: SharedMemory and ShareableList as multiprocessing's, in shoal
segments that C opens by name (shoal_shm_open). CPython's own tests of the module
run in mp_suite; these cover what they do not: C on the same block, a spawned
process, errors."""

import multiprocessing as mp
import os
import pickle
import shutil
import subprocess
import tempfile
import unittest
from multiprocessing import shared_memory as mp_shm

import _util

_util.setup_root()

import shoal  # noqa: E402
from shoal import shared_memory  # noqa: E402

# Opens the block named argv[1], prints its size and first bytes, then writes
# "from C" at offset 8.
C_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include <shoal/segment.h>
int main(int argc, char **argv) {
    (void)argc;
    shoal_shm *shm;
    int rc = shoal_shm_open(&shm, argv[1], SHOAL_OPEN, 0, NULL);
    if (rc) { printf("error %s\n", shoal_errdetail()); return 1; }
    char *p = shoal_shm_data(shm);
    printf("%zu %.5s\n", shoal_shm_size(shm), p);
    memcpy(p + 8, "from C", 6);
    return shoal_shm_close(shm);
}
"""


def _child_writes(name):
    shm = shared_memory.SharedMemory(name)
    shm.buf[:5] = b"spawn"
    shm.close()


class SharedMemoryTest(unittest.TestCase):
    def test_c_opens_the_block_by_name(self):
        lib = os.environ.get("SHOAL_LIBRARY")
        src_dir = _util.source_dir()
        cc = shutil.which(os.environ.get("CC", "cc"))
        if not (lib and src_dir and cc):
            self.skipTest("needs $SHOAL_LIBRARY, the sources and a C compiler")
        tmp = tempfile.mkdtemp(prefix="shoal-shm-")
        self.addCleanup(shutil.rmtree, tmp, True)
        src, exe = os.path.join(tmp, "open_shm.c"), os.path.join(tmp, "open_shm")
        with open(src, "w") as fh:
            fh.write(C_PROGRAM)
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)  # the compiler is not instrumented
        subprocess.run([cc, "-std=c11", "-I", os.path.join(src_dir, "runtime", "include"),
                        src, lib, "-Wl,-rpath," + os.path.dirname(lib), "-o", exe],
                       check=True, env=env, timeout=120)
        shm = shared_memory.SharedMemory(create=True, size=64)
        self.addCleanup(shm.unlink)
        shm.buf[:5] = b"hello"
        out = subprocess.run([exe, shm.name], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stdout.split(), ["64", "hello"])
        self.assertEqual(bytes(shm.buf[8:14]), b"from C")
        shm.close()

    def test_spawned_process_and_pickling(self):
        shm = shared_memory.SharedMemory("/blk-1", create=True, size=10)
        self.addCleanup(shm.unlink)
        self.assertEqual((shm.name, shm.size), ("blk-1", 10))
        p = mp.get_context("spawn").Process(target=_child_writes, args=(shm.name,))
        p.start()
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(bytes(shm.buf[:5]), b"spawn")
        twin = pickle.loads(pickle.dumps(shm))
        self.assertEqual(bytes(twin.buf[:5]), b"spawn")
        twin.close()
        self.assertIn("blk-1", repr(shm))
        shm.close()

    def test_errors_as_multiprocessing(self):
        with self.assertRaises(ValueError):
            shared_memory.SharedMemory(create=True, size=0)
        with self.assertRaises(ValueError):
            shared_memory.SharedMemory()
        with self.assertRaises(FileNotFoundError):
            shared_memory.SharedMemory("no-such-block")
        shm = shared_memory.SharedMemory("blk-2", create=True, size=8)
        with self.assertRaises(FileExistsError):
            shared_memory.SharedMemory("blk-2", create=True, size=8)
        view = shm.buf[:4]
        with self.assertRaises(BufferError):  # a view of it is alive
            shm.close()
        view.release()
        shm.close()
        self.assertIsNone(shm.buf)
        shm.unlink()
        with self.assertRaises(FileNotFoundError):
            shm.unlink()

    def test_shareable_list(self):
        items = ["howdy", b"x", 2.5, 7, None, True, "encod\xe9s"]
        sl = shared_memory.ShareableList(items)
        self.addCleanup(sl.shm.unlink)
        theirs = mp_shm.ShareableList(items)  # multiprocessing's, for comparison
        self.assertEqual((sl.format, list(sl)), (theirs.format, list(theirs)))
        self.assertEqual(bytes(sl.shm.buf), bytes(theirs.shm.buf[:sl.shm.size]))
        theirs.shm.close()
        theirs.shm.unlink()
        other = shared_memory.ShareableList(name=sl.shm.name)
        other[3] = 99
        self.assertEqual(sl[3], 99)
        with self.assertRaisesRegex(ValueError, "exceeds available storage"):
            sl[0] = "far too long"
        self.assertEqual(list(pickle.loads(pickle.dumps(sl))), list(sl))
        self.assertIsInstance(other.shm, shared_memory.SharedMemory)
        self.assertEqual(shoal.stat(sl.shm.name)["kind"], "shm")
        other.shm.close()
        sl.shm.close()


if __name__ == "__main__":
    unittest.main()
