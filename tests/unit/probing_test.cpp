// Probing's decisions, pure: which detector a member gets (kind, source, FDT) and
// whether it probes now. The seam: detector_spec() and detector_runs() take the model
// and return the decision; Probing itself only opens sockets and sd-event sources for
// it (exercised by the adapter tier, tests/adapters/detect_test.cpp, and test_probes.py).
#include <gtest/gtest.h>

#include "core/dataplane.hpp"
#include "daemon/probing.hpp"
#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {

const IpAddress kLinkLocal = *IpAddress::parse("fe80::1");

// g0 with m0 (test address 198.18.1.20), m1 (none), one IPv4 data address and a route.
struct Model : Rig {
  Model() : Rig(config()) { start_all_up({"m0", "m1"}); }
  static Config config() {
    Config c = make_config({{"m0", false}, {"m1", false}});
    c.groups[0].members[0].test_addresses = {*IpPrefix::parse("198.18.1.20/24"), *IpPrefix::parse("198.18.1.21/24")};
    return c;
  }
};

}  // namespace

TEST(DetectorSpec, IcmpFromTheFirstIpv4TestAddressArpWithoutOne) {
  Model r;
  const auto m0 = detector_spec(r.engine.config(), r.g(), r.m("m0"), kLinkLocal);
  EXPECT_EQ(m0.kind, ProbeKind::icmp);
  EXPECT_EQ(m0.source, IpAddress::parse("198.18.1.20"));
  EXPECT_EQ(m0.fdt, Config::kDefaultFailureDetectionTime);
  // No test address, IPv4 data and an IPv4 router: ARP, which needs no source address.
  const auto m1 = detector_spec(r.engine.config(), r.g(), r.m("m1"), kLinkLocal);
  EXPECT_EQ(m1.kind, ProbeKind::arp);
  EXPECT_EQ(m1.source, std::nullopt);
}

TEST(DetectorSpec, Icmp6FromTheLinkLocalInAnIpv6OnlyGroup) {
  Config c = make_config({{"m0", false}}, {"2001:db8::10/64"});
  c.groups[0].routes.clear();
  Rig r(c);
  r.start_all_up({"m0"});
  const auto spec = detector_spec(r.engine.config(), r.g(), r.m("m0"), kLinkLocal);
  EXPECT_EQ(spec.kind, ProbeKind::icmp6);
  EXPECT_EQ(spec.source, kLinkLocal);
  // Without a link-local address there is nothing to probe from.
  EXPECT_EQ(detector_spec(r.engine.config(), r.g(), r.m("m0"), std::nullopt).kind, ProbeKind::none);
}

TEST(DetectorSpec, DualStackWithAnIpv6TestAddressBesidesTheIpv4One) {
  // m0 has IPv4 test addresses only: one family.
  Model r;
  EXPECT_EQ(detector_spec(r.engine.config(), r.g(), r.m("m0"), kLinkLocal).source6, std::nullopt);
  // With an IPv6 test address too: ICMP from the IPv4 one and ICMPv6 from the link-local.
  Config c = Model::config();
  c.groups[0].members[0].test_addresses.push_back(*IpPrefix::parse("2001:db8:1::101/64"));
  c.groups[0].members[1].test_addresses = {*IpPrefix::parse("2001:db8:1::102/64")};
  Rig d(c);
  d.start_all_up({"m0", "m1"});
  const auto m0 = detector_spec(d.engine.config(), d.g(), d.m("m0"), kLinkLocal);
  EXPECT_EQ(m0.kind, ProbeKind::icmp);
  EXPECT_EQ(m0.source, IpAddress::parse("198.18.1.20"));
  EXPECT_EQ(m0.source6, kLinkLocal);
  // No link-local yet: IPv4 alone until it comes.
  EXPECT_EQ(detector_spec(d.engine.config(), d.g(), d.m("m0"), std::nullopt).source6, std::nullopt);
  // An IPv6 test address alone is no dual stack (ARP, as without test addresses).
  EXPECT_EQ(detector_spec(d.engine.config(), d.g(), d.m("m1"), kLinkLocal).source6, std::nullopt);
  // Nor is ARP probing, or ICMP without an IPv4 test address.
  c.groups[0].probe_method = ProbeMethod::arp;
  d.engine.reconfigure(c);
  EXPECT_EQ(detector_spec(d.engine.config(), d.g(), d.m("m0"), kLinkLocal).source6, std::nullopt);
}

TEST(DetectorSpec, ProbeMethodNoneAndTheFdtRule) {
  Config c = Model::config();
  c.failure_detection_time = seconds(20);
  c.groups[0].probe_method = ProbeMethod::none;
  Rig r(c);
  r.start_all_up({"m0", "m1"});
  EXPECT_EQ(detector_spec(r.engine.config(), r.g(), r.m("m0"), kLinkLocal), DetectorSpec{});
  // The daemon's FDT, unless the group has its own.
  c.groups[0].probe_method = ProbeMethod::auto_;
  r.engine.reconfigure(c);
  EXPECT_EQ(detector_spec(r.engine.config(), r.g(), r.m("m0"), kLinkLocal).fdt, seconds(20));
  c.groups[0].failure_detection_time = seconds(3);
  r.engine.reconfigure(c);
  EXPECT_EQ(detector_spec(r.engine.config(), r.g(), r.m("m0"), kLinkLocal).fdt, seconds(3));
}

TEST(ProbeTargets, OnlyMainTableRoutesWithAGatewayCanChangeThem) {
  net::Route r;
  r.dst = *IpPrefix::parse("0.0.0.0/0");
  r.gateway = IpAddress::parse("198.18.0.1");
  EXPECT_TRUE(may_change_probe_targets(r));  // a default route: its gateway is a router
  r.gateway = IpAddress::parse("fe80::1");
  EXPECT_TRUE(may_change_probe_targets(r));  // an IPv6 link-local router
  r.table = 100;
  EXPECT_FALSE(may_change_probe_targets(r));  // another table is not read for targets
  r.table = kMainTable;
  r.gateway.reset();
  r.dst = *IpPrefix::parse("fe80::/64");
  EXPECT_FALSE(may_change_probe_targets(r));  // the kernel's prefix route of a link
  r.table = 255;
  r.dst = *IpPrefix::parse("ff00::/8");
  EXPECT_FALSE(may_change_probe_targets(r));  // local and multicast routes
}

TEST(DetectorRuns, OnlyWithLinkOnlineAndAUniqueMac) {
  Model r;
  EXPECT_TRUE(detector_runs(r.m("m0")));
  ASSERT_TRUE(r.engine.offline("m0"));
  EXPECT_FALSE(detector_runs(r.m("m0"))) << "offline";
  ASSERT_TRUE(r.engine.online("m0"));
  EXPECT_TRUE(detector_runs(r.m("m0")));
  r.link("m1", false);
  EXPECT_FALSE(detector_runs(r.m("m1"))) << "link down";
  r.link("m1", true);
  EXPECT_TRUE(detector_runs(r.m("m1")));
  r.engine.observe_link({"m1", 11, true, true, mac_n(10), false});  // m0's MAC
  EXPECT_FALSE(detector_runs(r.m("m1"))) << "duplicate hardware address";
}
