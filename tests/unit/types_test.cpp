#include <gtest/gtest.h>

#include "core/dataplane.hpp"
#include "core/types.hpp"
#include "fake.hpp"

using namespace mpathd;

TEST(Types, PrefixParseAndNetwork) {
  auto p = IpPrefix::parse("198.18.1.10/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->str(), "198.18.1.10/24");
  EXPECT_EQ(p->network().str(), "198.18.1.0/24");
  EXPECT_TRUE(p->contains(*IpAddress::parse("198.18.1.200")));
  EXPECT_FALSE(p->contains(*IpAddress::parse("198.18.2.1")));
  auto v6 = IpPrefix::parse("2001:db8:1::10/64");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->network().str(), "2001:db8:1::/64");
  EXPECT_EQ(IpPrefix::parse("2001:db8::1")->len, 128);
  EXPECT_FALSE(IpPrefix::parse("198.18.1.10/33"));
  EXPECT_FALSE(IpPrefix::parse("198.18.1.10/"));
  EXPECT_FALSE(IpPrefix::parse("198.18.1.10/2x"));
  EXPECT_FALSE(IpPrefix::parse("nonsense/8"));
  EXPECT_EQ(IpPrefix::parse("198.18.1.77/25")->network().str(), "198.18.1.0/25");
  EXPECT_EQ(IpPrefix::parse("198.18.1.200/25")->network().str(), "198.18.1.128/25");
}

TEST(Types, MacAndDurations) {
  auto m = Mac::parse("02:00:00:aa:bb:0c");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->str(), "02:00:00:aa:bb:0c");
  EXPECT_FALSE(Mac::parse("02:00:00:aa:bb"));
  EXPECT_FALSE(Mac::parse("02:00:00:aa:bb:0c:11"));
  EXPECT_EQ(format_seconds(std::chrono::milliseconds(10000)), "10.00s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(std::chrono::seconds(2)), "2s");
}

TEST(DataPlane, RulesAndTablesFollowTheHolder) {
  using namespace mpathd::test;
  Rig r(make_config({{"m0", false}, {"m1", false}}, {"198.18.1.10/24", "2001:db8:1::10/64"}));
  r.start_all_up({"m0", "m1"});
  auto s = desired_dataplane(r.engine.groups(), r.engine.config());
  ASSERT_EQ(s.addresses.size(), 2u);
  EXPECT_EQ(s.addresses[0].ifname, "m0");
  ASSERT_EQ(s.rules.size(), 2u);
  EXPECT_EQ(s.rules[0].src.str(), "198.18.1.10/32");
  EXPECT_EQ(s.rules[0].table, 40000u + 10u);
  EXPECT_EQ(s.rules[1].src.str(), "2001:db8:1::10/128");
  // Table of m0: both subnets and the IPv4 default route; main: the default via m0.
  int main_routes = 0;
  for (auto& rt : s.routes) {
    EXPECT_EQ(rt.ifname, "m0");
    if (rt.table == kMainTable) {
      ++main_routes;
      EXPECT_EQ(rt.dst.str(), "0.0.0.0/0");
      EXPECT_EQ(rt.gateway->str(), "198.18.1.1");
    }
  }
  EXPECT_EQ(main_routes, 1);
  EXPECT_EQ(s.routes.size(), 4u);

  r.link("m0", false);
  auto after = desired_dataplane(r.engine.groups(), r.engine.config());
  for (auto& a : after.addresses) EXPECT_EQ(a.ifname, "m1");
  for (auto& rt : after.routes) EXPECT_EQ(rt.ifname, "m1");
  EXPECT_EQ(after.rules[0].table, 40000u + 11u);
}
