/*
 * grpc_peer.cc — gRPC C++ serving and calling bench.Echo/Echo (echo.proto), to set
 * beside bench_rpc.c's shoal rows:
 *
 *   grpc_uds_rtt        a Unix socket, back-to-back calls: round trip
 *   grpc_uds_sleep_rtt  a Unix socket, the client pausing 1 ms between calls, so the
 *                       server's threads are asleep when a call arrives: round trip
 *   grpc_tcp_rtt        TCP on the loopback: round trip
 *   grpc_uds_tput16     a Unix socket, 16 client threads on one channel, 16 calls in
 *                       flight: calls per second
 *
 *   bench_grpc CASE SIZE COUNT
 *
 * prints one line in bench/common.h's form, "RESULT case=... size=... count=...
 * median_ns=... p99_ns=... mean_ns=..." (or msgs_per_s=...). gRPC has no polling
 * mode: its server threads always sleep in epoll, so grpc_uds_rtt is what shoal's
 * polling round trip is compared with. The server is a child forked before any gRPC
 * object exists (gRPC does not survive fork()).
 */
#include <grpcpp/grpcpp.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "echo.grpc.pb.h"

namespace
{

class EchoService final : public bench::Echo::Service
{
    grpc::Status Echo(grpc::ServerContext *, const bench::Blob *req,
                      bench::Blob *resp) override
    {
        resp->set_data(req->data());
        return grpc::Status::OK;
    }
};

int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

[[noreturn]] void fail(const char *what, const std::string &why)
{
    std::fprintf(stderr, "bench_grpc: %s: %s\n", what, why.c_str());
    std::exit(1);
}

/* The child: serves until killed; writes one byte to `ready` once listening. */
[[noreturn]] void serve(const std::string &addr, int ready)
{
    EchoService svc;
    grpc::ServerBuilder b;
    b.AddListeningPort(addr, grpc::InsecureServerCredentials());
    b.RegisterService(&svc);
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    if (!server)
        fail("server", "cannot listen on " + addr);
    char one = 1;
    if (write(ready, &one, 1) != 1)
        std::exit(1);
    server->Wait();
    std::exit(0);
}

void call(bench::Echo::Stub *stub, const bench::Blob &req)
{
    grpc::ClientContext ctx;
    bench::Blob resp;
    grpc::Status st = stub->Echo(&ctx, req, &resp);
    if (!st.ok() || resp.data().size() != req.data().size())
        fail("call", st.error_message());
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 4) {
        std::fprintf(stderr, "usage: bench_grpc CASE SIZE COUNT\ncases: grpc_uds_rtt "
                             "grpc_uds_sleep_rtt grpc_tcp_rtt grpc_uds_tput16\n");
        return 2;
    }
    std::string c = argv[1];
    size_t size = std::strtoull(argv[2], nullptr, 10);
    uint64_t count = std::strtoull(argv[3], nullptr, 10);
    if (count == 0)
        count = 1;
    std::string addr = c == "grpc_tcp_rtt"
                           ? "127.0.0.1:" + std::to_string(30000 + getpid() % 20000)
                           : "unix:/tmp/bench-grpc-" + std::to_string(getpid()) + ".sock";
    int fds[2];
    if (pipe(fds) != 0)
        fail("pipe", std::strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(600);
        serve(addr, fds[1]);
    }
    close(fds[1]);
    char one;
    if (read(fds[0], &one, 1) != 1)
        fail("server", "did not start");
    auto ch = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
    auto stub = bench::Echo::NewStub(ch);
    bench::Blob req;
    req.set_data(std::string(size, '\0'));
    for (uint64_t i = 0; i < count / 10 + 1; i++) /* warm up */
        call(stub.get(), req);
    if (c == "grpc_uds_tput16") {
        const int inflight = 16;
        uint64_t each = count / inflight ? count / inflight : 1;
        int64_t t0 = now_ns();
        std::vector<std::thread> th;
        for (int i = 0; i < inflight; i++)
            th.emplace_back([&] {
                for (uint64_t k = 0; k < each; k++)
                    call(stub.get(), req);
            });
        for (auto &t : th)
            t.join();
        int64_t dt = now_ns() - t0;
        std::printf(
            "RESULT case=%s size=%zu count=%llu msgs_per_s=%.1f elapsed_ns=%lld\n",
            c.c_str(), size, (unsigned long long)(each * inflight),
            (double)(each * inflight) * 1e9 / (double)dt, (long long)dt);
    } else if (c == "grpc_uds_rtt" || c == "grpc_uds_sleep_rtt" || c == "grpc_tcp_rtt") {
        std::vector<int64_t> lat(count);
        bool pause = c == "grpc_uds_sleep_rtt";
        for (uint64_t i = 0; i < count; i++) {
            if (pause)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            int64_t t0 = now_ns();
            call(stub.get(), req);
            lat[i] = now_ns() - t0;
        }
        double mean = 0;
        for (int64_t v : lat)
            mean += (double)v / (double)count;
        std::sort(lat.begin(), lat.end());
        std::printf("RESULT case=%s size=%zu count=%llu median_ns=%.1f p99_ns=%.1f "
                    "mean_ns=%.1f\n",
                    c.c_str(), size, (unsigned long long)count, (double)lat[count / 2],
                    (double)lat[count * 99 / 100], mean);
    } else {
        fail("case", "unknown: " + c);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (addr.rfind("unix:", 0) == 0)
        unlink(addr.c_str() + 5);
    return 0;
}
