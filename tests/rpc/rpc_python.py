"""shoal.rpc and the generated Python stubs (proto/svct.proto), between processes:

* Python client against a Python server (rpc_peer.py) over shm://, ipc:// and
  tcp:// (with the token): the four kinds of call with a fixed request and an encoded
  response and the reverse, metadata both ways, status codes (abort, an exception in
  a handler, an unimplemented method), deadlines on both sides, a cancel reaching the
  handler, invalid requests, the server killed mid-stream, the client killed
  mid-stream, Ctrl-C in a blocking call, a missing or wrong token, 100 clients at
  once;
* in one process: stop with grace, start errors, an inherited deadline, inline unary
  handlers and grpc-style generic handlers;
* Python client against a C server built from the generated C code (svcpeer.c), and
  a C client against a Python server, over shm:// and tcp://.

The generated services' section is compared with golden/svct_services.py.golden
(rerun with SHOAL_UPDATE_GOLDEN=1 after an intended change). Every peer is a process
started anew (nng cannot be used in a child forked after its parent used it).
"""

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import _util

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_C = os.environ.get("SHOAL_RPC_PEER")
TOKEN = "rpc-test-token"
GEN = None
svct = None
rpc = None


def setUpModule():
    global GEN, svct, rpc
    _util.setup_root()
    GEN = tempfile.mkdtemp(prefix="shoal-rpc-py-")
    _util.generate(GEN, [os.path.join(HERE, "proto")], ["svct.proto"], "python")
    sys.path.insert(0, GEN)
    import svct_shoal
    from shoal import rpc as _rpc
    svct, rpc = svct_shoal, _rpc


def tearDownModule():
    shutil.rmtree(GEN, ignore_errors=True)


NNG = os.environ.get("SHOAL_RPC_NNG", "1") == "1"  # libshoal has ipc:// and tcp://


def addresses(tag, nng=NNG):
    root = os.environ["SHOAL_ROOT"]
    # below Linux's ephemeral ports (32768 and up by default): a port in that range may
    # be taken at any moment by another test's outgoing connection (Address in use)
    port = 20000 + (os.getpid() * 7 + sum(map(ord, tag))) % 12000
    out = {"shm": "shm://rpcpy-%s" % tag}
    if nng:
        out["ipc"] = "ipc://%s/rpcpy-%s.sock" % (root, tag)
        out["tcp"] = "tcp://127.0.0.1:%d" % port
    return out


def shm_tcp(tag):
    return {k: v for k, v in addresses(tag).items() if k != "ipc"}


class Peer:
    """A peer process whose stdout lines are collected as they come."""

    def __init__(self, argv):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([GEN, HERE, env.get("PYTHONPATH", "")])
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, prefix, timeout=30):
        """The first line (seen or to come) that starts with prefix."""
        end = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if line.startswith(prefix):
                    self.seen.remove(line)
                    return line
            try:
                self.seen.append(self.lines.get(timeout=max(end - time.monotonic(), 0)))
            except queue.Empty:
                raise AssertionError("no %r from %s within %ss; got %r; stderr: %s" % (
                    prefix, self.p.args, timeout, self.seen,
                    self.p.stderr.read() if self.p.poll() is not None else "(running)"))

    def drain(self):
        """Forgets the lines seen so far."""
        self.seen.clear()
        while not self.lines.empty():
            self.lines.get()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.p.stdout.close()
        self.p.stderr.close()


def py_peer(*args):
    return Peer([sys.executable, os.path.join(HERE, "rpc_peer.py")] + list(args))


