"""shoal.Manager's Watch, a broker over tls+tcp:// and `shoal ls/inspect --broker`,
against real brokers (the `shoal broker` command).

Watch: the changes to an object and to a key, a watcher process SIGKILLed with its
watch open, a watcher that reads nothing while many writes happen (it gets a
"resync", and the last state). TLS: a throwaway PKI (tests/rpc/make-test-certs.sh);
a good client certificate, one from another CA, none, and a client that does not trust
the broker's CA. CLI: ls and inspect of a broker over shm:// and over tcp:// with a
token file; a broker stopped by SIGTERM or SIGINT, or by the end of its stdin
(--stop-at-stdin-eof), leaves no segment behind, a SIGKILLed one leaves them to
`shoal gc`; shoal.Manager()'s private broker outlives the thread that started it and
stops with its SIGKILLed process.

Run by CTest (broker.features) with SHOAL_LIBRARY, SHOAL_CLI and PYTHONPATH set.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import manager_case
import shoal
from shoal import errors

CLI = os.environ.get("SHOAL_CLI", "shoal")
HERE = os.path.dirname(os.path.abspath(__file__))
CERTS = os.path.join(HERE, "..", "rpc", "make-test-certs.sh")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broker(*args):
    """Starts `shoal broker ARGS`; returns the process once it is ready."""
    p = subprocess.Popen([CLI, "broker", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    for line in p.stdout:
        if line.strip() == b"shoal broker: ready":
            p.stdout.close()
            return p
    p.wait()
    raise AssertionError("the broker did not start: %s" % p.stderr.read().decode())


def _stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    p.stderr.close()


def _watch_and_stop(address, name, fd):
    d = shoal.Manager(address=address).dict(name=name)
    w = d.watch()
    next(w)
    os.write(fd, b"x")
    os.kill(os.getpid(), signal.SIGSTOP)


class WatchTest(manager_case.ManagerCase):
    def test_object_watch(self):
        d = self.m.dict(a=1)
        with d.watch() as w:
            c = next(w)
            self.assertEqual((c.op, c.value, c.present), ("resync", {"a": 1}, True))
            d["b"] = [1]
            d["b"].append(2)
            del d["a"]
            ops = [next(w) for _ in range(3)]
            self.assertEqual([(c.op, c.path, c.args) for c in ops],
                             [("set", [], ["b", [1]]), ("append", ["b"], [2]),
                              ("del", [], ["a"])])
            self.assertTrue(c.seq < ops[0].seq < ops[1].seq < ops[2].seq)
            self.assertIsNone(w.next(timeout=0.1))  # nothing more
            d._call("delete")
            self.assertEqual(next(w).op, "deleted")
            self.assertEqual(list(w), [])

    def test_key_watch(self):
        ns = self.m.Namespace(x=0)
        w = ns.watch("x")
        self.assertEqual(next(w).value, 0)
        ns.y = 5          # another key: no change
        ns.x = 1
        c = next(w)
        self.assertEqual((c.op, c.value, c.present), ("set", 1, True))
        del ns.x
        c = next(w)
        self.assertEqual((c.op, c.present), ("del", False))
        w.cancel()
        with self.assertRaises(StopIteration):
            next(w)

    def test_watch_errors(self):
        with self.assertRaises(KeyError):
            shoal.managers.DictProxy(self.m.address, None, "no-such-object").watch()
        with self.assertRaises(errors.ShoalError):
            self.m.list([1]).watch(0)  # keys are for dicts and Namespaces

    def test_slow_watcher(self):
        v = self.m.Value("i", 0)
        w = v.watch()
        for _ in range(3000):
            v.increment()
        changes = []
        while True:
            c = w.next(timeout=0.5)
            if c is None:
                break
            changes.append(c)
        seqs = [c.seq for c in changes]
        self.assertEqual(seqs, sorted(set(seqs)))
        last = changes[-1]
        self.assertEqual(last.value if last.op == "resync" else last.result, 3000)
        w.close()

    def test_watcher_killed(self):
        d = self.m.dict(name="watched-%d" % os.getpid())
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                _watch_and_stop(self.m.address, d._name, wfd)
            finally:
                os._exit(1)
        self.assertEqual(os.read(r, 1), b"x")
        stats = lambda: shoal.managers._session(self.m.address, None).call("", "stats")[2]
        self.assertGreaterEqual(stats()["watchers"], 1)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        for i in range(500):
            d[i % 7] = i
        for _ in range(500):
            if stats()["watchers"] == 0:
                break
            time.sleep(0.02)
        self.assertEqual(stats()["watchers"], 0)
        self.assertEqual(d[3], 493)
        os.close(r)
        os.close(wfd)


class TlsTest(unittest.TestCase):
    def test_tls(self):
        with tempfile.TemporaryDirectory() as pki:
            subprocess.run(["sh", CERTS, pki], check=True, capture_output=True)
            f = lambda n: os.path.join(pki, n)
            address = "tls+tcp://127.0.0.1:%d" % _free_port()
            p = _broker("--listen", address, "--tls-cert", f("server.pem"), "--tls-key",
                        f("server.key"), "--tls-ca", f("ca.pem"))
            try:
                good = {"ca_file": f("ca.pem"), "cert_file": f("client.pem"),
                        "key_file": f("client.key")}
                m = shoal.Manager(address=address, tls=good)
                d = m.dict(name="t")
                d["k"] = "v"
                w = d.watch("k")
                self.assertEqual(next(w).value, "v")
                w.close()
                for tls in ({"ca_file": f("ca.pem"), "cert_file": f("stranger.pem"),
                             "key_file": f("stranger.key")},
                            {"ca_file": f("ca.pem")},
                            dict(good, ca_file=f("other-ca.pem"))):
                    other = "tls+tcp://localhost:%s" % address.rsplit(":", 1)[1]
                    with self.assertRaises(errors.ShoalError) as e:
                        shoal.Manager(address=other, tls=tls)
                    self.assertEqual(e.exception.code, errors.EACCES)
                with self.assertRaises(TypeError):
                    shoal.Manager(address=address, tls={"cafile": "x"})
                ls = subprocess.run([CLI, "ls", "--broker", address, "--tls-ca",
                                     f("ca.pem"), "--tls-cert", f("client.pem"),
                                     "--tls-key", f("client.key")],
                                    capture_output=True, text=True)
                self.assertEqual(ls.returncode, 0, ls.stderr)
                self.assertIn("t", ls.stdout.split())
                bad = subprocess.run([CLI, "ls", "--broker", address, "--tls-ca",
                                      f("ca.pem")], capture_output=True, text=True)
                self.assertNotEqual(bad.returncode, 0)
            finally:
                _stop(p)


class CliTest(unittest.TestCase):
    def test_ls_inspect(self):
        with tempfile.TemporaryDirectory() as tmp:
            token = os.path.join(tmp, "token")
            with open(token, "w") as t:
                t.write("cli-token-0123456789\n")
            tcp = "tcp://127.0.0.1:%d" % _free_port()
            shm = "shm://cli-%d" % os.getpid()
            p = _broker("--listen", shm, "--listen", tcp, "--token-file", token)
            try:
                m = shoal.Manager(address=shm)
                m.dict({"a": 1, "b": [1, 2]}, name="scores")
                lk = m.Lock(name="door")
                lk.acquire()
                m.Queue(name="jobs").put("x")
                out = subprocess.run([CLI, "ls", "--broker", tcp, "--token-file", token],
                                     capture_output=True, text=True, check=True).stdout
                rows = [line.split() for line in out.splitlines()]
                self.assertEqual(rows[0], ["NAME", "KIND", "SIZE"])
                self.assertEqual(rows[1:], [["door", "Lock", "0"], ["jobs", "Queue", "1"],
                                            ["scores", "dict", "2"]])
                q = subprocess.run([CLI, "ls", "--broker", shm, "-q"], capture_output=True,
                                   text=True, check=True).stdout
                self.assertEqual(q.split(), ["door", "jobs", "scores"])
                out = subprocess.run([CLI, "inspect", "--broker", shm, "scores"],
                                     capture_output=True, text=True, check=True).stdout
                self.assertIn("kind          dict", out)
                self.assertIn("value         {'a': 1, 'b': [1, 2]}", out)
                out = subprocess.run([CLI, "inspect", "--broker", shm, "door"],
                                     capture_output=True, text=True, check=True).stdout
                # taken through the broker (its session), or in its lock table (the
                # holder's process: the C extension's acquire over shm://)
                self.assertRegex(out, r"holder +(session [0-9a-f]+|process [0-9]+ "
                                      r"\(shared memory\)), thread [0-9a-f]+")
                nope = subprocess.run([CLI, "inspect", "--broker", shm, "nope"],
                                      capture_output=True, text=True)
                self.assertEqual(nope.returncode, 1)
                self.assertIn("no object", nope.stderr)
                denied = subprocess.run([CLI, "ls", "--broker", tcp], capture_output=True,
                                        text=True)
                self.assertNotEqual(denied.returncode, 0)
                usage = subprocess.run([CLI, "inspect", "--broker", shm],
                                       capture_output=True, text=True)
                self.assertEqual(usage.returncode, 2)
            finally:
                shoal.managers._close_sessions()
                _stop(p)

    def test_stop_removes_the_segments(self):
        """A broker stopped with SIGTERM or SIGINT removes what it made beside its
        shm:// name (the connection queue, NAME:server, NAME:spin, NAME:view,
        NAME:locks); a SIGKILLed one leaves them, and `shoal gc` removes them."""
        def names(root):
            out = subprocess.run([CLI, "ls", "--root", root, "-q"], capture_output=True,
                                 text=True, check=True).stdout
            return sorted(out.split())

        name = "stop-%d" % os.getpid()
        made = sorted([name, name + ":locks", name + ":server", name + ":spin",
                       name + ":view"])
        with tempfile.TemporaryDirectory() as root:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
                p = _broker("--listen", "shm://" + name, "--root", root)
                self.assertEqual(names(root), made)
                # a client came and went: its pipe is gone too
                subprocess.run([CLI, "ls", "--broker", "shm://" + name, "--root", root],
                               capture_output=True, check=True)
                p.send_signal(sig)
                rc = p.wait(30)
                p.stderr.close()
                if sig != signal.SIGKILL:
                    self.assertEqual(rc, 0)
                    self.assertEqual(names(root), [])
            self.assertEqual(rc, -signal.SIGKILL)
            self.assertEqual(names(root), made)
            subprocess.run([CLI, "gc", "--root", root], capture_output=True, check=True)
            self.assertEqual(names(root), [])

    def test_private_broker_lifetime(self):
        """shoal.Manager()'s own broker outlives the thread that started it and stops
        when its process is SIGKILLed (the end of its stdin), leaving none of its
        segments (the dead client's own pipe is `shoal gc`'s, as after any killed
        client)."""
        def gone(pid):  # exited, or a zombie its new parent has not reaped yet
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except FileNotFoundError:
                return True

        code = ("import sys, threading, shoal\n"
                "box = {}\n"
                "t = threading.Thread(target=lambda: box.update(m=shoal.Manager()))\n"
                "t.start(); t.join()\n"
                "m = box['m']\n"
                "d = m.dict(name='alive')\n"
                "d['x'] = 1\n"
                "print(m._proc.pid, m.address, flush=True)\n"
                "sys.stdin.read()\n")
        with tempfile.TemporaryDirectory() as root:
            child = subprocess.Popen(["python3", "-c", code], env=dict(os.environ, SHOAL_ROOT=root),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            pid, address = child.stdout.readline().split()
            pid, name = int(pid), address[len("shm://"):]
            time.sleep(0.3)  # its starting thread ended long ago: the broker still runs
            self.assertFalse(gone(pid))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            child.stdin.close()
            child.stdout.close()
            deadline = time.monotonic() + 10
            while not gone(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(gone(pid), "the private broker outlived its SIGKILLed parent")
            out = subprocess.run([CLI, "ls", "--root", root, "-q"], capture_output=True,
                                 text=True, check=True).stdout.split()
            self.assertEqual([n for n in out if n.startswith(name) and
                              not n.startswith(name + ":c")], [])

    def test_stop_at_stdin_eof(self):
        """`--stop-at-stdin-eof`: the end of stdin (its writer closed it, or died) stops
        the broker as SIGTERM does, leaving no segment; a SIGTERM and then the end of
        stdin (a client's shutdown) still stop it cleanly, not killed by the second."""
        def names(root):
            out = subprocess.run([CLI, "ls", "--root", root, "-q"], capture_output=True,
                                 text=True, check=True).stdout
            return sorted(out.split())

        name = "eof-%d" % os.getpid()
        with tempfile.TemporaryDirectory() as root:
            # None: stdin ends alone; else SIGTERM, and stdin ends after that many s
            for sigterm_before in (None, 0, 0.002, 0.005, 0.01, 0.03):
                p = subprocess.Popen([CLI, "broker", "--listen", "shm://" + name, "--root",
                                      root, "--stop-at-stdin-eof"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self.assertEqual(p.stdout.readline(), b"shoal broker: listening on shm://%s\n"
                                 % name.encode())
                self.assertEqual(p.stdout.readline(), b"shoal broker: ready\n")
                self.assertIn(name, names(root))
                if sigterm_before is not None:  # stdin ends while the broker stops
                    p.send_signal(signal.SIGTERM)
                    time.sleep(sigterm_before)
                p.stdin.close()
                self.assertEqual(p.wait(30), 0)
                p.stdout.close()
                p.stderr.close()
                self.assertEqual(names(root), [])


if __name__ == "__main__":
    unittest.main()
