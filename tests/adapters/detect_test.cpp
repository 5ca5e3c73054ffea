// lib/detect against the real kernel. Pure packet/route helpers run everywhere; the
// probing tests need root and run in a forked child that unshares CLONE_NEWNET (the
// host under test) with a second private namespace as the far side (a grandchild that
// unshares too and just waits). Nothing touches the machine's own namespace, and all
// of it disappears with the two processes. Only 198.18.0.0/15 and 2001:db8::/32
// (plus fe80:: link-locals) are used. Waits are bounded sd-event runs, never sleeps.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cerrno>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "namespace_child.hpp"
#include "detect/arp.hpp"
#include "detect/strategy.hpp"
#include "detect/factory.hpp"
#include "detect/icmp.hpp"
#include "detect/probe_base.hpp"
#include "detect/targets.hpp"

namespace mpathd::detect {
namespace {

using namespace std::chrono_literals;

IpAddress ip(const char* t) { return *IpAddress::parse(t); }
IpPrefix pfx(const char* t) { return *IpPrefix::parse(t); }
Mac mac(const char* t) { return *Mac::parse(t); }

// --- pure helpers (no root) ----------------------------------------------------------

TEST(DetectPackets, EchoRequestRoundTripsAsReply) {
  EchoPayload p{kProbeKindUnicast, 0x0102030405060708ull, 123456789};
  auto pkt = build_echo_request(Family::v4, 0xabcd, 77, p);
  ASSERT_EQ(pkt.size(), 28u);
  EXPECT_EQ(pkt[0], 8);
  EXPECT_EQ(sock::inet_checksum(pkt.data(), pkt.size()), 0);  // checksum is right
  // Turn it into a reply as a peer would: type 0, checksum adjusted.
  pkt[0] = 0;
  pkt[2] = pkt[3] = 0;
  const auto sum = sock::inet_checksum(pkt.data(), pkt.size());
  pkt[2] = static_cast<std::uint8_t>(sum >> 8);
  pkt[3] = static_cast<std::uint8_t>(sum);
  auto r = parse_echo_reply(Family::v4, pkt.data(), pkt.size());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, 0xabcd);
  EXPECT_EQ(r->seq, 77);
  EXPECT_EQ(r->payload.nonce, p.nonce);
  EXPECT_EQ(r->payload.sent_ns, p.sent_ns);
  // A corrupted byte, a short packet, a request: rejected.
  auto bad = pkt;
  bad[15] ^= 1;
  EXPECT_FALSE(parse_echo_reply(Family::v4, bad.data(), bad.size()));
  EXPECT_FALSE(parse_echo_reply(Family::v4, pkt.data(), 20));
  auto req = build_echo_request(Family::v6, 1, 2, p);
  EXPECT_EQ(req[0], 128);
  EXPECT_FALSE(parse_echo_reply(Family::v6, req.data(), req.size()));
  req[0] = 129;
  EXPECT_TRUE(parse_echo_reply(Family::v6, req.data(), req.size()));  // v6: kernel checks the sum
}

TEST(DetectPackets, ProbeIdCombinesPidAndIfindex) {
  EXPECT_EQ(probe_icmp_id(0x1234, 0x0567), 0x3467);
}

// Probe nonces: SipHash-2-4 of a counter. The reference vector for key 00..0f and the
// 8-byte message 00..07 (vectors_sip64[8] of the reference implementation).
TEST(DetectNonces, SipHashMatchesTheReferenceAndNoncesDiffer) {
  EXPECT_EQ(sock::siphash24({0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL}, 0x0706050403020100ULL),
            0x93f5f5799a932462ULL);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(sock::random64());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(DetectPackets, ArpProbeAndReplyFrames) {
  const Mac m = mac("02:00:00:00:00:01");
  auto f = build_arp_probe(m, ip("198.18.2.1"));
  ASSERT_EQ(f.size(), 42u);
  EXPECT_EQ(f[0], 0xff);
  EXPECT_EQ(f[21], 1);                                  // request
  EXPECT_EQ(std::vector<std::uint8_t>(f.begin() + 28, f.begin() + 32), std::vector<std::uint8_t>(4, 0));  // spa 0
  EXPECT_EQ(f[38], 198);
  EXPECT_EQ(f[41], 1);
  EXPECT_FALSE(parse_arp_reply(f.data(), f.size()));    // a request is not a reply
  f[21] = 2;
  auto r = parse_arp_reply(f.data(), f.size());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->target_ip, ip("198.18.2.1"));
  EXPECT_TRUE(build_arp_probe(m, ip("2001:db8::1")).empty());
}

TEST(DetectTargets, RoutersOnTheSubnetDefaultFirst) {
  std::vector<net::Route> routes{
      {pfx("198.18.5.0/24"), ip("198.18.0.2"), 3, 254, 4, false, 0},
      {pfx("0.0.0.0/0"), ip("198.18.0.1"), 3, 254, 4, false, 0},
      {pfx("198.18.6.0/24"), ip("198.18.9.1"), 4, 254, 4, false, 0},  // other subnet
      {pfx("198.18.7.0/24"), std::nullopt, 3, 254, 4, false, 0},      // no gateway
      {pfx("198.18.8.0/24"), ip("198.18.0.2"), 3, 254, 4, false, 0},  // duplicate
  };
  EXPECT_EQ(routers_in_subnet(routes, pfx("198.18.0.10/24")),
            (std::vector<IpAddress>{ip("198.18.0.1"), ip("198.18.0.2")}));
  std::vector<net::Route> v6{
      {pfx("::/0"), ip("fe80::1"), 3, 254, 4, false, 0},
      {pfx("2001:db8:5::/64"), ip("fe80::2"), 9, 254, 4, false, 0},
      {pfx("2001:db8:6::/64"), ip("2001:db8::1"), 3, 254, 4, false, 0},
  };
  const std::array<unsigned, 2> members{3, 4};
  EXPECT_EQ(link_local_routers(v6, members), std::vector<IpAddress>{ip("fe80::1")});
}

// --- namespaces -------------------------------------------------------------------

using test::kSkip;

#define CHECK(...)                                                                         \
  do {                                                                                     \
    if (!(__VA_ARGS__)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #__VA_ARGS__); \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

bool sh(const std::string& cmd) {
  const bool ok = std::system(cmd.c_str()) == 0;
  if (!ok) std::fprintf(stderr, "command failed: %s\n", cmd.c_str());
  return ok;
}

// The far side: a process waiting in its own network namespace.
struct Peer {
  pid_t pid = -1;
  int ns = -1;
  int self_ns = -1;
  int release = -1;  // closing it lets the peer exit

  bool start() {
    self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int ready[2], hold[2];
    if (self_ns < 0 || pipe(ready) != 0 || pipe(hold) != 0) return false;
    std::fflush(nullptr);
    pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(ready[0]);
      close(hold[1]);
      char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
      (void)!write(ready[1], &c, 1);
      (void)!read(hold[0], &c, 1);  // until the test is done
      _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    release = hold[1];
    char c = 0;
    if (read(ready[0], &c, 1) != 1 || c != 'y') return false;
    close(ready[0]);
    ns = open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
    return ns >= 0;
  }
  ~Peer() {
    if (release >= 0) close(release);
    if (pid > 0) waitpid(pid, nullptr, 0);
    if (ns >= 0) close(ns);
    if (self_ns >= 0) close(self_ns);
  }
  template <typename F>
  auto inside(F&& f) {
    setns(ns, CLONE_NEWNET);
    auto r = f();
    setns(self_ns, CLONE_NEWNET);
    return r;
  }
  bool sh(const std::string& cmd) {
    return inside([&] { return detect::sh(cmd); });
  }
};

bool run_until(sd_event* e, const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (sd_event_run(e, 20'000) < 0) return false;
  }
  return true;
}

struct Recorder {
  std::vector<ProbeResult> results;
  std::vector<ProbeVerdict> verdicts;
  std::vector<IpAddress> discovered;
  std::vector<std::uint64_t> unsolicited;  // reports: how many since the last one
  ProbeBase::Callbacks callbacks() {
    return {[this](const ProbeResult& r) { results.push_back(r); },
            [this](const std::string&, const ProbeVerdict& v) { verdicts.push_back(v); }, {},
            [this](const std::string&, const IpAddress& h) { discovered.push_back(h); },
            [this](const std::string&, std::uint64_t n, std::uint64_t) { unsolicited.push_back(n); }, {}};
  }
  std::size_t acks() const {
    std::size_t n = 0;
    for (auto& r : results) n += r.acked;
    return n;
  }
  std::size_t losses() const { return results.size() - acks(); }
  ProbeState state() const { return verdicts.empty() ? ProbeState::unknown : verdicts.back().state; }
};

// A packet socket on the peer's interface: sniffs our probes, sends forgeries.
struct Forger {
  int fd = -1;
  int ifindex = 0;
  ~Forger() {
    if (fd >= 0) close(fd);
  }
  bool open_on(Peer& peer, const char* ifname) {
    return peer.inside([&] {
      ifindex = static_cast<int>(if_nametoindex(ifname));
      fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = htons(ETH_P_ALL);
      sll.sll_ifindex = ifindex;
      return ifindex > 0 && fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) == 0;
    });
  }
  // Next received frame, or empty.
  std::vector<std::uint8_t> next() {
    std::vector<std::uint8_t> buf(2048);
    sockaddr_ll from{};
    socklen_t len = sizeof from;
    const ssize_t n = recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0 || from.sll_pkttype == PACKET_OUTGOING) return {};
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
  bool send(const std::vector<std::uint8_t>& frame) {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    to.sll_halen = 6;
    return sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(frame.size());
  }
};

void put16(std::uint8_t* p, unsigned v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// An Ethernet/IPv4/ICMP echo reply answering `request` (an echo request frame), with
// the given source address and nonce.
std::vector<std::uint8_t> forge_echo_reply(const std::vector<std::uint8_t>& request, const IpAddress& src,
                                           std::uint64_t nonce) {
  std::vector<std::uint8_t> f = request;
  std::swap_ranges(f.begin(), f.begin() + 6, f.begin() + 6);  // swap Ethernet addresses
  std::uint8_t* iph = f.data() + 14;
  const std::size_t ihl = static_cast<std::size_t>(iph[0] & 0x0f) * 4;
  std::copy(iph + 12, iph + 16, iph + 16);  // the request's source becomes the destination
  std::copy(src.bytes.begin(), src.bytes.begin() + 4, iph + 12);
  iph[8] = 64;
  iph[10] = iph[11] = 0;
  const auto ipsum = sock::inet_checksum(iph, ihl);
  put16(iph + 10, ipsum);
  std::uint8_t* icmp = iph + ihl;
  const std::size_t icmp_len = f.size() - 14 - ihl;
  icmp[0] = 0;
  for (int i = 0; i < 8; ++i) icmp[12 + i] = static_cast<std::uint8_t>(nonce >> (56 - 8 * i));
  icmp[2] = icmp[3] = 0;
  put16(icmp + 2, sock::inet_checksum(icmp, icmp_len));
  return f;
}

std::uint64_t nonce_of(const std::vector<std::uint8_t>& request) {
  const std::size_t ihl = static_cast<std::size_t>(request[14] & 0x0f) * 4;
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | request[14 + ihl + 12 + static_cast<std::size_t>(i)];
  return v;
}

bool is_echo_request(const std::vector<std::uint8_t>& f) {
  return f.size() >= 14 + 20 + 28 && f[12] == 0x08 && f[13] == 0x00 && f[14 + 9] == 1 &&
         f[14 + static_cast<std::size_t>(f[14] & 0x0f) * 4] == 8;
}

bool is_arp_request(const std::vector<std::uint8_t>& f) {
  return f.size() >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 1;
}

std::vector<std::uint8_t> forge_arp_reply(const Mac& from_mac, const IpAddress& from_ip, const Mac& to_mac) {
  auto f = build_arp_probe(from_mac, ip("0.0.0.0"));
  std::copy(to_mac.bytes.begin(), to_mac.bytes.end(), f.begin());  // Ethernet destination
  f[21] = 2;
  std::copy(from_ip.bytes.begin(), from_ip.bytes.begin() + 4, f.begin() + 28);  // spa
  std::copy(to_mac.bytes.begin(), to_mac.bytes.end(), f.begin() + 32);          // tha
  return f;
}

// Most answers carry sane times. Under load (CI on two busy cores) a single answer
// can be late and is then held back by the estimator as a suspicious sample (average
// still 0): one such outlier is allowed, a pattern is not.
bool sane_rtts(const Recorder& rec) {
  std::size_t acked = 0, odd = 0;
  for (auto& r : rec.results) {
    if (!r.acked) continue;
    ++acked;
    if (r.rtt <= Duration::zero() || r.rtt > 100ms || r.net_rtt <= Duration::zero() || r.net_rtt > r.rtt ||
        r.rtt_avg <= Duration::zero()) {
      std::fprintf(stderr, "odd rtt: rtt %lld net %lld avg %lld ns\n", static_cast<long long>(r.rtt.count()),
                   static_cast<long long>(r.net_rtt.count()), static_cast<long long>(r.rtt_avg.count()));
      ++odd;
    }
  }
  return acked > 0 && odd <= 1;
}

constexpr Duration kFdt = 700ms;  // 100 ms probe interval

int icmp_checks(sd_event* e, Peer& peer) {
  const unsigned m1 = if_nametoindex("m1");
  Recorder rec;
  auto strategy = IcmpProber::open(e, m1, "m1", ip("198.18.0.10"), probe_icmp_id(static_cast<unsigned>(getpid()), m1));
  if (!strategy) std::fprintf(stderr, "%s\n", strategy.error().message.c_str());
  CHECK(strategy);
  auto base = ProbeBase::create(e, "m1", std::move(*strategy), kFdt, rec.callbacks());
  CHECK(base);
  ProbeBase& b = **base;
  b.set_targets({ip("198.18.0.1")}, TargetMode::static_);
  CHECK(rec.state() == ProbeState::ok);
  CHECK(run_until(e, [&] { return rec.acks() >= 8; }));
  CHECK(rec.losses() == 0);
  CHECK(sane_rtts(rec));
  CHECK(b.session().estimator(ip("198.18.0.1"))->has_estimate());
  std::fprintf(stderr, "icmp: %zu acks, crtt %lld us\n", rec.acks(),
               static_cast<long long>(b.session().estimator(ip("198.18.0.1"))->crtt().count() / 1000));

  // Multicast discovery finds the peer (it answers 224.0.0.1 once told to).
  CHECK(peer.sh("sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0"));
  CHECK(b.discover());
  CHECK(run_until(e, [&] { return !rec.discovered.empty(); }, 3000ms));
  CHECK(rec.discovered[0] == ip("198.18.0.1"));

  // The target goes away; probes keep reaching the wire (static neighbour entry), so
  // the far side can watch them and forge answers.
  CHECK(sh("ip neigh replace 198.18.0.1 lladdr 02:00:00:00:01:02 dev m1 nud permanent"));
  CHECK(peer.sh("ip addr del 198.18.0.1/24 dev t1"));
  const std::size_t losses_before = rec.losses();
  CHECK(run_until(e, [&] { return rec.state() == ProbeState::failed; }));
  CHECK(rec.losses() - losses_before >= probe::kFailThreshold);
  CHECK(rec.verdicts.back().first_failure > TimePoint{});
  std::fprintf(stderr, "icmp: failed after %zu losses\n", rec.losses() - losses_before);

  // Forgeries: our id and seq, but a wrong nonce from the target's address, or the
  // right nonce from another address. None may count.
  Forger forger;
  CHECK(forger.open_on(peer, "t1"));
  const auto ignored_before = b.counters().ignored;
  const std::size_t acks_before = rec.acks();
  int forged = 0;
  CHECK(run_until(e, [&] {
    for (auto f = forger.next(); !f.empty(); f = forger.next()) {
      if (!is_echo_request(f)) continue;
      const std::uint64_t nonce = nonce_of(f);
      forged += forger.send(forge_echo_reply(f, ip("198.18.0.1"), nonce ^ 0x5a5a)) ? 1 : 0;
      forged += forger.send(forge_echo_reply(f, ip("198.18.0.99"), nonce)) ? 1 : 0;
    }
    return forged >= 24 && b.counters().ignored - ignored_before >= 24;
  }));
  CHECK(rec.acks() == acks_before);
  CHECK(rec.state() == ProbeState::failed);
  std::fprintf(stderr, "icmp: %d forged answers, %llu ignored\n", forged,
               static_cast<unsigned long long>(b.counters().ignored - ignored_before));

  // The target comes back: repair takes 10 good answers.
  CHECK(sh("ip neigh del 198.18.0.1 dev m1"));
  CHECK(peer.sh("ip addr add 198.18.0.1/24 dev t1"));
  const std::size_t acks_at_return = rec.acks();
  CHECK(run_until(e, [&] { return rec.state() == ProbeState::ok; }));
  CHECK(rec.acks() - acks_at_return >= probe::kRepairThreshold);

  // Paused: no probes go out.
  b.pause();
  const auto sent = b.counters().sent;
  run_until(e, [] { return false; }, 400ms);
  CHECK(b.counters().sent == sent);
  b.resume();
  CHECK(run_until(e, [&] { return b.counters().sent > sent; }));
  return 0;
}

int arp_checks(sd_event* e, Peer& peer) {
  const unsigned m2 = if_nametoindex("m2");
  const Mac m2_mac = mac("02:00:00:00:02:01"), t2_mac = mac("02:00:00:00:02:02");
  Recorder rec;
  auto strategy = ArpProber::open(e, m2, m2_mac);
  CHECK(strategy);
  auto base = ProbeBase::create(e, "m2", std::move(*strategy), kFdt, rec.callbacks());
  CHECK(base);
  ProbeBase& b = **base;
  b.set_targets({ip("198.18.2.1")}, TargetMode::arp);
  CHECK(run_until(e, [&] { return rec.acks() >= 8; }));
  CHECK(rec.losses() == 0);
  CHECK(sane_rtts(rec));
  std::fprintf(stderr, "arp: %zu acks\n", rec.acks());

  CHECK(peer.sh("ip addr del 198.18.2.1/24 dev t2"));
  const std::size_t losses_before = rec.losses();
  CHECK(run_until(e, [&] { return rec.state() == ProbeState::failed; }));
  CHECK(rec.losses() - losses_before >= probe::kFailThreshold);

  // Forged replies: from another IP to our MAC, and from the target IP to another MAC.
  Forger forger;
  CHECK(forger.open_on(peer, "t2"));
  const auto unmatched_before = b.strategy().counters().unmatched;
  const std::size_t acks_before = rec.acks();
  int forged = 0;
  CHECK(run_until(e, [&] {
    for (auto f = forger.next(); !f.empty(); f = forger.next()) {
      if (!is_arp_request(f)) continue;
      forged += forger.send(forge_arp_reply(t2_mac, ip("198.18.2.99"), m2_mac)) ? 1 : 0;
      auto misaddressed = forge_arp_reply(t2_mac, ip("198.18.2.1"), mac("02:00:00:00:09:09"));
      std::copy(m2_mac.bytes.begin(), m2_mac.bytes.end(), misaddressed.begin());  // reaches us
      forged += forger.send(misaddressed) ? 1 : 0;
    }
    return forged >= 16 && b.strategy().counters().unmatched - unmatched_before >= 16;
  }));
  CHECK(rec.acks() == acks_before);
  CHECK(rec.state() == ProbeState::failed);
  std::fprintf(stderr, "arp: %d forged replies, %llu unmatched\n", forged,
               static_cast<unsigned long long>(b.strategy().counters().unmatched - unmatched_before));

  // Answers that come late, one request behind (each request's answer goes out after
  // the next request, just before the next one's): every one finds a request of ours
  // waiting, so none is taken for unsolicited.
  const auto replies_before = b.strategy().counters().replies;
  const auto unsolicited_before_late = b.strategy().counters().unsolicited;
  int requests_seen = 0;
  CHECK(run_until(e, [&] {
    for (auto f = forger.next(); !f.empty(); f = forger.next()) {
      if (!is_arp_request(f)) continue;
      if (requests_seen++ > 0) forger.send(forge_arp_reply(t2_mac, ip("198.18.2.1"), m2_mac));  // the previous one's
      forger.send(forge_arp_reply(t2_mac, ip("198.18.2.1"), m2_mac));
    }
    return requests_seen >= 8;
  }));
  CHECK(run_until(e, [&] { return b.strategy().counters().replies - replies_before >= 2u * 8 - 1; }, 1000ms));
  CHECK(b.strategy().counters().unsolicited == unsolicited_before_late);

  // A blind forger: well-formed "198.18.2.1 is-at <its MAC>" answers to our MAC and to
  // our sender IP 0.0.0.0, flooded without looking at our requests (so some land in a
  // request's window), plus gratuitous ones. Without an RTT estimate (reset, as after
  // a link bounce) a probe's window is a whole interval. None may count.
  b.reset(true);
  const Mac forger_mac = mac("02:00:00:00:09:01");
  const IpAddress target = ip("198.18.2.1");
  auto gratuitous = forge_arp_reply(forger_mac, target, mac("ff:ff:ff:ff:ff:ff"));
  std::copy(target.bytes.begin(), target.bytes.begin() + 4, gratuitous.begin() + 38);  // tpa = spa
  const auto unsolicited_before = b.strategy().counters().unsolicited;
  const auto sent_before = b.counters().sent;
  const std::size_t acks_before_flood = rec.acks();
  int flooded = 0;
  auto next_send = std::chrono::steady_clock::now();
  run_until(e, [&] {
    if (std::chrono::steady_clock::now() < next_send) return false;
    next_send += 2ms;  // 500 per second: many per probe interval (100 ms)
    flooded += forger.send(forge_arp_reply(forger_mac, target, m2_mac)) ? 1 : 0;
    flooded += forger.send(gratuitous) ? 1 : 0;
    return false;
  }, 3000ms);
  std::fprintf(stderr, "arp: %d frames flooded over %llu probes, %llu unsolicited\n", flooded,
               static_cast<unsigned long long>(b.counters().sent - sent_before),
               static_cast<unsigned long long>(b.strategy().counters().unsolicited - unsolicited_before));
  CHECK(b.counters().sent - sent_before >= 2 * probe::kRepairThreshold);
  CHECK(b.strategy().counters().unsolicited - unsolicited_before >= 10);
  CHECK(rec.acks() == acks_before_flood);
  // Reported, but not with every frame: at most once per 10 s.
  CHECK(!rec.unsolicited.empty() && rec.unsolicited.size() <= 2 && rec.unsolicited.back() > 0);
  CHECK(rec.state() == ProbeState::failed);

  // The forger stops and the target comes back: answered again after one reply
  // window without forgeries, and repaired (10 good answers).
  CHECK(peer.sh("ip addr add 198.18.2.1/24 dev t2"));
  CHECK(run_until(e, [&] { return rec.state() == ProbeState::ok; }, 20000ms));
  return 0;
}

int icmp6_checks(sd_event* e, Peer& peer) {
  const unsigned m1 = if_nametoindex("m1");
  Recorder rec;
  ProbeSource src{m1, "m1", mac("02:00:00:00:01:01"), std::nullopt, ip("fe80::10")};
  CHECK(!open_strategy(e, ProbeKind::icmp, src));  // no IPv4 test address
  auto strategy = open_strategy(e, ProbeKind::icmp6, src);
  if (!strategy) std::fprintf(stderr, "%s\n", strategy.error().message.c_str());
  CHECK(strategy);
  auto base = ProbeBase::create(e, "m1", std::move(*strategy), kFdt, rec.callbacks());
  CHECK(base);
  ProbeBase& b = **base;
  b.set_targets({ip("fe80::1")}, TargetMode::routes);
  CHECK(run_until(e, [&] { return rec.acks() >= 8; }));
  CHECK(rec.losses() == 0);
  CHECK(sane_rtts(rec));
  std::fprintf(stderr, "icmp6: %zu acks\n", rec.acks());
  CHECK(b.discover());
  CHECK(run_until(e, [&] { return !rec.discovered.empty(); }, 3000ms));
  CHECK(rec.discovered[0].is_link_local());

  CHECK(peer.sh("ip addr del fe80::1/64 dev t1"));
  CHECK(run_until(e, [&] { return rec.state() == ProbeState::failed; }));
  return 0;
}

int in_private_namespace() {
  if (unshare(CLONE_NEWNET) != 0) return kSkip;
  Peer peer;
  CHECK(peer.start());
  const std::string pid = std::to_string(peer.pid);
  CHECK(sh("ip link set lo up"));
  CHECK(sh("ip link add m1 address 02:00:00:00:01:01 type veth peer name t1 address 02:00:00:00:01:02"));
  CHECK(sh("ip link add m2 address 02:00:00:00:02:01 type veth peer name t2 address 02:00:00:00:02:02"));
  CHECK(sh("ip link set t1 netns " + pid + " && ip link set t2 netns " + pid));
  CHECK(sh("ip link set m1 up && ip link set m2 up"));
  CHECK(sh("ip addr add 198.18.0.10/24 dev m1 && ip addr add fe80::10/64 dev m1 nodad"));
  CHECK(peer.sh("ip link set lo up && ip link set t1 up && ip link set t2 up"));
  CHECK(peer.sh("ip addr add 198.18.0.1/24 dev t1 && ip addr add fe80::1/64 dev t1 nodad"));
  CHECK(peer.sh("ip addr add 198.18.2.1/24 dev t2"));

  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  int rc = icmp_checks(e, peer);
  if (rc == 0) rc = arp_checks(e, peer);
  if (rc == 0) rc = icmp6_checks(e, peer);
  sd_event_unref(e);
  return rc;
}

TEST(DetectNamespace, IcmpArpAndIcmp6ProbingInPrivateNamespaces) { test::run_in_child(in_private_namespace); }

bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

TEST(DetectSockets, CloseAllClosesEveryDescriptorWhateverTheThreads) {
  for (unsigned threads : {1U, 4U, 32U, 500U}) {
    std::vector<int> fds{-1};
    for (int i = 0; i < 50; ++i) {
      int p[2];
      ASSERT_EQ(pipe(p), 0);
      fds.push_back(p[0]);
      fds.push_back(p[1]);
    }
    fds.push_back(-1);
    const auto copy = fds;
    sock::close_all(fds, threads);
    for (int fd : copy) {
      if (fd >= 0) {
        EXPECT_FALSE(is_open(fd)) << "fd " << fd << " still open with " << threads << " threads";
      }
    }
  }
  sock::close_all({}, 32);  // nothing to close: no thread, no crash
}

// Shutdown at 1024 members took 10 s: closing a packet socket waits for an RCU grace
// period, and mpathd closed its members' sockets one after another. close_all() closes
// them at once: the same number of sockets must close several times faster than one by
// one (measured side by side, so the machine's load affects both alike; a generous 3x
// where ~30x is usual).
int packet_sockets_close_at_once() {
  if (unshare(CLONE_NEWNET) != 0) return test::kSkip;
  CHECK(std::system("ip link set lo up") == 0);
  constexpr int kSockets = 64;
  auto open_all = [] {
    std::vector<int> fds;
    for (int i = 0; i < kSockets; ++i) {
      int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
      if (fd < 0) return std::vector<int>{};
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = htons(ETH_P_ARP);
      sll.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
      if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) return std::vector<int>{};
      fds.push_back(fd);
    }
    return fds;
  };
  auto one_by_one = open_all();
  CHECK(one_by_one.size() == kSockets);
  auto t0 = std::chrono::steady_clock::now();
  for (int fd : one_by_one) close(fd);
  const auto serial = std::chrono::steady_clock::now() - t0;
  auto at_once = open_all();
  CHECK(at_once.size() == kSockets);
  const auto copy = at_once;
  t0 = std::chrono::steady_clock::now();
  sock::close_all(at_once);
  const auto parallel = std::chrono::steady_clock::now() - t0;
  for (int fd : copy) {
    CHECK(!is_open(fd));
  }
  std::fprintf(stderr, "%d packet sockets closed one by one in %.1f ms, at once in %.1f ms\n", kSockets,
               std::chrono::duration<double, std::milli>(serial).count(),
               std::chrono::duration<double, std::milli>(parallel).count());
  CHECK(parallel * 3 < serial);
  return 0;
}

TEST(DetectSockets, PacketSocketsCloseAtOnce) { test::run_in_child(packet_sockets_close_at_once); }

}  // namespace
}  // namespace mpathd::detect
