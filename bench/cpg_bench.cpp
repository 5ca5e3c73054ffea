// cpg_bench: Corosync CPG throughput and latency, one process per cluster node
// (docs/scale.md measures with it; bench/cluster.py --cpg runs it in the cluster lab).
//
//   cpg_bench --group NAME --members N [--send] [--size BYTES] [--rate HZ] [--seconds S]
//             [--timeout S]
//
// Every instance joins the process group NAME and waits (bounded by --timeout) until N
// members are in it. An instance with --send then multicasts messages of --size bytes
// (CPG_TYPE_AGREED) for --seconds, at --rate per second or as fast as Corosync takes
// them (--rate 0): a CS_ERR_TRY_AGAIN (Corosync's flow control) is counted, the
// deliveries are dispatched and the same message is sent again. Each message carries
// its send time (CLOCK_MONOTONIC, one clock for all namespaces of the machine), so every
// instance measures the delivery latency of every sender's messages. A sender ends with
// an end marker; an instance exits once every sender's marker arrived (or at --timeout)
// and prints one JSON line: sent, try_again, delivered, bytes, seconds, msgs_per_s,
// mbytes_per_s (payload, delivered), latency_ms p50/p99/max, max_atomic (bytes a
// message may have without being fragmented by Corosync) and send_error (the first
// cs_error_t other than TRY_AGAIN, 0 if none).
//
// Exit codes: 0 ok, 1 runtime error (Corosync not reachable, members never came),
// 64 bad usage.

#include <corosync/cpg.h>
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

using i64 = std::int64_t;

struct Options {
  std::string group;
  unsigned members = 1;
  bool send = false;
  std::size_t size = 1024;
  double rate = 0;
  double seconds = 5;
  double timeout = 60;
};

constexpr std::uint32_t kMagic = 0x6d706364;  // "mpcd"
struct Header {
  std::uint32_t magic;
  std::uint32_t end;  // 1 = the sender's end marker
  i64 sent_ns;
};

i64 now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<i64>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr,
               "cpg_bench: %s\nusage: cpg_bench --group NAME --members N [--send] [--size BYTES] "
               "[--rate HZ] [--seconds S] [--timeout S]\n",
               msg.c_str());
  std::exit(64);
}

double number(std::string_view opt, const char* s) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || v < 0) usage("bad value for " + std::string(opt) + ": " + s);
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--send") {
      o.send = true;
      continue;
    }
    if (a == "-h" || a == "--help") usage("help");
    if (i + 1 >= argc) usage("missing value for " + std::string(a));
    const char* v = argv[++i];
    if (a == "--group") {
      o.group = v;
    } else if (a == "--members") {
      o.members = static_cast<unsigned>(number(a, v));
    } else if (a == "--size") {
      o.size = static_cast<std::size_t>(number(a, v));
    } else if (a == "--rate") {
      o.rate = number(a, v);
    } else if (a == "--seconds") {
      o.seconds = number(a, v);
    } else if (a == "--timeout") {
      o.timeout = number(a, v);
    } else {
      usage("unknown option " + std::string(a));
    }
  }
  if (o.group.empty() || o.group.size() >= CPG_MAX_NAME_LENGTH) usage("--group NAME (1..127 characters) is required");
  if (o.members < 1 || o.members > CPG_MEMBERS_MAX) usage("--members out of range");
  if (o.size < sizeof(Header) || o.size > (64u << 20)) usage("--size must be 16 B .. 64 MiB");
  return o;
}

struct State {
  unsigned members = 0;
  std::set<std::pair<std::uint32_t, std::uint32_t>> senders;  // (nodeid, pid) of data seen
  std::set<std::pair<std::uint32_t, std::uint32_t>> ended;
  std::uint64_t delivered = 0;
  std::uint64_t bytes = 0;
  i64 first_ns = 0;
  i64 last_ns = 0;
  std::vector<double> latency_ms;
};
State g;

void on_deliver(cpg_handle_t, const cpg_name*, std::uint32_t nodeid, std::uint32_t pid, void* msg,
                std::size_t len) {
  if (len < sizeof(Header)) return;
  Header h{};
  std::memcpy(&h, msg, sizeof h);
  if (h.magic != kMagic) return;
  const i64 now = now_ns();
  if (h.end != 0) {
    g.ended.insert({nodeid, pid});
    g.senders.insert({nodeid, pid});
    return;
  }
  g.senders.insert({nodeid, pid});
  if (g.delivered == 0) g.first_ns = now;
  g.last_ns = now;
  ++g.delivered;
  g.bytes += len;
  g.latency_ms.push_back(static_cast<double>(now - h.sent_ns) / 1e6);
}

