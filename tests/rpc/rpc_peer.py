"""The Python peer of the generated svct.Gen service (proto/svct.proto) for
rpc_python.py, which starts it as a process of its own; the generated module
svct_shoal must be on the path. The same service as svcpeer.c serves:

  rpc_peer.py server ADDRESS...   serves svct.Gen (tcp:// with the token
                                  "rpc-test-token"), prints "ready", then one line per
                                  event its handlers see ("cancelled Wait", ...);
                                  runs until killed;
  rpc_peer.py stream ADDRESS      a client reading a slow Count stream: prints
                                  "streaming" after the first response (the test
                                  kills it there);
  rpc_peer.py wait ADDRESS        a client blocked in a Wait without deadline: prints
                                  "waiting", and "interrupted CANCELLED" when Ctrl-C
                                  (SIGINT) ends the call.
"""

import sys
import time

import svct_shoal as svct
from shoal import rpc

TOKEN = "rpc-test-token"


def event(what):
    print(what, flush=True)


class Gen(svct.GenServicer):
    def Ask(self, request, context):
        if request.n == -1:
            context.abort(rpc.StatusCode.FAILED_PRECONDITION, "negative")
        if request.n == 99:
            raise RuntimeError("boom")
        who = dict(context.invocation_metadata()).get("who")
        if who:
            context.send_initial_metadata([("who", who)])
        context.set_trailing_metadata([("served-by", "python")])
        return svct.Enc(n=request.n + 1, text=request.text + (who or ""),
                        items=[request.n, request.n])

    def Count(self, request, context):
        slow, finished = request.text == "slow", False
        try:
            for i in range(request.n):
                yield svct.Fix(n=i)
                if slow:
                    time.sleep(0.02)
            finished = True
        finally:  # closed early: the call ended (cancel, deadline, client gone)
            if not finished:
                event("cancelled Count")

    def Sum(self, request_iterator, context):
        return svct.Fix(n=sum(r.n for r in request_iterator))

    def Chat(self, request_iterator, context):
        for r in request_iterator:
            yield svct.Enc(n=r.n * 2)

    def Wait(self, request, context):
        left = context.time_remaining()
        event("remaining %s" % ("none" if left is None else int(left * 1000)))
        while context.is_active():
            time.sleep(0.001)
        event("cancelled Wait")
        return svct.Fix()


def serve(addresses):
    server = rpc.server()
    svct.add_GenServicer_to_server(Gen(), server)
    server.set_token(TOKEN)
    for a in addresses:
        server.add_port(a)
    server.start()
    event("ready")
    server.wait_for_termination()


def stream(address):
    with rpc.channel(address, token=TOKEN, connect_timeout=30) as ch:
        for _ in svct.GenStub(ch).Count(svct.Enc(n=100000, text="slow")):
            event("streaming")


def wait(address):
    with rpc.channel(address, token=TOKEN, connect_timeout=30) as ch:
        stub = svct.GenStub(ch)
        stub.Ask(svct.Fix(n=1))  # connected and served
        event("waiting")
        try:
            stub.Wait(svct.Fix())
        except KeyboardInterrupt:
            event("interrupted")


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    {"server": serve, "stream": lambda a: stream(a[0]),
     "wait": lambda a: wait(a[0])}[role](args)
