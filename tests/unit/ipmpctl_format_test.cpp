// ipmpctl: ipmpstat-style tables, fields, -P escaping and the views' values.
// Built by ipmpctl/CMakeLists.txt (ipmpctl_unit_tests), which defines IPMPCTL_UNIT_TESTS;
// in tests/unit's unit_tests (no client library) this file compiles to nothing.
#include <gtest/gtest.h>

#ifdef IPMPCTL_UNIT_TESTS

#include "table.hpp"
#include "views.hpp"

namespace ipmpctl {
namespace {

using client::DataAddress;
using client::GroupView;
using client::InterfaceView;
using client::Snapshot;

InterfaceView iface(std::string name, std::string group, std::string state, bool active,
                    std::vector<std::string> flags = {}, std::string probe = "disabled") {
  InterfaceView i;
  i.name = std::move(name);
  i.group = std::move(group);
  i.state = std::move(state);
  i.active = active;
  i.flags = std::move(flags);
  i.link = i.state == "failed" ? "down" : "up";
  i.probe = std::move(probe);
  i.target_mode = "disabled";
  return i;
}

// ipmpstat's -g example: ipmp0 degraded, net0 active, net2 inactive, net1 failed.
Snapshot example() {
  Snapshot s;
  GroupView g;
  g.name = "g0";
  g.group_interface = "ipmp0";
  g.state = "degraded";
  g.fdt_ms = 10000;
  g.members = {"net0", "net1", "net2"};
  g.data_addresses = {{"192.0.2.10/24", "up", "net0", "net0"},
                      {"192.0.2.11/24", "up", "net0", "net1"},
                      {"192.0.2.12/24", "down", "", "net2"}};
  s.groups.push_back(g);
  GroupView g1;
  g1.name = "g1";
  g1.group_interface = "ipmp1";
  g1.state = "failed";
  g1.fdt_ms = 10000;
  g1.members = {"net3", "net4"};
  s.groups.push_back(g1);
  s.interfaces.push_back(iface("net0", "g0", "ok", true, {"RUNNING"}, "ok"));
  s.interfaces.push_back(iface("net1", "g0", "failed", false, {"FAILED"}, "failed"));
  auto net2 = iface("net2", "g0", "ok", false, {"RUNNING", "INACTIVE", "STANDBY"}, "ok");
  net2.standby = true;
  s.interfaces.push_back(net2);
  s.interfaces.push_back(iface("net3", "g1", "failed", false, {"FAILED"}));
  s.interfaces.push_back(iface("net4", "g1", "offline", false, {"OFFLINE", "HWADDRDUP"}));
  s.interfaces.push_back(iface("eth9", "", "ok", false));
  return s;
}

std::string render(std::span<const Field> fields, const std::vector<Row>& rows,
                   OutputOptions opts = {}) {
  auto sel = select_fields(fields, opts);
  EXPECT_TRUE(sel.has_value());
  Table t(fields, *sel, opts.mode);
  std::string out = t.header().empty() ? "" : t.header() + "\n";
  for (const auto& r : rows) out += t.line(r) + "\n";
  return out;
}

TEST(IpmpctlTable, GroupsLikeIpmpstat) {
  auto s = example();
  EXPECT_EQ(render(kGroupFields, group_rows(s)),
            "GROUP       GROUPNAME   STATE     FDT       INTERFACES\n"
            "ipmp0       g0          degraded  10.00s    net0 (net2) [net1]\n"
            "ipmp1       g1          failed    --        [net3 net4]\n");
}

TEST(IpmpctlTable, FdtShownWhenAMemberProbes) {
  auto s = example();
  for (auto& i : s.interfaces) i.probe = "disabled";
  EXPECT_EQ(fdt_column(s.groups[0], s), "");
  s.interfaces[1].probe = "failed";  // one member probing is enough
  EXPECT_EQ(fdt_column(s.groups[0], s), "10.00s");
  s.groups[0].fdt_ms = 1500;
  EXPECT_EQ(fdt_column(s.groups[0], s), "1.50s");
  // Every member disabled: no FDT.
  EXPECT_EQ(fdt_column(s.groups[1], s), "");
}

TEST(IpmpctlTable, FdtFormatting) {
  EXPECT_EQ(format_seconds_ms(10000), "10.00s");
  EXPECT_EQ(format_seconds_ms(0), "0.00s");
  EXPECT_EQ(format_seconds_ms(123456), "123.46s");
  EXPECT_EQ(format_seconds(-0.5), "-0.50s");
  EXPECT_EQ(format_usec_ms(0), "");
  EXPECT_EQ(format_usec_ms(610), "0.61ms");
}

TEST(IpmpctlTable, InterfacesColumnGrouping) {
  auto s = example();
  EXPECT_EQ(interfaces_column(s.groups[0], s), "net0 (net2) [net1]");
  EXPECT_EQ(interfaces_column(s.groups[1], s), "[net3 net4]");
  s.interfaces[1].state = "ok";  // net1 repaired but not active
  EXPECT_EQ(interfaces_column(s.groups[0], s), "net0 (net1 net2)");
  GroupView empty;
  EXPECT_EQ(interfaces_column(empty, s), "");
}

TEST(IpmpctlTable, InterfacesView) {
  auto s = example();
  EXPECT_EQ(render(kInterfaceFields, interface_rows(s)),
            "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE\n"
            "net0        yes     ipmp0       -------   up        ok        ok\n"
            "net1        no      ipmp0       -------   down      failed    failed\n"
            "net2        no      ipmp0       is-----   up        ok        ok\n"
            "net3        no      ipmp1       -------   down      disabled  failed\n"
            "net4        no      ipmp1       ------h   up        disabled  offline\n"
            "eth9        no      --          -------   up        disabled  ok\n");
}

TEST(IpmpctlTable, FlagsPositions) {
  InterfaceView i;
  EXPECT_EQ(flags_string(i), "-------");
  i.flags = {"INACTIVE"};
  EXPECT_EQ(flags_string(i), "i------");
  i.standby = true;
  EXPECT_EQ(flags_string(i), "is-----");
  i.flags = {"HWADDRDUP", "OFFLINE"};
  i.standby = false;
  EXPECT_EQ(flags_string(i), "------h");
  EXPECT_EQ(flags_string(i).size(), 7U);
}

// m b M d come from the kernel's interface flags (LinkFlags).
TEST(IpmpctlTable, FlagsPositionsFromKernelFlags) {
  InterfaceView i;
  i.link_flags = {"UP", "BROADCAST", "MULTICAST", "LOWER_UP"};  // a veth or Ethernet NIC, up
  EXPECT_EQ(flags_string(i), "--mbM--");
  i.link_flags = {"BROADCAST", "MULTICAST"};  // ip link set DEV down
  EXPECT_EQ(flags_string(i), "--mbMd-");
  i.link_flags = {"UP", "POINTOPOINT", "NOARP"};  // a tunnel: neither
  EXPECT_EQ(flags_string(i), "-------");
  i.link_flags = {"UP", "BROADCAST"};  // ip link set DEV multicast off
  i.flags = {"INACTIVE", "HWADDRDUP"};
  i.standby = true;
  EXPECT_EQ(flags_string(i), "is-b--h");
  i.link_flags.clear();  // the kernel has no such interface: nothing known, not "down"
  EXPECT_EQ(flags_string(i), "is----h");
}

// Live views repeat their header like vmstat: on a terminal every screenful, on request
// every N rows, never in a pipe or in parsable mode.
TEST(IpmpctlTable, LiveHeaderRepeats) {
  EXPECT_EQ(header_interval(-1, 0), 0);    // not a terminal: header once
  EXPECT_EQ(header_interval(-1, 25), 24);  // a 25-row terminal: one header per screen
  EXPECT_EQ(header_interval(-1, 1), 2);    // a silly terminal still shows rows
  EXPECT_EQ(header_interval(5, 0), 5);     // --header-every 5, also in a pipe
  EXPECT_EQ(header_interval(0, 25), 0);    // --header-every 0: never again

  LiveHeader h("TIME INTERFACE", 3);
  std::string out = h.start();
  for (int row = 0; row < 7; ++row) out += h.before_row() + "r" + std::to_string(row) + "\n";
  EXPECT_EQ(out,
            "TIME INTERFACE\nr0\nr1\nr2\nTIME INTERFACE\nr3\nr4\nr5\nTIME INTERFACE\nr6\n");

  LiveHeader once("TIME", 0);
  std::string quiet;
  for (int row = 0; row < 5; ++row) quiet += once.before_row();
  EXPECT_EQ(quiet, "");
  LiveHeader parsable("", 2);  // parsable mode has no header to repeat
  EXPECT_EQ(parsable.start(), "");
  for (int row = 0; row < 5; ++row) EXPECT_EQ(parsable.before_row(), "");
}

TEST(IpmpctlTable, AddressesView) {
  auto s = example();
  EXPECT_EQ(render(kAddressFields, address_rows(s)),
            "ADDRESS                   STATE  GROUP       INBOUND     OUTBOUND\n"
            "192.0.2.10                up     ipmp0       net0        net0\n"
            "192.0.2.11                up     ipmp0       net0        net0\n"
            "192.0.2.12                down   ipmp0       --          --\n");
}

TEST(IpmpctlTable, SharedView) {
  auto s = example();
  s.groups[0].shared = {{"192.0.2.50/24", "held", "net0", "admin-takeover", ""},
                        {"2001:db8::50/64", "released", "", "group-failure", "group 'g0' has no active member"}};
  EXPECT_EQ(render(kSharedFields, shared_rows(s), {OutputMode::human, {"address", "state", "group", "holder", "reason"}, false}),
            "ADDRESS                   STATE         GROUP       HOLDER      REASON\n"
            "192.0.2.50                held          ipmp0       net0        admin-takeover\n"
            "2001:db8::50              released      ipmp0       --          group-failure\n");
  EXPECT_EQ(render(kSharedFields, shared_rows(s), {OutputMode::parsable, {"address", "state", "holder"}, false}),
            "192.0.2.50:held:net0\n"
            "2001\\:db8\\:\\:50:released:\n");
  auto j = shared_json(s);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["group"], "g0");
  EXPECT_EQ(j[1]["detail"], "group 'g0' has no active member");
  EXPECT_EQ(groups_json(s)[0]["shared_addresses"][0]["holder"], "net0");
}

TEST(IpmpctlTable, AssociationsView) {
  auto list = nlohmann::json::parse(R"([
    {"proto": "tcp", "local": "198.18.0.100", "local_port": 80, "remote": "198.18.0.20", "remote_port": 40001,
     "state": "established", "direction": "incoming", "imported": false},
    {"proto": "udp", "local": "2001:db8::100", "local_port": 0, "remote": "2001:db8::21", "remote_port": 0,
     "direction": "incoming", "imported": true}])");
  EXPECT_EQ(render(kAssociationFields, association_rows(list),
                   {OutputMode::parsable, {"proto", "local", "remote", "state", "origin"}, false}),
            "tcp:198.18.0.100\\:80:198.18.0.20\\:40001:established:local\n"
            "udp:2001\\:db8\\:\\:100:2001\\:db8\\:\\:21::imported\n");
}

