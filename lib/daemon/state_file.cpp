#include "daemon/state_file.hpp"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mpathd {

namespace {

using nlohmann::json;

json prefixes(const std::vector<IpPrefix>& v) {
  json a = json::array();
  for (const auto& p : v) a.push_back(p.str());
  return a;
}

json group_config_json(const GroupConfig& g) {
  json members = json::array();
  for (const auto& m : g.members)
    members.push_back({{"name", m.name}, {"standby", m.standby}, {"test-addresses", prefixes(m.test_addresses)}});
  json routes = json::array();
  for (const auto& r : g.routes) routes.push_back({{"to", r.to.str()}, {"via", r.via.str()}});
  json targets = json::array();
  for (const auto& t : g.targets) targets.push_back(t.str());
  json j = {{"name", g.name},
            {"interface", g.interface},
            {"members", members},
            {"data-addresses", prefixes(g.data_addresses)},
            {"shared-addresses", prefixes(g.shared_addresses)},
            {"routes", routes},
            {"probe-method", to_string(g.probe_method)},
            {"targets", targets}};
  if (g.failure_detection_time)
    j["failure-detection-time-ms"] = std::chrono::duration_cast<milliseconds>(*g.failure_detection_time).count();
  if (g.failback) j["failback"] = *g.failback;
  if (!g.release_shared_on_failure) j["release-shared-on-failure"] = false;
  return j;
}

// Reading: every accessor throws json exceptions on a wrong type; parse_state turns
// them into one error.
IpPrefix prefix_of(const json& j) {
  auto p = IpPrefix::parse(j.get<std::string>());
  if (!p) throw std::runtime_error("bad prefix " + j.get<std::string>());
  return *p;
}

std::vector<IpPrefix> prefixes_of(const json& j) {
  std::vector<IpPrefix> v;
  for (const auto& e : j) v.push_back(prefix_of(e));
  return v;
}

GroupConfig group_config_of(const json& j) {
  GroupConfig g;
  g.name = j.at("name").get<std::string>();
  g.interface = j.at("interface").get<std::string>();
  for (const auto& m : j.at("members"))
    g.members.push_back({m.at("name").get<std::string>(), m.at("standby").get<bool>(), prefixes_of(m.at("test-addresses"))});
  g.data_addresses = prefixes_of(j.at("data-addresses"));
  g.shared_addresses = prefixes_of(j.at("shared-addresses"));
  for (const auto& r : j.at("routes")) {
    auto via = IpAddress::parse(r.at("via").get<std::string>());
    if (!via) throw std::runtime_error("bad route gateway");
    g.routes.push_back({prefix_of(r.at("to")), *via});
  }
  auto method = enum_from_string<ProbeMethod>(j.at("probe-method").get<std::string>());
  if (!method) throw std::runtime_error("bad probe-method");
  g.probe_method = *method;
  for (const auto& t : j.at("targets")) {
    auto a = IpAddress::parse(t.get<std::string>());
    if (!a) throw std::runtime_error("bad target");
    g.targets.push_back(*a);
  }
  if (j.contains("failure-detection-time-ms")) g.failure_detection_time = milliseconds(j["failure-detection-time-ms"].get<std::int64_t>());
  if (j.contains("failback")) g.failback = j["failback"].get<bool>();
  if (j.contains("release-shared-on-failure")) g.release_shared_on_failure = j["release-shared-on-failure"].get<bool>();
  return g;
}

}  // namespace

std::string serialize_state(const PersistedState& s) {
  json groups = json::array();
  for (const auto& g : s.groups) groups.push_back(group_config_json(g));
  json state = json::array();
  for (const auto& pg : s.state) {
    json members = json::array();
    for (const auto& m : pg.members)
      members.push_back({{"name", m.name}, {"offline", m.admin_offline}, {"failed", m.failed}});
    json addresses = json::array();
    for (const auto& a : pg.addresses)
      addresses.push_back({{"address", a.prefix.str()}, {"holder", a.holder}, {"home", a.home}});
    json group = {{"group", pg.name}, {"members", members}, {"addresses", addresses}};
    if (!pg.shared.empty()) {  // absent when none is held (state files of older versions)
      json shared = json::array();
      for (const auto& sa : pg.shared) shared.push_back({{"address", sa.prefix.str()}, {"holder", sa.holder}});
      group["shared"] = shared;
    }
    state.push_back(std::move(group));
  }
  json j = {{"version", PersistedState::kVersion},
            {"config-digest", s.config_digest},
            {"groups", groups},
            {"state", state}};
  return j.dump(1) + "\n";
}

Result<PersistedState> parse_state(std::string_view text, std::string_view source) {
  auto bad = [&](const std::string& what) { return fail(Errc::config, std::string(source) + ": " + what); };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return bad("not valid JSON (truncated or corrupt)");
  if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer())
    return bad("no version field");
  if (j["version"].get<int>() != PersistedState::kVersion)
    return bad("unsupported version " + std::to_string(j["version"].get<int>()) + " (this mpathd reads version " +
               std::to_string(PersistedState::kVersion) + ")");
  try {
    PersistedState s;
    s.config_digest = j.at("config-digest").get<std::string>();
    for (const auto& g : j.at("groups")) s.groups.push_back(group_config_of(g));
    for (const auto& pg : j.at("state")) {
      PersistedGroup g;
      g.name = pg.at("group").get<std::string>();
      for (const auto& m : pg.at("members"))
        g.members.push_back({m.at("name").get<std::string>(), m.at("offline").get<bool>(), m.at("failed").get<bool>()});
      for (const auto& a : pg.at("addresses"))
        g.addresses.push_back({prefix_of(a.at("address")), a.at("holder").get<std::string>(), a.at("home").get<std::string>()});
      if (pg.contains("shared"))
        for (const auto& a : pg.at("shared"))
          g.shared.push_back({prefix_of(a.at("address")), a.at("holder").get<std::string>()});
      s.state.push_back(std::move(g));
    }
    return s;
  } catch (const std::exception& e) {
    return bad(std::string("malformed: ") + e.what());
  }
}

Result<PersistedState> load_state_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return PersistedState{};
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_state(ss.str(), path);
}

std::string set_aside(const std::string& path) {
  std::string to = path + ".corrupt-" + std::to_string(std::time(nullptr));
  std::rename(path.c_str(), to.c_str());
  return to;
}

std::string config_digest(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace mpathd
