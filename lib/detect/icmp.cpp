#include "detect/icmp.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/icmp.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace mpathd::detect {

namespace {

constexpr std::uint8_t kEcho4 = 8, kEchoReply4 = 0;
constexpr std::uint8_t kEcho6 = 128, kEchoReply6 = 129;

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
}
std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t get32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | p[i];
  return v;
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

std::int64_t mono_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

Result<int> raw_socket(int family, int protocol, const std::string& ifname) {
  int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return sock::errno_error("probe socket");
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), static_cast<socklen_t>(ifname.size())) != 0) {
    auto e = sock::errno_error(("bind probe socket to " + ifname).c_str());
    close(fd);
    return e;
  }
  return fd;
}

struct Received {
  std::array<std::uint8_t, 1500> buf{};
  std::size_t len = 0;
  sockaddr_storage from{};
  TimePoint when{};
};

// One recvmsg; false when nothing is queued (or an error).
bool receive(int fd, Received& r) {
  iovec iov{r.buf.data(), r.buf.size()};
  alignas(cmsghdr) std::array<char, 256> control{};
  msghdr msg{};
  msg.msg_name = &r.from;
  msg.msg_namelen = sizeof r.from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  // The socket is watched edge-triggered: read until EAGAIN. A socket error (reported
  // once) may have answers queued behind it: read on, a few errors at most.
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
  for (unsigned errors = 0; n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errors < 8; ++errors)
    n = recvmsg(fd, &msg, MSG_DONTWAIT);
  if (n < 0) return false;
  r.len = static_cast<std::size_t>(n);
  if (msg.msg_flags & MSG_TRUNC) r.len = 0;
  r.when = sock::rx_time(msg);
  return true;
}

}  // namespace

std::uint16_t probe_icmp_id(unsigned pid, unsigned ifindex) {
  return static_cast<std::uint16_t>(((pid & 0xffu) << 8) | (ifindex & 0xffu));
}

std::vector<std::uint8_t> build_echo_request(Family family, std::uint16_t id, ProbeSeq seq, const EchoPayload& p) {
  std::vector<std::uint8_t> pkt(8 + kEchoPayloadSize, 0);
  pkt[0] = family == Family::v4 ? kEcho4 : kEcho6;
  put16(&pkt[4], id);
  put16(&pkt[6], seq);
  put32(&pkt[8], p.kind);
  put64(&pkt[12], p.nonce);
  put64(&pkt[20], static_cast<std::uint64_t>(p.sent_ns));
  if (family == Family::v4) put16(&pkt[2], sock::inet_checksum(pkt.data(), pkt.size()));
  return pkt;
}

std::optional<EchoReply> parse_echo_reply(Family family, const std::uint8_t* data, std::size_t len) {
  if (len < 8 + kEchoPayloadSize) return std::nullopt;
  if (data[0] != (family == Family::v4 ? kEchoReply4 : kEchoReply6) || data[1] != 0) return std::nullopt;
  if (family == Family::v4 && sock::inet_checksum(data, len) != 0) return std::nullopt;
  EchoReply r;
  r.id = get16(data + 4);
  r.seq = get16(data + 6);
  r.payload.kind = get32(data + 8);
  r.payload.nonce = get64(data + 12);
  r.payload.sent_ns = static_cast<std::int64_t>(get64(data + 20));
  if (r.payload.kind != kProbeKindUnicast && r.payload.kind != kProbeKindMulticast) return std::nullopt;
  return r;
}

