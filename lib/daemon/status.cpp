#include "daemon/status.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/version.hpp"
#include "guard/guard.hpp"

namespace mpathd {

nlohmann::json member_json(const Group& g, const Member& m) {
  nlohmann::json flags = flag_strings(m.flags());
  nlohmann::json targets = nlohmann::json::array();
  for (const auto& t : m.targets)
    targets.push_back({{"address", t.address.str()},
                       {"rtt_avg_us", std::chrono::duration_cast<std::chrono::microseconds>(t.rtt_avg).count()},
                       {"rtt_dev_us", std::chrono::duration_cast<std::chrono::microseconds>(t.rtt_dev).count()}});
  // A dual-stack member's probe state per family ({} when probed on one family).
  nlohmann::json probe_families = nlohmann::json::object();
  if (m.probe_v4) probe_families["ipv4"] = to_string(*m.probe_v4);
  if (m.probe_v6) probe_families["ipv6"] = to_string(*m.probe_v6);
  return {
      {"name", m.name},
      {"group", g.name},
      {"ifindex", m.ifindex},
      {"state", to_string(m.state)},
      {"active", m.active()},
      {"standby", m.standby},
      {"inactive", m.inactive},
      {"offline", m.state == MemberState::offline},
      {"hwaddr_dup", m.hwaddr_dup},
      {"link", to_string(m.link)},
      {"probe", to_string(m.probe)},
      {"probe_families", probe_families},
      {"flags", flags},
      {"link_flags", link_flag_strings(m.link_flags)},
      {"reason", to_string(m.reason)},
      {"mac", m.mac.str()},
      {"target_mode", to_string(m.target_mode)},
      {"targets", targets},
      {"counters",
       {{"state_changes", m.counters.state_changes},
        {"failures", m.counters.failures},
        {"repairs", m.counters.repairs},
        {"link_ups", m.counters.link_ups},
        {"link_downs", m.counters.link_downs},
        {"addresses_in", m.counters.addresses_in},
        {"addresses_out", m.counters.addresses_out}}},
  };
}

nlohmann::json status_json(const Engine& engine, bool ready, const RegistryStatus& registry) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : engine.groups()) {
    nlohmann::json members = nlohmann::json::array();
    nlohmann::json outbound = nlohmann::json::array();
    for (const auto& m : g.members) {
      members.push_back(member_json(g, m));
      if (m.active()) outbound.push_back(m.name);
    }
    nlohmann::json addresses = nlohmann::json::array();
    for (const auto& a : g.data) {
      const bool up = g.up(a);
      addresses.push_back({{"address", a.prefix.str()},
                           {"holder", a.holder},
                           {"home", a.home},
                           {"state", up ? "up" : "down"},
                           {"refused", a.refused},  // the kernel's error while it refuses the address
                           {"inbound", up ? a.holder : ""},
                           {"outbound", up ? nlohmann::json::array({a.holder}) : nlohmann::json::array()}});
    }
    nlohmann::json shared = nlohmann::json::array();
    for (const auto& a : g.shared)
      shared.push_back({{"address", a.prefix.str()},
                        {"state", to_string(a.state)},
                        {"holder", a.holder},
                        {"reason", to_string(a.reason)},
                        {"detail", a.detail}});
    groups.push_back({{"name", g.name},
                      {"interface", g.ifname},
                      {"state", to_string(g.state)},
                      {"reason", to_string(g.reason)},
                      {"fdt_ms", std::chrono::duration_cast<milliseconds>(g.fdt).count()},
                      {"failback", g.failback},
                      {"members", members},
                      {"addresses", addresses},
                      {"shared", shared}});
  }
  nlohmann::json anonymous = nlohmann::json::array();
  for (const auto& m : engine.anonymous().members) anonymous.push_back(member_json(engine.anonymous(), m));
  return {{"version", kVersion},
          {"pid", ::getpid()},
          {"started", ready},
          {"callback_exceptions", callback_exceptions()},
          {"registry", {{"level", registry.level}, {"reason", registry.reason}}},
          {"groups", groups},
          {"anonymous", anonymous}};
}

}  // namespace mpathd
