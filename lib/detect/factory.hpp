// Opens the strategy that core's choose_probe_kind() picked for a member.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "detect/strategy.hpp"

namespace mpathd::detect {

// What a member offers as a probe source.
struct ProbeSource {
  unsigned ifindex = 0;
  std::string ifname;
  Mac mac;                             // arp
  std::optional<IpAddress> test_v4;    // icmp: the IPv4 test address
  std::optional<IpAddress> link_local; // icmp6: the IPv6 link-local address
};

// icmp/icmp6 use id probe_icmp_id(getpid(), ifindex). ProbeKind::none, or a source
// missing what the kind needs, is Errc::invalid_argument.
Result<std::unique_ptr<ProbeStrategy>> open_strategy(sd_event* event, ProbeKind kind, const ProbeSource& src);

}  // namespace mpathd::detect
