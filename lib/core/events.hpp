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

// A group's data address list or one address's home or kernel verdict changed
// (added, removed, moved home, refused by the kernel or taken after all). A change of
// holder alone is an AddressMoved.
struct DataAddressesChanged {
  std::string group;
  IpPrefix address;
  std::string home;     // its home member after the change ("" = it was removed)
  std::string refused;  // the kernel's error, "" = not refused
  Reason reason = Reason::none;
};

// Configured settings changed (a reload): the daemon's (group and member ""), a
// group's (its interface, failback, FDT, shared addresses, probing, routes) or a
// member's (standby, test addresses).
struct SettingsChanged {
  std::string group;   // "" = the daemon-wide settings
  std::string member;  // "" = the group's own settings
  Reason reason = Reason::config_reload;
};

// A group's effective failure detection time changed without its configuration: raised
// because the measured RTTs make the configured one impossible, or restored.
struct FdtChanged {
  std::string group;
  Duration before{};
  Duration after{};
  bool raised = false;  // after is above the configured time
};

// A shared address changed state (released / held / unserviceable) or, while held,
// moved to another member (from != to). Every transition is one event.
struct SharedAddressChanged {
  std::string group;
  IpPrefix address;
  SharedState before = SharedState::released;
  SharedState after = SharedState::released;
  std::string from;  // holder before ("" = none)
  std::string to;    // holder after ("" = none: released)
  Reason reason = Reason::none;
  std::string detail;  // why, when mpathd decided it by itself (group failure) or it is unserviceable
};

using Event = std::variant<MemberChanged, GroupChanged, AddressMoved, TopologyChanged, ProbeCompleted, TargetsChanged,
                           LinkFlagsChanged, DataAddressesChanged, SettingsChanged, FdtChanged, SharedAddressChanged>;

std::string describe(const Event& e);  // one line for logs: "g0/m0: ok -> failed (link-down)"

}  // namespace mpathd
