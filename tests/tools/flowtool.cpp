// flowtool: traffic generator and echo server for the integration lab and bench.
//
//   flowtool serve --port P
//       UDP and TCP echo on the wildcard address, IPv4 and IPv6 (one dual-stack
//       socket each), until SIGINT/SIGTERM.
//   flowtool udp --to ADDR --port P --rate HZ --duration SEC [--progress-file F]
//       Sends sequence-numbered, timestamped datagrams at HZ and counts echoes. On exit
//       (duration over, or SIGINT/SIGTERM) prints one JSON line: sent, received, lost,
//       longest_outage_ms (longest time between two consecutive replies while sending,
//       including the time from the last reply to the end of sending), first/last reply
//       times relative to the start.
//   flowtool tcp --to ADDR --port P --interval MS --duration SEC [--progress-file F]
//       One TCP connection kept open, a message each interval, echo checked. JSON:
//       connected, broken, errors, sent, echoed, longest_gap_ms.
//
// --progress-file F: rewritten atomically (every 100 ms, and at the first reply) with a
// JSON object {"sent", "received", "last_reply_ms", "elapsed_ms"}; lets a test wait for
// "the flow runs" and "replies came back after the failure" as conditions, not sleeps.
//
// Exit codes: 0 ok (whatever was lost), 1 runtime error, 64 bad usage.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using i64 = std::int64_t;
using u64 = std::uint64_t;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 64;
constexpr std::uint32_t kMagic = 0x464c4f57;  // "FLOW"
constexpr i64 kNsPerMs = 1'000'000;
constexpr i64 kNsPerSec = 1'000'000'000;

volatile sig_atomic_t g_stop = 0;

extern "C" void on_signal(int) { g_stop = 1; }

i64 now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<i64>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

double ms(i64 ns) { return static_cast<double>(ns) / static_cast<double>(kNsPerMs); }

[[noreturn]] void die(std::string_view what) {
  std::fprintf(stderr, "flowtool: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               std::strerror(errno));
  std::exit(kExitRuntime);
}

[[noreturn]] void usage(std::string_view msg) {
  std::fprintf(stderr, "flowtool: %.*s\n", static_cast<int>(msg.size()), msg.data());
  std::fputs(
               "usage: flowtool serve --port P\n"
               "       flowtool udp --to ADDR --port P --rate HZ --duration SEC [--progress-file F]\n"
               "       flowtool tcp --to ADDR --port P --interval MS --duration SEC [--progress-file F]\n",
             stderr);
  std::exit(kExitUsage);
}

// Blocks SIGINT/SIGTERM (so they only interrupt ppoll) and installs the handler.
// Returns the mask to pass to ppoll.
sigset_t install_signals() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  sigset_t block{};
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigset_t old{};
  sigprocmask(SIG_BLOCK, &block, &old);
  sigdelset(&old, SIGINT);
  sigdelset(&old, SIGTERM);
  return old;
}

// Waits for events on fds until deadline_ns (monotonic) or a signal.
int wait_fds(std::vector<pollfd>& fds, i64 deadline_ns, const sigset_t& mask) {
  i64 left = std::max<i64>(0, deadline_ns - now_ns());
  timespec ts{static_cast<time_t>(left / kNsPerSec), static_cast<long>(left % kNsPerSec)};
  int n = ppoll(fds.data(), fds.size(), &ts, &mask);
  if (n < 0 && errno != EINTR) die("ppoll");
  return n;
}

struct Options {
  std::string mode;
  std::string to;
  std::uint16_t port = 0;
  double rate = 100.0;
  double duration = 5.0;
  double interval_ms = 100.0;
  std::string progress_file;
};

template <typename T>
T parse_number(std::string_view opt, std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size())
    usage(std::string("bad value for ") + std::string(opt) + ": " + std::string(s));
  return v;
}

Options parse(int argc, char** argv) {
  if (argc < 2) usage("missing mode");
  Options o;
  o.mode = argv[1];
  if (o.mode != "serve" && o.mode != "udp" && o.mode != "tcp") usage("unknown mode " + o.mode);
  bool have_port = false;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") usage("help");
    if (i + 1 >= argc) usage(std::string("missing value for ") + std::string(a));
    std::string_view v = argv[++i];
    if (a == "--to") {
      o.to = v;
    } else if (a == "--port") {
      auto p = parse_number<unsigned>(a, v);
      if (p == 0 || p > 65535) usage("port out of range");
      o.port = static_cast<std::uint16_t>(p);
      have_port = true;
    } else if (a == "--rate") {
      o.rate = parse_number<double>(a, v);
      if (o.rate <= 0 || o.rate > 100000) usage("rate out of range");
    } else if (a == "--duration") {
      o.duration = parse_number<double>(a, v);
      if (o.duration <= 0) usage("duration must be positive");
    } else if (a == "--interval") {
      o.interval_ms = parse_number<double>(a, v);
      if (o.interval_ms <= 0) usage("interval must be positive");
    } else if (a == "--progress-file") {
      o.progress_file = v;
    } else {
      usage(std::string("unknown option ") + std::string(a));
    }
  }
  if (!have_port) usage("--port is required");
  if (o.mode != "serve" && o.to.empty()) usage("--to is required");
  return o;
}

