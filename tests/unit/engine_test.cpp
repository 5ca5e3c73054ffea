#include <gtest/gtest.h>

#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;
using namespace std::chrono_literals;

TEST(Engine, StartupPlacesAddressesRoundRobinAndStandbyInactive) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}},
                    {"198.18.1.10/24", "198.18.1.11/24", "2001:db8:1::10/64"}));
  r.start_all_up({"m0", "m1", "m2"});
  EXPECT_EQ(r.g().state, GroupState::ok);
  EXPECT_TRUE(r.m("m0").active());
  EXPECT_TRUE(r.m("m1").active());
  EXPECT_TRUE(r.m("m2").inactive);
  EXPECT_EQ(r.m("m2").state, MemberState::ok);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  EXPECT_EQ(r.holder("198.18.1.11"), "m1");
  EXPECT_EQ(r.holder("2001:db8:1::10"), "m0");  // each family round-robins on its own
  auto moves = r.of<AddressMoved>();
  ASSERT_EQ(moves.size(), 3u);
  EXPECT_EQ(moves[0].from, "");
  EXPECT_EQ(moves[0].reason, Reason::startup);
}

TEST(Engine, NothingHappensBeforeStart) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.link("m0", true);
  r.link("m0", false);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.m("m0").state, MemberState::unknown);
}

TEST(Engine, LinkFailureMovesAddressToAnotherActiveMember) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  r.link("m0", false);
  EXPECT_EQ(r.m("m0").state, MemberState::failed);
  EXPECT_EQ(r.m("m0").reason, Reason::link_down);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.g().state, GroupState::degraded);
  auto lines = r.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "g0/m0: ok -> failed [RUNNING -> FAILED] (link-down)");
  EXPECT_EQ(lines[1], "group g0: 198.18.1.10/24 m0 -> m1 (failover)");
  EXPECT_EQ(lines[2], "group g0: ok -> degraded (link-down)");
  EXPECT_EQ(r.m("m0").counters.failures, 1u);
  EXPECT_EQ(r.m("m1").counters.addresses_in, 1u);
}

TEST(Engine, StandbyTakesOverOnlyWhenNeeded) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"}));
  r.start_all_up({"m0", "m1", "m2"});
  // The standby's own failure changes nothing for the others.
  r.link("m2", false);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  EXPECT_EQ(r.holder("198.18.1.11"), "m1");
  r.link("m2", true);
  EXPECT_TRUE(r.m("m2").inactive);
  // An active member fails: the standby becomes active and takes its address.
  r.link("m0", false);
  EXPECT_FALSE(r.m("m2").inactive);
  EXPECT_EQ(r.m("m2").reason, Reason::standby_needed);
  EXPECT_EQ(r.holder("198.18.1.10"), "m2");
  EXPECT_EQ(r.holder("198.18.1.11"), "m1");
}

TEST(Engine, FailbackYesReturnsAddressAndReleasesStandby) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"}));
  r.start_all_up({"m0", "m1", "m2"});
  r.link("m0", false);
  EXPECT_EQ(r.holder("198.18.1.10"), "m2");  // the least loaded active member
  r.events.clear();
  r.link("m0", true);
  EXPECT_TRUE(r.m("m0").active());
  EXPECT_TRUE(r.m("m2").inactive);
  EXPECT_EQ(r.m("m2").reason, Reason::standby_released);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  EXPECT_EQ(r.holder("198.18.1.11"), "m1");
  auto moves = r.of<AddressMoved>();
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].reason, Reason::failback);
  EXPECT_EQ(r.g().state, GroupState::ok);
}

TEST(Engine, SingleAddressGoesToFirstLeastLoadedMember) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}));
  r.start_all_up({"m0", "m1", "m2"});
  r.link("m0", false);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_TRUE(r.m("m2").active()) << "the standby replaces the lost active member";
}

TEST(Engine, FailbackYesWithOneAddressStillReturnsHome) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.link("m0", false);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  r.link("m0", true);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  EXPECT_EQ(r.of<AddressMoved>().back().reason, Reason::failback);
}

