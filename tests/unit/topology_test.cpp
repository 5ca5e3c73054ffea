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
  // The messages are the configuration file's (core/validate.hpp, claim_conflict).
  EXPECT_EQ(r.engine.create_group(group("g0", {"m7"})).error().message, "duplicate group name g0");
  EXPECT_EQ(r.engine.create_group(group("g1", {"m0"})).error().message, "m0 is already a member of group g0");
  EXPECT_EQ(r.engine.create_group(group("g1", {"m7", "m7"})).error().message, "m7 is listed twice in group g1");
  EXPECT_EQ(r.engine.create_group(gi).error().message, "interface ipmp0 is already the interface of group g0");
  EXPECT_EQ(r.engine.add_member("g0", {"ipmp0", false, {}}).error().message, "ipmp0 is the interface name of group g0");
  EXPECT_EQ(r.engine.add_data_address("g0", *IpPrefix::parse("198.18.1.10/16")).error().message,
            "198.18.1.10 is already a data address of group g0");
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

// Issue 8 item 4: D-Bus and reload reach the Engine; it applies the same rules as the
// configuration file (core/validate.hpp) and changes nothing when one is broken.
TEST(Topology, AddDataAddressAppliesTheAddressRules) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  for (const char* text : {"127.0.0.2/8", "224.0.0.5/4", "255.255.255.255/32", "198.18.1.0/24", "198.18.1.255/24",
                           "::1/128", "::/0", "ff02::5/64", "0.0.0.0/0", "fe80::5/64"}) {
    auto res = r.engine.add_data_address("g0", *IpPrefix::parse(text));
    ASSERT_FALSE(res) << text;
    EXPECT_EQ(res.error().code, Errc::invalid_argument) << text;
    EXPECT_NE(res.error().message.find(IpPrefix::parse(text)->str()), std::string::npos) << res.error().message;
  }
  // A shared address is not free either.
  Config c = make_config({{"m0", false}, {"m1", false}});
  c.groups[0].shared_addresses.push_back(*IpPrefix::parse("198.18.1.50/24"));
  Rig s(c);
  s.start_all_up({"m0", "m1"});
  EXPECT_EQ(s.engine.add_data_address("g0", *IpPrefix::parse("198.18.1.50/24")).error().code, Errc::exists);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.g().data.size(), 1u);
}

TEST(Topology, GroupInterfaceCannotBeAMemberName) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  auto gi = group("g1", {"m7"});
  gi.interface = "m0";  // a member of g0
  auto res = r.engine.create_group(gi);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::exists);
  EXPECT_NE(res.error().message.find("interface m0 is already a member of group g0"), std::string::npos)
      << res.error().message;
  EXPECT_EQ(r.engine.create_group(group("m1", {})).error().code, Errc::exists);  // interface defaults to the name
  auto own = group("g2", {"m7"});
  own.interface = "m7";
  EXPECT_EQ(r.engine.create_group(own).error().code, Errc::exists);
  auto bad = group("g3", {"m7"}, {"127.0.0.5/8"});
  EXPECT_EQ(r.engine.create_group(bad).error().code, Errc::invalid_argument);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.engine.groups().size(), 1u);
}

TEST(Topology, MembersMustBeEthernetLikeWhenTheKernelHasThem) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.engine.observe_link({"lo", 1, true, true, Mac{}, true});
  r.engine.observe_link({"tun0", 7, true, true, Mac{}, false, link_flag::pointopoint});
  r.engine.observe_link({"ipip0", 8, true, true, Mac{}, false, link_flag::broadcast});
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  for (const char* name : {"lo", "tun0", "ipip0"}) {
    auto res = r.engine.add_member("g0", {name, false, {}});
    ASSERT_FALSE(res) << name;
    EXPECT_EQ(res.error().code, Errc::invalid_argument);
    EXPECT_TRUE(res.error().message.starts_with(std::string(name) + " ")) << res.error().message;
  }
  EXPECT_EQ(r.engine.create_group(group("g1", {"lo"})).error().code, Errc::invalid_argument);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.g().members.size(), 2u);
  EXPECT_EQ(r.engine.anonymous().members.size(), 0u) << "the loopback is never tracked";
  // An interface the kernel does not have (yet) may join: it waits for it.
  EXPECT_TRUE(r.engine.add_member("g0", {"m9", false, {}}));
  // Test addresses follow the address rules too.
  MemberConfig t{"m8", false, {*IpPrefix::parse("224.0.0.9/4")}};
  EXPECT_EQ(r.engine.add_member("g0", t).error().code, Errc::invalid_argument);

  // Start and reload: the configuration's members are checked against the kernel.
  Config c = make_config({{"m0", false}, {"lo", false}, {"tun0", false}});
  auto links = r.engine.check_links(c);
  ASSERT_FALSE(links);
  EXPECT_EQ(links.error().code, Errc::config);
  EXPECT_NE(links.error().message.find("group g0: lo is the loopback interface"), std::string::npos);
  EXPECT_NE(links.error().message.find("\ngroup g0: tun0 cannot broadcast"), std::string::npos);
  EXPECT_TRUE(r.engine.check_links(make_config({{"m0", false}, {"m1", false}, {"m9", false}})));
}

TEST(Topology, OnlineOfADuplicateMacSaysWhy) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.engine.observe_link({"m1", 11, true, true, mac_n(10), false});  // m0's MAC
  ASSERT_EQ(r.m("m1").state, MemberState::offline);
  auto res = r.engine.online("m1");
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::hwaddr_duplicate) << res.error().message;
  EXPECT_NE(res.error().message.find("comes back by itself"), std::string::npos) << res.error().message;
}

TEST(Topology, KernelRefusalShowsTheAddressDown) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  const DataAddress& a = r.g().data[0];
  ASSERT_TRUE(r.g().up(a));
  r.engine.observe_address_refused(a.prefix.addr, "add 198.18.1.10/24 on m0: Permission denied");
  EXPECT_FALSE(r.g().up(r.g().data[0]));
  EXPECT_EQ(r.g().data[0].holder, "m0") << "still placed there: the kernel is asked again";
  // A move asks the kernel afresh.
  ASSERT_TRUE(r.engine.move_address(a.prefix.addr, "m1"));
  EXPECT_TRUE(r.g().up(r.g().data[0]));
}

// A configured member's name taken by an interface that cannot be a member (a tunnel
// created later): nothing is placed on it; it counts as absent.
TEST(Topology, MemberNameOnATunnelCountsAsAbsent) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.link("m0", true);
  r.engine.start();
  ASSERT_EQ(r.m("m1").state, MemberState::unknown);
  r.engine.observe_link({"m1", 11, true, true, Mac{}, false, link_flag::pointopoint});  // a tun device named m1
  EXPECT_EQ(r.m("m1").state, MemberState::unknown);
  EXPECT_EQ(r.m("m1").ifindex, 0u);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  r.engine.observe_link({"m1", 12, true, true, mac_n(12), false});  // replaced by an Ethernet one
  EXPECT_EQ(r.m("m1").state, MemberState::ok);
}