void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
}

struct Target {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_UNSPEC;
};

Target resolve(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) usage("bad address " + host + ": " + gai_strerror(rc));
  Target t;
  std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
  t.len = res->ai_addrlen;
  t.family = res->ai_family;
  freeaddrinfo(res);
  return t;
}

void write_progress(const std::string& path, u64 sent, u64 received, i64 last_reply_ns,
                    i64 elapsed_ns) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return;
  std::fprintf(f, "{\"sent\": %llu, \"received\": %llu, \"last_reply_ms\": %.3f, \"elapsed_ms\": %.3f}\n",
               static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received),
               last_reply_ns < 0 ? -1.0 : ms(last_reply_ns), ms(elapsed_ns));
  std::fclose(f);
  std::rename(tmp.c_str(), path.c_str());
}

// ---------------------------------------------------------------- serve

int run_serve(const Options& o) {
  sigset_t mask = install_signals();
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_addr = in6addr_any;
  any.sin6_port = htons(o.port);
  int off = 0;
  int on = 1;

  int udp = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (udp < 0) die("socket(udp)");
  setsockopt(udp, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  setsockopt(udp, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(udp, reinterpret_cast<sockaddr*>(&any), sizeof any) < 0) die("bind(udp)");
  set_nonblock(udp);

  int lst = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lst < 0) die("socket(tcp)");
  setsockopt(lst, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  setsockopt(lst, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(lst, reinterpret_cast<sockaddr*>(&any), sizeof any) < 0) die("bind(tcp)");
  if (listen(lst, 64) < 0) die("listen");
  set_nonblock(lst);

  struct Conn {
    int fd;
    std::string pending;  // echo bytes not yet written
  };
  std::vector<Conn> conns;
  std::vector<char> buf(65536);

  while (g_stop == 0) {
    std::vector<pollfd> fds{{udp, POLLIN, 0}, {lst, POLLIN, 0}};
    for (const auto& c : conns)
      fds.push_back({c.fd, static_cast<short>(POLLIN | (c.pending.empty() ? 0 : POLLOUT)), 0});
    wait_fds(fds, now_ns() + kNsPerSec, mask);
    if (g_stop != 0) break;

    if ((fds[0].revents & POLLIN) != 0) {
      for (;;) {
        sockaddr_storage peer{};
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(udp, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
        if (n < 0) break;
        sendto(udp, buf.data(), static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), plen);
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      for (;;) {
        int c = accept4(lst, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) break;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        conns.push_back({c, {}});
      }
    }
    for (size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      short re = fds[i + 2].revents;
      bool closed = false;
      if ((re & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ssize_t n = recv(c.fd, buf.data(), buf.size(), 0);
        if (n > 0)
          c.pending.append(buf.data(), static_cast<size_t>(n));
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
          closed = true;
      }
      if (!closed && !c.pending.empty()) {
        ssize_t n = send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
        if (n > 0)
          c.pending.erase(0, static_cast<size_t>(n));
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
          closed = true;
      }
      if (closed) {
        close(c.fd);
        c.fd = -1;
      }
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
  }
  for (const auto& c : conns) close(c.fd);
  close(lst);
  close(udp);
  return kExitOk;
}

// ---------------------------------------------------------------- udp

struct Datagram {
  std::uint32_t magic;
  std::uint32_t pad;
  u64 seq;
  i64 sent_ns;
};

int run_udp(const Options& o) {
  sigset_t mask = install_signals();
  Target t = resolve(o.to, o.port);
  int fd = socket(t.family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  // Not connect()ed: ICMP errors during a failover must not turn into sticky
  // ECONNREFUSED/EHOSTUNREACH results; we count send errors instead.

  const i64 interval_ns = static_cast<i64>(static_cast<double>(kNsPerSec) / o.rate);
  const i64 start = now_ns();
  const i64 send_end = start + static_cast<i64>(o.duration * static_cast<double>(kNsPerSec));
  const i64 grace_ns = 300 * kNsPerMs;  // replies still in flight when sending stops

  u64 sent = 0;
  u64 received = 0;
  u64 duplicates = 0;
  u64 send_errors = 0;
  std::vector<bool> seen;
  i64 first_reply = -1;
  i64 last_reply = -1;   // relative to start
  i64 longest_gap = 0;   // between consecutive replies, while sending
  i64 rtt_max = 0;
  i64 next_send = start;
  i64 next_progress = start + 100 * kNsPerMs;
  i64 stop_at = send_end;  // when sending stopped (signal or duration)
  bool sending = true;
  i64 final_deadline = send_end + grace_ns;

  for (;;) {
    i64 now = now_ns();
    if (g_stop != 0 && sending) {
      sending = false;
      stop_at = now;
      final_deadline = now + grace_ns / 3;
    }
    if (sending && now >= send_end) {
      sending = false;
      stop_at = send_end;
    }
    if (!sending && now >= final_deadline) break;
    while (sending && now >= next_send) {
      Datagram d{kMagic, 0, sent, now};
      ssize_t n = sendto(fd, &d, sizeof d, 0, reinterpret_cast<sockaddr*>(&t.addr), t.len);
      if (n < 0) ++send_errors;
      ++sent;
      next_send += interval_ns;
      if (next_send < now - interval_ns) next_send = now;  // don't burst after a stall
    }
    if (now >= next_progress) {
      write_progress(o.progress_file, sent, received, last_reply, now - start);
      next_progress = now + 100 * kNsPerMs;
    }
    std::vector<pollfd> fds{{fd, POLLIN, 0}};
    i64 deadline = sending ? std::min(next_send, next_progress) : final_deadline;
    wait_fds(fds, deadline, mask);
    if ((fds[0].revents & POLLIN) == 0) continue;
    for (;;) {
      Datagram d{};
      ssize_t n = recv(fd, &d, sizeof d, 0);
      if (n < 0) break;
      if (static_cast<size_t>(n) != sizeof d || d.magic != kMagic || d.seq >= sent) continue;
      i64 at = now_ns();
      if (seen.size() <= d.seq) seen.resize(d.seq + 1024, false);
      if (seen[d.seq]) {
        ++duplicates;
        continue;
      }
      seen[d.seq] = true;
      ++received;
      rtt_max = std::max(rtt_max, at - d.sent_ns);
      i64 rel = at - start;
      if (first_reply < 0) {
        first_reply = rel;
        write_progress(o.progress_file, sent, received, rel, rel);
      } else if (at <= stop_at) {
        longest_gap = std::max(longest_gap, rel - last_reply);
      }
      last_reply = rel;
    }
  }
  close(fd);
  // An outage still going on when sending stopped counts up to the end of sending.
  i64 sending_ns = stop_at - start;
  if (last_reply < 0)
    longest_gap = sending_ns;
  else
    longest_gap = std::max(longest_gap, sending_ns - std::min(last_reply, sending_ns));
  write_progress(o.progress_file, sent, received, last_reply, now_ns() - start);
  using ull = unsigned long long;
  std::printf(
      "{\"mode\": \"udp\", \"to\": \"%s\", \"port\": %u, \"rate\": %.1f, \"sent\": %llu, "
      "\"received\": %llu, \"lost\": %llu, \"duplicates\": %llu, \"send_errors\": %llu, "
      "\"longest_outage_ms\": %.3f, \"first_reply_ms\": %.3f, \"last_reply_ms\": %.3f, "
      "\"sending_ms\": %.3f, \"rtt_max_ms\": %.3f}\n",
      o.to.c_str(), static_cast<unsigned>(o.port), o.rate, static_cast<ull>(sent), static_cast<ull>(received),
      static_cast<ull>(sent - received), static_cast<ull>(duplicates), static_cast<ull>(send_errors),
      ms(longest_gap), first_reply < 0 ? -1.0 : ms(first_reply), last_reply < 0 ? -1.0 : ms(last_reply),
      ms(sending_ns), ms(rtt_max));
  std::fflush(stdout);
  return kExitOk;
}

// ---------------------------------------------------------------- tcp

int run_tcp(const Options& o) {
  sigset_t mask = install_signals();
  Target t = resolve(o.to, o.port);
  const i64 start = now_ns();
  const i64 end = start + static_cast<i64>(o.duration * static_cast<double>(kNsPerSec));
  const i64 interval_ns = static_cast<i64>(o.interval_ms * static_cast<double>(kNsPerMs));

  bool connected = false;
  bool broken = false;
  u64 errors = 0;
  u64 sent_msgs = 0;
  u64 echoed_msgs = 0;
  i64 longest_gap = 0;
  i64 last_echo = -1;
  std::string error_text;

  int fd = socket(t.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  if (connect(fd, reinterpret_cast<sockaddr*>(&t.addr), t.len) < 0 && errno != EINPROGRESS) {
    ++errors;
    error_text = std::strerror(errno);
  } else {
    // Wait for the handshake (bounded by the duration).
    std::vector<pollfd> fds{{fd, POLLOUT, 0}};
    while (g_stop == 0 && now_ns() < end) {
      wait_fds(fds, end, mask);
      if ((fds[0].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) break;
    }
    int err = 0;
    socklen_t elen = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err == 0 && (fds[0].revents & POLLOUT) != 0) {
      connected = true;
    } else {
      ++errors;
      error_text = err != 0 ? std::strerror(err) : "connect timed out";
    }
  }

  constexpr size_t kMsgLen = 32;
  std::string outq;       // bytes not yet written
  std::string expected;   // bytes written (or queued) whose echo is outstanding
  std::string inbuf;
  std::vector<char> buf(65536);
  i64 connected_at = now_ns() - start;
  i64 next_send = now_ns();
  i64 next_progress = now_ns() + 100 * kNsPerMs;

  while (connected && !broken && g_stop == 0) {
    i64 now = now_ns();
    if (now >= end) break;
    if (now >= next_send) {
      char msg[kMsgLen + 1];
      std::snprintf(msg, sizeof msg, "seq %020llu t%05u\n", static_cast<unsigned long long>(sent_msgs),
                    static_cast<unsigned>((now / kNsPerMs) % 100000));
      outq.append(msg, kMsgLen);
      expected.append(msg, kMsgLen);
      ++sent_msgs;
      next_send += interval_ns;
      if (next_send < now) next_send = now + interval_ns;
    }
    if (!outq.empty()) {
      ssize_t n = send(fd, outq.data(), outq.size(), MSG_NOSIGNAL);
      if (n > 0) {
        outq.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        ++errors;
        broken = true;
        error_text = std::strerror(errno);
        break;
      }
    }
    if (now >= next_progress) {
      write_progress(o.progress_file, sent_msgs, echoed_msgs, last_echo, now - start);
      next_progress = now + 100 * kNsPerMs;
    }
    std::vector<pollfd> fds{{fd, static_cast<short>(POLLIN | (outq.empty() ? 0 : POLLOUT)), 0}};
    wait_fds(fds, std::min({next_send, next_progress, end}), mask);
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    for (;;) {
      ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n > 0) {
        inbuf.append(buf.data(), static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        broken = true;
        error_text = "connection closed by peer";
      } else if (errno != EAGAIN && errno != EINTR) {
        ++errors;
        broken = true;
        error_text = std::strerror(errno);
      }
      break;
    }
    while (inbuf.size() >= kMsgLen) {
      if (expected.compare(0, kMsgLen, inbuf, 0, kMsgLen) != 0) {
        ++errors;
        broken = true;
        error_text = "echo mismatch";
        break;
      }
      expected.erase(0, kMsgLen);
      inbuf.erase(0, kMsgLen);
      ++echoed_msgs;
      i64 rel = now_ns() - start;
      longest_gap = std::max(longest_gap, rel - (last_echo < 0 ? connected_at : last_echo));
      last_echo = rel;
      if (echoed_msgs == 1) write_progress(o.progress_file, sent_msgs, echoed_msgs, rel, rel);
    }
  }
  i64 stop_at = now_ns() - start;
  if (connected && last_echo >= 0) longest_gap = std::max(longest_gap, stop_at - last_echo);
  if (connected && last_echo < 0) longest_gap = stop_at - connected_at;
  close(fd);
  write_progress(o.progress_file, sent_msgs, echoed_msgs, last_echo, stop_at);
  std::string err_json;
  for (char c : error_text)
    if (c != '"' && c != '\\') err_json.push_back(c);
  using ull = unsigned long long;
  std::printf(
      "{\"mode\": \"tcp\", \"to\": \"%s\", \"port\": %u, \"connected\": %s, \"broken\": %s, "
      "\"errors\": %llu, \"error\": \"%s\", \"sent\": %llu, \"echoed\": %llu, "
      "\"longest_gap_ms\": %.3f, \"duration_ms\": %.3f}\n",
      o.to.c_str(), static_cast<unsigned>(o.port), connected ? "true" : "false", broken ? "true" : "false",
      static_cast<ull>(errors), err_json.c_str(), static_cast<ull>(sent_msgs), static_cast<ull>(echoed_msgs),
      ms(longest_gap), ms(stop_at));
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  if (o.mode == "serve") return run_serve(o);
  if (o.mode == "udp") return run_udp(o);
  return run_tcp(o);
}
