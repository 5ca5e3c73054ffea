// The state model: groups, members, data addresses. Plain data; the Engine is the
// only writer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/enums.hpp"
#include "core/events.hpp"
#include "core/types.hpp"

namespace mpathd {

struct MemberCounters {
  std::uint64_t state_changes = 0;
  std::uint64_t failures = 0;
  std::uint64_t repairs = 0;
  std::uint64_t link_ups = 0;
  std::uint64_t link_downs = 0;
  std::uint64_t addresses_in = 0;   // data addresses moved onto this member
  std::uint64_t addresses_out = 0;  // data addresses moved away from it
  bool operator==(const MemberCounters&) const = default;
};

struct ProbeTargetInfo {
  IpAddress address;
  Duration rtt_avg{};
  Duration rtt_dev{};
  bool operator==(const ProbeTargetInfo&) const = default;
};

struct Member {
  std::string name;   // kernel interface name
  std::string group;  // owning group's name; "" = anonymous (tracked, never failed over)
  bool standby = false;
  std::vector<IpPrefix> test_addresses;

  // What the kernel edge reports.
  unsigned ifindex = 0;  // 0 while the kernel has no such interface
  Mac mac;
  std::uint32_t link_flags = 0;  // the kernel's IFF_* (link_flag::); 0 while it has no such interface
  LinkState link = LinkState::unknown;       // published (see below)
  ProbeState probe = ProbeState::disabled;  // published (see below)

  // Verdicts and administrative marks; state and flags are derived from them.
  bool link_trusted = true;  // false while link-flap damping holds back a repair
  bool restored_failed = false;  // FAILED before a restart: needs fresh evidence to repair
  // Probing, as the member's detector reports it.
  TimePoint probe_first_failure{};  // TFF of the current run of lost probes
  TimePoint probe_last_success{};   // TLS
  Duration needed_fdt{};            // non-zero when the RTTs make the FDT impossible
  // A dual-stack member's probe state per family (ProbeVerdict::v4/v6); `probe` is
  // their combination. nullopt when the member is probed on one family only.
  std::optional<ProbeState> probe_v4;
  std::optional<ProbeState> probe_v6;
  TargetMode target_mode = TargetMode::disabled;
  std::vector<ProbeTargetInfo> targets;  // in firing order
  bool admin_offline = false;
  bool hwaddr_dup = false;

  // Published state: with link and probe, what MemberChanged carries. Written only by
  // the Engine's writers (engine.hpp: set_state, set_inactive, set_link, set_probe).
  MemberState state = MemberState::unknown;
  bool inactive = false;
  Reason reason = Reason::none;  // reason of the last change
  TimePoint last_change{};

  std::vector<TimePoint> link_up_times;  // recent down->up transitions (flap damping)
  TimePoint trusted_at{};                // when a flapping link may be trusted again
  MemberCounters counters;

  MemberSnapshot published;  // what subscribers were last told

  bool usable() const { return state == MemberState::ok; }
  bool active() const { return usable() && !inactive; }
  std::uint32_t flags() const;
};

struct DataAddress {
  IpPrefix prefix;
  std::string holder;  // member that carries it in the kernel; "" = nowhere yet
  std::string home;    // member it returns to on failback
  std::string refused;  // the kernel's error while it refuses the address on holder; "" = fine
};

// A shared (cluster-wide) address of the group on this node (DESIGN.md §5). While held
// it is placed like a data address (on an active member, moving between members).
struct SharedAddress {
  IpPrefix prefix;
  SharedState state = SharedState::released;
  std::string holder;  // member that carries it in the kernel while held; "" when released
  Reason reason = Reason::none;  // of the last transition
  std::string detail;  // why it is unserviceable, or why it was released by mpathd itself
  bool operator==(const SharedAddress&) const = default;
};

struct Group {
  std::string name;
  std::string ifname;  // group interface name, as ipmpstat's GROUP column
  std::vector<Member> members;
  std::vector<DataAddress> data;
  std::vector<SharedAddress> shared;  // in configuration order
  GroupState state = GroupState::failed;  // a named group starts failed until a member is usable
  Reason reason = Reason::none;
  GroupConfig config;
  bool failback = true;
  Duration fdt{};  // in force: the configured one, or more when the RTTs need it

  bool anonymous() const { return name.empty(); }
  Member* find(std::string_view member);
  const Member* find(std::string_view member) const;
  std::size_t load(std::string_view member) const;  // data addresses held
  const SharedAddress* find_shared(const IpAddress& address) const;
  bool up(const DataAddress& a) const;  // on an active holder, and the kernel took it
};

}  // namespace mpathd
