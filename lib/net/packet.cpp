#include "net/packet.hpp"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/kernel.hpp"
#include "net/nl_socket.hpp"

namespace mpathd::net {
namespace {

constexpr std::array<std::uint8_t, 6> kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr std::array<std::uint8_t, 6> kAllNodesMac{0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
constexpr std::uint8_t kIcmpv6 = 58;
constexpr std::uint8_t kNeighborSolicit = 135;
constexpr std::uint8_t kNeighborAdvert = 136;
constexpr std::uint8_t kOptSourceLinkAddr = 1;
constexpr std::uint8_t kOverrideFlag = 0x20;
constexpr std::uint8_t kOptTargetLinkAddr = 2;
constexpr std::size_t kNaLength = 24 + 8;  // the NA and one 8-byte option

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  template <std::size_t N>
  void bytes(const std::array<std::uint8_t, N>& b, std::size_t n = N) {
    out_.insert(out_.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
  }
  std::vector<std::uint8_t>& out() { return out_; }

 private:
  std::vector<std::uint8_t> out_;
};

void ethernet(Writer& w, const std::array<std::uint8_t, 6>& dst, const Mac& src,
              std::uint16_t type) {
  w.bytes(dst);
  w.bytes(src.bytes);
  w.u16(type);
}

IpAddress all_nodes() {
  IpAddress a;
  a.family = Family::v6;
  a.bytes = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return a;
}

}  // namespace

std::vector<std::uint8_t> build_gratuitous_arp(const Mac& src, const IpAddress& ip, bool reply) {
  if (!ip.is_v4()) return {};
  Writer w;
  ethernet(w, kBroadcast, src, ETH_P_ARP);
  w.u16(1);  // hardware type: Ethernet
  w.u16(ETH_P_IP);
  w.u8(6);
  w.u8(4);
  w.u16(reply ? 2 : 1);
  w.bytes(src.bytes);
  w.bytes(ip.bytes, 4);
  w.bytes(reply ? kBroadcast : std::array<std::uint8_t, 6>{});
  w.bytes(ip.bytes, 4);
  return std::move(w.out());
}

std::uint16_t icmpv6_checksum(const IpAddress& src, const IpAddress& dst, const std::uint8_t* msg,
                              std::size_t len) {
  std::uint32_t sum = 0;
  auto add = [&sum](const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; i += 2)
      sum += static_cast<std::uint32_t>(p[i] << 8) + (i + 1 < n ? p[i + 1] : 0u);
  };
  add(src.bytes.data(), 16);
  add(dst.bytes.data(), 16);
  const auto n = static_cast<std::uint32_t>(len);
  const std::uint8_t tail[8] = {static_cast<std::uint8_t>(n >> 24),
                                static_cast<std::uint8_t>(n >> 16),
                                static_cast<std::uint8_t>(n >> 8),
                                static_cast<std::uint8_t>(n),
                                0,
                                0,
                                0,
                                kIcmpv6};
  add(tail, sizeof tail);
  add(msg, len);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// The frame of an ND message (NS or NA) with one 8-byte link-layer address option:
// Ethernet, then the IPv6 header (hop limit 255: receivers drop ND that crossed a
// router); `body` writes the ICMPv6 message, whose checksum is filled in here.
template <typename Body>
std::vector<std::uint8_t> nd_frame(const std::array<std::uint8_t, 6>& dst_mac, const Mac& src_mac,
                                   const IpAddress& src, const IpAddress& dst, Body&& body) {
  Writer w;
  ethernet(w, dst_mac, src_mac, ETH_P_IPV6);
  w.u8(0x60);  // version 6, traffic class 0, flow label 0
  w.u8(0);
  w.u16(0);
  w.u16(kNaLength);
  w.u8(kIcmpv6);
  w.u8(255);
  w.bytes(src.bytes);
  w.bytes(dst.bytes);
  const std::size_t icmp = w.out().size();
  body(w);
  auto& out = w.out();
  const std::uint16_t sum = icmpv6_checksum(src, dst, out.data() + icmp, out.size() - icmp);
  out[icmp + 2] = static_cast<std::uint8_t>(sum >> 8);
  out[icmp + 3] = static_cast<std::uint8_t>(sum);
  return std::move(out);
}

std::vector<std::uint8_t> build_neighbor_solicitation(const Mac& src_mac, const IpAddress& src,
                                                      const IpAddress& target) {
  if (src.is_v4() || target.is_v4()) return {};
  IpAddress dst;  // solicited-node multicast: ff02::1:ff00:0/104 + the target's low 24 bits
  dst.family = Family::v6;
  dst.bytes = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target.bytes[13], target.bytes[14], target.bytes[15]};
  const std::array<std::uint8_t, 6> dst_mac{0x33, 0x33, 0xff, target.bytes[13], target.bytes[14], target.bytes[15]};
  // An NS with one 8-byte option has the NA's length.
  return nd_frame(dst_mac, src_mac, src, dst, [&](Writer& w) {
    w.u8(kNeighborSolicit);
    w.u8(0);
    w.u16(0);  // checksum
    w.u16(0);  // reserved
    w.u16(0);
    w.bytes(target.bytes);
    w.u8(kOptSourceLinkAddr);
    w.u8(1);
    w.bytes(src_mac.bytes);
  });
}

std::vector<std::uint8_t> build_unsolicited_na(const Mac& src, const IpAddress& target) {
  if (target.is_v4()) return {};
  return nd_frame(kAllNodesMac, src, target, all_nodes(), [&](Writer& w) {
    w.u8(kNeighborAdvert);
    w.u8(0);
    w.u16(0);  // checksum
    w.u8(kOverrideFlag);
    w.u8(0);
    w.u16(0);
    w.bytes(target.bytes);
    w.u8(kOptTargetLinkAddr);
    w.u8(1);  // option length in units of 8 bytes
    w.bytes(src.bytes);
  });
}

Result<PacketSender> PacketSender::open() {
  // Protocol 0: this socket only sends, so the kernel queues nothing for it.
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(detail::errno_error(errno, "packet socket"));
  return PacketSender(fd);
}

PacketSender& PacketSender::operator=(PacketSender&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

PacketSender::~PacketSender() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> PacketSender::send(unsigned ifindex, const std::vector<std::uint8_t>& frame,
                                std::string_view what, const IpAddress& ip) {
  auto name = [&] { return std::string(what) + " for " + ip.str() + " on " + ifname_or_index(ifindex); };
  if (frame.size() < ETH_HLEN) return fail(Errc::invalid_argument, name() + ": bad address");
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(ifindex);
  to.sll_protocol = htons(static_cast<std::uint16_t>(frame[12] << 8 | frame[13]));
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame.data(), 6);
  ssize_t n;
  do {
    n = ::sendto(fd_, frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                 sizeof to);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int e = errno;
    return std::unexpected(detail::errno_error(e, name()));
  }
  return {};
}

Result<void> PacketSender::send_arp_announcement(unsigned ifindex, const Mac& src,
                                                 const IpAddress& ip) {
  if (auto r = send(ifindex, build_gratuitous_arp(src, ip, false), "gratuitous ARP", ip); !r) return r;
  return send(ifindex, build_gratuitous_arp(src, ip, true), "gratuitous ARP", ip);
}

Result<void> PacketSender::send_unsolicited_na(unsigned ifindex, const Mac& src,
                                               const IpAddress& target) {
  return send(ifindex, build_unsolicited_na(src, target), "unsolicited NA", target);
}

Result<void> PacketSender::send_neighbor_solicitation(unsigned ifindex, const Mac& src_mac, const IpAddress& src,
                                                      const IpAddress& target) {
  return send(ifindex, build_neighbor_solicitation(src_mac, src, target), "neighbour solicitation", target);
}

}  // namespace mpathd::net