TEST(Engine, FailbackNoKeepsRepairedMemberInactive) {
  Rig r(make_config({{"m0", false}, {"m1", false}}, {"198.18.1.10/24"}, false));
  r.start_all_up({"m0", "m1"});
  r.link("m0", false);
  r.link("m0", true);
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  EXPECT_TRUE(r.m("m0").inactive);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.g().state, GroupState::ok);
  // It is used again only when another member fails.
  r.link("m1", false);
  EXPECT_FALSE(r.m("m0").inactive);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
}

TEST(Engine, FailbackNoActivatesRepairedMemberOfFailedGroup) {
  Rig r(make_config({{"m0", false}, {"m1", false}}, {"198.18.1.10/24"}, false));
  r.start_all_up({"m0", "m1"});
  r.link("m0", false);
  r.link("m1", false);
  EXPECT_EQ(r.g().state, GroupState::failed);
  EXPECT_EQ(r.g().reason, Reason::group_failure);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");  // stays put: nowhere better
  r.link("m0", true);
  EXPECT_FALSE(r.m("m0").inactive);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  EXPECT_EQ(r.g().state, GroupState::degraded);
  EXPECT_EQ(r.g().reason, Reason::repaired);
}

TEST(Engine, SingletonGroupFailureIsGroupFailure) {
  Rig r(make_config({{"m0", false}}));
  r.start_all_up({"m0"});
  EXPECT_EQ(r.g().state, GroupState::ok);
  r.link("m0", false);
  EXPECT_EQ(r.m("m0").state, MemberState::failed);
  EXPECT_EQ(r.g().state, GroupState::failed);
  auto gs = r.of<GroupChanged>();
  ASSERT_FALSE(gs.empty());
  EXPECT_EQ(gs.back().reason, Reason::group_failure);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
}

TEST(Engine, OfflineRefusedForLastUsableMember) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.link("m1", false);
  auto res = r.engine.offline("m0");
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::last_usable_member);
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
}

TEST(Engine, OfflineMovesAddressesAndOnlineReactivatesEvenWithoutFailback) {
  Rig r(make_config({{"m0", false}, {"m1", false}}, {"198.18.1.10/24"}, false));
  r.start_all_up({"m0", "m1"});
  ASSERT_TRUE(r.engine.offline("m0"));
  EXPECT_EQ(r.m("m0").state, MemberState::offline);
  EXPECT_EQ(r.m("m0").reason, Reason::admin_offline);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.g().state, GroupState::degraded);
  auto again = r.engine.offline("m0");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::already_offline);
  ASSERT_TRUE(r.engine.online("m0"));
  EXPECT_TRUE(r.m("m0").active());  // onlining always reactivates a non-standby
  auto not_off = r.engine.online("m0");
  ASSERT_FALSE(not_off);
  EXPECT_EQ(not_off.error().code, Errc::not_offline);
}

TEST(Engine, OfflineInFailedGroupAllowedWhileAnotherIsNotOffline) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.link("m0", false);
  r.link("m1", false);
  EXPECT_TRUE(r.engine.offline("m0"));
  auto res = r.engine.offline("m1");
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::last_usable_member);
}

TEST(Engine, OfflineOfUnknownInterface) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  auto res = r.engine.offline("eth9");
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::no_such_interface);
  EXPECT_NE(res.error().message.find("eth9"), std::string::npos);
}

TEST(Engine, OfflineKeepsOfflineWhenLinkFailsAndOnlineReportsFailed) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  ASSERT_TRUE(r.engine.offline("m1"));
  r.link("m1", false);
  EXPECT_EQ(r.m("m1").state, MemberState::offline);
  ASSERT_TRUE(r.engine.online("m1"));
  EXPECT_EQ(r.m("m1").state, MemberState::failed);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
}

