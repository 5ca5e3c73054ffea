// mpathd_client: error names, object paths and the snapshot built from
// GetManagedObjects' values (no bus). Built by ipmpctl/CMakeLists.txt.
#include <gtest/gtest.h>

#ifdef IPMPCTL_UNIT_TESTS

#include "client/client.hpp"
#include "client/objects.hpp"

namespace mpathd::client {
namespace {

TEST(ClientErrors, EveryErrcRoundTrips) {
  for (std::size_t k = 0; k < enum_count<Errc>(); ++k) {
    auto e = static_cast<Errc>(k);
    auto name = error_name(e);
    EXPECT_TRUE(name.starts_with("org.ipmp.Mpathd1.Error.")) << name;
    auto back = error_from_dbus(name, "msg");
    EXPECT_EQ(back.failure, Failure::daemon);
    // busy and config travel as Failed (= system): the contract has no name for them.
    if (e == Errc::busy || e == Errc::config)
      EXPECT_EQ(back.errc, Errc::system);
    else
      EXPECT_EQ(back.errc, e) << name;
    EXPECT_EQ(back.message, "msg");
  }
}

TEST(ClientErrors, ContractNames) {
  EXPECT_EQ(error_name(Errc::last_usable_member), "org.ipmp.Mpathd1.Error.LastUsableMember");
  EXPECT_EQ(error_name(Errc::hwaddr_duplicate), "org.ipmp.Mpathd1.Error.HwAddrDuplicate");
  EXPECT_EQ(error_name(Errc::system), "org.ipmp.Mpathd1.Error.Failed");
  EXPECT_EQ(error_from_dbus("org.freedesktop.DBus.Error.AccessDenied", "").failure,
            Failure::access_denied);
  EXPECT_EQ(error_from_dbus("org.freedesktop.DBus.Error.ServiceUnknown", "").failure,
            Failure::unreachable);
  EXPECT_EQ(error_from_dbus("org.freedesktop.DBus.Error.UnknownObject", "").failure,
            Failure::protocol);
}

TEST(ClientPaths, EncodeDecode) {
  EXPECT_EQ(interface_path("m0"), "/org/ipmp/Mpathd1/interface/m0");
  EXPECT_EQ(group_path("g-0.x"), "/org/ipmp/Mpathd1/group/g_2d0_2ex");
  auto d = decode_path("/org/ipmp/Mpathd1/group/g_2d0_2ex");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, ObjectKind::group);
  EXPECT_EQ(d->name, "g-0.x");
  d = decode_path(interface_path("eth0.100"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, ObjectKind::interface);
  EXPECT_EQ(d->name, "eth0.100");
  EXPECT_EQ(decode_path("/org/ipmp/Mpathd1")->kind, ObjectKind::manager);
  EXPECT_FALSE(decode_path("/org/other"));
}

TEST(ClientSnapshot, BuiltFromObjects) {
  using detail::Properties;
  detail::ObjectMap objects;
  auto m0 = interface_path("m0"), m1 = interface_path("m1"), g0 = group_path("g0");
  objects[g0]["org.ipmp.Mpathd1.Group"] = Properties{
      {"Name", std::string("g0")},
      {"GroupInterface", std::string("ipmp0")},
      {"State", std::string("ok")},
      {"FailureDetectionTime", std::uint64_t{10000}},
      {"Members", std::vector<std::string>{m1, m0}},
      {"DataAddresses", std::vector<DataAddress>{{"198.18.1.10/24", "up", "m0", "m0"}}},
      {"SomethingNewer", std::monostate{}},
  };
  objects[g0]["org.freedesktop.DBus.Properties"] = {};
  objects[m0]["org.ipmp.Mpathd1.Interface"] = Properties{
      {"Name", std::string("m0")}, {"Group", std::string("g0")}, {"Active", true},
      {"Flags", std::vector<std::string>{"RUNNING"}},
      {"Targets", std::vector<Target>{{"198.18.1.1", 100, 20}}},
      {"Counters", std::map<std::string, std::uint64_t>{{"failures", 2}}},
      {"Index", std::uint32_t{7}}};
  objects[m1]["org.ipmp.Mpathd1.Interface"] = Properties{{"Name", std::string("m1")}};
  objects["/org/ipmp/Mpathd1/interface/eth9"]["org.ipmp.Mpathd1.Interface"] = Properties{};
  Properties manager{{"Version", std::string("0.1.0")},
                     {"Groups", std::vector<std::string>{g0}},
                     {"Interfaces", std::vector<std::string>{m1, m0}},
                     {"NotificationCount", std::uint32_t{3}}};
  auto s = detail::build_snapshot(objects, manager);
  EXPECT_EQ(s.manager.version, "0.1.0");
  EXPECT_EQ(s.manager.notification_count, 3U);
  ASSERT_EQ(s.groups.size(), 1U);
  EXPECT_EQ(s.groups[0].members, (std::vector<std::string>{"m1", "m0"}));
  EXPECT_EQ(s.groups[0].fdt_ms, 10000U);
  EXPECT_EQ(s.groups[0].data_addresses[0].inbound, "m0");
  ASSERT_EQ(s.interfaces.size(), 3U);
  EXPECT_EQ(s.interfaces[0].name, "m1");  // Manager order first
  EXPECT_EQ(s.interfaces[1].name, "m0");
  EXPECT_EQ(s.interfaces[2].name, "eth9");  // not listed: name from its path
  EXPECT_EQ(s.interfaces[1].index, 7U);
  EXPECT_TRUE(s.interfaces[1].active);
  EXPECT_TRUE(s.interfaces[1].has_flag("RUNNING"));
  EXPECT_EQ(s.interfaces[1].targets[0].rtt_avg_usec, 100U);
  EXPECT_EQ(s.interfaces[1].counters.at("failures"), 2U);
  EXPECT_EQ(s.find_group("g0")->group_interface, "ipmp0");
  EXPECT_EQ(s.find_interface("nope"), nullptr);
}

}  // namespace
}  // namespace mpathd::client

#endif  // IPMPCTL_UNIT_TESTS
