// ICMP echo probing from a member's test address (IPv4) or link-local (IPv6).
//
// Socket: raw ICMP, bound to the source address and to the member (SO_BINDTODEVICE),
// so it only sees packets for that address arriving on that interface. Answers to our
// probes (unicast and multicast ones alike) are unicast to that address: nothing here
// receives multicast, so no group membership is needed. Multicast sends use
// IP_MULTICAST_IF / IPV6_MULTICAST_IF, hop limit 1, loopback off. Kernel reception
// timestamps (SO_TIMESTAMPNS) give the RTT.
//
// Packet: echo request, id = probe_icmp_id(pid, ifindex), seq = probe seq, payload =
// kind (4 bytes: failure-detection or discovery) | nonce (8) | send time (8), all in
// network order. An answer is passed on only if it is an echo reply with our id and a
// well-formed payload; the ProbeBase then checks seq, nonce and source.
#pragma once

#include <memory>
#include <string>

#include "detect/strategy.hpp"

namespace mpathd::detect {

// One id per daemon and member: low byte of the pid, low byte of the ifindex.
std::uint16_t probe_icmp_id(unsigned pid, unsigned ifindex);

inline constexpr std::uint32_t kProbeKindUnicast = 0x1234;   // failure detection
inline constexpr std::uint32_t kProbeKindMulticast = 0x5678; // target discovery
inline constexpr std::size_t kEchoPayloadSize = 20;

class IcmpProber final : public ProbeStrategy {
 public:
  // `source` is the member's IPv4 test address (it must be configured on the host).
  static Result<std::unique_ptr<IcmpProber>> open(sd_event* event, unsigned ifindex, const std::string& ifname,
                                                  const IpAddress& source, std::uint16_t id);
  ProbeKind kind() const override { return ProbeKind::icmp; }
  Result<void> send(ProbeSeq seq, const IpAddress& target, std::uint64_t nonce) override;
  Result<void> discover(std::uint64_t nonce) override;

 private:
  IcmpProber(IpAddress source, std::uint16_t id) : source_(source), id_(id) {}
  Result<void> send_echo(const IpAddress& to, ProbeSeq seq, std::uint32_t kind, std::uint64_t nonce);
  void readable() override;
  IpAddress source_;
  std::uint16_t id_;
};

class Icmp6Prober final : public ProbeStrategy {
 public:
  // `source` is the member's IPv6 link-local address (scope: ifindex).
  static Result<std::unique_ptr<Icmp6Prober>> open(sd_event* event, unsigned ifindex, const std::string& ifname,
                                                   const IpAddress& source, std::uint16_t id);
  ProbeKind kind() const override { return ProbeKind::icmp6; }
  Result<void> send(ProbeSeq seq, const IpAddress& target, std::uint64_t nonce) override;
  Result<void> discover(std::uint64_t nonce) override;

 private:
  Icmp6Prober(IpAddress source, unsigned ifindex, std::uint16_t id)
      : source_(source), ifindex_(ifindex), id_(id) {}
  Result<void> send_echo(const IpAddress& to, ProbeSeq seq, std::uint32_t kind, std::uint64_t nonce);
  void readable() override;
  IpAddress source_;
  unsigned ifindex_;
  std::uint16_t id_;
};

// Pure packet helpers (tested on byte buffers).
struct EchoPayload {
  std::uint32_t kind = kProbeKindUnicast;
  std::uint64_t nonce = 0;
  std::int64_t sent_ns = 0;  // monotonic
};
// An ICMP (type 8) or ICMPv6 (type 128) echo request; the ICMPv4 checksum is filled,
// the ICMPv6 one left to the kernel.
std::vector<std::uint8_t> build_echo_request(Family family, std::uint16_t id, ProbeSeq seq, const EchoPayload& p);
struct EchoReply {
  std::uint16_t id = 0;
  ProbeSeq seq = 0;
  EchoPayload payload;
};
// Parses an echo reply starting at the ICMP header. nullopt: not an echo reply or
// malformed (short, wrong code, bad ICMPv4 checksum).
std::optional<EchoReply> parse_echo_reply(Family family, const std::uint8_t* data, std::size_t len);

}  // namespace mpathd::detect
