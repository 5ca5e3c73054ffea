// The machine-readable snapshot of the daemon's state (runtime-dir/status.json), for
// scripts and monitoring that do not speak D-Bus, like /proc/net/bonding for bonds.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/engine.hpp"

namespace mpathd {

nlohmann::json member_json(const Group& g, const Member& m);
// `ready`: start-up is over (the D-Bus name is owned, or the bus was found unavailable,
// and READY=1 was sent); status.json's "started" says so, and test harnesses wait for it.
// The association registry of shared addresses: its level ("ebpf", "sock-diag") and why
// eBPF is not in force ("" when it is).
struct RegistryStatus {
  std::string level;
  std::string reason;
};
nlohmann::json status_json(const Engine& engine, bool ready, const RegistryStatus& registry = {});

}  // namespace mpathd