// Handles one parsed answer: shared by both families.
namespace {
void deliver(const std::optional<EchoReply>& rep, std::uint16_t id, const IpAddress& from,
             TimePoint when, StrategyCounters& c, const ProbeStrategy::ReplyHandler& reply,
             const ProbeStrategy::DiscoveryHandler& discovered) {
  if (!rep) {
    ++c.malformed;
    return;
  }
  if (rep->id != id) {
    ++c.foreign;  // someone else's ping
    return;
  }
  const TimePoint sent = TimePoint{} + Duration(rep->payload.sent_ns);
  if (rep->payload.kind == kProbeKindMulticast) {
    // Discovered IPv6 targets must be on-link (link-local), as router targets are.
    if (from.is_v4() || from.is_link_local()) {
      if (discovered) discovered(from, rep->payload.nonce);
    } else {
      ++c.unmatched;
    }
    return;
  }
  ++c.replies;
  if (reply) reply(ProbeReply{rep->seq, from, rep->payload.nonce, sent, when});
}
}  // namespace

// --- IPv4 -------------------------------------------------------------------------

Result<std::unique_ptr<IcmpProber>> IcmpProber::open(sd_event* event, unsigned ifindex, const std::string& ifname,
                                                     const IpAddress& source, std::uint16_t id) {
  if (!source.is_v4()) return fail(Errc::invalid_argument, "icmp probing needs an IPv4 test address");
  auto fd = raw_socket(AF_INET, IPPROTO_ICMP, ifname);
  if (!fd) return std::unexpected(fd.error());
  std::unique_ptr<IcmpProber> p(new IcmpProber(source, id));
  if (auto r = p->attach(event, *fd); !r) {
    close(*fd);
    return std::unexpected(r.error());
  }
  // Only echo replies reach us (the filter is a mask of types to drop).
  icmp_filter filter{~(1u << ICMP_ECHOREPLY)};
  Result<void> r = sock::set(*fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter, "ICMP_FILTER");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  std::memcpy(&sa.sin_addr, source.bytes.data(), 4);
  if (r && bind(*fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    r = sock::errno_error(("bind probe socket to " + source.str()).c_str());
  ip_mreqn mreq{};
  mreq.imr_ifindex = static_cast<int>(ifindex);
  std::memcpy(&mreq.imr_address, source.bytes.data(), 4);
  if (r) r = sock::set(*fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq, "IP_MULTICAST_IF");
  if (r) r = sock::set_int(*fd, IPPROTO_IP, IP_MULTICAST_TTL, 1, "IP_MULTICAST_TTL");
  if (r) r = sock::set_int(*fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
  if (r) r = sock::set_int(*fd, SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS");
  if (!r) return std::unexpected(r.error());
  return p;
}

Result<void> IcmpProber::send_echo(const IpAddress& to, ProbeSeq seq, std::uint32_t kind, std::uint64_t nonce) {
  const auto pkt = build_echo_request(Family::v4, id_, seq, {kind, nonce, mono_ns(Clock::now())});
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  std::memcpy(&sa.sin_addr, to.bytes.data(), 4);
  const ssize_t n = sendto(fd(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  // A full queue counts as sent: a wedged interface shows up as lost probes.
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    ++counters_.send_errors;
    return sock::errno_error(("probe " + to.str()).c_str());
  }
  ++counters_.sent;
  return {};
}

Result<void> IcmpProber::send(ProbeSeq seq, const IpAddress& target, std::uint64_t nonce) {
  if (!target.is_v4()) return fail(Errc::invalid_argument, "icmp target must be IPv4");
  return send_echo(target, seq, kProbeKindUnicast, nonce);
}

Result<void> IcmpProber::discover(std::uint64_t nonce) {
  return send_echo(*IpAddress::parse("224.0.0.1"), 0, kProbeKindMulticast, nonce);
}

void IcmpProber::readable() {
  Received r;
  while (receive(fd(), r)) {
    // Raw IPv4 sockets see the IP header first.
    if (r.len < 20 || (r.buf[0] >> 4) != 4) {
      ++counters_.malformed;
      continue;
    }
    const std::size_t ihl = static_cast<std::size_t>(r.buf[0] & 0x0f) * 4;
    if (ihl < 20 || r.len < ihl + 8 || r.buf[9] != IPPROTO_ICMP) {
      ++counters_.malformed;
      continue;
    }
    IpAddress from;
    from.family = Family::v4;
    std::memcpy(from.bytes.data(), &r.buf[12], 4);
    if (r.buf[ihl] != kEchoReply4) {
      ++counters_.foreign;
      continue;
    }
    deliver(parse_echo_reply(Family::v4, &r.buf[ihl], r.len - ihl), id_, from, r.when, counters_, reply_,
            discovered_);
  }
}

// --- IPv6 -------------------------------------------------------------------------

Result<std::unique_ptr<Icmp6Prober>> Icmp6Prober::open(sd_event* event, unsigned ifindex, const std::string& ifname,
                                                       const IpAddress& source, std::uint16_t id) {
  if (source.is_v4() || !source.is_link_local())
    return fail(Errc::invalid_argument, "icmp6 probing needs an IPv6 link-local source");
  auto fd = raw_socket(AF_INET6, IPPROTO_ICMPV6, ifname);
  if (!fd) return std::unexpected(fd.error());
  std::unique_ptr<Icmp6Prober> p(new Icmp6Prober(source, ifindex, id));
  if (auto r = p->attach(event, *fd); !r) {
    close(*fd);
    return std::unexpected(r.error());
  }
  icmp6_filter filter{};
  ICMP6_FILTER_SETBLOCKALL(&filter);
  ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
  Result<void> r = sock::set(*fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter, "ICMP6_FILTER");
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  std::memcpy(&sa.sin6_addr, source.bytes.data(), 16);
  sa.sin6_scope_id = ifindex;
  if (r && bind(*fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    r = sock::errno_error(("bind probe socket to " + source.str() + "%" + ifname).c_str());
  if (r) r = sock::set_int(*fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, static_cast<int>(ifindex), "IPV6_MULTICAST_IF");
  if (r) r = sock::set_int(*fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 1, "IPV6_MULTICAST_HOPS");
  if (r) r = sock::set_int(*fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP");
  if (r) r = sock::set_int(*fd, SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS");
  if (!r) return std::unexpected(r.error());
  return p;
}

Result<void> Icmp6Prober::send_echo(const IpAddress& to, ProbeSeq seq, std::uint32_t kind, std::uint64_t nonce) {
  const auto pkt = build_echo_request(Family::v6, id_, seq, {kind, nonce, mono_ns(Clock::now())});
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  std::memcpy(&sa.sin6_addr, to.bytes.data(), 16);
  if (to.is_link_local() || to.bytes[0] == 0xff) sa.sin6_scope_id = ifindex_;
  const ssize_t n = sendto(fd(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    ++counters_.send_errors;
    return sock::errno_error(("probe " + to.str()).c_str());
  }
  ++counters_.sent;
  return {};
}

Result<void> Icmp6Prober::send(ProbeSeq seq, const IpAddress& target, std::uint64_t nonce) {
  if (target.is_v4()) return fail(Errc::invalid_argument, "icmp6 target must be IPv6");
  return send_echo(target, seq, kProbeKindUnicast, nonce);
}

Result<void> Icmp6Prober::discover(std::uint64_t nonce) {
  return send_echo(*IpAddress::parse("ff02::1"), 0, kProbeKindMulticast, nonce);
}

void Icmp6Prober::readable() {
  Received r;
  while (receive(fd(), r)) {
    if (r.from.ss_family != AF_INET6 || r.len < 8) {
      ++counters_.malformed;
      continue;
    }
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&r.from);
    IpAddress from;
    from.family = Family::v6;
    std::memcpy(from.bytes.data(), &sa->sin6_addr, 16);
    if (r.buf[0] != kEchoReply6) {
      ++counters_.foreign;
      continue;
    }
    deliver(parse_echo_reply(Family::v6, r.buf.data(), r.len), id_, from, r.when, counters_, reply_,
            discovered_);
  }
}

}  // namespace mpathd::detect
