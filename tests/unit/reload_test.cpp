#include <gtest/gtest.h>

#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {
Config three() {
  return make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"});
}
}  // namespace

TEST(Reload, UnchangedConfigChangesNothing) {
  Rig r(three());
  r.start_all_up({"m0", "m1", "m2"});
  r.events.clear();
  r.engine.reconfigure(three());
  EXPECT_TRUE(r.events.empty());
}

TEST(Reload, AddedAddressIsPlacedAndOthersUntouched) {
  Rig r(three());
  r.start_all_up({"m0", "m1", "m2"});
  r.events.clear();
  Config next = three();
  next.groups[0].data_addresses.push_back(*IpPrefix::parse("198.18.1.12/24"));
  r.engine.reconfigure(next);
  auto moves = r.of<AddressMoved>();
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].address.str(), "198.18.1.12/24");
  EXPECT_EQ(moves[0].from, "");
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  EXPECT_EQ(r.holder("198.18.1.11"), "m1");
  EXPECT_EQ(r.engine.config().groups[0].data_addresses.size(), 3u);
}

TEST(Reload, RemovedMemberAndAddress) {
  Rig r(three());
  r.start_all_up({"m0", "m1", "m2"});
  Config next = three();
  next.groups[0].members.erase(next.groups[0].members.begin());  // m0 goes
  next.groups[0].data_addresses.pop_back();                      // .11 goes
  r.events.clear();
  r.engine.reconfigure(next);
  EXPECT_EQ(r.engine.find_member("m0"), nullptr);
  EXPECT_EQ(r.g().data.size(), 1u);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_TRUE(r.m("m2").inactive) << "one non-standby left: one active";
}

TEST(Reload, StandbyFlagChangesInPlace) {
  Rig r(three());
  r.start_all_up({"m0", "m1", "m2"});
  Config next = three();
  next.groups[0].members[2].standby = false;
  r.engine.reconfigure(next);
  EXPECT_FALSE(r.m("m2").standby);
  EXPECT_TRUE(r.m("m2").active());
  EXPECT_EQ(r.m("m2").reason, Reason::config_reload);
}

TEST(Reload, GroupsAddedAndRemovedAndMemberMovesBetweenGroups) {
  Rig r(three());
  r.link("m3", true);
  r.start_all_up({"m0", "m1", "m2"});
  Config next = three();
  GroupConfig g1;
  g1.name = "g1";
  g1.members = {{"m2", false, {}}, {"m3", false, {}}};
  g1.data_addresses = {*IpPrefix::parse("198.18.2.10/24")};
  next.groups[0].members.pop_back();  // m2 moves to g1
  next.groups.push_back(g1);
  r.engine.reconfigure(next);
  ASSERT_NE(r.engine.find_group("g1"), nullptr);
  EXPECT_EQ(r.engine.group_of("m2")->name, "g1");
  EXPECT_EQ(r.engine.find_group("g1")->data[0].holder, "m2");
  Config only_g1;
  only_g1.groups.push_back(g1);
  r.engine.reconfigure(only_g1);
  EXPECT_EQ(r.engine.find_group("g0"), nullptr);
  EXPECT_EQ(r.engine.groups().size(), 1u);
}

TEST(Reload, DaemonSettingsFollow) {
  Rig r(three());
  r.start_all_up({"m0", "m1", "m2"});
  Config next = three();
  next.failback = false;
  next.notification_count = 5;
  r.engine.reconfigure(next);
  EXPECT_FALSE(r.g().failback);
  EXPECT_EQ(r.engine.config().notification_count, 5u);
}

TEST(Persist, ExportImportRoundTripKeepsOfflineAndHomes) {
  Rig r(three());
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.offline("m1"));
  ASSERT_TRUE(r.engine.move_address(*IpAddress::parse("198.18.1.10"), "m2"));
  auto saved = r.engine.export_state();
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_TRUE(saved[0].members[1].admin_offline);

  Rig again(three());
  again.engine.import_state(saved);
  again.link("m0", true);
  again.link("m1", true);
  again.link("m2", true);
  // The kernel still has the placement of the previous run.
  again.engine.observe_address("m2", *IpPrefix::parse("198.18.1.10/24"), true);
  again.engine.observe_address("m0", *IpPrefix::parse("198.18.1.11/24"), true);
  again.engine.start();
  EXPECT_EQ(again.m("m1").state, MemberState::offline);
  EXPECT_EQ(again.holder("198.18.1.10"), "m2");
  EXPECT_EQ(again.g().data[0].home, "m2");
  EXPECT_EQ(again.holder("198.18.1.11"), "m0");
  EXPECT_TRUE(again.of<AddressMoved>().empty()) << "a restart moves nothing";
}

TEST(Persist, SavedHomeWinsOverAdoptionWithFailback) {
  Config link_only = make_config({{"m0", false}, {"m1", false}});
  link_only.groups[0].probe_method = ProbeMethod::none;
  Rig r(link_only);
  r.start_all_up({"m0", "m1"});
  r.link("m0", false);  // address fails over to m1, home stays m0
  auto saved = r.engine.export_state();
  EXPECT_TRUE(saved[0].members[0].failed);
  Rig again(link_only);
  again.engine.import_state(saved);
  again.link("m0", false);
  again.link("m1", true);
  again.engine.observe_address("m1", *IpPrefix::parse("198.18.1.10/24"), true);
  again.engine.start();
  EXPECT_EQ(again.holder("198.18.1.10"), "m1");
  again.link("m0", true);  // repaired after the restart: failback to the saved home
  EXPECT_EQ(again.holder("198.18.1.10"), "m0");
}

TEST(Reload, UnrelatedChangeKeepsFailbackNoInactiveMemberInactive) {
  Config c = make_config({{"m0", false}, {"m1", false}}, {"198.18.1.10/24", "198.18.1.11/24"}, false);
  Rig r(c);
  r.start_all_up({"m0", "m1"});
  r.link("m0", false);
  r.link("m0", true);
  ASSERT_TRUE(r.m("m0").inactive);
  r.events.clear();
  Config next = c;
  next.groups[0].targets.push_back(*IpAddress::parse("198.18.1.1"));
  r.engine.reconfigure(next);
  EXPECT_TRUE(r.m("m0").inactive);
  EXPECT_TRUE(r.of<AddressMoved>().empty());
}
