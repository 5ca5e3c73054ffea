// Neighbour notifications after an address move: gratuitous ARP and unsolicited
// neighbour advertisements, built as whole Ethernet frames and sent on AF_PACKET.
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"

namespace mpathd::net {

// A broadcast ARP frame (42 bytes, unpadded) announcing `ip` at `src`. Request:
// op 1, tha 00:00:00:00:00:00; reply: op 2, tha ff:ff:ff:ff:ff:ff. Sender and target
// IP are both `ip`, the data address. Empty if `ip` is not IPv4.
std::vector<std::uint8_t> build_gratuitous_arp(const Mac& src, const IpAddress& ip, bool reply);

// An unsolicited NA (86 bytes) from `target` to ff02::1 (33:33:00:00:00:01), hop limit
// 255, Override set, Solicited and Router clear, with a target link-layer address
// option. Empty if `target` is not IPv6.
std::vector<std::uint8_t> build_unsolicited_na(const Mac& src, const IpAddress& target);

// A neighbour solicitation (86 bytes) for `target` from `src` (an address of ours on
// the link) to target's solicited-node multicast group (ff02::1:ffXX:XXXX,
// 33:33:ff:XX:XX:XX), hop limit 255, with a source link-layer address option. Empty
// unless both are IPv6.
std::vector<std::uint8_t> build_neighbor_solicitation(const Mac& src_mac, const IpAddress& src,
                                                      const IpAddress& target);

// The Internet checksum of an ICMPv6 message (with its checksum field zero) over the
// IPv6 pseudo-header.
std::uint16_t icmpv6_checksum(const IpAddress& src, const IpAddress& dst, const std::uint8_t* msg,
                              std::size_t len);

class PacketSender {
 public:
  static Result<PacketSender> open();
  PacketSender(PacketSender&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  PacketSender& operator=(PacketSender&& o) noexcept;
  PacketSender(const PacketSender&) = delete;
  PacketSender& operator=(const PacketSender&) = delete;
  ~PacketSender();

  // Sends the gratuitous ARP request and then the reply.
  Result<void> send_arp_announcement(unsigned ifindex, const Mac& src, const IpAddress& ip);
  Result<void> send_unsolicited_na(unsigned ifindex, const Mac& src, const IpAddress& target);
  Result<void> send_neighbor_solicitation(unsigned ifindex, const Mac& src_mac, const IpAddress& src,
                                          const IpAddress& target);

 private:
  explicit PacketSender(int fd) : fd_(fd) {}
  // `what` and `ip` name the frame in an error ("gratuitous ARP for IP on NAME"); the
  // interface's name is looked up only then (it costs a socket and an ioctl).
  Result<void> send(unsigned ifindex, const std::vector<std::uint8_t>& frame,
                    std::string_view what, const IpAddress& ip);
  int fd_ = -1;
};

}  // namespace mpathd::net
