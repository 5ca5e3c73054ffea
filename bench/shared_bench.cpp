// bench/shared: the shared-address mechanisms of lib/cluster on the real kernel, for 1,
// 100 and 10 000 TCP connections (issue 10), in two private network namespaces (the lab
// of tests/adapters/cluster_lab.hpp) and, for the eBPF level, a cgroup of its own:
//   release   block + SOCK_DESTROY of every socket on the address + unblock
//   tickle    the old owner forgets its connections silently (TCP_REPAIR close); the new
//             owner tickles them all; time from the tickle call to each client's ECONNRESET
//   registry  connect() called -> the connection reported by the registry, per level
// Printed beside the targets and CTDB's figures (15 s scan, 20 s tickle replication).
// Needs root. Usage: shared_bench [N...]   (default 1 100 10000)
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdint>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "cluster/cluster.hpp"
#include "cluster_lab.hpp"

namespace mpathd::cluster::lab {
namespace {

using Clock = std::chrono::steady_clock;
const Fam& F = kV4;
constexpr std::uint16_t kPort = 5000;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double median = -1, p99 = -1;
  std::size_t n = 0;
};
Stats stats(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.median = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, (v.size() * 99) / 100)];
  return s;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

bool read_all(int fd, void* buf, std::size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const ssize_t k = read(fd, p, len);
    if (k <= 0) return false;
    p += k;
    len -= static_cast<std::size_t>(k);
  }
  return true;
}

bool write_all(int fd, const void* buf, std::size_t len) {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    const ssize_t k = write(fd, p, len);
    if (k <= 0) return false;
    p += k;
    len -= static_cast<std::size_t>(k);
  }
  return true;
}

struct Started {
  std::uint16_t port;
  std::int64_t t_ns;  // CLOCK_MONOTONIC when connect() was called
};
struct Ended {
  std::uint16_t port;
  std::int64_t t_ns;  // when the connection failed (or 0)
  std::int32_t err;
};

// The clients run in a process of their own in B (each side may hold ~10 000 fds, and
// the fd limit here is 20 000 without CAP_SYS_RESOURCE). It connects n sockets, reports
// (port, connect time) for each, then on 'w' waits up to 5 s for them to fail and reports
// (port, time, errno), on 'q' closes them all (SO_LINGER 0: no TIME_WAIT) and exits.
class Clients {
 public:
  bool start(Lab& lab, std::size_t n) {
    n_ = n;
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0 || !lab.in_b()) return false;
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      close(to[1]);
      close(from[0]);
      _exit(child(to[0], from[1], n));
    }
    close(to[0]);
    close(from[1]);
    cmd_ = to[1];
    rep_ = from[0];
    return pid_ > 0;
  }
  // Blocks until every client is connected.
  std::optional<std::vector<Started>> started() {
    std::vector<Started> v(n_);
    if (!read_all(rep_, v.data(), v.size() * sizeof(Started))) return std::nullopt;
    return v;
  }
  std::optional<std::vector<Ended>> watch() {
    if (!write_all(cmd_, "w", 1)) return std::nullopt;
    std::uint64_t k = 0;
    if (!read_all(rep_, &k, sizeof k)) return std::nullopt;
    std::vector<Ended> v(k);
    if (!read_all(rep_, v.data(), v.size() * sizeof(Ended))) return std::nullopt;
    return v;
  }
  ~Clients() {
    if (pid_ <= 0) return;
    (void)write_all(cmd_, "q", 1);
    close(cmd_);
    close(rep_);
    int st = 0;
    waitpid(pid_, &st, 0);
  }

 private:
  static int child(int cmd, int rep, std::size_t n) {
    std::vector<int> fds;
    std::vector<Started> st;
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t t = now_ns();
      const int fd = connect_nb(F.shared, kPort);
      if (fd < 0) return 1;
      fds.push_back(fd);
      st.push_back({local_port(fd), t});
    }
    for (int fd : fds)
      if (!connected_within(fd, Ms(10000))) return 1;
    if (!write_all(rep, st.data(), st.size() * sizeof(Started))) return 1;
    char c = 0;
    while (read_all(cmd, &c, 1) && c == 'w') {
      const int ep = epoll_create1(EPOLL_CLOEXEC);
      for (std::size_t i = 0; i < n; ++i) {
        epoll_event ev{EPOLLIN | EPOLLERR | EPOLLHUP, {.u64 = i}};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
      }
      std::vector<Ended> out;
      std::vector<epoll_event> evs(1024);
      while (out.size() < n) {
        const int k = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 5000);
        if (k <= 0) break;
        const std::int64_t t = now_ns();
        for (int j = 0; j < k; ++j) {
          const std::size_t i = evs[j].data.u64;
          epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], nullptr);
          out.push_back({st[i].port, t, recv_errno(fds[i])});
        }
      }
      close(ep);
      const std::uint64_t k = out.size();
      if (!write_all(rep, &k, sizeof k) || !write_all(rep, out.data(), out.size() * sizeof(Ended))) return 1;
    }
    linger lg{1, 0};
    for (int fd : fds) {
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      close(fd);
    }
    return 0;
  }

  std::size_t n_ = 0;
  pid_t pid_ = -1;
  int cmd_ = -1, rep_ = -1;
};

