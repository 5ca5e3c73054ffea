// status.json: its text is made one group at a time (status_text()), and must be what
// nlohmann's dump(2) of the whole document as one tree gives, byte for byte: scripts
// and the test harnesses read it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/status.hpp"
#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {
// The document as one tree, as status.json was made before status_text().
std::string whole_tree_dump(nlohmann::json root, const Engine& engine) {
  root["groups"] = nlohmann::json::array();
  for (const auto& g : engine.groups()) root["groups"].push_back(group_json(g));
  root["anonymous"] = nlohmann::json::array();
  for (const auto& m : engine.anonymous().members) root["anonymous"].push_back(member_json(engine.anonymous(), m));
  return root.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}
}  // namespace

TEST(Status, TextIsTheWholeTreesDump) {
  Config c = make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"});
  GroupConfig g1 = c.groups[0];
  g1.name = "g1";
  g1.interface = "ipmp1";
  g1.members = {{"n5", false, {}}};
  g1.data_addresses = {*IpPrefix::parse("198.18.2.10/24")};
  c.groups.push_back(g1);
  c.track_interfaces_only_with_groups = false;
  Rig r(c);
  r.link("m0", true);
  r.link("m1", false);
  r.link("n5", true);
  r.engine.start();
  r.link("m2", true);
  r.link("x\xff", true, 30);  // an ungrouped interface, its name not UTF-8
  r.link("y7", true);
  ASSERT_EQ(r.engine.anonymous().members.size(), 2u);

  nlohmann::json root = status_json(true, {"sock-diag", "no BPF \"here\"\n"});
  root["hooks"] = nlohmann::json::array({{{"name", "h"}, {"state", "ok"}}});
  root["persistence"] = {{"ok", true}, {"problem", ""}};
  const std::string text = status_text(root, r.engine);
  EXPECT_EQ(text, whole_tree_dump(root, r.engine));
  const auto parsed = nlohmann::json::parse(text);  // replaced bytes: valid JSON
  EXPECT_EQ(parsed["groups"].size(), 2u);
  EXPECT_EQ(parsed["groups"][0]["members"].size(), 3u);
  EXPECT_EQ(parsed["anonymous"].size(), 2u);
}

TEST(Status, TextWithoutGroupsOrAnonymousMembers) {
  Rig r(Config{});
  r.engine.start();
  const nlohmann::json root = status_json(false);
  const std::string text = status_text(root, r.engine);
  EXPECT_EQ(text, whole_tree_dump(root, r.engine));
  EXPECT_NE(text.find("\"groups\": []"), std::string::npos);
  EXPECT_NE(text.find("\"anonymous\": []"), std::string::npos);
}
