// The machine-readable snapshot of the daemon's state (runtime-dir/status.json), for
// scripts and monitoring that do not speak D-Bus, like /proc/net/bonding for bonds.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/engine.hpp"

namespace mpathd {

nlohmann::json member_json(const Group& g, const Member& m);
nlohmann::json status_json(const Engine& engine);
std::string flag_names(std::uint32_t flags);  // "RUNNING,STANDBY" style, "" when none

}  // namespace mpathd