class Checks:
    """The client-side checks against a server of svct.Gen at self.addr."""

    def channel(self, **kw):
        return rpc.channel(self.addr, token=TOKEN, connect_timeout=30, **kw)

    def check_unary(self):
        with self.channel() as ch:
            stub = svct.GenStub(ch)
            resp, call = stub.Ask.with_call(svct.Fix(n=41, text="hi "), timeout=10,
                                            metadata=[("who", "py")])
            self.assertIsInstance(resp, svct.Enc)  # fixed request, encoded response
            self.assertEqual((resp.n, resp.text, list(resp.items)),
                             (42, "hi py", [41, 41]))
            self.assertEqual(call.code(), rpc.StatusCode.OK)
            self.assertIn(("who", "py"), call.initial_metadata())
            self.assertEqual(len(call.trailing_metadata()), 1)

    def check_streams(self):
        with self.channel() as ch:
            stub = svct.GenStub(ch)
            got = [f.n for f in stub.Count(svct.Enc(n=40))]  # encoded in, fixed out
            self.assertEqual(got, list(range(40)))  # more than a window: flow control
            total = stub.Sum(iter([svct.Fix(n=i) for i in range(40)]), timeout=10)
            self.assertEqual(total.n, 780)
            back = [e.n for e in stub.Chat(iter([svct.Enc(n=i) for i in range(40)]))]
            self.assertEqual(back, [2 * i for i in range(40)])

    def check_errors(self):
        with self.channel() as ch:
            stub = svct.GenStub(ch)
            with self.assertRaises(rpc.RpcError) as e:
                stub.Ask(svct.Fix(n=-1))
            self.assertEqual(e.exception.code(), rpc.StatusCode.FAILED_PRECONDITION)
            self.assertEqual(e.exception.details(), "negative")
            with self.assertRaises(rpc.RpcError) as e:
                stub.Missing(svct.Fix())
            self.assertEqual(e.exception.code(), rpc.StatusCode.UNIMPLEMENTED)
            with self.assertRaises(TypeError):  # the wrong message type: not sent
                stub.Ask(svct.Enc(n=1))
            # Bytes that are no Fix, and a Fix whose text is over its bound.
            raw = ch.unary_unary("/svct.Gen/Ask")
            for bad in (b"\xff\xff\xff", svct.Enc(n=1, text="x" * 100).to_bytes()):
                with self.assertRaises(rpc.RpcError) as e:
                    raw(bad, timeout=10)
                self.assertEqual(e.exception.code(), rpc.StatusCode.INVALID_ARGUMENT)

    def check_deadline(self, server):
        server.drain()
        with self.channel() as ch:
            stub = svct.GenStub(ch)
            t = time.monotonic()
            with self.assertRaises(rpc.RpcError) as e:
                stub.Wait(svct.Fix(), timeout=0.3)
            self.assertEqual(e.exception.code(), rpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertLess(time.monotonic() - t, 10)
            server.expect("cancelled Wait")  # the handler saw the deadline pass

    def check_cancel(self, server):
        server.drain()
        with self.channel() as ch:
            it = svct.GenStub(ch).Count(svct.Enc(n=100000, text="slow"))
            self.assertEqual(next(it).n, 0)
            self.assertTrue(it.cancel())
            with self.assertRaises(rpc.RpcError) as e:
                for _ in it:
                    pass
            self.assertEqual(e.exception.code(), rpc.StatusCode.CANCELLED)
            server.expect("cancelled Count")


class PythonServer(Checks, unittest.TestCase):
    """Python clients against a Python server, on every transport."""

    @classmethod
    def setUpClass(cls):
        cls.addrs = addresses("py")
        cls.server = py_peer("server", *cls.addrs.values())
        cls.server.expect("ready")

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()

    def each(self, fn, *args):
        for name, addr in self.addrs.items():
            with self.subTest(transport=name):
                self.addr = addr
                fn(*args)

    def test_unary(self):
        self.each(self.check_unary)

    def test_streams(self):
        self.each(self.check_streams)

    def test_errors(self):
        self.each(self.check_errors)
        self.addr = self.addrs["shm"]
        with self.channel() as ch, self.assertRaises(rpc.RpcError) as e:
            svct.GenStub(ch).Ask(svct.Fix(n=99))
        self.assertEqual(e.exception.code(), rpc.StatusCode.UNKNOWN)
        self.assertIn("RuntimeError: boom", e.exception.details())

    def test_deadline(self):
        self.each(self.check_deadline, self.server)
        self.addr = self.addrs["shm"]
        self.server.drain()
        with self.channel() as ch:
            with self.assertRaises(rpc.RpcError):
                svct.GenStub(ch).Wait(svct.Fix(), timeout=0.5)
        left = int(self.server.expect("remaining").split()[1])
        self.assertTrue(0 < left <= 500, left)  # the handler saw the time remaining

    def test_cancel(self):
        self.each(self.check_cancel, self.server)

    def test_many_clients(self):
        """100 clients at once, each with a channel of its own, on one server."""
        results, failures = [], []

        def client(i):
            try:
                with rpc.channel(self.addrs["shm"], connect_timeout=60) as ch:
                    stub = svct.GenStub(ch)
                    results.append(sum(stub.Ask(svct.Fix(n=100 + i), timeout=60).n
                                       for _ in range(3)))
            except Exception as e:
                failures.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(failures, [])
        self.assertEqual(sorted(results), [3 * (101 + i) for i in range(100)])

    @unittest.skipUnless(NNG, "libshoal is built without nng")
    def test_token(self):
        with self.assertRaises(rpc.RpcError) as e:
            rpc.channel(self.addrs["tcp"], token="not-the-token")
        self.assertEqual(e.exception.code(), rpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(rpc.RpcError) as e:
            rpc.channel(self.addrs["tcp"])
        self.assertEqual(e.exception.code(), rpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(rpc.RpcError) as e:
            rpc.channel("shm://rpcpy-nobody-there", connect_timeout=0.2)
        self.assertEqual(e.exception.code(), rpc.StatusCode.UNAVAILABLE)

    def test_client_killed_mid_stream(self):
        for name in shm_tcp("py"):
            with self.subTest(transport=name):
                client = py_peer("stream", self.addrs[name])
                self.server.drain()
                try:
                    client.expect("streaming")
                    client.p.send_signal(signal.SIGKILL)
                    self.server.expect("cancelled Count")
                finally:
                    client.kill()

    def test_ctrl_c_in_a_blocking_call(self):
        client = py_peer("wait", self.addrs["shm"])
        self.server.drain()
        try:
            client.expect("waiting")
            time.sleep(0.2)  # in the call
            client.p.send_signal(signal.SIGINT)
            client.expect("interrupted", timeout=10)
            self.assertEqual(client.p.wait(timeout=10), 0)
            self.server.expect("cancelled Wait")  # the call was cancelled, not left
        finally:
            client.kill()


class ServerKilled(unittest.TestCase):
    """A server SIGKILLed mid-stream gives its clients UNAVAILABLE promptly."""

    def test_server_killed_mid_stream(self):
        for name, addr in addresses("kill").items():
            with self.subTest(transport=name):
                server = py_peer("server", addr)
                try:
                    server.expect("ready")
                    with rpc.channel(addr, token=TOKEN, connect_timeout=30) as ch:
                        it = svct.GenStub(ch).Count(svct.Enc(n=100000, text="slow"))
                        self.assertEqual(next(it).n, 0)
                        server.p.send_signal(signal.SIGKILL)
                        t = time.monotonic()
                        with self.assertRaises(rpc.RpcError) as e:
                            for _ in it:
                                pass
                        self.assertEqual(e.exception.code(), rpc.StatusCode.UNAVAILABLE)
                        self.assertLess(time.monotonic() - t, 5)  # not at a deadline
                finally:
                    server.kill()


class InProcess(unittest.TestCase):
    """Server and client in one process: start / stop, a handler's status."""

    def test_stop_with_grace_and_errors(self):
        addr = "shm://rpcpy-inproc"
        started, done = threading.Event(), threading.Event()

        class Slow(svct.GenServicer):
            def Ask(self, request, context):
                context.add_callback(done.set)
                started.set()
                time.sleep(0.3)
                return svct.Enc(n=request.n)

        server = rpc.server(max_workers=4)
        svct.add_GenServicer_to_server(Slow(), server)
        server.add_port(addr)
        server.start()
        self.assertTrue(server.wait_for_termination(timeout=0.05))  # timed out
        with rpc.channel(addr) as ch:
            stub = svct.GenStub(ch)
            result = []
            t = threading.Thread(target=lambda: result.append(stub.Ask(svct.Fix(n=7))))
            t.start()
            self.assertTrue(started.wait(30))
            server.stop(grace=5)  # lets the running call end
            t.join(10)
            self.assertEqual(result[0].n, 7)
            self.assertTrue(done.is_set())
            self.assertFalse(server.wait_for_termination(timeout=1))
            with self.assertRaises(rpc.RpcError) as e:
                stub.Ask(svct.Fix(n=1), timeout=5)
            self.assertEqual(e.exception.code(), rpc.StatusCode.UNAVAILABLE)

    def test_inline_unary_and_generic_handlers(self):
        def ask(request, context):
            if request.n == 99:
                raise ValueError("ninety-nine")
            return svct.Enc(n=request.n * 3)

        addr = "shm://rpcpy-inline"
        server = rpc.server(inline_unary=True)
        server.add_generic_handlers((rpc.method_handlers_generic_handler("svct.Gen", {
            "Ask": rpc.unary_unary_rpc_method_handler(
                ask, svct.Fix.from_bytes, rpc.serializer(svct.Enc))}),))
        server.add_port(addr)
        server.start()
        try:
            with rpc.channel(addr) as ch:
                stub = svct.GenStub(ch)
                self.assertEqual([stub.Ask(svct.Fix(n=i)).n for i in range(20)],
                                 [3 * i for i in range(20)])
                with self.assertRaises(rpc.RpcError) as e:
                    stub.Ask(svct.Fix(n=99))
                self.assertEqual(e.exception.code(), rpc.StatusCode.UNKNOWN)
                self.assertIn("ValueError: ninety-nine", e.exception.details())
                raw = ch.unary_unary("/svct.Gen/Ask")  # bytes both ways
                self.assertEqual(svct.Enc.from_bytes(raw(svct.Fix(n=2).to_bytes())).n, 6)
                self.assertEqual(stub.Count(svct.Enc(n=1)).code(),  # not served
                                 rpc.StatusCode.UNIMPLEMENTED)
                with self.assertRaises(rpc.RpcError) as e:
                    list(stub.Count(svct.Enc(n=1)))
                self.assertEqual(e.exception.code(), rpc.StatusCode.UNIMPLEMENTED)
        finally:
            server.stop(None)

    def test_handler_threads(self):
        """Without max_workers, handlers run on the server's own Python threads
        (shoal_rpc_server_work); calls beyond the idle ones get threads of their own,
        so more blocking handlers than those threads still all run at once."""
        n = rpc._HANDLER_THREADS + 3
        names, barrier = [], threading.Barrier(n, timeout=30)

        class Blocking(svct.GenServicer):
            def Ask(self, request, context):
                names.append(threading.current_thread().name)
                if request.n:
                    barrier.wait()  # every call at once: none waits for another
                return svct.Enc(n=request.n)

        addr = "shm://rpcpy-handler-threads"
        server = rpc.server()
        svct.add_GenServicer_to_server(Blocking(), server)
        server.add_port(addr)
        server.start()
        try:
            with rpc.channel(addr) as ch:
                stub = svct.GenStub(ch)
                self.assertEqual(stub.Ask(svct.Fix(n=0)).n, 0)
                self.assertEqual(names, ["shoal-rpc-handler"])
                got = []
                calls = [threading.Thread(
                    target=lambda i=i: got.append(stub.Ask(svct.Fix(n=i), timeout=30).n))
                    for i in range(1, n + 1)]
                for t in calls:
                    t.start()
                for t in calls:
                    t.join(60)
                self.assertEqual(sorted(got), list(range(1, n + 1)))
                self.assertGreaterEqual(names.count("shoal-rpc-handler"), 2)
        finally:
            server.stop(None)
        self.assertFalse([t for t in threading.enumerate()
                          if t.name == "shoal-rpc-handler"])  # stop joined them

    def test_start_errors(self):
        import shoal
        bogus = rpc.server()
        bogus.add_port("bogus://x")
        with self.assertRaises(shoal.InvalidArgument):
            bogus.start()
        if not NNG:
            return
        port = addresses("busy")["tcp"]
        no_token = rpc.server()
        no_token.add_port(port)
        with self.assertRaises(shoal.InvalidArgument):  # tcp:// needs a token
            no_token.start()
        first, second = rpc.server(), rpc.server()
        for srv in (first, second):
            srv.set_token(TOKEN)
            srv.add_port(port)
        first.start()
        try:
            with self.assertRaises(shoal.Busy):
                second.start()
            with self.assertRaises(ValueError):  # configured before start only
                first.add_port("shm://rpcpy-late")
        finally:
            first.stop(None)

    @unittest.skipUnless(NNG and shutil.which("openssl"), "needs nng and openssl")
    def test_tls(self):
        pki = tempfile.mkdtemp(prefix="shoal-rpc-py-pki-")
        try:
            subprocess.run(["sh", os.path.join(HERE, "make-test-certs.sh"), pki],
                           check=True, capture_output=True)
            pem = lambda name: os.path.join(pki, name)  # noqa: E731
            addr = "tls+" + addresses("tls")["tcp"]

            class Doubles(svct.GenServicer):
                def Ask(self, request, context):
                    return svct.Enc(n=2 * request.n)

            server = rpc.server()
            svct.add_GenServicer_to_server(Doubles(), server)
            server.set_tls(pem("server.pem"), pem("server.key"), pem("ca.pem"),
                           require_client_cert=True)
            server.add_port(addr)
            server.start()
            try:
                mine = {"ca_file": pem("ca.pem"), "cert_file": pem("client.pem"),
                        "key_file": pem("client.key")}
                with rpc.channel(addr, tls=mine, connect_timeout=20) as ch:
                    self.assertEqual(svct.GenStub(ch).Ask(svct.Fix(n=21)).n, 42)
                stranger = dict(mine, cert_file=pem("stranger.pem"),
                                key_file=pem("stranger.key"))
                with self.assertRaises(rpc.RpcError) as e:
                    rpc.channel(addr, tls=stranger, connect_timeout=20)
                self.assertEqual(e.exception.code(), rpc.StatusCode.UNAUTHENTICATED)
                with self.assertRaises(rpc.RpcError) as e:  # the server is not its CA's
                    rpc.channel(addr, tls=dict(mine, ca_file=pem("other-ca.pem")),
                                connect_timeout=20)
                self.assertEqual(e.exception.code(), rpc.StatusCode.UNAUTHENTICATED)
                with self.assertRaises(TypeError):
                    rpc.channel(addr, tls={"ca": pem("ca.pem")})
            finally:
                server.stop(None)
        finally:
            shutil.rmtree(pki, ignore_errors=True)

    def test_deadline_inherited(self):
        inner = []

        class Waits(svct.GenServicer):
            def Wait(self, request, context):
                while context.is_active():
                    time.sleep(0.005)
                return svct.Fix()

        class Relays(svct.GenServicer):
            def Ask(self, request, context):
                with rpc.channel("shm://rpcpy-waits") as ch:
                    try:  # no timeout of its own: the handler's deadline applies
                        svct.GenStub(ch).Wait(svct.Fix())
                    except rpc.RpcError as e:
                        inner.append(e.code())
                while context.is_active():  # the inner call's deadline is this one's:
                    time.sleep(0.005)  # answering now could beat the client's own timer
                return svct.Enc()

        servers = []
        for addr, servicer in (("shm://rpcpy-waits", Waits()),
                               ("shm://rpcpy-relays", Relays())):
            srv = rpc.server()
            svct.add_GenServicer_to_server(servicer, srv)
            srv.add_port(addr)
            srv.start()
            servers.append(srv)
        try:
            with rpc.channel("shm://rpcpy-relays") as ch:
                # 2 s: a handler thread must take the call before its deadline (a call
                # whose deadline passes while it waits for one never runs its handler)
                with self.assertRaises(rpc.RpcError) as e:
                    svct.GenStub(ch).Ask(svct.Fix(), timeout=2)
                self.assertEqual(e.exception.code(), rpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertTrue(_util.wait_until(lambda: inner, timeout=10))
            self.assertEqual(inner[0], rpc.StatusCode.DEADLINE_EXCEEDED)
        finally:
            for srv in servers:
                srv.stop(None)

    def test_golden_services(self):
        with open(os.path.join(GEN, "svct_shoal.py")) as f:
            text = f.read()
        got = text[text.index("# ---- services ----"):]
        path = os.path.join(HERE, "golden", "svct_services.py.golden")
        if os.environ.get("SHOAL_UPDATE_GOLDEN"):
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            self.assertEqual(got, f.read(),
                             "rerun with SHOAL_UPDATE_GOLDEN=1 if the change is intended")


@unittest.skipUnless(PEER_C, "SHOAL_RPC_PEER (the C peer, svcpeer) is not set")
class WithC(Checks, unittest.TestCase):
    """Python client against the C server, C client against the Python server."""

    def test_python_client_c_server(self):
        addrs = shm_tcp("c")
        server = Peer([PEER_C, "server"] + list(addrs.values()))
        try:
            server.expect("ready")
            for name in addrs:
                with self.subTest(transport=name):
                    self.addr = addrs[name]
                    self.check_unary()
                    self.check_streams()
                    self.check_errors()
                    self.check_deadline(server)
                    self.check_cancel(server)
        finally:
            server.kill()

    def test_c_client_python_server(self):
        addrs = shm_tcp("cpy")
        server = py_peer("server", *addrs.values())
        try:
            server.expect("ready")
            for name in addrs:
                with self.subTest(transport=name):
                    cp = subprocess.run([PEER_C, "client", addrs[name]], text=True,
                                        capture_output=True, timeout=120)
                    self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
                    self.assertEqual(cp.stdout.count("ok "), 8, cp.stdout)
                    server.expect("cancelled Count")
        finally:
            server.kill()


if __name__ == "__main__":
    unittest.main()
