// lib/cluster (Actions, Registry at the sock_diag level) against the real kernel: a forked
// child makes two network namespaces of its own, A (the node holding the shared address)
// and B (a client), joined by a veth pair, and moves between them with setns(); sockets
// keep the namespace they were made in. Nothing reaches the machine's own namespace and
// everything disappears with the child. Real sockets, real packets, no fakes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cluster/cluster.hpp"
#include "cluster_lab.hpp"
#include "namespace_child.hpp"
#include "net/nft_block.hpp"

namespace mpathd::cluster {
namespace {

using test::kSkip;
using namespace lab;  // NOLINT: the lab helpers are this file's vocabulary

#define CHECK(...)                                                                         \
  do {                                                                                     \
    if (!(__VA_ARGS__)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #__VA_ARGS__); \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

#define CHECK_OK(expr)                                                          \
  do {                                                                          \
    const auto& r_ = (expr);                                                    \
    if (!r_) {                                                                  \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, \
                   r_.error().message.c_str());                                 \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

// --- destroy_sockets -------------------------------------------------------------------

int destroy_case(Lab& lab, Actions& act, const Fam& f) {
  CHECK(lab.in_a());
  const int l = listener(f.shared, 5000), l2 = listener(f.other, 5000);
  const int u = bound(f.shared, 5001, SOCK_DGRAM);
  CHECK(l >= 0 && l2 >= 0 && u >= 0);
  CHECK(lab.in_b());
  const int c = connect_nb(f.shared, 5000), c2 = connect_nb(f.other, 5000);
  CHECK(connected_within(c, Ms(3000)) && connected_within(c2, Ms(3000)));
  CHECK(lab.in_a());
  const int s = accept_within(l, Ms(2000)), s2 = accept_within(l2, Ms(2000));
  CHECK(s >= 0 && s2 >= 0);

  auto n = act.destroy_sockets(f.shared);
  CHECK_OK(n);
  CHECK(*n == 3);  // the listener, the accepted connection, the UDP socket
  CHECK(recv_errno(s) == ECONNABORTED);
  CHECK(recv_errno(u) == ECONNABORTED);
  CHECK(recv_errno(s2) == 0);  // another address: untouched
  CHECK(lab.in_b());
  CHECK(wait_fd(c, POLLIN, Ms(2000)));
  CHECK(recv_errno(c) == ECONNRESET);
  CHECK(send(c2, "x", 1, 0) == 1);
  const int again = connect_nb(f.shared, 5000);  // the listener is gone
  CHECK(wait_fd(again, POLLOUT, Ms(2000)) && !connected_within(again, Ms(0)));
  CHECK(lab.in_a());
  CHECK(wait_fd(s2, POLLIN, Ms(2000)));
  char x = 0;
  CHECK(recv(s2, &x, 1, 0) == 1 && x == 'x');
  for (int fd : {l, l2, u, s, s2, c, c2, again}) close(fd);
  return 0;
}

// A dual-stack server (AF_INET6 on ::) accepts an IPv4 client on the shared address: the
// accepted socket is AF_INET6 with IPv4-mapped addresses and is destroyed as well; the
// wildcard listener is not on the address and stays.
int destroy_mapped_case(Lab& lab, Actions& act) {
  CHECK(lab.in_a());
  const int l = listener(ip("::"), 5002);
  CHECK(l >= 0);
  CHECK(lab.in_b());
  const int c = connect_nb(kV4.shared, 5002);
  CHECK(connected_within(c, Ms(3000)));
  CHECK(lab.in_a());
  const int s = accept_within(l, Ms(2000));
  CHECK(s >= 0);
  auto n = act.destroy_sockets(kV4.shared);
  CHECK_OK(n);
  CHECK(*n == 1);
  CHECK(recv_errno(s) == ECONNABORTED);
  CHECK(lab.in_b());
  CHECK(wait_fd(c, POLLIN, Ms(2000)));
  CHECK(recv_errno(c) == ECONNRESET);
  const int again = connect_nb(kV4.shared, 5002);  // the wildcard listener still accepts
  CHECK(connected_within(again, Ms(3000)));
  for (int fd : {l, s, c, again}) close(fd);
  return 0;
}

int destroy_body() {
  Lab lab;
  if (!lab.setup()) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  auto act = Actions::create(e);
  for (const Fam* f : {&kV4, &kV6})
    if (int r = destroy_case(lab, *act, *f); r != 0) return r;
  if (int r = destroy_mapped_case(lab, *act); r != 0) return r;
  act.reset();
  sd_event_unref(e);
  return 0;
}

TEST(ClusterActions, DestroyAbortsEverySocketOnTheAddressAndNoOther) { test::run_in_child(destroy_body); }

// --- block / unblock -------------------------------------------------------------------

int block_case(Lab& lab, Actions& act, const Fam& f) {
  CHECK(lab.in_a());
  const int l = listener(f.shared, 5000), l2 = listener(f.other, 5000);
  const int u = bound(f.shared, 5001, SOCK_DGRAM);
  CHECK(l >= 0 && l2 >= 0 && u >= 0);
  CHECK(lab.in_b());
  const int before = connect_nb(f.shared, 5000);
  CHECK(connected_within(before, Ms(3000)));
  CHECK(lab.in_a());
  const int sb = accept_within(l, Ms(2000));
  CHECK(sb >= 0);

  CHECK_OK(act.block(f.shared));
  CHECK_OK(act.block(f.shared));  // idempotent
  CHECK(lab.in_b());
  const int blocked = connect_nb(f.shared, 5000);
  const int open = connect_nb(f.other, 5000);
  CHECK(connected_within(open, Ms(3000)));
  CHECK(!wait_fd(blocked, POLLOUT, Ms(700)));  // SYN dropped: still in progress
  const int cu = connect_nb(f.shared, 5001, SOCK_DGRAM);
  CHECK(send(cu, "u", 1, 0) == 1);
  CHECK(send(before, "e", 1, 0) == 1);  // an established connection still flows
  CHECK(lab.in_a());
  CHECK(wait_fd(sb, POLLIN, Ms(2000)));
  CHECK(!wait_fd(u, POLLIN, Ms(300)));

  CHECK_OK(act.unblock(f.shared));
  CHECK_OK(act.unblock(f.shared));  // idempotent
  CHECK(lab.in_b());
  CHECK(connected_within(blocked, Ms(5000)));  // the SYN retransmit now passes
  CHECK(send(cu, "u", 1, 0) == 1);
  CHECK(lab.in_a());
  CHECK(wait_fd(u, POLLIN, Ms(2000)));
  for (int fd : {l, l2, u, sb}) close(fd);
  CHECK(lab.in_b());
  for (int fd : {before, blocked, open, cu}) close(fd);
  return 0;
}

int block_body() {
  Lab lab;
  if (!lab.setup()) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  auto act = Actions::create(e);
  for (const Fam* f : {&kV4, &kV6})
    if (int r = block_case(lab, *act, *f); r != 0) return r;
  // Two addresses blocked: the table stays until the last one is lifted, then goes.
  CHECK(lab.in_a());
  CHECK_OK(act->block(kV4.shared));
  CHECK_OK(act->block(kV6.shared));
  auto nft = net::AddressBlock::open();
  CHECK_OK(nft);
  auto now = nft->blocked();
  CHECK_OK(now);
  CHECK(now->size() == 2);
  CHECK_OK(act->unblock(kV4.shared));
  CHECK(sh("nft list table inet mpathd >/dev/null"));
  CHECK_OK(act->unblock(kV6.shared));
  CHECK(!sh("nft list table inet mpathd >/dev/null 2>&1"));
  act.reset();
  sd_event_unref(e);
  return 0;
}

TEST(ClusterActions, BlockDropsNewConnectionsAndUdpOnlyToTheAddress) { test::run_in_child(block_body); }

// --- tickle ------------------------------------------------------------------------------

// Tickles seen in B: a raw TCP socket gets a copy of every segment; those from
// shared:5000 to the client's port with only ACK set and seq 0 are counted with their times.
struct TickleWatch {
  int fd = -1;
  IpAddress from;
  std::uint16_t dport = 0;
  std::vector<std::chrono::steady_clock::time_point> seen;
  TickleWatch(const IpAddress& shared, std::uint16_t port)
      : fd(socket(shared.is_v4() ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP)),
        from(shared), dport(port) {}
  ~TickleWatch() { close(fd); }
  void drain() {
    std::uint8_t buf[2048];
    for (;;) {
      sockaddr_storage src{};
      socklen_t sl = sizeof src;
      const ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&src), &sl);
      if (n <= 0) return;
      std::size_t off = from.is_v4() ? (buf[0] & 0x0f) * 4U : 0;  // IPv4 raw sockets include the header
      if (static_cast<std::size_t>(n) < off + 20) continue;
      const std::uint8_t* t = buf + off;
      const bool src_ok = from.is_v4()
                              ? std::memcmp(&reinterpret_cast<sockaddr_in*>(&src)->sin_addr, from.bytes.data(), 4) == 0
                              : std::memcmp(&reinterpret_cast<sockaddr_in6*>(&src)->sin6_addr, from.bytes.data(), 16) == 0;
      const bool seq0 = t[4] == 0 && t[5] == 0 && t[6] == 0 && t[7] == 0;
      if (src_ok && ((t[0] << 8) | t[1]) == 5000 && ((t[2] << 8) | t[3]) == dport && t[13] == 0x10 && seq0)
        seen.push_back(std::chrono::steady_clock::now());
    }
  }
};

int tickle_case(Lab& lab, sd_event* e, Actions& act, const Fam& f) {
  CHECK(lab.in_a());
  const int l = listener(f.shared, 5000);
  CHECK(lab.in_b());
  const int c = connect_nb(f.shared, 5000);
  CHECK(connected_within(c, Ms(3000)));
  const std::uint16_t cport = local_port(c);
  CHECK(lab.in_a());
  const int s = accept_within(l, Ms(2000));
  CHECK(s >= 0);
  // The old owner dies silently: TCP_REPAIR makes close() send nothing, so A forgets the
  // connection while the idle client in B still has it.
  const int one = 1;
  CHECK(setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one) == 0);
  close(s);
  // Policy routing as the data plane sets it up: the client is reachable from the shared
  // address only through a table of its own (the main table blackholes it), so the
  // tickle arrives only if its route lookup used the shared source.
  const std::string v = f.shared.is_v4() ? "-4" : "-6";
  const std::string plen = f.shared.is_v4() ? "/32" : "/128";
  CHECK(sh("ip " + v + " rule add from " + f.shared.str() + " lookup 100 && ip " + v + " route add " +
           f.client.str() + plen + " dev va table 100 && ip " + v + " route add blackhole " + f.client.str() + plen));
  CHECK(lab.in_b());
  CHECK(!wait_fd(c, POLLIN, Ms(300)));  // without a tickle nothing happens
  TickleWatch watch(f.shared, cport);
  CHECK(watch.fd >= 0);
  CHECK(lab.in_a());
  Association a{.proto = Proto::tcp, .local = f.shared, .local_port = 5000, .remote = f.client,
                .remote_port = cport, .tcp_state = 1};
  Association udp{.proto = Proto::udp, .local = f.shared, .remote = f.client};
  const auto t0 = std::chrono::steady_clock::now();
  auto n = act.tickle(f.shared, {a, udp}, 1);  // the default spacing
  watch.drain();  // the veth delivers synchronously: the first tickle is there now
  CHECK_OK(n);
  CHECK(watch.seen.size() == 1);
  CHECK(*n == 1);
  CHECK(lab.in_b());
  CHECK(wait_fd(c, POLLIN, Ms(2000)));
  CHECK(recv_errno(c) == ECONNRESET);
  std::fprintf(stderr, "%s: client reset %.2f ms after the tickle\n", f.shared.str().c_str(),
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  // The repeat fires on the loop after the spacing (nothing left to reset: it just sends).
  CHECK(lab.in_a());
  CHECK(run_until(e, [&] {
    watch.drain();
    return watch.seen.size() >= 2;
  }, Ms(2000)));
  std::fprintf(stderr, "%s: %zu tickles seen, %.1f ms apart\n", f.shared.str().c_str(), watch.seen.size(), std::chrono::duration<double, std::milli>(watch.seen.back() - watch.seen[0]).count());
  CHECK(watch.seen.size() == 2);
  CHECK(watch.seen[1] - watch.seen[0] >= Ms(590));  // 600 ms by default; 1 ms timer accuracy
  // Bad input changes nothing.
  CHECK(!act.tickle(f.shared, {a}, 2, Ms(100)));
  Association elsewhere = a;
  elsewhere.local = f.other;
  auto bad = act.tickle(f.shared, {elsewhere}, 0);
  CHECK(!bad && bad.error().code == Errc::invalid_argument);
  CHECK(sh("ip " + v + " rule del from " + f.shared.str() + " lookup 100 && ip " + v + " route flush table 100 && ip " +
           v + " route del blackhole " + f.client.str() + plen));
  close(l);
  close(c);
  return 0;
}

int tickle_body() {
  Lab lab;
  if (!lab.setup()) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  auto act = Actions::create(e);
  for (const Fam* f : {&kV4, &kV6})
    if (int r = tickle_case(lab, e, *act, *f); r != 0) return r;
  act.reset();
  sd_event_unref(e);
  return 0;
}

TEST(ClusterActions, TickleResetsTheClientOfAForgottenConnection) { test::run_in_child(tickle_body); }

// --- Registry (sock_diag level) --------------------------------------------------------

struct Seen {
  std::vector<std::pair<Association, bool>> events;
  bool has(const std::function<bool(const Association&, bool)>& p) const {
    return std::any_of(events.begin(), events.end(), [&](const auto& ev) { return p(ev.first, ev.second); });
  }
};

int registry_case(Lab& lab, sd_event* e, const Fam& f) {
  CHECK(lab.in_a());
  Seen seen;
  auto reg = Registry::create(e, {.cgroup = "", .ebpf = false, .walk_interval = Ms(200)},
                              [&](const IpAddress& sh, const Association& a, bool present) {
                                if (sh == f.shared) seen.events.emplace_back(a, present);
                              });
  CHECK(reg->level() == RegistryLevel::sock_diag);
  CHECK(!reg->level_reason().empty());
  const int l = listener(f.shared, 5000);
  CHECK(lab.in_b());
  const int srv = listener(f.client, 6000);
  const int c = connect_nb(f.shared, 5000);
  CHECK(connected_within(c, Ms(3000)));
  const std::uint16_t cport = local_port(c);
  const int u1 = bound(f.client, 7000, SOCK_DGRAM), u2 = bound(f.client, 7001, SOCK_DGRAM);
  CHECK(lab.in_a());
  const int s = accept_within(l, Ms(2000));
  const int out = connect_nb(f.client, 6000, SOCK_STREAM, &f.shared);
  CHECK(s >= 0 && connected_within(out, Ms(3000)));
  const std::uint16_t oport = local_port(out);
  const int ua = connect_nb(f.client, 7000, SOCK_DGRAM, &f.shared);
  const int ub = connect_nb(f.client, 7001, SOCK_DGRAM, &f.shared);  // same client again
  reg->track({f.shared});

  auto find = [&](Proto p, std::uint16_t lport, std::uint16_t rport) -> std::optional<Association> {
    for (const auto& a : reg->associations(f.shared))
      if (a.proto == p && a.local_port == lport && a.remote_port == rport) return a;
    return std::nullopt;
  };
  // At track() the walk ran at once: no loop turn needed.
  const auto in = find(Proto::tcp, 5000, cport);
  CHECK(in && !in->outgoing && in->tcp_state == 1 && in->remote == f.client && !in->imported);
  const auto o = find(Proto::tcp, oport, 6000);
  CHECK(o && o->outgoing);
  const auto all = reg->associations(f.shared);
  CHECK(std::count_if(all.begin(), all.end(), [](const Association& a) { return a.proto == Proto::udp; }) == 1);
  CHECK(find(Proto::udp, 0, 0) && find(Proto::udp, 0, 0)->remote == f.client);
  CHECK(seen.has([&](const Association& a, bool p) { return p && a == *in; }));

  // A new connection appears by the next walk; a closed one leaves.
  CHECK(lab.in_b());
  const int c3 = connect_nb(f.shared, 5000);
  CHECK(connected_within(c3, Ms(3000)));
  const std::uint16_t c3port = local_port(c3);
  CHECK(lab.in_a());
  const int s3 = accept_within(l, Ms(2000));
  CHECK(run_until(e, [&] { return find(Proto::tcp, 5000, c3port).has_value(); }, Ms(10000)));
  CHECK(!find(Proto::tcp, 5000, c3port)->outgoing);
  const int lin = 1;
  linger lg{lin, 0};  // close with RST: no TIME_WAIT, the socket is freed at once
  setsockopt(s3, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(s3);
  CHECK(run_until(e, [&] { return !find(Proto::tcp, 5000, c3port).has_value(); }, Ms(10000)));
  CHECK(seen.has([&](const Association& a, bool p) { return !p && a.remote_port == c3port; }));

  // Import: a valid batch adds imported entries the kernel does not show; a bad batch is
  // refused whole and changes nothing.
  Association imp{.proto = Proto::tcp, .local = f.shared, .local_port = 5000, .remote = f.client,
                  .remote_port = 40000, .tcp_state = 1};
  auto n = reg->import(f.shared, {imp, *in});
  CHECK_OK(n);
  CHECK(*n == 2);
  const auto after = reg->associations(f.shared);
  CHECK(std::count_if(after.begin(), after.end(), [](const Association& a) { return a.imported; }) == 1);
  Association bad = imp;
  bad.local = f.other;
  auto refused = reg->import(f.shared, {imp, bad});
  CHECK(!refused && refused.error().code == Errc::invalid_argument);
  CHECK(refused.error().message.find("association 1") != std::string::npos);
  Association noport = imp;
  noport.remote_port = 0;
  CHECK(!reg->import(f.shared, {noport}));
  CHECK(reg->associations(f.shared) == after);

  // Untracking forgets the local entries (reported gone); the imported ones stay.
  reg->track({});
  const auto left = reg->associations(f.shared);
  CHECK(left.size() == 2 && left[0].imported && left[1].imported);
  reg.reset();
  for (int fd : {l, s, out, ua, ub}) close(fd);
  CHECK(lab.in_b());
  for (int fd : {srv, c, c3, u1, u2}) close(fd);
  return 0;
}

int registry_body() {
  Lab lab;
  if (!lab.setup()) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  for (const Fam* f : {&kV4, &kV6})
    if (int r = registry_case(lab, e, *f); r != 0) return r;
  sd_event_unref(e);
  return 0;
}

TEST(ClusterRegistry, SockDiagLevelWalksAndFollowsConnections) { test::run_in_child(registry_body); }

// Destroy notifications alone: with a walk every 60 s, a closed connection still leaves
// the registry at once.
int notify_body() {
  Lab lab;
  if (!lab.setup()) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  const Fam& f = kV4;
  CHECK(lab.in_a());
  auto reg = Registry::create(e, {.cgroup = "", .ebpf = false, .walk_interval = std::chrono::seconds(60)},
                              nullptr);
  const int l = listener(f.shared, 5000);
  CHECK(lab.in_b());
  const int c = connect_nb(f.shared, 5000);
  CHECK(connected_within(c, Ms(3000)));
  CHECK(lab.in_a());
  const int s = accept_within(l, Ms(2000));
  reg->track({f.shared});
  CHECK(reg->associations(f.shared).size() == 1);
  linger lg{1, 0};
  setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  const auto t0 = std::chrono::steady_clock::now();
  close(s);
  CHECK(run_until(e, [&] { return reg->associations(f.shared).empty(); }, Ms(2000)));
  std::fprintf(stderr, "gone from the registry %.2f ms after close()\n",
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  // An orderly close (client first, then the server: LAST_ACK -> CLOSE frees the socket
  // with its whole 4-tuple in the notification).
  CHECK(lab.in_b());
  const int c2 = connect_nb(f.shared, 5000);
  CHECK(connected_within(c2, Ms(3000)));
  CHECK(lab.in_a());
  const int s2 = accept_within(l, Ms(2000));
  CHECK(s2 >= 0);
  reg->track({});
  reg->track({f.shared});  // walked again at once
  CHECK(reg->associations(f.shared).size() == 1);
  close(c2);
  CHECK(wait_fd(s2, POLLIN, Ms(2000)));
  close(s2);
  CHECK(run_until(e, [&] { return reg->associations(f.shared).empty(); }, Ms(2000)));
  reg.reset();
  close(l);
  close(c);
  sd_event_unref(e);
  return 0;
}

TEST(ClusterRegistry, DestroyNotificationRemovesAClosedConnectionWithoutAWalk) { test::run_in_child(notify_body); }

// --- Registry (eBPF level) -------------------------------------------------------------

int ebpf_case(Lab& lab, sd_event* e, Registry& reg, const Fam& f, const Fam& other_family) {
  CHECK(lab.in_a());
  auto find = [&](Proto p, std::uint16_t lport, std::uint16_t rport) -> std::optional<Association> {
    for (const auto& a : reg.associations(f.shared))
      if (a.proto == p && a.local_port == lport && a.remote_port == rport) return a;
    return std::nullopt;
  };
  const int l = listener(f.shared, 5000);
  const int lo = listener(f.other, 5000);  // another address: filtered out in the kernel
  reg.track({f.shared, other_family.shared});
  CHECK(reg.associations(f.shared).empty());
  CHECK(lab.in_b());
  const int srv = listener(f.client, 6000);
  const int c = connect_nb(f.shared, 5000);
  const int co = connect_nb(f.other, 5000);
  CHECK(connected_within(c, Ms(3000)) && connected_within(co, Ms(3000)));
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint16_t cport = local_port(c);
  CHECK(lab.in_a());
  // No walk runs at this level (walk_interval is irrelevant): this is the event path.
  CHECK(run_until(e, [&] { return find(Proto::tcp, 5000, cport).has_value(); }, Ms(2000)));
  std::fprintf(stderr, "%s: connected -> in the registry %.2f ms\n", f.shared.str().c_str(),
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  CHECK(!find(Proto::tcp, 5000, cport)->outgoing);
  CHECK(find(Proto::tcp, 5000, cport)->tcp_state == 1);
  const int out = connect_nb(f.client, 6000, SOCK_STREAM, &f.shared);
  CHECK(connected_within(out, Ms(3000)));
  const std::uint16_t oport = local_port(out);
  CHECK(run_until(e, [&] { auto o = find(Proto::tcp, oport, 6000); return o && o->tcp_state == 1; }, Ms(2000)));
  CHECK(find(Proto::tcp, oport, 6000)->outgoing);
  // UDP: an unconnected socket on the address sending to a client twice, and a second
  // socket to the same client: one entry (the kernel dedups, a walk could not see it).
  const int u1 = bound(f.shared, 0, SOCK_DGRAM), u2 = bound(f.shared, 0, SOCK_DGRAM);
  socklen_t len = 0;
  auto dst = sa(f.client, 7000, len);
  for (int fd : {u1, u1, u2}) CHECK(sendto(fd, "u", 1, 0, reinterpret_cast<sockaddr*>(&dst), len) == 1);
  CHECK(run_until(e, [&] { return find(Proto::udp, 0, 0).has_value(); }, Ms(2000)));
  // Closing: the state changes and the close arrive as events.
  shutdown(out, SHUT_RDWR);
  close(out);
  CHECK(run_until(e, [&] { auto o = find(Proto::tcp, oport, 6000); return !o || o->tcp_state != 1; }, Ms(2000)));
  CHECK(lab.in_b());
  close(c);
  CHECK(lab.in_a());
  const int s = accept_within(l, Ms(2000));
  CHECK(s >= 0);
  CHECK(wait_fd(s, POLLIN, Ms(2000)));
  close(s);
  CHECK(run_until(e, [&] { return !find(Proto::tcp, 5000, cport).has_value(); }, Ms(2000)));
  const auto all = reg.associations(f.shared);
  CHECK(std::count_if(all.begin(), all.end(), [](const Association& a) { return a.proto == Proto::udp; }) == 1);
  CHECK(std::none_of(all.begin(), all.end(), [&](const Association& a) { return a.local != f.shared; }));
  CHECK(reg.associations(f.other).empty());
  reg.track({});
  for (int fd : {l, lo, u1, u2}) close(fd);
  CHECK(lab.in_b());
  for (int fd : {srv, co}) close(fd);
  return 0;
}

int ebpf_body(const std::string& cgroup) {
  if (!join(cgroup)) return 1;  // before any namespace work (the lab's rule)
  Lab lab;
  if (!lab.setup()) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  CHECK(lab.in_a());
  auto reg = Registry::create(e, {.cgroup = cgroup, .ebpf = true, .walk_interval = std::chrono::seconds(60)},
                              nullptr);
  if (reg->level() != RegistryLevel::ebpf) {
    std::fprintf(stderr, "eBPF level not in force: %s\n", reg->level_reason().c_str());
    return 1;
  }
  CHECK(reg->level_reason().empty());
  if (int r = ebpf_case(lab, e, *reg, kV4, kV6); r != 0) return r;
  if (int r = ebpf_case(lab, e, *reg, kV6, kV4); r != 0) return r;
  reg.reset();
  // Without a usable cgroup the registry falls back and says why.
  auto fallback = Registry::create(e, {.cgroup = cgroup + "/missing", .ebpf = true}, nullptr);
  CHECK(fallback->level() == RegistryLevel::sock_diag);
  CHECK(fallback->level_reason().find("missing") != std::string::npos);
  fallback.reset();
  sd_event_unref(e);
  return 0;
}

TEST(ClusterRegistry, EbpfLevelFollowsConnectionsAndUdpClientsByEvents) {
  TestCgroup cg;
  if (geteuid() == 0 && cg.path.empty()) GTEST_SKIP() << "no cgroup2 mount to make a test cgroup in";
  test::run_in_child([&] { return ebpf_body(cg.path); });
}

// --- Registry: bound and listening sockets (both levels) ---------------------------------

using SocketLog = std::vector<std::pair<SocketEvent, BoundSocket>>;

// The events of one socket (by cookie), as "bind tcp 80" strings.
std::vector<std::string> events_of(const SocketLog& log, std::uint64_t cookie) {
  static const char* names[] = {"bind", "unbind", "listen", "unlisten"};
  std::vector<std::string> out;
  for (const auto& [e, b] : log)
    if (b.cookie == cookie)
      out.push_back(std::string(names[static_cast<int>(e)]) + (b.proto == Proto::tcp ? " tcp " : " udp ") +
                    std::to_string(b.local_port));
  return out;
}

std::uint64_t cookie_of(int fd) {
  std::uint64_t c = 0;
  socklen_t len = sizeof c;
  getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len);
  return c;
}

// The same script at both levels: a listener from before track() (found by the walk), a
// TCP socket bound to an ephemeral port that then listens and closes, a UDP socket bound
// and closed, and sockets on another address and on the wildcard (never reported). The
// events of each socket come in the order of its life, with the port the kernel chose.
int bound_case(Lab& lab, sd_event* e, Registry& reg, SocketLog& log, const Fam& f) {
  CHECK(lab.in_a());
  log.clear();
  const int pre = listener(f.shared, 5100);
  CHECK(pre >= 0);
  reg.track({f.shared});
  const std::uint64_t pre_c = cookie_of(pre);
  // At track() the walk ran: no loop turn needed.
  CHECK((events_of(log, pre_c) == std::vector<std::string>{"bind tcp 5100", "listen tcp 5100"}));

  const int t = bound(f.shared, 0, SOCK_STREAM);
  const int other = listener(f.other, 5101);
  const int wild = listener(f.shared.is_v4() ? ip("0.0.0.0") : ip("::"), 5102);
  const int u = bound(f.shared, 5103, SOCK_DGRAM);
  CHECK(t >= 0 && other >= 0 && wild >= 0 && u >= 0);
  const std::uint16_t tport = local_port(t);
  const std::uint64_t t_c = cookie_of(t), u_c = cookie_of(u);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(run_until(e, [&] { return !events_of(log, t_c).empty() && !events_of(log, u_c).empty(); }, Ms(3000)));
  std::fprintf(stderr, "%s level %s: bind -> reported %.2f ms\n", f.shared.str().c_str(),
               reg.level() == RegistryLevel::ebpf ? "ebpf" : "sock_diag",
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  CHECK(listen(t, 16) == 0);
  CHECK(run_until(e, [&] { return events_of(log, t_c).size() == 2; }, Ms(3000)));
  const auto tp = std::to_string(tport);
  CHECK((events_of(log, t_c) == std::vector<std::string>{"bind tcp " + tp, "listen tcp " + tp}));
  CHECK((events_of(log, u_c) == std::vector<std::string>{"bind udp 5103"}));

  for (int fd : {t, u, pre}) close(fd);
  CHECK(run_until(e, [&] {
    return events_of(log, t_c).size() == 4 && events_of(log, u_c).size() == 2 && events_of(log, pre_c).size() == 4;
  }, Ms(3000)));
  CHECK((events_of(log, t_c) ==
         std::vector<std::string>{"bind tcp " + tp, "listen tcp " + tp, "unlisten tcp " + tp, "unbind tcp " + tp}));
  CHECK((events_of(log, u_c) == std::vector<std::string>{"bind udp 5103", "unbind udp 5103"}));
  CHECK((events_of(log, pre_c) ==
         std::vector<std::string>{"bind tcp 5100", "listen tcp 5100", "unlisten tcp 5100", "unbind tcp 5100"}));
  // A listener shut down stays bound (its port was explicit): unlisten, then unbind at close.
  const int sd = listener(f.shared, 5105);
  const std::uint64_t sd_c = cookie_of(sd);
  CHECK(run_until(e, [&] { return events_of(log, sd_c).size() == 2; }, Ms(3000)));
  CHECK(shutdown(sd, SHUT_RDWR) == 0);
  CHECK(run_until(e, [&] { return events_of(log, sd_c).size() == 3; }, Ms(3000)));
  close(sd);
  CHECK(run_until(e, [&] { return events_of(log, sd_c).size() == 4; }, Ms(3000)));
  CHECK((events_of(log, sd_c) ==
         std::vector<std::string>{"bind tcp 5105", "listen tcp 5105", "unlisten tcp 5105", "unbind tcp 5105"}));
  // A socket bound explicitly and then connected holds its bind until it closes (a walk
  // in between sees a connection, not a bound-only socket, and must not unbind it).
  CHECK(lab.in_b());
  const int peer = listener(f.client, 6100);
  CHECK(lab.in_a());
  const int cb = bound(f.shared, 5106, SOCK_STREAM);
  const std::uint64_t cb_c = cookie_of(cb);
  CHECK(run_until(e, [&] { return events_of(log, cb_c).size() == 1; }, Ms(3000)));
  socklen_t dlen = 0;
  auto dst = sa(f.client, 6100, dlen);
  CHECK(connect(cb, reinterpret_cast<sockaddr*>(&dst), dlen) == 0);
  run_until(e, [] { return false; }, Ms(600));  // three walks at the sock_diag level
  CHECK((events_of(log, cb_c) == std::vector<std::string>{"bind tcp 5106"}));
  linger lg{1, 0};
  setsockopt(cb, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(cb);
  CHECK(run_until(e, [&] { return events_of(log, cb_c).size() == 2; }, Ms(3000)));
  CHECK((events_of(log, cb_c) == std::vector<std::string>{"bind tcp 5106", "unbind tcp 5106"}));
  // Nothing else: not the other address, not the wildcard; every event names the address.
  CHECK(log.size() == 16);
  CHECK(std::all_of(log.begin(), log.end(), [&](const auto& x) { return x.second.local == f.shared; }));

  // An address no longer tracked reports its sockets gone (as associations are).
  const int last = listener(f.shared, 5104);
  const std::uint64_t last_c = cookie_of(last);
  CHECK(run_until(e, [&] { return events_of(log, last_c).size() == 2; }, Ms(3000)));
  reg.track({});
  CHECK((events_of(log, last_c) == std::vector<std::string>{"bind tcp 5104", "listen tcp 5104", "unlisten tcp 5104",
                                                             "unbind tcp 5104"}));
  for (int fd : {other, wild, last}) close(fd);
  CHECK(lab.in_b());
  close(peer);
  CHECK(lab.in_a());
  return 0;
}

int bound_diag_body() {
  Lab lab;
  if (!lab.setup()) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  CHECK(lab.in_a());
  SocketLog log;
  auto reg = Registry::create(e, {.cgroup = "", .ebpf = false, .walk_interval = std::chrono::milliseconds(200)},
                              nullptr, [&](SocketEvent ev, const BoundSocket& b) { log.emplace_back(ev, b); });
  CHECK(reg->level() == RegistryLevel::sock_diag);
  for (const Fam* f : {&kV4, &kV6})
    if (int r = bound_case(lab, e, *reg, log, *f); r != 0) return r;
  reg.reset();
  sd_event_unref(e);
  return 0;
}

TEST(ClusterRegistry, SockDiagLevelReportsBindListenUnlistenUnbind) { test::run_in_child(bound_diag_body); }

// Median time of `n` rounds of socket + bind + listen + close on `a` (µs each).
double median_bind_listen_us(const IpAddress& a, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const int fd = bound(a, 0, SOCK_STREAM);
    listen(fd, 4);
    close(fd);
    v.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int bound_ebpf_body(const std::string& cgroup) {
  if (!join(cgroup)) return 1;
  Lab lab;
  if (!lab.setup()) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  CHECK(lab.in_a());
  const double before = median_bind_listen_us(kV4.shared, 300);
  SocketLog log;
  auto reg = Registry::create(e, {.cgroup = cgroup, .ebpf = true, .walk_interval = std::chrono::seconds(60)},
                              nullptr, [&](SocketEvent ev, const BoundSocket& b) { log.emplace_back(ev, b); });
  if (reg->level() != RegistryLevel::ebpf) {
    std::fprintf(stderr, "eBPF level not in force: %s\n", reg->level_reason().c_str());
    return 1;
  }
  // No walks run at this level after track(): every event below is the programs'.
  for (const Fam* f : {&kV4, &kV6})
    if (int r = bound_case(lab, e, *reg, log, *f); r != 0) return r;
  // The cost on the socket's owner (figures, not a pass criterion): bind + listen + close
  // on an untracked address (one map lookup per hook) and on a tracked one (+ 4 events).
  const double untracked = median_bind_listen_us(kV4.shared, 300);
  reg->track({kV4.shared});
  log.clear();
  const double tracked = median_bind_listen_us(kV4.shared, 300);
  CHECK(run_until(e, [&] { return log.size() == 4 * 300; }, Ms(5000)));
  std::fprintf(stderr, "socket+bind+listen+close median: %.1f us without programs, %.1f us attached (address "
               "not tracked), %.1f us tracked (4 events)\n", before, untracked, tracked);
  reg.reset();
  sd_event_unref(e);
  return 0;
}

TEST(ClusterRegistry, EbpfLevelReportsBindListenUnlistenUnbindByEvents) {
  TestCgroup cg;
  if (geteuid() == 0 && cg.path.empty()) GTEST_SKIP() << "no cgroup2 mount to make a test cgroup in";
  test::run_in_child([&] { return bound_ebpf_body(cg.path); });
}

// Keeps exactly `caps` (CAP_* numbers) in the permitted and effective sets.
bool keep_only_caps(std::initializer_list<int> caps) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int c : caps) {
    data[c / 32].permitted |= 1U << (c % 32);
    data[c / 32].effective |= 1U << (c % 32);
  }
  return syscall(SYS_capset, &hdr, data) == 0;
}

// The UAPI-only program set loads and attaches with CAP_BPF + CAP_NET_ADMIN alone (what
// the units grant); without CAP_BPF the registry falls back and says why.
int caps_body(const std::string& cgroup) {
  if (!join(cgroup)) return 1;
  if (unshare(CLONE_NEWNET) != 0) return kSkip;
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  CHECK(keep_only_caps({CAP_BPF, CAP_NET_ADMIN}));
  auto reg = Registry::create(e, {.cgroup = cgroup, .ebpf = true}, nullptr);
  if (reg->level() != RegistryLevel::ebpf) {
    std::fprintf(stderr, "with CAP_BPF + CAP_NET_ADMIN: %s\n", reg->level_reason().c_str());
    return 1;
  }
  reg.reset();
  CHECK(keep_only_caps({CAP_NET_ADMIN}));
  reg = Registry::create(e, {.cgroup = cgroup, .ebpf = true}, nullptr);
  CHECK(reg->level() == RegistryLevel::sock_diag);
  std::fprintf(stderr, "without CAP_BPF: %s\n", reg->level_reason().c_str());
  CHECK(reg->level_reason().find("eBPF") != std::string::npos);
  reg.reset();
  sd_event_unref(e);
  return 0;
}

TEST(ClusterRegistry, EbpfLevelNeedsOnlyCapBpfAndCapNetAdmin) {
  TestCgroup cg;
  if (geteuid() == 0 && cg.path.empty()) GTEST_SKIP() << "no cgroup2 mount to make a test cgroup in";
  test::run_in_child([&] { return caps_body(cg.path); });
}

}  // namespace
}  // namespace mpathd::cluster