// The server side in A: the listener and the n accepted connections.
struct Server {
  int listener = -1;
  std::vector<int> conns;
  ~Server() {
    for (int fd : conns) close(fd);
    if (listener >= 0) close(listener);
  }
  bool accept_all(std::size_t n, const std::function<void()>& pump = {}) {
    while (conns.size() < n) {
      if (pump) pump();
      const int s = accept_within(listener, Ms(10000));
      if (s < 0) return false;
      conns.push_back(s);
    }
    return true;
  }
};

bool listen_in_a(Lab& lab, Server& srv) {
  if (!lab.in_a()) return false;
  srv.listener = listener(F.shared, kPort, 65535);
  return srv.listener >= 0;
}

struct Release {
  double total = -1, destroy = -1;
  std::size_t destroyed = 0;
};

std::optional<Release> bench_release(Lab& lab, Actions& act, std::size_t n) {
  Server srv;
  Clients cl;
  if (!listen_in_a(lab, srv) || !cl.start(lab, n) || !cl.started() || !lab.in_a() || !srv.accept_all(n))
    return std::nullopt;
  Release r;
  const auto t0 = Clock::now();
  if (!act.block(F.shared)) return std::nullopt;
  const auto t1 = Clock::now();
  auto d = act.destroy_sockets(F.shared);
  const auto t2 = Clock::now();
  if (!d || !act.unblock(F.shared)) return std::nullopt;
  const auto t3 = Clock::now();
  r.total = ms(t3 - t0);
  r.destroy = ms(t2 - t1);
  r.destroyed = *d;
  if (r.destroyed != n + 1) std::fprintf(stderr, "release: %zu of %zu sockets destroyed\n", r.destroyed, n + 1);
  return r;
}

std::optional<Stats> bench_tickle(Lab& lab, Actions& act, std::size_t n, std::size_t& reset, double& send_ms) {
  Server srv;
  Clients cl;
  if (!listen_in_a(lab, srv) || !cl.start(lab, n)) return std::nullopt;
  auto st = cl.started();
  if (!st || !lab.in_a() || !srv.accept_all(n)) return std::nullopt;
  const int one = 1;
  for (int fd : srv.conns) {  // the old owner forgets without a packet
    setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one);
    close(fd);
  }
  srv.conns.clear();
  std::vector<Association> to;
  for (const auto& s : *st)
    to.push_back({.proto = Proto::tcp, .local = F.shared, .local_port = kPort, .remote = F.client,
                  .remote_port = s.port, .tcp_state = 1});
  const std::int64_t t0 = now_ns();
  if (!act.tickle(F.shared, to, 0)) return std::nullopt;
  send_ms = static_cast<double>(now_ns() - t0) / 1e6;
  auto ended = cl.watch();
  if (!ended) return std::nullopt;
  std::vector<double> lat;
  reset = 0;
  for (const auto& e : *ended) {
    lat.push_back(static_cast<double>(e.t_ns - t0) / 1e6);
    if (e.err == ECONNRESET) ++reset;
  }
  return stats(lat);
}

std::optional<Stats> bench_registry(Lab& lab, sd_event* e, const RegistryOptions& opts, std::size_t n,
                                    RegistryLevel& level, std::string& reason) {
  if (!lab.in_a()) return std::nullopt;
  std::map<std::uint16_t, std::int64_t> seen;
  auto reg = Registry::create(e, opts, [&](const IpAddress&, const Association& a, bool present) {
    if (present && a.proto == Proto::tcp && a.local_port == kPort) seen.try_emplace(a.remote_port, now_ns());
  });
  level = reg->level();
  reason = reg->level_reason();
  reg->track({F.shared});
  Server srv;
  Clients cl;
  if (!listen_in_a(lab, srv) || !cl.start(lab, n) || !lab.in_a()) return std::nullopt;
  // The loop runs while the client process connects; connections wait in the accept
  // queue (they are established: visible to sock_diag, reported by sockops).
  run_until(e, [&] { return seen.size() >= n; }, Ms(15000));
  auto st = cl.started();
  if (!st) return std::nullopt;
  std::vector<double> lag;
  for (const auto& s : *st)
    if (auto it = seen.find(s.port); it != seen.end()) lag.push_back(static_cast<double>(it->second - s.t_ns) / 1e6);
  reg.reset();
  return stats(lag);
}

std::string fmt(double v) {
  if (v < 0) return "-";
  char b[32];
  std::snprintf(b, sizeof b, v < 10 ? "%.2f" : "%.1f", v);
  return b;
}