TEST(Engine, DuplicateMacOfflinesTheLaterMemberUntilUnique) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.link("m0", true, 10);
  r.engine.observe_link({"m1", 11, true, true, mac_n(10), false});
  r.engine.start();
  EXPECT_EQ(r.m("m1").state, MemberState::offline);
  EXPECT_TRUE(r.m("m1").hwaddr_dup);
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  EXPECT_EQ(r.g().state, GroupState::degraded);
  auto res = r.engine.online("m1");
  EXPECT_FALSE(res);
  r.engine.observe_link({"m1", 11, true, true, mac_n(11), false});
  EXPECT_FALSE(r.m("m1").hwaddr_dup);
  EXPECT_EQ(r.m("m1").state, MemberState::ok);
  EXPECT_EQ(r.m("m1").reason, Reason::hwaddr_unique);
  EXPECT_EQ(r.g().state, GroupState::ok);
}

// The kernel's interface flags are kept per member and a change is published once;
// they decide nothing (an admin-down link is still judged by `up`).
TEST(Engine, KernelLinkFlagsAreKeptAndChangesPublished) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  const std::uint32_t up = link_flag::up | link_flag::broadcast | link_flag::multicast | link_flag::lower_up;
  r.engine.observe_link({"m0", 10, true, true, mac_n(10), false, up});
  r.link("m1", true);
  r.engine.start();
  EXPECT_EQ(r.m("m0").link_flags, up);
  EXPECT_TRUE(r.of<LinkFlagsChanged>().empty());  // before start: state, not news
  r.engine.observe_link({"m0", 10, true, true, mac_n(10), false, up});
  EXPECT_TRUE(r.of<LinkFlagsChanged>().empty());  // unchanged: nothing
  const std::uint32_t down = up & ~(link_flag::up | link_flag::lower_up);
  r.engine.observe_link({"m0", 10, true, false, mac_n(10), false, down});
  ASSERT_EQ(r.of<LinkFlagsChanged>().size(), 1u);
  EXPECT_EQ(r.of<LinkFlagsChanged>()[0].before, up);
  EXPECT_EQ(r.of<LinkFlagsChanged>()[0].after, down);
  EXPECT_EQ(describe(Event{r.of<LinkFlagsChanged>()[0]}),
            "g0/m0: link flags UP,BROADCAST,MULTICAST,LOWER_UP -> BROADCAST,MULTICAST");
  r.engine.observe_link({"m0", 0, false, false, {}, false, 0});  // removed: nothing known
  EXPECT_EQ(r.m("m0").link_flags, 0u);
  EXPECT_EQ(link_flag_strings(up), (std::vector<std::string>{"UP", "BROADCAST", "MULTICAST", "LOWER_UP"}));
}

TEST(Engine, LinkFlapDampingHoldsRepairUntilWindowPasses) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  for (int i = 0; i < 2; ++i) {
    r.link("m0", false);
    r.clock.advance(1s);
    r.link("m0", true);
    EXPECT_EQ(r.m("m0").state, MemberState::ok) << "link-up " << i + 1 << " within the limit";
    r.clock.advance(1s);
  }
  r.link("m0", false);
  r.clock.advance(1s);
  r.link("m0", true);  // third link-up within a minute
  EXPECT_EQ(r.m("m0").state, MemberState::failed);
  EXPECT_EQ(r.m("m0").reason, Reason::link_flapping);
  EXPECT_EQ(r.m("m0").link, LinkState::up);
  ASSERT_TRUE(r.engine.next_deadline());
  EXPECT_EQ(*r.engine.next_deadline() - r.clock.now(), 56s);  // first counted up + 60 s
  r.clock.advance(55s);
  r.engine.on_timer();
  EXPECT_EQ(r.m("m0").state, MemberState::failed);
  r.clock.advance(1s);
  r.engine.on_timer();
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  EXPECT_FALSE(r.engine.next_deadline());
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
}

TEST(Engine, AdoptsAddressesTheKernelAlreadyHas) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.link("m0", true);
  r.link("m1", true);
  r.engine.observe_address("m1", *IpPrefix::parse("198.18.1.10/24"), true);
  r.engine.start();
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_TRUE(r.of<AddressMoved>().empty()) << "adoption is not a move";
}