TEST(IpmpctlTable, TargetsView) {
  Snapshot s;
  auto a = iface("net0", "", "ok", true);
  a.target_mode = "routes";
  a.test_addresses = {"192.0.2.100/24", "2001:db8::100/64"};
  a.targets = {{"192.0.2.1", 1, 1}, {"192.0.2.2", 1, 1}, {"2001:db8::1", 1, 1}};
  s.interfaces.push_back(a);
  s.interfaces.push_back(iface("net2", "", "ok", true));
  EXPECT_EQ(render(kTargetFields, target_rows(s)),
            "INTERFACE   MODE      TESTADDR            TARGETS\n"
            "net0        routes    192.0.2.100         192.0.2.1 192.0.2.2\n"
            "net0        routes    2001:db8::100       2001:db8::1\n"
            "net2        disabled  --                  --\n");
}

TEST(IpmpctlTable, OverflowIsGivenBack) {
  std::vector<Row> rows = {{"a-very-long-name", "x", "y"}};
  static constexpr std::array<Field, 3> f{{{"A", 12}, {"B", 12}, {"C", 5}}};
  // "a-very-long-name " is 17 wide: 5 too many; B gives them back from its padding.
  EXPECT_EQ(render(f, rows), "A           B           C\na-very-long-name x      y\n");
}

