// The data plane's pure planning for self-healing: which applied objects the kernel no
// longer has, and how often one that keeps disappearing is put back.
#include <gtest/gtest.h>

#include "core/dataplane.hpp"

using namespace mpathd;
using namespace std::chrono_literals;

namespace {

IpPrefix pfx(const char* s) { return *IpPrefix::parse(s); }
IpAddress ip(const char* s) { return *IpAddress::parse(s); }

DataPlaneState applied_state() {
  DataPlaneState s;
  s.addresses = {{"m0", 10, pfx("198.18.1.10/24")}, {"m1", 11, pfx("198.18.1.11/24")}};
  s.routes = {{kMainTable, pfx("0.0.0.0/0"), ip("198.18.1.1"), "m0", 10},
              {40010, pfx("0.0.0.0/0"), ip("198.18.1.1"), "m0", 10},
              {40010, pfx("198.18.1.0/24"), std::nullopt, "m0", 10}};
  s.rules = {{pfx("198.18.1.10/32"), 40010, 1000}, {pfx("198.18.1.11/32"), 40011, 1000}};
  return s;
}

}  // namespace

TEST(DataPlaneVanished, NothingGoneWhenTheKernelHasEverything) {
  const auto applied = applied_state();
  auto present = applied;
  // A dump names interfaces by index only, and has more than ours.
  for (auto& a : present.addresses) a.ifname.clear();
  for (auto& r : present.routes) r.ifname = "ifindex 10";
  present.routes.push_back({kMainTable, pfx("198.18.1.0/24"), std::nullopt, "", 10});
  present.rules.push_back({pfx("0.0.0.0/0"), kMainTable, 32766});
  EXPECT_EQ(vanished(applied, present), DataPlaneState{});
}

TEST(DataPlaneVanished, RoutesFlushedWithTheLastAddressAreFound) {
  const auto applied = applied_state();
  DataPlaneState present;  // m0 lost 198.18.1.10 and, silently, every route through it
  present.addresses = {{"", 11, pfx("198.18.1.11/24")}};
  present.rules = applied.rules;
  const auto gone = vanished(applied, present);
  ASSERT_EQ(gone.addresses.size(), 1u);
  EXPECT_EQ(gone.addresses[0].ifname, "m0");  // described as applied
  EXPECT_EQ(gone.routes, applied.routes);
  EXPECT_TRUE(gone.rules.empty());
}

TEST(DataPlaneVanished, SameDestinationElsewhereIsNotOurs) {
  const auto applied = applied_state();
  auto present = applied;
  present.routes[0].ifindex = 11;                    // default in main via another member
  present.routes[1].gateway = ip("198.18.1.2");      // another router
  present.addresses[1].prefix = pfx("198.18.1.11/25");  // another prefix length
  present.rules[0].table = 40011;
  const auto gone = vanished(applied, present);
  EXPECT_EQ(gone.routes, (std::vector{applied.routes[0], applied.routes[1]}));
  EXPECT_EQ(gone.addresses, std::vector{applied.addresses[1]});
  EXPECT_EQ(gone.rules, std::vector{applied.rules[0]});
}

TEST(DataPlaneVanished, Describe) {
  const auto s = applied_state();
  EXPECT_EQ(describe(s.addresses[0]), "198.18.1.10/24 on m0");
  EXPECT_EQ(describe(s.routes[0]), "0.0.0.0/0 via 198.18.1.1 dev m0 table 254");
  EXPECT_EQ(describe(s.routes[2]), "198.18.1.0/24 dev m0 table 40010");
  EXPECT_EQ(describe(s.rules[0]), "from 198.18.1.10/32 lookup 40010 priority 1000");
}

TEST(RestoreBackoff, FirstDisappearancesAreRestoredAtOnce) {
  RestoreBackoff b;
  TimePoint t = TimePoint{} + 1h;
  EXPECT_TRUE(b.ready("r", t));  // never seen
  EXPECT_EQ(b.next(t), std::nullopt);
  for (unsigned i = 1; i <= RestoreBackoff::kFree; ++i) {
    EXPECT_EQ(b.vanished("r", t), t);
    EXPECT_TRUE(b.ready("r", t));
    EXPECT_EQ(b.count("r"), i);
    t += 100ms;
  }
  EXPECT_EQ(b.next(t), std::nullopt);
}

TEST(RestoreBackoff, AFightBacksOffExponentiallyToTheCap) {
  RestoreBackoff b;
  TimePoint t = TimePoint{} + 1h;
  for (unsigned i = 0; i < RestoreBackoff::kFree; ++i) b.vanished("r", t);
  // Someone removes it again each time it is put back.
  std::vector<Duration> delays;
  for (int i = 0; i < 9; ++i) {
    const TimePoint when = b.vanished("r", t);
    delays.push_back(when - t);
    EXPECT_FALSE(b.ready("r", t));
    EXPECT_FALSE(b.ready("r", when - 1ms));
    EXPECT_EQ(b.next(t), when);
    EXPECT_TRUE(b.ready("r", when));
    EXPECT_EQ(b.next(when), std::nullopt);
    t = when;  // restored, removed again at once
  }
  const std::vector<Duration> want{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s};
  EXPECT_EQ(delays, want);
  // At most one restore a minute: never a busy loop.
}

TEST(RestoreBackoff, AnObjectThatStaysIsForgiven) {
  RestoreBackoff b;
  TimePoint t = TimePoint{} + 1h;
  for (unsigned i = 0; i < RestoreBackoff::kFree + 2; ++i) t = b.vanished("r", t);
  EXPECT_GT(b.count("r"), RestoreBackoff::kFree);
  // Restored at t, then left alone for a whole window: the next loss is restored at once.
  t += RestoreBackoff::kWindow;
  EXPECT_EQ(b.vanished("r", t), t);
  EXPECT_EQ(b.count("r"), 1u);
}

TEST(RestoreBackoff, KeysAreIndependent) {
  RestoreBackoff b;
  TimePoint t = TimePoint{} + 1h;
  for (unsigned i = 0; i <= RestoreBackoff::kFree; ++i) b.vanished("a", t);
  EXPECT_FALSE(b.ready("a", t));
  EXPECT_TRUE(b.ready("b", t));
  EXPECT_EQ(b.vanished("b", t), t);
  EXPECT_EQ(b.next(t), t + RestoreBackoff::kFirstDelay);
}

TEST(RestoreBackoff, AnInterfaceThatCameUpIsForgiven) {
  RestoreBackoff b;
  TimePoint t = TimePoint{} + 1h;
  for (unsigned i = 0; i <= RestoreBackoff::kFree; ++i) {
    b.vanished("route via m0", t, 10);  // refused while m0 is down
    b.vanished("route via m1", t, 11);
    b.vanished("rule", t);
  }
  b.forgive(10);  // m0 came up
  EXPECT_TRUE(b.ready("route via m0", t));
  EXPECT_EQ(b.count("route via m0"), 0u);
  EXPECT_FALSE(b.ready("route via m1", t));
  b.forgive(0);  // no interface: nothing
  EXPECT_FALSE(b.ready("rule", t));
}
