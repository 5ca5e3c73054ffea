#include <gtest/gtest.h>

#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {
GroupConfig group(std::string name, std::vector<std::string> members, std::vector<std::string> addrs = {}) {
  GroupConfig g;
  g.name = std::move(name);
  for (auto& m : members) g.members.push_back({m, false, {}});
  for (auto& a : addrs) g.data_addresses.push_back(*IpPrefix::parse(a));
  return g;
}
}  // namespace

TEST(Topology, CreateGroupAtRuntimeUsesKnownLinks) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.link("m5", true);
  r.link("m6", false);
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  ASSERT_TRUE(r.engine.create_group(group("g1", {"m5", "m6"}, {"198.18.5.10/24"})));
  const Group* g = r.engine.find_group("g1");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->ifname, "g1");
  EXPECT_EQ(g->find("m5")->state, MemberState::ok);
  EXPECT_EQ(g->find("m6")->state, MemberState::failed);
  EXPECT_EQ(g->state, GroupState::degraded);
  EXPECT_EQ(g->data[0].holder, "m5");
  auto topo = r.of<TopologyChanged>();
  ASSERT_EQ(topo.size(), 3u);
  EXPECT_EQ(topo[0].member, "");  // the group first, then its members
  EXPECT_TRUE(topo[0].added);
  EXPECT_EQ(r.engine.config().groups.size(), 2u);
}

TEST(Topology, CreateGroupRefusals) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  EXPECT_EQ(r.engine.create_group(group("g0", {"m7"})).error().code, Errc::exists);
  EXPECT_EQ(r.engine.create_group(group("bad name", {"m7"})).error().code, Errc::invalid_argument);
  EXPECT_EQ(r.engine.create_group(group("g1", {"m0"})).error().code, Errc::exists);
  EXPECT_EQ(r.engine.create_group(group("g1", {"way-too-long-ifname0"})).error().code, Errc::invalid_argument);
  EXPECT_EQ(r.engine.create_group(group("g1", {"m7", "m7"})).error().code, Errc::exists);
  EXPECT_EQ(r.engine.create_group(group("g1", {"m7"}, {"198.18.1.10/24"})).error().code, Errc::exists);
  auto gi = group("g1", {"m7"});
  gi.interface = "ipmp0";
  EXPECT_EQ(r.engine.create_group(gi).error().code, Errc::exists);
  EXPECT_TRUE(r.events.empty()) << "a refused change changes nothing";
  EXPECT_EQ(r.engine.groups().size(), 1u);
}

TEST(Topology, DestroyGroup) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  ASSERT_TRUE(r.engine.destroy_group("g0"));
  EXPECT_TRUE(r.engine.groups().empty());
  EXPECT_EQ(r.of<TopologyChanged>().size(), 3u);
  EXPECT_EQ(r.engine.destroy_group("g0").error().code, Errc::no_such_group);
}

TEST(Topology, AddAndRemoveMembers) {
  Rig r(make_config({{"m0", false}}));
  r.link("m1", true);
  r.start_all_up({"m0"});
  ASSERT_TRUE(r.engine.add_member("g0", {"m1", false, {}}));
  EXPECT_TRUE(r.m("m1").active());
  EXPECT_EQ(r.g().state, GroupState::ok);
  EXPECT_EQ(r.engine.add_member("g0", {"m1", false, {}}).error().code, Errc::exists);
  EXPECT_EQ(r.engine.add_member("g9", {"m2", false, {}}).error().code, Errc::no_such_group);
  // Removing the holder moves its address; the last usable holder cannot be removed.
  ASSERT_TRUE(r.engine.remove_member("m0"));
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.g().data[0].home, "m1");
  auto last = r.engine.remove_member("m1");
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, Errc::last_usable_member);
  EXPECT_EQ(r.engine.remove_member("m9").error().code, Errc::no_such_interface);
}

TEST(Topology, AddAndRemoveDataAddresses) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  ASSERT_TRUE(r.engine.add_data_address("g0", *IpPrefix::parse("198.18.1.11/24")));
  EXPECT_EQ(r.holder("198.18.1.11"), "m1");
  EXPECT_EQ(r.engine.add_data_address("g0", *IpPrefix::parse("198.18.1.11/24")).error().code, Errc::exists);
  EXPECT_EQ(r.engine.add_data_address("gx", *IpPrefix::parse("198.18.1.12/24")).error().code, Errc::no_such_group);
  r.events.clear();
  ASSERT_TRUE(r.engine.remove_data_address("g0", *IpAddress::parse("198.18.1.11")));
  auto moves = r.of<AddressMoved>();
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].to, "");
  EXPECT_EQ(moves[0].reason, Reason::address_removed);
  EXPECT_EQ(r.engine.remove_data_address("g0", *IpAddress::parse("198.18.1.11")).error().code,
            Errc::no_such_address);
}

TEST(Topology, UngroupedInterfaceJoinsAndLeavesAGroup) {
  Config c = make_config({{"m0", false}, {"m1", false}});
  c.track_interfaces_only_with_groups = false;
  Rig r(c);
  r.link("m5", true);
  r.start_all_up({"m0", "m1"});
  ASSERT_NE(r.engine.anonymous().find("m5"), nullptr);
  ASSERT_TRUE(r.engine.add_member("g0", {"m5", false, {}}));
  EXPECT_EQ(r.engine.anonymous().find("m5"), nullptr) << "no longer ungrouped";
  EXPECT_EQ(r.engine.group_of("m5")->name, "g0");
  ASSERT_TRUE(r.engine.remove_member("m5"));
  ASSERT_NE(r.engine.anonymous().find("m5"), nullptr) << "tracked again without a group";
  EXPECT_EQ(r.engine.anonymous().find("m5")->state, MemberState::ok);
}

TEST(Topology, RemovingTheOriginalUnblocksADuplicateMac) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", false}}));
  r.link("m0", true, 10);
  r.link("m1", true, 11);
  r.engine.observe_link({"m2", 12, true, true, mac_n(10), false});  // same MAC as m0
  r.engine.start();
  ASSERT_TRUE(r.m("m2").hwaddr_dup);
  ASSERT_TRUE(r.engine.remove_member("m0"));
  EXPECT_FALSE(r.m("m2").hwaddr_dup);
  EXPECT_EQ(r.m("m2").state, MemberState::ok);
}

TEST(Topology, AddedMemberWithDuplicateMacGoesOffline) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.engine.observe_link({"m5", 15, true, true, mac_n(10), false});  // m0's MAC
  ASSERT_TRUE(r.engine.add_member("g0", {"m5", false, {}}));
  EXPECT_TRUE(r.m("m5").hwaddr_dup);
  EXPECT_EQ(r.m("m5").state, MemberState::offline);
}
