// Helpers shared by the Engine's translation units (engine*.cpp); not part of the API.
#pragma once

#include <algorithm>
#include <string>

#include "core/engine.hpp"

namespace mpathd::engine_detail {

inline std::size_t count_if_members(const Group& g, auto pred) {
  return static_cast<std::size_t>(std::count_if(g.members.begin(), g.members.end(), pred));
}

// How many members the policy keeps active: as many as non-standby members, never zero.
inline std::size_t active_target(const Group& g) {
  return std::max<std::size_t>(1, count_if_members(g, [](const Member& m) { return !m.standby; }));
}

// The member a new data address of family f calls home: round-robin over the
// non-standby members (all members if every one is a standby), each family on its own.
inline std::string pick_home(const Group& g, Family f) {
  std::vector<const Member*> homes;
  for (const auto& m : g.members)
    if (!m.standby) homes.push_back(&m);
  if (homes.empty())
    for (const auto& m : g.members) homes.push_back(&m);
  if (homes.empty()) return "";
  auto n = static_cast<std::size_t>(
      std::count_if(g.data.begin(), g.data.end(), [&](const DataAddress& a) { return a.prefix.addr.family == f; }));
  return homes[n % homes.size()]->name;
}

inline Member make_member(const GroupConfig& gc, const MemberConfig& mc) {
  Member m;
  m.name = mc.name;
  m.group = gc.name;
  m.standby = mc.standby;
  m.test_addresses = mc.test_addresses;
  return m;
}

inline Group make_group(const GroupConfig& gc, const Config& c) {
  Group g;
  g.name = gc.name;
  g.ifname = gc.interface.empty() ? gc.name : gc.interface;
  g.config = gc;
  g.config.interface = g.ifname;
  g.failback = c.failback_of(gc);
  g.fdt = c.failure_detection_time_of(gc);
  for (const auto& mc : gc.members) g.members.push_back(make_member(gc, mc));
  for (const auto& p : gc.data_addresses) g.data.push_back({p, "", pick_home(g, p.addr.family), {}});
  for (const auto& p : gc.shared_addresses) g.shared.push_back(SharedAddress{p, SharedState::released, "", Reason::none, ""});
  return g;
}

}  // namespace mpathd::engine_detail
