// Fuzz target: probe replies as they come off the sockets: ICMP echo replies,
// ICMPv6 echo replies (from the ICMP header on) and Ethernet ARP frames. The first
// byte chooses the parser; the rest is the packet, in a heap block of its exact size.
#include <cstdint>
#include <vector>

#include "detect/arp.hpp"
#include "detect/icmp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mpathd;
  using namespace mpathd::detect;
  if (size < 1) return 0;
  const std::vector<std::uint8_t> packet(data + 1, data + size);
  switch (data[0] % 3) {
    case 0: (void)parse_echo_reply(Family::v4, packet.data(), packet.size()); break;
    case 1: (void)parse_echo_reply(Family::v6, packet.data(), packet.size()); break;
    default: (void)parse_arp_reply(packet.data(), packet.size()); break;
  }
  return 0;
}