void on_confchg(cpg_handle_t, const cpg_name*, const cpg_address*, std::size_t members, const cpg_address*,
                std::size_t, const cpg_address*, std::size_t) {
  g.members = static_cast<unsigned>(members);
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  cpg_callbacks_t cb{};
  cb.cpg_deliver_fn = on_deliver;
  cb.cpg_confchg_fn = on_confchg;
  cpg_handle_t handle = 0;
  cs_error_t rc = cpg_initialize(&handle, &cb);
  if (rc != CS_OK) {
    std::fprintf(stderr, "cpg_bench: cpg_initialize: cs_error %d (is corosync running here?)\n", rc);
    return 1;
  }
  cpg_name name{};
  name.length = static_cast<std::uint32_t>(o.group.size());
  std::memcpy(name.value, o.group.data(), o.group.size());
  while ((rc = cpg_join(handle, &name)) == CS_ERR_TRY_AGAIN) {
  }
  if (rc != CS_OK) {
    std::fprintf(stderr, "cpg_bench: cpg_join: cs_error %d\n", rc);
    return 1;
  }
  int fd = -1;
  cpg_fd_get(handle, &fd);
  std::uint32_t max_atomic = 0;
  cpg_max_atomic_msgsize_get(handle, &max_atomic);

  const i64 start = now_ns();
  const i64 deadline = start + static_cast<i64>(o.timeout * 1e9);
  auto pump = [&](int wait_ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) > 0) cpg_dispatch(handle, CS_DISPATCH_ALL);
  };
  while (g.members < o.members) {
    if (now_ns() > deadline) {
      std::fprintf(stderr, "cpg_bench: only %u of %u members joined %s\n", g.members, o.members, o.group.c_str());
      return 1;
    }
    pump(100);
  }

  std::uint64_t sent = 0;
  std::uint64_t try_again = 0;
  int send_error = 0;
  std::vector<char> buf(o.size, 'x');
  auto mcast = [&](bool end) -> cs_error_t {
    Header h{kMagic, end ? 1u : 0u, now_ns()};
    std::memcpy(buf.data(), &h, sizeof h);
    iovec iov{buf.data(), end ? sizeof h : buf.size()};
    for (;;) {
      cs_error_t r = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
      if (r != CS_ERR_TRY_AGAIN) return r;
      ++try_again;
      pump(1);  // flow control: deliver what is due, then try again
      if (now_ns() > deadline) return r;
    }
  };
  i64 send_start = 0;
  i64 send_end = 0;
  if (o.send) {
    send_start = now_ns();
    const i64 stop = send_start + static_cast<i64>(o.seconds * 1e9);
    const i64 step = o.rate > 0 ? static_cast<i64>(1e9 / o.rate) : 0;
    i64 next = send_start;
    while (now_ns() < stop) {
      if (step > 0 && now_ns() < next) {
        pump(static_cast<int>(std::max<i64>(0, (next - now_ns()) / 1'000'000)));
        continue;
      }
      cs_error_t r = mcast(false);
      if (r != CS_OK) {
        send_error = r;
        break;
      }
      ++sent;
      next += step;
      pump(0);
    }
    send_end = now_ns();
    cs_error_t r = mcast(true);
    if (r != CS_OK && send_error == 0) send_error = r;
  }
  // Until every sender seen has ended (a receiver with no sender yet waits for one).
  while (now_ns() < deadline) {
    bool all = !g.senders.empty() && g.ended.size() == g.senders.size();
    if (all && (!o.send || g.ended.size() >= 1)) break;
    if (o.send && send_error != 0) break;
    pump(50);
  }
  double secs = g.delivered > 1 ? static_cast<double>(g.last_ns - g.first_ns) / 1e9 : 0;
  double send_secs = o.send ? static_cast<double>(send_end - send_start) / 1e9 : 0;
  std::printf(
      "{\"group\":\"%s\",\"members\":%u,\"send\":%s,\"size\":%zu,\"rate\":%g,\"sent\":%llu,\"send_seconds\":%.3f,"
      "\"try_again\":%llu,\"send_error\":%d,\"senders\":%zu,\"delivered\":%llu,\"bytes\":%llu,\"seconds\":%.3f,"
      "\"msgs_per_s\":%.1f,\"mbytes_per_s\":%.3f,\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
      "\"max_atomic\":%u}\n",
      o.group.c_str(), g.members, o.send ? "true" : "false", o.size, o.rate, static_cast<unsigned long long>(sent),
      send_secs, static_cast<unsigned long long>(try_again), send_error, g.senders.size(),
      static_cast<unsigned long long>(g.delivered), static_cast<unsigned long long>(g.bytes), secs,
      secs > 0 ? static_cast<double>(g.delivered) / secs : 0, secs > 0 ? static_cast<double>(g.bytes) / secs / 1e6 : 0,
      pct(g.latency_ms, 0.5), pct(g.latency_ms, 0.99),
      g.latency_ms.empty() ? 0 : *std::max_element(g.latency_ms.begin(), g.latency_ms.end()), max_atomic);
  cpg_leave(handle, &name);
  cpg_finalize(handle);
  return 0;
}