int run(const std::vector<std::size_t>& sizes, const std::string& cgroup) {
  if (!cgroup.empty() && !join(cgroup)) return 1;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;  // each process holds one side of the connections
  setrlimit(RLIMIT_NOFILE, &rl);
  Lab lab;
  if (!lab.setup()) {
    std::fprintf(stderr, "cannot create the namespaces\n");
    return 1;
  }
  // Our own namespaces only: queues long enough for 10 000 connections, enough ports.
  if (!lab.in_a() || !sh("sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535") ||
      !lab.in_b() || !sh("sysctl -qw net.ipv4.ip_local_port_range='1024 65000'"))
    return 1;
  sd_event* e = nullptr;
  sd_event_new(&e);
  lab.in_a();
  auto act = Actions::create(e);

  struct Row {
    std::string name, target;
    std::vector<std::string> cells;
  };
  std::vector<Row> rows{
      {"release: block+destroy+unblock (ms)", "<= 250 ms at 10 000", {}},
      {"  of which SOCK_DESTROY (ms)", "~20 us/socket (lab)", {}},
      {"tickle -> client reset, median (ms)", "<= 10 ms (issue); CTDB: 20 s replication", {}},
      {"tickle -> client reset, p99 (ms)", "", {}},
      {"  clients reset / connections", "all", {}},
      {"  tickle call (all sends, ms)", "", {}},
      {"registry lag sock_diag (walk 1 s), median (ms)", "~ walk interval 1 s + walk; CTDB scan: 15 000 ms", {}},
      {"registry lag sock_diag (walk 1 s), p99 (ms)", "", {}},
      {"registry lag eBPF, median (ms)", "event-driven; CTDB scan: 15 000 ms", {}},
      {"registry lag eBPF, p99 (ms)", "", {}},
  };
  std::string ebpf_note;
  for (std::size_t n : sizes) {
    std::fprintf(stderr, "N=%zu ...\n", n);
    auto rel = bench_release(lab, *act, n);
    rows[0].cells.push_back(rel ? fmt(rel->total) : "fail");
    rows[1].cells.push_back(rel ? fmt(rel->destroy) : "fail");
    std::size_t reset = 0;
    double send_ms = -1;
    auto tk = bench_tickle(lab, *act, n, reset, send_ms);
    rows[2].cells.push_back(tk ? fmt(tk->median) : "fail");
    rows[3].cells.push_back(tk ? fmt(tk->p99) : "fail");
    rows[4].cells.push_back(tk ? std::to_string(reset) + "/" + std::to_string(n) : "fail");
    rows[5].cells.push_back(tk ? fmt(send_ms) : "fail");
    RegistryLevel level{};
    std::string reason;
    auto sd = bench_registry(lab, e, {.cgroup = "", .ebpf = false, .walk_interval = std::chrono::seconds(1)}, n,
                             level, reason);
    rows[6].cells.push_back(sd ? fmt(sd->median) + (sd->n < n ? " (" + std::to_string(sd->n) + " seen)" : "") : "fail");
    rows[7].cells.push_back(sd ? fmt(sd->p99) : "fail");
    auto eb = bench_registry(lab, e, {.cgroup = cgroup, .ebpf = true, .walk_interval = std::chrono::seconds(1)}, n,
                             level, reason);
    const bool ebpf = level == RegistryLevel::ebpf;
    if (!ebpf) ebpf_note = reason;
    rows[8].cells.push_back(!ebpf ? "n/a" : eb ? fmt(eb->median) + (eb->n < n ? " (" + std::to_string(eb->n) + " seen)" : "") : "fail");
    rows[9].cells.push_back(!ebpf ? "n/a" : eb ? fmt(eb->p99) : "fail");
  }
  std::printf("\nbench/shared: shared-address release, takeover tickle and association registry (IPv4, veth)\n\n");
  std::printf("%-48s", "");
  for (std::size_t n : sizes) std::printf(" %12s", ("N=" + std::to_string(n)).c_str());
  std::printf("   %s\n", "target / reference");
  for (const auto& r : rows) {
    std::printf("%-48s", r.name.c_str());
    for (const auto& c : r.cells) std::printf(" %12s", c.c_str());
    std::printf("   %s\n", r.target.c_str());
  }
  if (!ebpf_note.empty()) std::printf("\neBPF level not in force: %s\n", ebpf_note.c_str());
  act.reset();
  sd_event_unref(e);
  return 0;
}

}  // namespace
}  // namespace mpathd::cluster::lab

int main(int argc, char** argv) {
  using namespace mpathd::cluster::lab;
  if (geteuid() != 0) {
    std::fprintf(stderr, "shared_bench: needs root (network namespaces, nftables, raw sockets, eBPF)\n");
    return 2;
  }
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(argv[i], &end, 10);
    if (!end || *end || v == 0 || v > 20000) {
      std::fprintf(stderr, "shared_bench: bad connection count '%s' (1..20000)\n", argv[i]);
      return 2;
    }
    sizes.push_back(v);
  }
  if (sizes.empty()) sizes = {1, 100, 10000};
  TestCgroup cg("mpathd-bench-");  // removed when main returns, after the child exited
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    const int rc = run(sizes, cg.path);
    std::fflush(nullptr);
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