TEST(Engine, AdoptedAddressOnFailedMemberMoves) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.link("m0", false);
  r.link("m1", true);
  r.engine.observe_address("m0", *IpPrefix::parse("198.18.1.10/24"), true);
  r.engine.start();
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.of<AddressMoved>().at(0).reason, Reason::failover);
}

TEST(Engine, InterfaceRemovedAndReadded) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.engine.observe_link({"m0", 10, false, false, {}, false});
  EXPECT_EQ(r.m("m0").state, MemberState::unknown);
  EXPECT_EQ(r.m("m0").reason, Reason::interface_removed);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  r.link("m0", true, 20);
  EXPECT_EQ(r.m("m0").ifindex, 20u);
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
}

TEST(Engine, MissingInterfaceAtStartIsUnknown) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.link("m1", true);
  r.engine.start();
  EXPECT_EQ(r.m("m0").state, MemberState::unknown);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.g().state, GroupState::degraded);
}

TEST(Engine, MoveAddressByAdmin) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}));
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.move_address(*IpAddress::parse("198.18.1.10"), "m1"));
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.of<AddressMoved>().back().reason, Reason::admin_move);
  auto inactive = r.engine.move_address(*IpAddress::parse("198.18.1.10"), "m2");
  ASSERT_FALSE(inactive);
  EXPECT_EQ(inactive.error().code, Errc::not_usable);
  auto none = r.engine.move_address(*IpAddress::parse("198.18.1.99"), "m1");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::no_such_address);
  auto stranger = r.engine.move_address(*IpAddress::parse("198.18.1.10"), "eth7");
  ASSERT_FALSE(stranger);
  EXPECT_EQ(stranger.error().code, Errc::not_in_group);
  // The admin's choice is the new home: failback does not undo it.
  r.link("m1", false);
  r.link("m1", true);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
}

TEST(Engine, RebalancesWhenStandbyIsActivated) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}},
                    {"198.18.1.10/24", "198.18.1.11/24", "198.18.1.12/24", "198.18.1.13/24"}));
  r.start_all_up({"m0", "m1", "m2"});
  EXPECT_EQ(r.g().load("m0"), 2u);
  EXPECT_EQ(r.g().load("m1"), 2u);
  r.link("m0", false);
  EXPECT_EQ(r.g().load("m1"), 2u);
  EXPECT_EQ(r.g().load("m2"), 2u);
}

TEST(Engine, TrackAllInterfacesWhenAsked) {
  Config c = make_config({{"m0", false}, {"m1", false}});
  c.track_interfaces_only_with_groups = false;
  Rig r(c);
  r.link("eth5", true, 50);
  r.start_all_up({"m0", "m1"});
  const Member* e = r.engine.find_member("eth5");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, MemberState::ok);
  r.link("eth5", false, 50);
  EXPECT_EQ(e->state, MemberState::failed);
  EXPECT_FALSE(e->inactive);
  auto res = r.engine.offline("eth5");
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::not_in_group);
}

TEST(Engine, UngroupedInterfacesIgnoredByDefault) {
  Rig r(make_config({{"m0", false}}));
  r.link("eth5", true, 50);
  r.start_all_up({"m0"});
  EXPECT_EQ(r.engine.find_member("eth5"), nullptr);
}

TEST(Engine, StateChangeIsPublishedOnceAndCounted) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  r.link("m0", true);  // no change
  EXPECT_TRUE(r.events.empty());
  r.link("m0", false);
  r.link("m0", false);
  EXPECT_EQ(r.of<MemberChanged>().size(), 1u);
  EXPECT_EQ(r.m("m0").counters.state_changes, 2u);  // unknown->ok at start, ok->failed
}

// --- renames: interfaces are known by index, members by name ---------------------

LinkObservation seen(const std::string& name, unsigned index, bool up = true) {
  return {name, index, true, up, mac_n(static_cast<int>(index)), false};
}

