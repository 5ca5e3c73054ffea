// Shared addresses in the Engine (issue 10, item 1): takeover and release with their
// errors, placement on active members, the release of a failed group's addresses, the
// data plane they ask for, and their survival across a restart. Fake clock, no kernel.
#include <gtest/gtest.h>

#include "core/dataplane.hpp"
#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {

const char* const kShared = "198.18.1.50";

Config shared_config(bool release_on_failure = true) {
  Config c = make_config({{"m0", false}, {"m1", false}, {"m2", false}}, {"198.18.1.10/24"});
  c.groups[0].shared_addresses = {*IpPrefix::parse("198.18.1.50/24"), *IpPrefix::parse("2001:db8:1::50/64")};
  c.groups[0].release_shared_on_failure = release_on_failure;
  return c;
}

IpAddress addr(const char* s) { return *IpAddress::parse(s); }

const SharedAddress& shared(const Rig& r, const char* a = kShared) { return *r.g().find_shared(addr(a)); }

}  // namespace

TEST(Shared, ConfiguredAddressesStartReleased) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_EQ(r.g().shared.size(), 2u);
  for (const auto& s : r.g().shared) {
    EXPECT_EQ(s.state, SharedState::released);
    EXPECT_EQ(s.holder, "");
  }
  EXPECT_TRUE(r.of<SharedAddressChanged>().empty());
  for (const auto& a : desired_dataplane(r.engine.groups(), r.engine.config()).addresses)
    EXPECT_NE(a.prefix.addr, addr(kShared));
}

TEST(Shared, TakeoverHoldsOnLeastLoadedActiveMemberAndPlacesIt) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  r.events.clear();
  ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
  // m0 carries the data address: the shared one goes to m1.
  EXPECT_EQ(shared(r).state, SharedState::held);
  EXPECT_EQ(shared(r).holder, "m1");
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].before, SharedState::released);
  EXPECT_EQ(ev[0].after, SharedState::held);
  EXPECT_EQ(ev[0].to, "m1");
  EXPECT_EQ(ev[0].reason, Reason::admin_takeover);
  EXPECT_EQ(describe(Event(ev[0])), "group g0: shared address 198.18.1.50/24 released -> held [-- -> m1] (admin-takeover)");
  // The IPv6 one balances onto m2 (fewest addresses).
  ASSERT_TRUE(r.engine.takeover_shared(addr("2001:db8:1::50")));
  EXPECT_EQ(shared(r, "2001:db8:1::50").holder, "m2");
  const auto dp = desired_dataplane(r.engine.groups(), r.engine.config());
  EXPECT_NE(std::find(dp.addresses.begin(), dp.addresses.end(),
                      PlacedAddress{"m1", 11, *IpPrefix::parse("198.18.1.50/24")}),
            dp.addresses.end());
  EXPECT_NE(std::find(dp.rules.begin(), dp.rules.end(),
                      PlacedRule{*IpPrefix::parse("198.18.1.50/32"), r.engine.config().routing_table_base + 11,
                                 r.engine.config().rule_priority}),
            dp.rules.end());
}

TEST(Shared, BadCommandsChangeNothing) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
  const auto before = r.g().shared;
  r.events.clear();
  auto not_shared = r.engine.takeover_shared(addr("198.18.1.10"));  // a data address
  ASSERT_FALSE(not_shared);
  EXPECT_EQ(not_shared.error().code, Errc::not_shared);
  EXPECT_EQ(not_shared.error().message, "198.18.1.10 is not a shared address of any group");
  EXPECT_EQ(r.engine.release_shared(addr("198.18.9.9")).error().code, Errc::not_shared);
  auto again = r.engine.takeover_shared(addr(kShared));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::already_held);
  EXPECT_EQ(again.error().message, "198.18.1.50/24 is already held here (held on m1)");
  auto not_held = r.engine.release_shared(addr("2001:db8:1::50"));
  ASSERT_FALSE(not_held);
  EXPECT_EQ(not_held.error().code, Errc::not_held);
  EXPECT_EQ(r.g().shared, before);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(dbus_error_name(Errc::not_shared), "org.ipmp.Mpathd1.Error.NotShared");
  EXPECT_EQ(errc_from_dbus_name("AlreadyHeld"), Errc::already_held);
}