TEST(IpmpctlTable, DefaultFieldsStopPast80Columns) {
  auto sel = select_fields(kProbeFields, {});
  ASSERT_TRUE(sel);
  EXPECT_EQ(sel->size(), 7U);  // RTTDEV left out, as ipmpstat -p does
  for (auto fields : {std::span<const Field>(kGroupFields), std::span<const Field>(kInterfaceFields),
                      std::span<const Field>(kAddressFields), std::span<const Field>(kTargetFields)}) {
    auto all = select_fields(fields, {});
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), fields.size());
  }
}

TEST(IpmpctlTable, FieldSelection) {
  auto o = parse_output_options("GroupName,fdt,INTERFACES", true);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->mode, OutputMode::parsable);
  auto sel = select_fields(kGroupFields, *o);
  ASSERT_TRUE(sel);
  EXPECT_EQ(*sel, (std::vector<std::size_t>{1, 3, 4}));
  auto bad = select_fields(kGroupFields, *parse_output_options("state,bogus", false));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("bogus"), std::string::npos);
  auto all = parse_output_options("all", false);
  ASSERT_TRUE(all);
  EXPECT_EQ(select_fields(kInterfaceFields, *all)->size(), kInterfaceFields.size());
}

TEST(IpmpctlTable, ParsableRules) {
  EXPECT_FALSE(parse_output_options("", true));       // -P needs -o
  EXPECT_FALSE(parse_output_options("all", true));    // ... an explicit list
  EXPECT_FALSE(parse_output_options("json", true));   // not json
  EXPECT_FALSE(parse_output_options("a,,b", false));  // empty field
  EXPECT_EQ(parse_output_options("JSON", false)->mode, OutputMode::json);
  EXPECT_EQ(parse_output_options("", false)->mode, OutputMode::human);
}

