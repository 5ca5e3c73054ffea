// What the Engine publishes. D-Bus signals, hooks, persistence, routing and logs all
// follow from these.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/enums.hpp"
#include "core/types.hpp"

namespace mpathd {

struct MemberSnapshot {
  MemberState state = MemberState::unknown;
  LinkState link = LinkState::unknown;
  ProbeState probe = ProbeState::disabled;
  std::uint32_t flags = 0;
  bool operator==(const MemberSnapshot&) const = default;
};

struct MemberChanged {
  std::string group;
  std::string member;
  MemberSnapshot before;
  MemberSnapshot after;
  Reason reason = Reason::none;
};

struct GroupChanged {
  std::string group;
  GroupState before = GroupState::failed;
  GroupState after = GroupState::failed;
  Reason reason = Reason::none;
};

struct AddressMoved {
  std::string group;
  IpPrefix address;
  std::string from;  // "" = it was nowhere
  std::string to;
  Reason reason = Reason::none;
};

// The group/member set itself changed (created, removed, reconfigured).
struct TopologyChanged {
  std::string group;
  std::string member;  // "" when the whole group is meant
  bool added = false;
};

// One probe acknowledged or lost (ipmpstat -p). Frequent: consumers that persist or
// log state ignore it.
struct ProbeCompleted {
  std::string group;
  std::string member;
  std::uint32_t sequence = 0;
  IpAddress target;
  bool acked = false;
  Duration net_rtt{};
  Duration rtt{};
  Duration rtt_avg{};
  Duration rtt_dev{};
};

// A member's probe targets (or their mode) changed.
struct TargetsChanged {
  std::string group;
  std::string member;
  TargetMode mode = TargetMode::disabled;
  std::vector<IpAddress> targets;
};

// The kernel's flags of a member's interface changed (link_flag::), e.g. `ip link set
// DEV down` or multicast turned off. Shown only; no decision depends on them.
struct LinkFlagsChanged {
  std::string group;
  std::string member;
  std::uint32_t before = 0;
  std::uint32_t after = 0;
};

using Event = std::variant<MemberChanged, GroupChanged, AddressMoved, TopologyChanged, ProbeCompleted, TargetsChanged,
                           LinkFlagsChanged>;

std::string describe(const Event& e);  // one line for logs: "g0/m0: ok -> failed (link-down)"

}  // namespace mpathd