TEST(EngineRename, MemberRenamedAwayLeavesServiceAsIfRemoved) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  ASSERT_EQ(r.holder("198.18.1.10"), "m0");
  r.engine.observe_link(seen("m0", 10, false));  // ip link set m0 down
  r.engine.observe_link(seen("old0", 10, false));  // ip link set m0 name old0
  r.engine.observe_link(seen("old0", 10, true));
  const Member& m0 = r.m("m0");
  EXPECT_EQ(m0.ifindex, 0u);
  EXPECT_TRUE(m0.mac.is_zero());
  EXPECT_EQ(m0.link, LinkState::unknown);
  EXPECT_EQ(m0.state, MemberState::unknown);
  EXPECT_EQ(m0.reason, Reason::interface_renamed);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.g().state, GroupState::degraded);
  // Nothing of the group follows the interface under its new name.
  const Group* g = r.engine.group_of("old0");
  EXPECT_TRUE(!g || g->anonymous());
}

TEST(EngineRename, InterfaceRenamedToAMembersNameJoinsAsIfCreated) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.link("m0", true);
  r.engine.observe_link(seen("eth9", 30));
  r.engine.start();
  EXPECT_EQ(r.m("m1").state, MemberState::unknown);
  r.engine.observe_link(seen("m1", 30));
  EXPECT_EQ(r.m("m1").ifindex, 30u);
  EXPECT_EQ(r.m("m1").state, MemberState::ok);
  EXPECT_EQ(r.m("m1").reason, Reason::interface_renamed);
  EXPECT_EQ(r.g().state, GroupState::ok);
  EXPECT_EQ(r.engine.find_member("eth9"), nullptr);
}

// The case: m0 renamed away, then m2 renamed to m0. m2 must not stay behind
// with m2's old index and MAC (it was then taken offline as a duplicate of m0).
TEST(EngineRename, NoMemberKeepsAVanishedNameOrItsHardwareAddress) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", false}}));
  r.start_all_up({"m0", "m1", "m2"});
  r.engine.observe_link(seen("spare", 10));
  r.engine.observe_link(seen("m0", 12));
  EXPECT_EQ(r.m("m0").ifindex, 12u);
  EXPECT_EQ(r.m("m0").mac, mac_n(12));
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  EXPECT_EQ(r.m("m2").ifindex, 0u);
  EXPECT_FALSE(r.m("m2").hwaddr_dup);
  EXPECT_EQ(r.m("m2").state, MemberState::unknown);
  EXPECT_EQ(r.m("m2").reason, Reason::interface_renamed);
  for (const auto& m : r.g().members) EXPECT_FALSE(m.hwaddr_dup) << m.name;
  // Addresses are only on members that have an interface.
  for (const auto& a : r.g().data) EXPECT_NE(r.m(a.holder).ifindex, 0u) << a.prefix.str();
}

TEST(EngineRename, RemovalUnderANewNameIsStillSeen) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  // The rename was not seen (events lost); the removal names the new name.
  r.engine.observe_link({"gone0", 10, false, false, {}, false});
  EXPECT_EQ(r.m("m0").ifindex, 0u);
  EXPECT_EQ(r.m("m0").state, MemberState::unknown);
  EXPECT_EQ(r.m("m0").reason, Reason::interface_removed);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
}

TEST(EngineRename, UngroupedInterfaceIsTrackedUnderItsNewName) {
  Config c = make_config({{"m0", false}, {"m1", false}});
  c.track_interfaces_only_with_groups = false;
  Rig r(std::move(c));
  r.engine.observe_link(seen("eth5", 40));
  r.start_all_up({"m0", "m1"});
  ASSERT_NE(r.engine.find_member("eth5"), nullptr);
  r.engine.observe_link(seen("eth6", 40));
  EXPECT_EQ(r.engine.find_member("eth5"), nullptr);
  ASSERT_NE(r.engine.find_member("eth6"), nullptr);
  EXPECT_EQ(r.engine.find_member("eth6")->ifindex, 40u);
  ASSERT_EQ(r.engine.anonymous().members.size(), 1u);
}
