#include "daemon/status.hpp"

#include <unistd.h>

#include <map>
#include <string_view>

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
      {"probe_families", std::move(probe_families)},
      {"flags", std::move(flags)},
      {"link_flags", link_flag_strings(m.link_flags)},
      {"reason", to_string(m.reason)},
      {"mac", m.mac.str()},
      {"target_mode", to_string(m.target_mode)},
      {"targets", std::move(targets)},
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

nlohmann::json group_json(const Group& g) {
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
  return {{"name", g.name},
          {"interface", g.ifname},
          {"state", to_string(g.state)},
          {"reason", to_string(g.reason)},
          {"fdt_ms", std::chrono::duration_cast<milliseconds>(g.fdt).count()},
          {"failback", g.failback},
          {"members", std::move(members)},
          {"addresses", std::move(addresses)},
          {"shared", std::move(shared)}};
}

nlohmann::json status_json(bool ready, const RegistryStatus& registry) {
  return {{"version", kVersion},
          {"pid", ::getpid()},
          {"started", ready},
          {"callback_exceptions", callback_exceptions()},
          {"registry", {{"level", registry.level}, {"reason", registry.reason}}}};
}

namespace {
// `j` as dump(2) writes it nested `depth` levels deep: its lines after the first
// indented by 2 x depth more. (A newline in dump()'s text is structural: newlines in
// strings are escaped.)
void append_dump(std::string& out, const nlohmann::json& j, std::size_t depth) {
  const std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string pad(2 * depth, ' ');
  std::size_t from = 0;
  for (std::size_t nl; (nl = text.find('\n', from)) != std::string::npos; from = nl + 1) {
    out.append(text, from, nl + 1 - from);
    out += pad;
  }
  out.append(text, from);
}

// An array at depth 1 (a value of the top-level object), as dump(2) writes it, made
// one element at a time.
template <class Items, class ToJson>
void append_array(std::string& out, const Items& items, ToJson&& to_json) {
  if (items.empty()) {
    out += "[]";
    return;
  }
  out += "[\n";
  bool first = true;
  for (const auto& item : items) {
    out += first ? "    " : ",\n    ";
    first = false;
    append_dump(out, to_json(item), 2);
  }
  out += "\n  ]";
}
}  // namespace

std::string status_text(const nlohmann::json& root, const Engine& engine) {
  // The keys in dump()'s order (nlohmann::json keeps objects sorted), the two arrays
  // among them.
  std::map<std::string_view, const nlohmann::json*> keys;
  for (const auto& [key, value] : root.items()) keys.emplace(key, &value);
  keys.emplace("groups", nullptr);
  keys.emplace("anonymous", nullptr);
  std::string out = "{\n";
  bool first = true;
  for (const auto& [key, value] : keys) {
    out += first ? "  \"" : ",\n  \"";
    first = false;
    out += key;
    out += "\": ";
    if (value)
      append_dump(out, *value, 1);
    else if (key == "groups")
      append_array(out, engine.groups(), [](const Group& g) { return group_json(g); });
    else
      append_array(out, engine.anonymous().members,
                   [&](const Member& m) { return member_json(engine.anonymous(), m); });
  }
  out += "\n}\n";
  return out;
}

}  // namespace mpathd
