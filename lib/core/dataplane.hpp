// What the kernel should hold for the current placement, as plain values. The daemon
// diffs this against what it last applied and performs only the difference.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"

namespace mpathd {

inline constexpr unsigned kMainTable = 254;
inline constexpr unsigned char kRouteProtocol = 77;  // routes installed by mpathd

struct PlacedAddress {
  std::string ifname;
  unsigned ifindex = 0;
  IpPrefix prefix;
  bool operator==(const PlacedAddress&) const = default;
};

struct PlacedRoute {
  unsigned table = kMainTable;
  IpPrefix dst;
  std::optional<IpAddress> gateway;
  std::string ifname;
  unsigned ifindex = 0;
  bool operator==(const PlacedRoute&) const = default;
};

struct PlacedRule {
  IpPrefix src;  // one data address, full length
  unsigned table = 0;
  unsigned priority = 0;
  bool operator==(const PlacedRule&) const = default;
};

struct DataPlaneState {
  std::vector<PlacedAddress> addresses;
  std::vector<PlacedRoute> routes;
  std::vector<PlacedRule> rules;
  bool operator==(const DataPlaneState&) const = default;
};

// For every group: each member's test addresses on it; each data address on its holder; a "from <address>" rule into the
// holder's table (routing_table_base + ifindex) so outbound traffic sourced from a
// data address leaves through the member that holds it; in that table the address's
// subnet and the group's routes via the holder; and the group's routes in the main
// table via the holder of the group's first data address of the route's family.
DataPlaneState desired_dataplane(const std::vector<Group>& groups, const Config& config);

unsigned member_table(const Config& config, unsigned ifindex);

}  // namespace mpathd
