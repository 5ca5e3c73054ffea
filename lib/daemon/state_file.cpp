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

// The state part is written by hand: it is written before every move, and building
// it as a JSON document cost ~0.5 ms at 64 groups (the groups' part ~0.35 ms more;
// the daemon keeps that text until the groups change, serialize_groups). The text is
// the one nlohmann's dump(1) gives, byte for byte (state_file_test.cpp).
namespace {

// A JSON string as dump() writes it: plain printable ASCII directly, anything else
// through nlohmann (escapes, UTF-8 checks) so that the two never differ.
void put_string(std::string& out, std::string_view v) {
  for (unsigned char c : v)
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      out += json(std::string(v)).dump();
      return;
    }
  out += '"';
  out += v;
  out += '"';
}

void indent(std::string& out, int n) {
  out += '\n';
  out.append(static_cast<std::size_t>(n), ' ');
}

// "key": value lines of an object at depth d (its members at d + 1).
struct Obj {
  std::string& out;
  int d;
  bool first = true;
  Obj(std::string& o, int depth) : out(o), d(depth) { out += '{'; }
  void key(std::string_view k) {
    if (!first) out += ',';
    first = false;
    indent(out, d + 1);
    put_string(out, k);
    out += ": ";
  }
  void str(std::string_view k, std::string_view v) { key(k), put_string(out, v); }
  void boolean(std::string_view k, bool v) { key(k), out += v ? "true" : "false"; }
  void end() {
    if (!first) indent(out, d);
    out += '}';
  }
};

// An array at depth d of n elements, each written by f(i, depth of the element).
template <typename F>
void array(std::string& out, int d, std::size_t n, F f) {
  out += '[';
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += ',';
    indent(out, d + 1);
    f(i, d + 1);
  }
  if (n) indent(out, d);
  out += ']';
}

}  // namespace

std::string serialize_groups(const std::vector<GroupConfig>& groups) {
  json a = json::array();
  for (const auto& g : groups) a.push_back(group_config_json(g));
  std::string text = a.dump(1);
  // As a member of the top-level object: one level deeper.
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    out += c;
    if (c == '\n') out += ' ';
  }
  return out;
}

std::string serialize_state(std::string_view config_digest, std::string_view groups_json,
                            const std::vector<PersistedGroup>& state) {
  std::string out;
  out.reserve(groups_json.size() + 256 + state.size() * 512);
  Obj top(out, 0);
  top.str("config-digest", config_digest);
  top.key("groups");
  out += groups_json;
  top.key("state");
  array(out, 1, state.size(), [&](std::size_t i, int d) {
    const PersistedGroup& pg = state[i];
    Obj g(out, d);
    g.key("addresses");
    array(out, d + 1, pg.addresses.size(), [&](std::size_t k, int e) {
      const auto& a = pg.addresses[k];
      Obj o(out, e);
      o.str("address", a.prefix.str());
      o.str("holder", a.holder);
      o.str("home", a.home);
      o.end();
    });
    g.str("group", pg.name);
    g.key("members");
    array(out, d + 1, pg.members.size(), [&](std::size_t k, int e) {
      const auto& m = pg.members[k];
      Obj o(out, e);
      o.boolean("failed", m.failed);
      o.str("name", m.name);
      o.boolean("offline", m.admin_offline);
      o.end();
    });
    if (!pg.shared.empty()) {  // absent when none is held (state files of older versions)
      g.key("shared");
      array(out, d + 1, pg.shared.size(), [&](std::size_t k, int e) {
        const auto& sa = pg.shared[k];
        Obj o(out, e);
        o.str("address", sa.prefix.str());
        o.str("holder", sa.holder);
        o.end();
      });
    }
    g.end();
  });
  top.key("version");
  out += std::to_string(PersistedState::kVersion);
  top.end();
  out += '\n';
  return out;
}

std::string serialize_state(const PersistedState& s) {
  return serialize_state(s.config_digest, serialize_groups(s.groups), s.state);
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