TEST(Shared, TakeoverWithoutActiveMemberIsRefused) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  for (auto* m : {"m0", "m1", "m2"}) r.link(m, false);
  r.events.clear();
  auto t = r.engine.takeover_shared(addr(kShared));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::not_usable);
  EXPECT_EQ(shared(r).state, SharedState::released);
  EXPECT_TRUE(r.of<SharedAddressChanged>().empty());
}

TEST(Shared, ReleaseGivesItUp) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
  r.events.clear();
  ASSERT_TRUE(r.engine.release_shared(addr(kShared)));
  EXPECT_EQ(shared(r).state, SharedState::released);
  EXPECT_EQ(shared(r).holder, "");
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].from, "m1");
  EXPECT_EQ(ev[0].reason, Reason::admin_release);
  for (const auto& a : desired_dataplane(r.engine.groups(), r.engine.config()).addresses)
    EXPECT_NE(a.prefix.addr, addr(kShared));
}

TEST(Shared, MovesInsideTheGroupWhenItsMemberFails) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
  r.events.clear();
  r.link("m1", false);
  EXPECT_EQ(shared(r).state, SharedState::held);
  EXPECT_EQ(shared(r).holder, "m2");  // m0 carries the data address
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].before, SharedState::held);
  EXPECT_EQ(ev[0].from, "m1");
  EXPECT_EQ(ev[0].to, "m2");
  EXPECT_EQ(ev[0].reason, Reason::failover);
  // It does not go back when m1 is repaired: it moves only when it must.
  r.events.clear();
  r.link("m1", true);
  EXPECT_EQ(shared(r).holder, "m2");
  EXPECT_TRUE(r.of<SharedAddressChanged>().empty());
}

TEST(Shared, WholeGroupFailureReleasesWithAReason) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
  r.link("m0", false);
  r.link("m2", false);
  r.events.clear();
  r.link("m1", false);
  EXPECT_EQ(r.g().state, GroupState::failed);
  EXPECT_EQ(shared(r).state, SharedState::released);
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, Reason::group_failure);
  EXPECT_EQ(ev[0].after, SharedState::released);
  EXPECT_EQ(describe(Event(ev[0])),
            "group g0: shared address 198.18.1.50/24 held -> released [m1 -> --] (group-failure): group 'g0' has no "
            "active member; released (release-shared-on-failure)");
  // The group failed first, then the address was released (the log reads in order).
  auto lines = r.lines();
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines.back(), describe(Event(ev[0])));
  // Released stays released after the repair: a cluster manager takes it over again.
  r.link("m1", true);
  EXPECT_EQ(shared(r).state, SharedState::released);
}

TEST(Shared, WholeGroupFailureKeepsItUnserviceableWhenConfigured) {
  Rig r(shared_config(false));
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
  for (auto* m : {"m0", "m2", "m1"}) r.link(m, false);
  EXPECT_EQ(shared(r).state, SharedState::unserviceable);
  EXPECT_EQ(shared(r).holder, "m1");  // stays where it was, like data addresses
  EXPECT_EQ(shared(r).detail, "group 'g0' has no active member; kept (release-shared-on-failure = false)");
  // Still in the data plane, and still "held" for the commands.
  EXPECT_EQ(r.engine.takeover_shared(addr(kShared)).error().code, Errc::already_held);
  r.events.clear();
  r.link("m2", true);
  EXPECT_EQ(shared(r).state, SharedState::held);
  EXPECT_EQ(shared(r).holder, "m2");
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, Reason::repaired);
  EXPECT_EQ(ev[0].detail, "");
}