TEST(IpmpctlTable, ParsableEscaping) {
  EXPECT_EQ(escape_parsable("fe80::1"), "fe80\\:\\:1");
  EXPECT_EQ(escape_parsable("a\\b"), "a\\\\b");
  EXPECT_EQ(escape_parsable("plain"), "plain");

  auto s = example();
  // ipmpstat -gP -o groupname,fdt,interfaces
  s.interfaces[0].probe = "ok";
  EXPECT_EQ(render(kGroupFields, {group_rows(s)[0]}, *parse_output_options("groupname,fdt,interfaces", true)),
            "g0:10.00s:net0 (net2) [net1]\n");
  // One field: no escaping; empty fields print nothing.
  std::vector<Row> v6 = {{"2001:db8::10", "down", "ipmp0", "", ""}};
  EXPECT_EQ(render(kAddressFields, v6, *parse_output_options("address", true)), "2001:db8::10\n");
  EXPECT_EQ(render(kAddressFields, v6, *parse_output_options("address,inbound,state", true)),
            "2001\\:db8\\:\\:10::down\n");
}

TEST(IpmpctlTable, ProbeRow) {
  client::ProbeResult p;
  p.interface = "net0";
  p.sequence = 381;
  p.target = "192.0.2.1";
  p.acked = true;
  p.net_rtt_usec = 370;
  p.rtt_usec = 610;
  p.rtt_avg_usec = 580;
  p.rtt_dev_usec = 0;
  Row r = probe_row(p, 0.42);
  EXPECT_EQ(r, (Row{"0.42s", "net0", "381", "0.37ms", "0.61ms", "0.58ms", "192.0.2.1", ""}));
  p.acked = false;
  r = probe_row(p, 1.1);
  EXPECT_EQ(r, (Row{"1.10s", "net0", "381", "", "", "", "192.0.2.1", ""}));
  EXPECT_EQ(render(kProbeFields, {r}),
            "TIME      INTERFACE   PROBE  NETRTT    RTT       RTTAVG    TARGET\n"
            "1.10s     net0        381    --        --        --        192.0.2.1\n");
}

