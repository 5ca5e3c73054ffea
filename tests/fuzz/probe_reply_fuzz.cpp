// Fuzz target: probe replies as they come off the sockets: ICMP echo replies,
// ICMPv6 echo replies (from the ICMP header on) and Ethernet ARP frames. The first
// byte chooses the parser; the rest is the packet, in a heap block of its exact size.
// An echo reply that parses is then taken, as the prober's deliver() does, as the
// answer to an outstanding probe of a ProbeSession: its payload's send time is the
// network's word and must not upset the RTT arithmetic.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/probe.hpp"
#include "detect/arp.hpp"
#include "detect/icmp.hpp"

namespace {

using namespace mpathd;

void answer_a_probe(const detect::EchoReply& rep) {
  const TimePoint t0 = TimePoint{} + std::chrono::hours(1);
  ProbeSession s{ProbeSession::Options{}};
  s.set_targets({*IpAddress::parse("198.18.0.1")});
  s.start(t0);
  for (int i = 0; i < 4; ++i) {
    const TimePoint now = *s.next_deadline();
    auto tick = s.on_timer(now);
    if (!tick.send) continue;
    const TimePoint sent = TimePoint{} + Duration(rep.payload.sent_ns);  // as in deliver()
    const TimePoint received = now + std::chrono::milliseconds(3);
    auto reply = s.on_reply(tick.send->seq, tick.send->target, sent, received, received);
    if (reply.result && (reply.result->net_rtt < Duration::zero() || reply.result->net_rtt > received - now))
      std::abort();  // a network RTT outside the probe's own
    return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mpathd::detect;
  if (size < 1) return 0;
  const std::vector<std::uint8_t> packet(data + 1, data + size);
  switch (data[0] % 3) {
    case 0:
    case 1:
      if (auto rep = parse_echo_reply(data[0] % 3 ? Family::v6 : Family::v4, packet.data(), packet.size()))
        answer_a_probe(*rep);
      break;
    default: (void)parse_arp_reply(packet.data(), packet.size()); break;
  }
  return 0;
}