TEST(Shared, HeldSurvivesARestartOnItsMember) {
  std::vector<PersistedGroup> saved;
  {
    Rig r(shared_config());
    r.start_all_up({"m0", "m1", "m2"});
    ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
    r.link("m1", false);  // now on m2
    saved = r.engine.export_state();
  }
  ASSERT_EQ(saved[0].shared.size(), 1u);
  EXPECT_EQ(saved[0].shared[0], (PersistedShared{*IpPrefix::parse("198.18.1.50/24"), "m2"}));
  Rig r(shared_config());
  r.engine.import_state(saved);
  for (auto* m : {"m0", "m1", "m2"}) r.link(m, true);
  r.engine.observe_address("m2", *IpPrefix::parse("198.18.1.50/24"), true);  // still in the kernel
  r.engine.start();
  EXPECT_EQ(shared(r).state, SharedState::held);
  EXPECT_EQ(shared(r).holder, "m2");
  EXPECT_EQ(shared(r, "2001:db8:1::50").state, SharedState::released);
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, Reason::adopted);
}

// Saved as held, but the kernel no longer has it (removed while mpathd was away): the
// kernel decides, the address stays released and says why.
TEST(Shared, HeldButGoneFromTheKernelStaysReleased) {
  Rig r(shared_config());
  r.engine.import_state({PersistedGroup{"g0", {}, {}, {{*IpPrefix::parse("198.18.1.50/24"), "m0"}}}});
  for (auto* m : {"m0", "m1", "m2"}) r.link(m, true);
  r.engine.start();
  EXPECT_EQ(shared(r).state, SharedState::released);
  EXPECT_NE(shared(r).detail.find("not in the kernel"), std::string::npos);
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, Reason::startup);
  EXPECT_EQ(ev[0].after, SharedState::released);
}

TEST(Shared, StartAdoptsAnAddressTheKernelCarries) {
  Rig r(shared_config());
  r.engine.import_state({PersistedGroup{"g0", {}, {}, {{*IpPrefix::parse("198.18.1.50/24"), "m0"}}}});
  for (auto* m : {"m0", "m1", "m2"}) r.link(m, true);
  r.engine.observe_address("m2", *IpPrefix::parse("198.18.1.50/24"), true);  // the kernel has it on m2
  r.engine.start();
  EXPECT_EQ(shared(r).state, SharedState::held);
  EXPECT_EQ(shared(r).holder, "m2");  // where the kernel has it: no move
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, Reason::adopted);
  EXPECT_EQ(ev[0].to, "m2");
}

TEST(Shared, ReloadWithoutTheAddressReleasesItFirst) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
  r.events.clear();
  Config next = shared_config();
  next.groups[0].shared_addresses.erase(next.groups[0].shared_addresses.begin());
  r.engine.reconfigure(next);
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].after, SharedState::released);
  EXPECT_EQ(ev[0].reason, Reason::config_reload);
  ASSERT_EQ(r.g().shared.size(), 1u);
  EXPECT_FALSE(r.g().find_shared(addr(kShared)));
  // And a new one appears released.
  r.engine.reconfigure(shared_config());
  ASSERT_EQ(r.g().shared.size(), 2u);
  EXPECT_EQ(r.g().shared[0].prefix, *IpPrefix::parse("198.18.1.50/24"));
  EXPECT_EQ(shared(r).state, SharedState::released);
}

TEST(Shared, DestroyingTheGroupReleasesItFirst) {
  Rig r(shared_config());
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.takeover_shared(addr(kShared)));
  r.events.clear();
  ASSERT_TRUE(r.engine.destroy_group("g0"));
  auto ev = r.of<SharedAddressChanged>();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].after, SharedState::released);
  EXPECT_EQ(ev[0].from, "m1");
  // Before the group's objects go away.
  EXPECT_TRUE(std::holds_alternative<SharedAddressChanged>(r.events.front()));
}