TEST(IpmpctlJson, StableKeys) {
  auto s = example();
  auto keys = [](const nlohmann::json& j) {
    std::vector<std::string> k;
    for (auto it = j.begin(); it != j.end(); ++it) k.push_back(it.key());
    std::sort(k.begin(), k.end());
    return k;
  };
  EXPECT_EQ(keys(groups_json(s)[0]),
            (std::vector<std::string>{"data_addresses", "failback", "failure_detection_time",
                                      "group_interface", "members", "name", "reason",
                                      "shared_addresses", "state"}));
  EXPECT_EQ(keys(groups_json(s)[0]["data_addresses"][0]),
            (std::vector<std::string>{"address", "home", "inbound", "state"}));
  EXPECT_EQ(keys(interfaces_json(s)[0]),
            (std::vector<std::string>{"active", "counters", "flags", "group", "hardware_address",
                                      "index", "last_change_usec", "link", "link_flags", "name", "probe",
                                      "reason", "standby", "state", "target_mode", "targets",
                                      "test_addresses"}));
  EXPECT_EQ(keys(addresses_json(s)[0]),
            (std::vector<std::string>{"address", "group", "group_interface", "home", "inbound",
                                      "outbound", "state"}));
  EXPECT_EQ(keys(targets_json(s)[0]),
            (std::vector<std::string>{"name", "target_mode", "targets", "test_addresses"}));
  EXPECT_EQ(keys(manager_json(s.manager)),
            (std::vector<std::string>{"failback", "failure_detection_time", "notification_count",
                                      "notification_interval", "registry_level", "registry_level_reason",
                                      "track_interfaces_only_with_groups", "version"}));
  EXPECT_EQ(groups_json(s)[0]["members"], nlohmann::json({"net0", "net1", "net2"}));
  EXPECT_EQ(addresses_json(s)[2]["outbound"], nlohmann::json::array());
}

TEST(IpmpctlJson, Events) {
  client::InterfaceStateChanged e{"m0", "ok", "failed", {"RUNNING"}, {"FAILED"}, "link-down"};
  EXPECT_EQ(event_json(e)["event"], "interface_state_changed");
  EXPECT_EQ(event_line(e), "interface m0 ok -> failed (link-down) flags [RUNNING] -> [FAILED]");
  client::AddressMoved m{"g0", "198.18.1.10/24", "m0", "m1", "failover"};
  EXPECT_EQ(event_line(m), "address 198.18.1.10/24 moved m0 -> m1 in group g0 (failover)");
  client::GroupStateChanged g{"g0", "ok", "degraded", "link-down"};
  EXPECT_EQ(event_line(g), "group g0 ok -> degraded (link-down)");
  EXPECT_EQ(event_json(g)["new_state"], "degraded");
  client::SharedAddressChanged sh{"g0", "198.18.1.50/24", "held", "released", "m1", "", "group-failure",
                                  "group 'g0' has no active member"};
  EXPECT_EQ(event_line(sh),
            "shared address 198.18.1.50/24 held -> released [m1 -> --] in group g0 (group-failure): group 'g0' has "
            "no active member");
  EXPECT_EQ(event_json(sh)["event"], "shared_address_changed");
  EXPECT_EQ(event_json(sh)["from_interface"], "m1");
}

}  // namespace
}  // namespace ipmpctl

#endif  // IPMPCTL_UNIT_TESTS
