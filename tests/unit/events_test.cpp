// Issue 9 item 1: every observable change is one Engine event, published where the
// change is made: settings changed by a reload, data address lists and homes, the
// kernel's refusal of an address, and the FDT raised by the probe RTTs.
#include <gtest/gtest.h>

#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {

Config three() {
  return make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"});
}

using Lines = std::vector<std::string>;

// A started group, m0 m1 active, m2 a standby, events cleared.
struct Started : Rig {
  Started() : Rig(three()) {
    start_all_up({"m0", "m1", "m2"});
    events.clear();
  }
};

}  // namespace

TEST(Events, ReloadOfDaemonSettingsIsOneEvent) {
  Started r;
  Config next = three();
  next.notification_count = 5;
  next.metrics_file = "/run/mpathd/metrics.prom";
  r.engine.reconfigure(next);
  EXPECT_EQ(r.lines(), Lines{"daemon settings changed (config-reload)"});
}

TEST(Events, DaemonFdtReachesTheGroupsThatFollowIt) {
  Started r;
  Config next = three();
  next.failure_detection_time = seconds(20);
  r.engine.reconfigure(next);
  EXPECT_EQ(r.lines(), (Lines{"daemon settings changed (config-reload)", "group g0: settings changed (config-reload)"}));
  EXPECT_EQ(r.g().fdt, seconds(20));
  // A group with its own FDT does not follow.
  next.groups[0].failure_detection_time = seconds(20);
  r.engine.reconfigure(next);
  r.events.clear();
  next.failure_detection_time = seconds(30);
  r.engine.reconfigure(next);
  EXPECT_EQ(r.lines(), Lines{"daemon settings changed (config-reload)"});
  EXPECT_EQ(r.g().fdt, seconds(20));
}

TEST(Events, ReloadOfGroupSettingsIsOneEvent) {
  Started r;
  Config next = three();
  next.groups[0].shared_addresses.push_back(*IpPrefix::parse("198.18.1.99/24"));
  next.groups[0].failback = false;
  r.engine.reconfigure(next);
  EXPECT_EQ(r.lines(), Lines{"group g0: settings changed (config-reload)"});
}

TEST(Events, ReloadOfMemberSettings) {
  Started r;
  Config next = three();
  next.groups[0].members[0].test_addresses.push_back(*IpPrefix::parse("198.18.1.50/24"));
  r.engine.reconfigure(next);
  EXPECT_EQ(r.lines(), Lines{"g0/m0: settings changed (config-reload)"});
  // A standby that stops being one: its settings, then its state.
  r.events.clear();
  next.groups[0].members[2].standby = false;
  r.engine.reconfigure(next);
  ASSERT_GE(r.events.size(), 2u) << ::testing::PrintToString(r.lines());
  EXPECT_EQ(r.lines()[0], "g0/m2: settings changed (config-reload)");
  EXPECT_EQ(r.of<SettingsChanged>().size(), 1u);
  EXPECT_EQ(r.of<MemberChanged>().size(), 1u) << ::testing::PrintToString(r.lines());
}

TEST(Events, ReloadAddsAndRemovesDataAddresses) {
  Started r;
  Config next = three();
  next.groups[0].data_addresses.erase(next.groups[0].data_addresses.begin());
  next.groups[0].data_addresses.push_back(*IpPrefix::parse("198.18.1.12/24"));
  r.engine.reconfigure(next);
  EXPECT_EQ(r.of<DataAddressesChanged>().size(), 2u) << ::testing::PrintToString(r.lines());
  EXPECT_EQ(r.of<SettingsChanged>().size(), 0u) << "addresses are not settings";
  EXPECT_EQ(r.lines(), (Lines{"group g0: 198.18.1.10/24 m0 -> -- (address-removed)",
                              "group g0: data address 198.18.1.10/24 removed (address-removed)",
                              "group g0: data address 198.18.1.12/24 home m1 (config-reload)",
                              "group g0: 198.18.1.12/24 -- -> m1 (config-reload)"}));
}

