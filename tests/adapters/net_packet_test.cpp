// Gratuitous ARP and unsolicited NA frames, byte by byte.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "net/packet.hpp"

namespace mpathd::net {
namespace {

using Bytes = std::vector<std::uint8_t>;

const Mac kMac = *Mac::parse("02:00:5e:10:00:01");

TEST(GratuitousArp, RequestCarriesTheDataAddressBothWays) {
  const Bytes expected = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // Ethernet broadcast
      0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,  // source MAC
      0x08, 0x06,                          // ARP
      0x00, 0x01, 0x08, 0x00, 6,    4,     // Ethernet / IPv4
      0x00, 0x01,                          // request
      0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,  // sha
      198,  18,   1,    10,                // spa = the data address
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // tha
      198,  18,   1,    10,                // tpa
  };
  EXPECT_EQ(build_gratuitous_arp(kMac, *IpAddress::parse("198.18.1.10"), false), expected);
}

TEST(GratuitousArp, ReplyHasBroadcastTargetMac) {
  const Bytes expected = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x5e, 0x10, 0x00,
      0x01, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6,    4,    0x00, 0x02,  // reply
      0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 198,  19,   255,  254,  0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 198,  19,   255,  254,
  };
  EXPECT_EQ(build_gratuitous_arp(kMac, *IpAddress::parse("198.19.255.254"), true), expected);
}

TEST(GratuitousArp, RefusesIpv6) {
  EXPECT_TRUE(build_gratuitous_arp(kMac, *IpAddress::parse("2001:db8::1"), false).empty());
}

// Sums the frame's ICMPv6 part with its pseudo-header, checksum included; a correct
// checksum makes the folded one's-complement sum 0xffff. Written independently of the
// library: 32-bit big-endian words, then folded.
std::uint16_t folded_sum_with_pseudo_header(const Bytes& f) {
  constexpr std::size_t ip = 14, icmp = 14 + 40;
  Bytes data(f.begin() + ip + 8, f.begin() + ip + 40);  // source and destination
  const std::size_t len = f.size() - icmp;
  data.insert(data.end(), {0, 0, static_cast<std::uint8_t>(len >> 8),
                           static_cast<std::uint8_t>(len), 0, 0, 0, f[ip + 6]});
  data.insert(data.end(), f.begin() + icmp, f.end());
  while (data.size() % 4) data.push_back(0);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 4)
    sum += std::uint64_t{data[i]} << 24 | std::uint64_t{data[i + 1]} << 16 |
           std::uint64_t{data[i + 2]} << 8 | data[i + 3];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

TEST(UnsolicitedNa, FrameIsByteExact) {
  const Bytes expected = {
      0x33, 0x33, 0x00, 0x00, 0x00, 0x01,  // all-nodes multicast MAC
      0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,  // source MAC
      0x86, 0xdd,                          // IPv6
      0x60, 0x00, 0x00, 0x00,              // version 6
      0x00, 0x20, 58,   255,               // payload 32, ICMPv6, hop limit 255
      0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0,    0,    0, 0, 0, 0, 0, 0, 0, 0x10,  // src = target
      0xff, 0x02, 0,    0,    0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0x01,  // ff02::1
      136,  0,    0x9a, 0xfa,  // NA, code 0, checksum (computed with Python)
      0x20, 0x00, 0x00, 0x00,  // Override; not Router, not Solicited
      0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0,    0,    0, 0, 0, 0, 0, 0, 0, 0x10,  // target
      2,    1,    0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,  // target link-layer address
  };
  const Bytes f = build_unsolicited_na(kMac, *IpAddress::parse("2001:db8:1::10"));
  EXPECT_EQ(f, expected);
  EXPECT_EQ(folded_sum_with_pseudo_header(f), 0xffff);
}

TEST(UnsolicitedNa, ChecksumHoldsForOtherAddresses) {
  for (const char* a : {"2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1"}) {
    const Bytes f = build_unsolicited_na(*Mac::parse("fe:ff:ff:ff:ff:fe"), *IpAddress::parse(a));
    ASSERT_EQ(f.size(), 86u) << a;
    EXPECT_EQ(folded_sum_with_pseudo_header(f), 0xffff) << a;
  }
}

// The solicitation mpathd sends for an IPv6 gateway after a move (dataplane_applier):
// from the data address to the gateway's solicited-node group, with our MAC.
TEST(NeighborSolicitation, GoesToTheSolicitedNodeGroupWithOurAddress) {
  const auto src = *IpAddress::parse("2001:db8:1::10"), gw = *IpAddress::parse("2001:db8:1::1:2:3");
  const Bytes f = build_neighbor_solicitation(kMac, src, gw);
  ASSERT_EQ(f.size(), 86u);
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 6), (Bytes{0x33, 0x33, 0xff, 0x02, 0x00, 0x03}));
  EXPECT_EQ(Bytes(f.begin() + 6, f.begin() + 12), Bytes(kMac.bytes.begin(), kMac.bytes.end()));
  EXPECT_EQ(f[14 + 7], 255);                                        // hop limit
  EXPECT_EQ(Bytes(f.begin() + 22, f.begin() + 38), Bytes(src.bytes.begin(), src.bytes.end()));
  EXPECT_EQ(Bytes(f.begin() + 38, f.begin() + 54),
            (Bytes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0x02, 0x00, 0x03}));
  EXPECT_EQ(f[54], 135);                                            // NS
  EXPECT_EQ(Bytes(f.begin() + 62, f.begin() + 78), Bytes(gw.bytes.begin(), gw.bytes.end()));
  EXPECT_EQ(f[78], 1);                                              // source link-layer address
  EXPECT_EQ(Bytes(f.begin() + 80, f.end()), Bytes(kMac.bytes.begin(), kMac.bytes.end()));
  EXPECT_EQ(folded_sum_with_pseudo_header(f), 0xffff);
  EXPECT_TRUE(build_neighbor_solicitation(kMac, *IpAddress::parse("198.18.1.10"), gw).empty());
}

TEST(UnsolicitedNa, RefusesIpv4) {
  EXPECT_TRUE(build_unsolicited_na(kMac, *IpAddress::parse("198.18.1.10")).empty());
}

}  // namespace
}  // namespace mpathd::net
