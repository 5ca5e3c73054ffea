// state.json's writer: the hand-written serializer (serialize_state) gives the text that
// a JSON document of the same state dumped by nlohmann gives (the format of earlier
// versions), byte for byte, and it parses back to the same state.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/state_file.hpp"

using namespace mpathd;
using nlohmann::json;

namespace {

IpPrefix prefix(const char* s) { return *IpPrefix::parse(s); }

// The state as earlier versions built it: a JSON document, dump(1).
std::string reference(const PersistedState& s) {
  json state = json::array();
  for (const auto& pg : s.state) {
    json members = json::array();
    for (const auto& m : pg.members)
      members.push_back({{"name", m.name}, {"offline", m.admin_offline}, {"failed", m.failed}});
    json addresses = json::array();
    for (const auto& a : pg.addresses)
      addresses.push_back({{"address", a.prefix.str()}, {"holder", a.holder}, {"home", a.home}});
    json group = {{"group", pg.name}, {"members", members}, {"addresses", addresses}};
    if (!pg.shared.empty()) {
      json shared = json::array();
      for (const auto& sa : pg.shared) shared.push_back({{"address", sa.prefix.str()}, {"holder", sa.holder}});
      group["shared"] = shared;
    }
    state.push_back(std::move(group));
  }
  json groups = json::parse(serialize_groups(s.groups));
  json j = {{"version", PersistedState::kVersion}, {"config-digest", s.config_digest}, {"groups", groups}, {"state", state}};
  return j.dump(1) + "\n";
}

PersistedState sample() {
  PersistedState s;
  s.config_digest = "0123456789abcdef";
  GroupConfig g;
  g.name = "web";
  g.interface = "mp0";
  g.members = {{"eth0", false, {prefix("198.18.0.10/24")}}, {"eth1", true, {}}};
  g.data_addresses = {prefix("198.18.0.1/24"), prefix("2001:db8::1/64")};
  g.shared_addresses = {prefix("198.18.0.2/24")};
  g.failback = false;
  s.groups.push_back(g);
  GroupConfig e;  // empty lists everywhere
  e.name = "empty";
  e.interface = "mp1";
  s.groups.push_back(e);
  PersistedGroup pg{"web", {{"eth0", false, true}, {"eth1", true, false}},
                    {{prefix("198.18.0.1/24"), "eth1", "eth0"}, {prefix("2001:db8::1/64"), "", "eth0"}},
                    {{prefix("198.18.0.2/24"), "eth1"}}};
  s.state.push_back(pg);
  s.state.push_back({"empty", {}, {}, {}});
  // Names that need escaping or are not ASCII go through nlohmann's writer.
  s.state.push_back({"we\"ird\\", {{"t\tab", false, false}, {"caf\xc3\xa9", true, true}}, {}, {}});
  return s;
}

}  // namespace

TEST(StateFile, SerializerWritesWhatTheJsonDocumentDid) {
  const auto s = sample();
  EXPECT_EQ(serialize_state(s), reference(s));
  PersistedState none;
  EXPECT_EQ(serialize_state(none), reference(none));
}

TEST(StateFile, GroupsTextKeptApartGivesTheSameFile) {
  const auto s = sample();
  EXPECT_EQ(serialize_state(s.config_digest, serialize_groups(s.groups), s.state), serialize_state(s));
}

TEST(StateFile, RoundTrip) {
  const auto s = sample();
  auto back = parse_state(serialize_state(s), "state.json");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, s);
}