TEST(Events, RuntimeAddressChanges) {
  Started r;
  const auto a = *IpPrefix::parse("198.18.1.12/24");
  ASSERT_TRUE(r.engine.add_data_address("g0", a));
  EXPECT_EQ(r.lines(), (Lines{"group g0: data address 198.18.1.12/24 home m0 (address-added)",
                              "group g0: 198.18.1.12/24 -- -> m0 (address-added)"}));
  r.events.clear();
  ASSERT_TRUE(r.engine.move_address(a.addr, "m1"));
  EXPECT_EQ(r.lines(), (Lines{"group g0: data address 198.18.1.12/24 home m1 (admin-move)",
                              "group g0: 198.18.1.12/24 m0 -> m1 (admin-move)"}));
  r.events.clear();
  ASSERT_TRUE(r.engine.move_address(a.addr, "m1"));
  EXPECT_TRUE(r.events.empty()) << "nothing changed";
  ASSERT_TRUE(r.engine.remove_data_address("g0", a.addr));
  EXPECT_EQ(r.lines(), (Lines{"group g0: 198.18.1.12/24 m1 -> -- (address-removed)",
                              "group g0: data address 198.18.1.12/24 removed (address-removed)"}));
}

// The home moves with its member leaving the group.
TEST(Events, HomeThatLeavesTheGroup) {
  Started r;
  ASSERT_TRUE(r.engine.remove_member("m0"));
  const auto changes = r.of<DataAddressesChanged>();
  ASSERT_EQ(changes.size(), 1u) << ::testing::PrintToString(r.lines());
  EXPECT_EQ(changes[0].address.str(), "198.18.1.10/24");
  EXPECT_EQ(changes[0].home, r.holder("198.18.1.10"));
  EXPECT_EQ(changes[0].reason, Reason::member_removed);
}

TEST(Events, KernelRefusalIsAnEvent) {
  Started r;
  const auto a = *IpAddress::parse("198.18.1.10");
  r.engine.observe_address_refused(a, "Permission denied");
  EXPECT_EQ(r.lines(), Lines{"group g0: data address 198.18.1.10/24 home m0, refused by the kernel: Permission denied"});
  r.events.clear();
  r.engine.observe_address_refused(a, "Permission denied");
  EXPECT_TRUE(r.events.empty()) << "unchanged";
  r.engine.observe_address_refused(a, "");
  EXPECT_EQ(r.lines(), Lines{"group g0: data address 198.18.1.10/24 home m0"});
}

TEST(Events, RaisedFdtIsAnEventAndSoIsItsRestoration) {
  Started r;
  ProbeVerdict v{ProbeState::ok, {}, r.clock.now(), false, {}, {}, {}};
  r.engine.observe_probe("m0", v);
  r.events.clear();
  v.fdt_unachievable = true;
  v.needed_fdt = seconds(25);
  r.engine.observe_probe("m0", v);
  auto fdt = r.of<FdtChanged>();
  ASSERT_EQ(r.events.size(), 1u) << ::testing::PrintToString(r.lines());
  ASSERT_EQ(fdt.size(), 1u);
  EXPECT_EQ(fdt[0].before, seconds(10));
  EXPECT_EQ(fdt[0].after, seconds(25));
  EXPECT_TRUE(fdt[0].raised);
  EXPECT_EQ(r.g().fdt, seconds(25));
  r.events.clear();
  r.clock.advance(seconds(1));
  r.engine.observe_probe("m0", v);
  EXPECT_TRUE(r.events.empty()) << "unchanged";
  v.fdt_unachievable = false;
  v.needed_fdt = {};
  r.engine.observe_probe("m0", v);
  fdt = r.of<FdtChanged>();
  ASSERT_EQ(r.events.size(), 1u) << ::testing::PrintToString(r.lines());
  EXPECT_EQ(fdt.at(0).after, seconds(10));
  EXPECT_FALSE(fdt.at(0).raised);
}
