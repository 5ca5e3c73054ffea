// The tickle ACK (CTDB's "tickle"): after a takeover, a TCP ACK with seq 0 and ack 0
// from the shared address to each client of a connection the old owner had. The client
// answers with its own seq/ack, this kernel has no such connection and resets it, so the
// client gets ECONNRESET at once instead of hanging (kernel-hooks-lab §4).
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"

namespace mpathd::net {

// Pure: an IPv4 header + TCP ACK (seq 0, ack 0, window 1234, both checksums) from
// src:sport to dst:dport; 40 bytes. Empty unless both addresses are IPv4.
std::vector<std::uint8_t> build_tickle_v4(const IpAddress& src, std::uint16_t sport,
                                          const IpAddress& dst, std::uint16_t dport);
// Pure: the TCP ACK segment alone (20 bytes, checksum over the IPv6 pseudo-header) for
// an IPv6 raw socket. Empty unless both addresses are IPv6.
std::vector<std::uint8_t> build_tickle_tcp6(const IpAddress& src, std::uint16_t sport,
                                            const IpAddress& dst, std::uint16_t dport);

// Raw sockets (CAP_NET_RAW) of the caller's network namespace, opened once.
class TickleSender {
 public:
  static Result<TickleSender> open();
  TickleSender(TickleSender&& o) noexcept;
  TickleSender& operator=(TickleSender&& o) noexcept;
  TickleSender(const TickleSender&) = delete;
  TickleSender& operator=(const TickleSender&) = delete;
  ~TickleSender();

  // One tickle. The route is looked up with the source (IP_PKTINFO / IPV6_PKTINFO), so
  // policy rules on the shared address apply; it must be an address of this host.
  Result<void> send(const IpAddress& src, std::uint16_t sport, const IpAddress& dst,
                    std::uint16_t dport);

 private:
  TickleSender(int fd4, int fd6) : fd4_(fd4), fd6_(fd6) {}
  int fd4_ = -1;
  int fd6_ = -1;
};

}  // namespace mpathd::net
