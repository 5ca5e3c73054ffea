// The machine-readable snapshot of the daemon's state (runtime-dir/status.json), for
// scripts and monitoring that do not speak D-Bus, like /proc/net/bonding for bonds.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/engine.hpp"

namespace mpathd {

nlohmann::json member_json(const Group& g, const Member& m);
nlohmann::json group_json(const Group& g);
// The association registry of shared addresses: its level ("ebpf", "sock-diag") and why
// eBPF is not in force ("" when it is).
struct RegistryStatus {
  std::string level;
  std::string reason;
};
// status.json's top-level object but for its "groups" and "anonymous" (status_text()
// writes those). `ready`: start-up is over (the D-Bus name is owned, or the bus was
// found unavailable, and READY=1 was sent); status.json's "started" says so, and test
// harnesses wait for it.
nlohmann::json status_json(bool ready, const RegistryStatus& registry = {});
// The text of status.json: `root` (status_json() and what the daemon adds to it) with
// "groups" (group_json() of each group) and "anonymous" (member_json() of each
// anonymous member), as nlohmann's dump(2) writes the whole, but made one group at a
// time: the whole document's tree was ~8 MB of short-lived allocations at 1024
// members, and the heap kept that high-water mark resident.
std::string status_text(const nlohmann::json& root, const Engine& engine);

}  // namespace mpathd
