// mpathd.conf parsing and validation (lib/daemon/config_file.*).
#include "daemon/config_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/validate.hpp"

namespace mpathd {
namespace {

IpPrefix prefix(const char* text) {
  auto p = IpPrefix::parse(text);
  EXPECT_TRUE(p.has_value()) << text;
  return p.value_or(IpPrefix{});
}

IpAddress address(const char* text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

// The error message of a configuration that must fail.
std::string errors_of(const std::string& text) {
  auto r = parse_config(text, "t.conf");
  EXPECT_FALSE(r.has_value()) << "accepted:\n" << text;
  if (r) return {};
  EXPECT_EQ(r.error().code, Errc::config);
  return r.error().message;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// A valid group around which single-error cases are built: lines 1-4.
constexpr const char* kGroup = R"([[group]]
name = "g0"
[[group.member]]
name = "m0"
)";

// kGroup with extra lines of group keys starting at line 3.
std::string group_with(std::string extra) {
  while (extra.ends_with('\n')) extra.pop_back();
  return "[[group]]\nname = \"g0\"\n" + extra + "\n[[group.member]]\nname = \"m0\"\n";
}

TEST(ConfigFile, EmptyTextGivesDefaults) {
  auto r = parse_config("", "empty.conf");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, Config{});
  EXPECT_EQ(r->failure_detection_time, seconds(10));
  EXPECT_TRUE(r->failback);
  EXPECT_TRUE(r->track_interfaces_only_with_groups);
  EXPECT_EQ(r->notification_count, 3u);
  EXPECT_EQ(r->notification_interval, seconds(1));
  EXPECT_EQ(r->link_flap_limit, 2u);
  EXPECT_EQ(r->link_flap_window, seconds(60));
  EXPECT_EQ(r->probe_quiet_period, Duration::zero());
  EXPECT_EQ(r->realtime_priority, 40u);
  EXPECT_EQ(r->routing_table_base, 40000u);
  EXPECT_EQ(r->rule_priority, 1000u);
  EXPECT_TRUE(r->groups.empty());

  auto comments = parse_config("# nothing but a comment\n\n", "c.conf");
  ASSERT_TRUE(comments.has_value());
  EXPECT_EQ(*comments, Config{});
}

TEST(ConfigFile, FullExample) {
  const char* text = R"(
failure-detection-time = 2500
failback = false
track-interfaces-only-with-groups = false
notification-count = 5
notification-interval = "250ms"
link-flap-limit = 4
link-flap-window = "2.5s"
probe-quiet-period = "40s"
realtime-priority = 0
routing-table-base = 50000
rule-priority = 2000
association-cgroup = "/sys/fs/cgroup/system.slice"
association-ebpf = false
node-attributes = true

[[group]]
name = "g0"
interface = "ipmp0"
data-addresses = ["198.18.1.10/24", "2001:db8:1::10/64"]
shared-addresses = ["198.18.1.20/24"]
routes = [ { to = "default", via = "198.18.1.1" }, { to = "2001:db8:9::/48", via = "fe80::1" },
           { to = "default", via = "fe80::1" }, { to = "198.51.100.7", via = "198.18.1.1" } ]
probe-method = "arp"
targets = ["198.18.1.1", "2001:db8:1::1"]
failure-detection-time = "1.5s"
failback = true
release-shared-on-failure = false

[[group.member]]
name = "m0"
test-addresses = ["198.18.1.100/24", "2001:db8:1::100/64"]

[[group.member]]
name = "m1"
standby = true

[[group]]
name = "g1"
member = [ { name = "eth2" } ]
)";
  Config want;
  want.failure_detection_time = milliseconds(2500);
  want.failback = false;
  want.track_interfaces_only_with_groups = false;
  want.notification_count = 5;
  want.notification_interval = milliseconds(250);
  want.link_flap_limit = 4;
  want.link_flap_window = milliseconds(2500);
  want.probe_quiet_period = seconds(40);
  want.realtime_priority = 0;
  want.routing_table_base = 50000;
  want.rule_priority = 2000;
  want.association_cgroup = "/sys/fs/cgroup/system.slice";
  want.association_ebpf = false;
  want.node_attributes = true;

  GroupConfig g0;
  g0.name = "g0";
  g0.interface = "ipmp0";
  g0.data_addresses = {prefix("198.18.1.10/24"), prefix("2001:db8:1::10/64")};
  g0.shared_addresses = {prefix("198.18.1.20/24")};
  g0.routes = {
      {prefix("0.0.0.0/0"), address("198.18.1.1")},
      {prefix("2001:db8:9::/48"), address("fe80::1")},
      {prefix("::/0"), address("fe80::1")},
      {prefix("198.51.100.7/32"), address("198.18.1.1")},
  };
  g0.probe_method = ProbeMethod::arp;
  g0.targets = {address("198.18.1.1"), address("2001:db8:1::1")};
  g0.failure_detection_time = milliseconds(1500);
  g0.release_shared_on_failure = false;
  g0.failback = true;
  g0.members = {
      {"m0", false, {prefix("198.18.1.100/24"), prefix("2001:db8:1::100/64")}},
      {"m1", true, {}},
  };
  GroupConfig g1;
  g1.name = "g1";
  g1.interface = "g1";  // defaults to the name
  g1.members = {{"eth2", false, {}}};
  want.groups = {g0, g1};

  auto r = parse_config(text, "full.conf");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->groups.size(), 2u);
  EXPECT_EQ(r->groups[0].routes, g0.routes);
  EXPECT_EQ(r->groups[0].members, g0.members);
  EXPECT_EQ(r->groups[0], g0);
  EXPECT_EQ(r->groups[1], g1);
  EXPECT_FALSE(r->groups[1].failure_detection_time.has_value());
  EXPECT_FALSE(r->groups[1].failback.has_value());
  EXPECT_EQ(r->groups[1].probe_method, ProbeMethod::auto_);
  EXPECT_EQ(*r, want);
}

TEST(ConfigFile, DurationForms) {
  struct Case {
    const char* value;
    Duration want;
  };
  const Case cases[] = {
      {"100", milliseconds(100)},
      {"10000", seconds(10)},
      {"\"10s\"", seconds(10)},
      {"\"1.5s\"", milliseconds(1500)},
      {"\"100ms\"", milliseconds(100)},
      {"\"0.25s\"", milliseconds(250)},
      {"\"1.001s\"", milliseconds(1001)},
      {"\"1.000s\"", seconds(1)},
      {"\"3600s\"", seconds(3600)},
      {"\"2500ms\"", milliseconds(2500)},
      {"0x3e8", seconds(1)},
  };
  for (const auto& c : cases) {
    auto r = parse_config(std::string("failure-detection-time = ") + c.value, "d.conf");
    ASSERT_TRUE(r.has_value()) << c.value << ": " << r.error().message;
    EXPECT_EQ(r->failure_detection_time, c.want) << c.value;
  }
}

TEST(ConfigFile, BadDurations) {
  const char* not_a_duration[] = {"\"10\"",  "\"s\"",   "\"1.2.3s\"", "\"10 s\"", "\"-1s\"",
                                  "\"1.s\"", "\".5s\"", "\"5m\"",     "\"\"",     "\"1e3ms\""};
  for (const char* v : not_a_duration) {
    std::string want = "t.conf:1:26: failure-detection-time: " + std::string(v) +
                       " is not a duration (write e.g. \"1.5s\" or \"100ms\")";
    EXPECT_EQ(errors_of(std::string("failure-detection-time = ") + v), want);
  }
  EXPECT_EQ(errors_of("failure-detection-time = \"1.5ms\""),
            "t.conf:1:26: failure-detection-time: \"1.5ms\" is finer than the resolution of 1ms");
  EXPECT_EQ(errors_of("failure-detection-time = \"1.0001s\""),
            "t.conf:1:26: failure-detection-time: \"1.0001s\" is finer than the resolution of 1ms");
  EXPECT_EQ(errors_of("failure-detection-time = 1.5"),
            "t.conf:1:26: failure-detection-time: expected a duration (integer milliseconds or a "
            "string like \"1.5s\"), got a float");
  EXPECT_EQ(errors_of("failure-detection-time = -5"),
            "t.conf:1:26: failure-detection-time: -5ms is below the minimum of 100ms");
  EXPECT_EQ(errors_of("failure-detection-time = \"99999999999999999999s\""),
            "t.conf:1:26: failure-detection-time: \"99999999999999999999s\" is not a duration "
            "(write e.g. \"1.5s\" or \"100ms\")");
  EXPECT_EQ(errors_of("failure-detection-time = \"9999999999999s\""),
            "t.conf:1:26: failure-detection-time: \"9999999999999s\" is far too large");
  EXPECT_EQ(
      errors_of("failure-detection-time = 9223372036854775807"),
      "t.conf:1:26: failure-detection-time: 9223372036854775807ms is above the maximum of 3600s");
}

TEST(ConfigFile, FailureDetectionTimeMinimum) {
  EXPECT_EQ(errors_of("failure-detection-time = 99"),
            "t.conf:1:26: failure-detection-time: 99ms is below the minimum of 100ms");
  EXPECT_EQ(errors_of(group_with("failure-detection-time = \"0.05s\"\n")),
            "t.conf:3:26: group[0].failure-detection-time: 50ms is below the minimum of 100ms");
  EXPECT_TRUE(parse_config("failure-detection-time = \"0.1s\"", "t.conf").has_value());
}

TEST(ConfigFile, RangesOfDaemonKeys) {
  EXPECT_EQ(errors_of("notification-count = 0"),
            "t.conf:1:22: notification-count: 0 is out of range 1..100");
  EXPECT_EQ(errors_of("notification-count = 101"),
            "t.conf:1:22: notification-count: 101 is out of range 1..100");
  EXPECT_EQ(errors_of("notification-interval = \"0ms\""),
            "t.conf:1:25: notification-interval: 0ms is below the minimum of 1ms");
  EXPECT_EQ(errors_of("notification-interval = \"61s\""),
            "t.conf:1:25: notification-interval: 61s is above the maximum of 60s");
  EXPECT_EQ(errors_of("link-flap-limit = 0"),
            "t.conf:1:19: link-flap-limit: 0 is out of range 1..100");
  EXPECT_EQ(errors_of("link-flap-window = 999"),
            "t.conf:1:20: link-flap-window: 999ms is below the minimum of 1s");
  EXPECT_EQ(errors_of("probe-quiet-period = \"601s\""),
            "t.conf:1:22: probe-quiet-period: 601s is above the maximum of 600s");
  EXPECT_EQ(errors_of("realtime-priority = 100"),
            "t.conf:1:21: realtime-priority: 100 is out of range 0..99");
  EXPECT_EQ(errors_of("realtime-priority = -1"),
            "t.conf:1:21: realtime-priority: -1 is out of range 0..99");
  EXPECT_EQ(errors_of("rule-priority = 32766"),
            "t.conf:1:17: rule-priority: 32766 is out of range 1..32765");
  EXPECT_EQ(errors_of("rule-priority = 0"),
            "t.conf:1:17: rule-priority: 0 is out of range 1..32765");
  const std::string table_note =
      " is out of range 255..4000000000 (tables base + ifindex must avoid the kernel's 253..255 "
      "and fit in 32 bits)";
  EXPECT_EQ(errors_of("routing-table-base = 253"),
            "t.conf:1:22: routing-table-base: 253" + table_note);
  EXPECT_EQ(errors_of("routing-table-base = 4000000001"),
            "t.conf:1:22: routing-table-base: 4000000001" + table_note);
  auto edge = parse_config(
      "routing-table-base = 4000000000\nrule-priority = 32765\n"
      "notification-count = 100\nnotification-interval = \"60s\"",
      "t.conf");
  ASSERT_TRUE(edge.has_value()) << edge.error().message;
  EXPECT_EQ(edge->routing_table_base, 4000000000u);
  EXPECT_EQ(edge->rule_priority, 32765u);
}

TEST(ConfigFile, UnknownKeys) {
  EXPECT_EQ(errors_of("failback-time = 3"), "t.conf:1:1: failback-time: unknown key");
  EXPECT_EQ(errors_of(std::string(kGroup) + "standbye = true\n"),
            "t.conf:5:1: group[0].member[0].standbye: unknown key");
  EXPECT_EQ(errors_of(group_with("  \"data address\" = []\n")),
            "t.conf:3:3: group[0].\"data address\": unknown key");
  EXPECT_EQ(errors_of(std::string(kGroup) + "[group.hooks]\n"),
            "t.conf:5:8: group[0].hooks: unknown key");
  EXPECT_EQ(
      errors_of(group_with("routes = [{ to = \"default\", via = \"fe80::1\", dev = \"x\" }]\n")),
      "t.conf:3:46: group[0].routes[0].dev: unknown key");
}

TEST(ConfigFile, WrongTypes) {
  EXPECT_EQ(errors_of("failback = \"yes\""),
            "t.conf:1:12: failback: expected a boolean (true or false), got a string");
  EXPECT_EQ(errors_of("notification-count = \"3\""),
            "t.conf:1:22: notification-count: expected an integer, got a string");
  EXPECT_EQ(errors_of("[group]\nname = \"g0\""),
            "t.conf:1:1: group: expected an array of tables ([[group]]), got a table");
  EXPECT_EQ(errors_of("group = [1]"), "t.conf:1:10: group[0]: expected a table, got an integer");
  EXPECT_EQ(errors_of(group_with("data-addresses = \"198.18.1.10/24\"\n")),
            "t.conf:3:18: group[0].data-addresses: expected an array of addresses, got a string");
  EXPECT_EQ(errors_of(group_with("targets = [198]\n")),
            "t.conf:3:12: group[0].targets[0]: expected a string, got an integer");
  EXPECT_EQ(errors_of("[[group]]\nname = \"g0\"\nmember = 3\n"),
            "t.conf:3:10: group[0].member: expected an array of tables ([[group.member]]), got an "
            "integer");
  EXPECT_EQ(errors_of(group_with("probe-method = \"ping\"\n")),
            "t.conf:3:16: group[0].probe-method: \"ping\" is not one of auto, none, icmp, arp");
}

TEST(ConfigFile, Addresses) {
  auto with = [](const char* line) { return group_with(std::string(line) + "\n"); };
  EXPECT_EQ(errors_of(with("data-addresses = [\"198.18.1.10\"]")),
            "t.conf:3:19: group[0].data-addresses[0]: \"198.18.1.10\" has no prefix length "
            "(write e.g. 198.18.1.10/24)");
  EXPECT_EQ(errors_of(with("shared-addresses = [\"2001:db8::5\"]")),
            "t.conf:3:21: group[0].shared-addresses[0]: \"2001:db8::5\" has no prefix length "
            "(write e.g. 2001:db8::5/64)");
  EXPECT_EQ(errors_of(with("data-addresses = [\"198.18.1.300/24\"]")),
            "t.conf:3:19: group[0].data-addresses[0]: \"198.18.1.300/24\" is not an address with "
            "prefix length (e.g. 198.18.1.10/24)");
  EXPECT_EQ(errors_of(with("data-addresses = [\"198.18.1.1/33\"]")),
            "t.conf:3:19: group[0].data-addresses[0]: \"198.18.1.1/33\": prefix length 33 is out "
            "of range 1..32");
  EXPECT_EQ(errors_of(with("targets = [\"198.18.1.1/24\"]")),
            "t.conf:3:12: group[0].targets[0]: \"198.18.1.1/24\" is not an IPv4 or IPv6 address");
  // Listed twice in one list, across lists and across groups; prefix lengths do not matter.
  EXPECT_EQ(errors_of(with("data-addresses = [\"198.18.1.10/24\", \"198.18.1.10/25\"]")),
            "t.conf:3:37: group[0].data-addresses[1]: 198.18.1.10 is already a data address of "
            "group g0 (see group[0].data-addresses[0] at 3:19)");
  EXPECT_EQ(
      errors_of(
          with("shared-addresses = [\"2001:db8::1/64\"]\ndata-addresses = [\"2001:db8:0::1/64\"]")),
      "t.conf:4:19: group[0].data-addresses[0]: 2001:db8::1 is already a shared address of "
      "group g0 (see group[0].shared-addresses[0] at 3:21)");
  EXPECT_EQ(errors_of(with("data-addresses = [\"198.18.1.10/24\"]") + "[[group]]\nname = \"g1\"\n" +
                      "data-addresses = [\"198.18.1.10/24\"]\n[[group.member]]\nname = \"m1\"\n"),
            "t.conf:8:19: group[1].data-addresses[0]: 198.18.1.10 is already a data address of "
            "group g0 (see group[0].data-addresses[0] at 3:19)");
}

// The rules of core/validate.hpp, with file:line:column: the same as D-Bus and reload.
TEST(ConfigFile, AddressesMpathdMustNotManage) {
  auto with = [](const char* line) { return group_with(std::string(line) + "\n"); };
  EXPECT_EQ(errors_of(with("data-addresses = [\"127.0.0.2/8\"]")),
            "t.conf:3:19: group[0].data-addresses[0]: 127.0.0.2/8 is a loopback address, not a data address");
  EXPECT_EQ(errors_of(with("data-addresses = [\"198.18.1.0/24\", \"198.18.1.255/24\"]")),
            "t.conf:3:19: group[0].data-addresses[0]: 198.18.1.0/24 is the network address of its subnet "
            "198.18.1.0/24\n"
            "t.conf:3:36: group[0].data-addresses[1]: 198.18.1.255/24 is the broadcast address of its subnet "
            "198.18.1.0/24");
  EXPECT_EQ(errors_of(with("shared-addresses = [\"ff02::5/64\"]")),
            "t.conf:3:21: group[0].shared-addresses[0]: ff02::5/64 is a multicast address, not a shared address");
  EXPECT_EQ(errors_of(with("data-addresses = [\"198.18.1.10/abc\"]")),
            "t.conf:3:19: group[0].data-addresses[0]: \"198.18.1.10/abc\": prefix length \"abc\" is not a number");
  EXPECT_EQ(errors_of("[[group]]\nname = \"g0\"\n[[group.member]]\nname = \"m0\"\ntest-addresses = [\"::1/128\"]\n"),
            "t.conf:5:19: group[0].member[0].test-addresses[0]: ::1/128 is the loopback address, not a test address");
  for (const char* ok : {"198.18.1.1/31", "198.18.1.0/31", "198.18.1.10/32", "2001:db8::/64"})
    EXPECT_TRUE(parse_config(with(("data-addresses = [\"" + std::string(ok) + "\"]").c_str()), "t.conf")) << ok;
}

// Issue 8: three million duplicate addresses printed three million lines.
TEST(ConfigFile, ReportsAtMostTheFirstErrors) {
  std::string list;
  for (int i = 0; i < 1000; ++i) list += std::string(i ? ", " : "") + "\"198.18.1.10/24\"";
  auto message = errors_of(group_with("data-addresses = [" + list + "]\n"));
  auto lines = lines_of(message);
  ASSERT_EQ(lines.size(), kMaxReportedErrors + 1) << message.substr(0, 2000);
  EXPECT_NE(lines[0].find("group[0].data-addresses[1]: 198.18.1.10 is already a data address"), std::string::npos) << lines[0];
  EXPECT_EQ(lines.back(), "t.conf: " + std::to_string(999 - kMaxReportedErrors) + " more errors not shown");
}

// Issue 8: a 50 MB group name was echoed whole.
TEST(ConfigFile, LongValuesAreCutInMessages) {
  const std::string name(200000, 'g');
  auto message = errors_of("[[group]]\nname = \"" + name + "\"\n[[group.member]]\nname = \"m0\"\n");
  EXPECT_LT(message.size(), 1000u) << message.substr(0, 1000);
  EXPECT_NE(message.find("\"" + std::string(kEchoLimit, 'g') + "\"... (200000 bytes) is not a valid group name"),
            std::string::npos)
      << message.substr(0, 1000);
  const std::string key(200000, 'k');
  message = errors_of(key + " = 1\n");
  EXPECT_LT(message.size(), 1000u) << message.substr(0, 1000);
  EXPECT_NE(message.find("(200000 bytes): unknown key"), std::string::npos) << message.substr(0, 1000);
}

TEST(ConfigFile, TestAddressThatIsADataAddress) {
  EXPECT_EQ(errors_of(group_with("data-addresses = [\"198.18.1.10/24\"]\n") +
                      "test-addresses = [\"198.18.1.10/24\"]\n"),
            "t.conf:6:19: group[0].member[0].test-addresses[0]: 198.18.1.10 is already a data "
            "address of group g0 (see group[0].data-addresses[0] at 3:19)");
}

TEST(ConfigFile, Routes) {
  auto with = [](const char* line) { return group_with(std::string(line) + "\n"); };
  EXPECT_EQ(errors_of(with("routes = [{ to = \"default\", via = \"gw\" }]")),
            "t.conf:3:35: group[0].routes[0].via: \"gw\" is not an IPv4 or IPv6 address");
  EXPECT_EQ(errors_of(with("routes = [{ to = \"2001:db8:9::/48\", via = \"198.18.1.1\" }]")),
            "t.conf:3:43: group[0].routes[0].via: gateway IPv4 198.18.1.1 does not match the IPv6 "
            "destination 2001:db8:9::/48");
  EXPECT_EQ(errors_of(with("routes = [{ to = \"198.18.9.1/24\", via = \"198.18.1.1\" }]")),
            "t.conf:3:18: group[0].routes[0].to: \"198.18.9.1/24\" has host bits set (the network "
            "is 198.18.9.0/24)");
  EXPECT_EQ(errors_of(with("routes = [{ to = \"somewhere\", via = \"198.18.1.1\" }]")),
            "t.conf:3:18: group[0].routes[0].to: \"somewhere\" is not \"default\" or a destination "
            "prefix");
  EXPECT_EQ(errors_of(with("routes = [{ via = \"198.18.1.1\" }, { to = \"default\" }]")),
            "t.conf:3:11: group[0].routes[0].to: missing (a destination prefix or \"default\")\n"
            "t.conf:3:35: group[0].routes[1].via: missing (the gateway address)");
  EXPECT_EQ(errors_of(with("routes = [\"default\"]")),
            "t.conf:3:11: group[0].routes[0]: expected a table, got a string");
}

TEST(ConfigFile, GroupNames) {
  EXPECT_EQ(errors_of("[[group]]\ninterface = \"ipmp0\"\n[[group.member]]\nname = \"m0\"\n"),
            "t.conf:1:1: group[0].name: missing (every [[group]] needs a name)");
  EXPECT_EQ(errors_of("[[group]]\nname = \"g 0\"\n[[group.member]]\nname = \"m0\"\n"),
            "t.conf:2:8: group[0].name: \"g 0\" is not a valid group name (1 to 32 characters of "
            "A-Z a-z 0-9 _ . -)");
  EXPECT_EQ(errors_of("[[group]]\nname = "
                      "\"abcdefghijklmnopqrstuvwxyz0123456\"\n[[group.member]]\nname = \"m0\"\n"),
            "t.conf:2:8: group[0].name: \"abcdefghijklmnopqrstuvwxyz0123456\" is not a valid group "
            "name (1 to 32 characters of A-Z a-z 0-9 _ . -)");
  // A 32-character name is fine with an explicit interface, but cannot be one itself.
  const std::string long_name = "abcdefghijklmnopqrstuvwxyz012345";
  EXPECT_TRUE(parse_config("[[group]]\nname = \"" + long_name +
                               "\"\ninterface = \"ipmp0\"\n[[group.member]]\nname = \"m0\"\n",
                           "t.conf")
                  .has_value());
  EXPECT_EQ(errors_of("[[group]]\nname = \"" + long_name + "\"\n[[group.member]]\nname = \"m0\"\n"),
            "t.conf:2:8: group[0].name: \"" + long_name +
                "\" cannot be the group interface name (at most 15 characters); set interface");
  EXPECT_EQ(errors_of(std::string(kGroup) +
                      "[[group]]\nname = \"g0\"\n[[group.member]]\nname = \"m1\"\n"),
            "t.conf:6:8: group[1].name: duplicate group name g0 (see group[0].name at 2:8)");
}

TEST(ConfigFile, GroupInterfaces) {
  EXPECT_EQ(errors_of(group_with("interface = \"ipmp0:1\"\n")),
            "t.conf:3:13: group[0].interface: \"ipmp0:1\" is not a valid interface name (1 to 15 "
            "characters, no '/', ':' or space)");
  EXPECT_EQ(errors_of(group_with("interface = \"ipmp0ipmp0ipmp0ip\"\n")),
            "t.conf:3:13: group[0].interface: \"ipmp0ipmp0ipmp0ip\" is not a valid interface name "
            "(1 to 15 characters, no '/', ':' or space)");
  EXPECT_EQ(errors_of(group_with("interface = \"a\\tb\"")),
            "t.conf:3:13: group[0].interface: \"a\\x09b\" is not a valid interface name (1 to 15 "
            "characters, no '/', ':' or space)");
  // The second group's default interface (its name) collides with the first's.
  EXPECT_EQ(errors_of(group_with("interface = \"g1\"\n") +
                      "[[group]]\nname = \"g1\"\n[[group.member]]\nname = \"m1\"\n"),
            "t.conf:7:8: group[1].name: interface g1 is already the interface of group g0 (see "
            "group[0].interface at 3:13)");
}

TEST(ConfigFile, Members) {
  EXPECT_EQ(errors_of("[[group]]\nname = \"g0\"\n"),
            "t.conf:1:1: group[0]: group g0 has no members");
  EXPECT_EQ(errors_of(std::string(kGroup) + "[[group.member]]\nname = \"m0\"\n"),
            "t.conf:6:8: group[0].member[1].name: m0 is listed twice in group g0 (see "
            "group[0].member[0].name at 4:8)");
  EXPECT_EQ(errors_of(std::string(kGroup) +
                      "[[group]]\nname = \"g1\"\n[[group.member]]\nname = \"m0\"\n"),
            "t.conf:8:8: group[1].member[0].name: m0 is already a member of group g0 (see "
            "group[0].member[0].name at 4:8)");
  // A group named m0 is fine next to a member m0 when its interface is something else,
  // but no member may carry the name of a group interface, defaulted or explicit.
  EXPECT_EQ(
      errors_of(std::string(kGroup) +
                "[[group]]\nname = \"m0\"\ninterface = \"ipmp1\"\n[[group.member]]\nname = \"m1\"\n"
                "[[group]]\nname = \"g2\"\n[[group.member]]\nname = \"ipmp1\"\n"
                "[[group.member]]\nname = \"g0\"\n"),
      "t.conf:13:8: group[2].member[0].name: ipmp1 is the interface name of group m0 (see "
      "group[1].interface at 7:13)\n"
      "t.conf:15:8: group[2].member[1].name: g0 is the interface name of group g0 (see "
      "group[0].name at 2:8)");
  EXPECT_EQ(errors_of("[[group]]\nname = \"g0\"\n[[group.member]]\nstandby = true\n"),
            "t.conf:3:1: group[0].member[0].name: missing (the member's interface name)");
  EXPECT_EQ(errors_of(std::string(kGroup) + "standby = 1\n"),
            "t.conf:5:11: group[0].member[0].standby: expected a boolean (true or false), got an "
            "integer");
}

TEST(ConfigFile, AllErrorsInSourceOrder) {
  // toml++ hands keys over sorted by name; the report must follow the text.
  const std::string msg = errors_of(
      "rule-priority = 0\n"
      "failback = 1\n"
      "[[group]]\n"
      "name = \"g0\"\n"
      "shared-addresses = [\"198.18.1.10/24\"]\n"
      "data-addresses = [\"198.18.1.10/24\"]\n"
      "[[group]]\n"
      "name = \"g0\"\n");
  EXPECT_EQ(lines_of(msg),
            (std::vector<std::string>{
                "t.conf:1:17: rule-priority: 0 is out of range 1..32765",
                "t.conf:2:12: failback: expected a boolean (true or false), got an integer",
                "t.conf:3:1: group[0]: group g0 has no members",
                "t.conf:6:19: group[0].data-addresses[0]: 198.18.1.10 is already a shared address "
                "of group g0 (see group[0].shared-addresses[0] at 5:21)",
                "t.conf:7:1: group[1]: group g0 has no members",
                "t.conf:8:8: group[1].name: duplicate group name g0 (see group[0].name at 4:8)",
            }));
}

TEST(ConfigFile, SyntaxErrorKeepsPosition) {
  auto r = parse_config("failback = true\nnotification-count = \n", "s.conf");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::config);
  EXPECT_EQ(r.error().message.rfind("s.conf:2:22: ", 0), 0u) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;

  auto dup = parse_config("failback = true\nfailback = false\n", "s.conf");
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().message.rfind("s.conf:2:", 0), 0u) << dup.error().message;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mpathd-config-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(TempDir, LoadsFile) {
  auto path = write("mpathd.conf", std::string("failback = false\n") + kGroup);
  auto r = load_config_file(path);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->failback);
  ASSERT_EQ(r->groups.size(), 1u);
  EXPECT_EQ(r->groups[0].members[0].name, "m0");

  auto empty = load_config_file(write("empty.conf", ""));
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, Config{});
}

TEST_F(TempDir, ErrorsNameTheFile) {
  auto path = write("bad.conf", "failback = 3\n");
  auto r = load_config_file(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message,
            path + ":1:12: failback: expected a boolean (true or false), got an integer");
}

TEST_F(TempDir, MissingOrUnreadableFile) {
  auto missing = (dir_ / "nope.conf").string();
  auto r = load_config_file(missing);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::config);
  EXPECT_EQ(r.error().message, missing + ": cannot open: No such file or directory");

  auto dir = load_config_file(dir_.string());
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().message, dir_.string() + ": not a regular file");

  // --check-config "" must not fall back to any file.
  auto empty = load_config_file("");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().message, "the configuration file name is empty");

  if (geteuid() != 0) {  // root reads anything
    auto path = write("secret.conf", "");
    std::filesystem::permissions(path, std::filesystem::perms::none);
    auto denied = load_config_file(path);
    ASSERT_FALSE(denied.has_value());
    EXPECT_EQ(denied.error().message, path + ": cannot open: Permission denied");
  }
}

// Issue 8: a FIFO hung for ever. It is refused at once, whether or not a writer comes.
TEST_F(TempDir, FifoIsRefusedWithoutWaiting) {
  const auto fifo = (dir_ / "fifo.conf").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto pending = std::async(std::launch::async, [&] { return load_config_file(fifo); });
  if (pending.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    // Unblock the reader so that the test ends, then fail.
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    pending.wait();
    FAIL() << "load_config_file waited for a writer on a FIFO";
  }
  auto r = pending.get();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, fifo + ": not a regular file");
}

// Issue 8: /dev/zero was read without limit. A regular file is capped too.
TEST_F(TempDir, LargeFileIsRefusedUnread) {
  const auto path = (dir_ / "huge.conf").string();
  std::filesystem::resize_file(write("huge.conf", ""), kMaxConfigBytes + 1);
  auto r = load_config_file(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, path + ": larger than the limit of " + std::to_string(kMaxConfigBytes) + " bytes");
  std::filesystem::resize_file(path, kMaxConfigBytes);  // at the limit: read (and a syntax error)
  r = load_config_file(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message.find("larger than"), std::string::npos) << r.error().message.substr(0, 300);
}

// Drop-ins (mpathd.conf(5), DROP-INS): PATH.d/*.conf after PATH, in lexical order.
TEST_F(TempDir, DropInsApplyInLexicalOrderAfterTheMainFile) {
  auto path = write("mpathd.conf", std::string("failback = false\nnotification-count = 5\n") + kGroup);
  std::filesystem::create_directory(dir_ / "mpathd.conf.d");
  // Written out of order: 20 must apply after 10 whatever the directory order is.
  write("mpathd.conf.d/20-late.conf", "notification-count = 7\n");
  write("mpathd.conf.d/10-early.conf",
        "notification-count = 6\nfailback = true\n[[group]]\nname = \"g1\"\n"
        "[[group.member]]\nname = \"n0\"\n");
  write("mpathd.conf.d/.hidden.conf", "failback = 3\n");   // ignored, like a shell's *.conf
  write("mpathd.conf.d/README", "not toml at all [");      // ignored: not *.conf
  write("mpathd.conf.d/30-x.conf.dpkg-old", "failback = 3\n");  // ignored

  auto files = read_config_files(path);
  ASSERT_TRUE(files.has_value()) << files.error().message;
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].name, path);
  EXPECT_EQ((*files)[1].name, path + ".d/10-early.conf");
  EXPECT_EQ((*files)[2].name, path + ".d/20-late.conf");

  auto r = load_config_file(path);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->failback);                // the drop-in replaced the main file's value
  EXPECT_EQ(r->notification_count, 7u);    // the later drop-in wins
  ASSERT_EQ(r->groups.size(), 2u);         // groups are added, main file first
  EXPECT_EQ(r->groups[0].name, "g0");
  EXPECT_EQ(r->groups[1].name, "g1");
  EXPECT_EQ(r->groups[1].members[0].name, "n0");
}

TEST_F(TempDir, NoDropInDirectoryIsNoDropIns) {
  auto path = write("mpathd.conf", kGroup);
  auto files = read_config_files(path);
  ASSERT_TRUE(files.has_value());
  EXPECT_EQ(files->size(), 1u);
  std::filesystem::create_directory(dir_ / "mpathd.conf.d");  // empty directory
  EXPECT_EQ(read_config_files(path)->size(), 1u);
}

TEST_F(TempDir, DropInErrorsNameTheDropIn) {
  auto path = write("mpathd.conf", "failback = 3\n");
  std::filesystem::create_directory(dir_ / "mpathd.conf.d");
  auto a = write("mpathd.conf.d/a.conf", "notification-count = 0\n");
  auto b = write("mpathd.conf.d/b.conf", "failback = true\nnotification-count = \n");  // syntax
  auto c = write("mpathd.conf.d/c.conf", "bogus = 1\n");
  auto r = load_config_file(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::config);
  auto lines = lines_of(r.error().message);
  ASSERT_EQ(lines.size(), 4u) << r.error().message;  // every file is checked, in order
  EXPECT_EQ(lines[0], path + ":1:12: failback: expected a boolean (true or false), got an integer");
  EXPECT_EQ(lines[1], a + ":1:22: notification-count: 0 is out of range 1..100");
  EXPECT_EQ(lines[2].rfind(b + ":2:22: ", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3], c + ":1:1: bogus: unknown key");
}

TEST_F(TempDir, SameGroupInTwoFilesIsAnError) {
  auto path = write("mpathd.conf", kGroup);
  std::filesystem::create_directory(dir_ / "mpathd.conf.d");
  auto d = write("mpathd.conf.d/g.conf", std::string("\n") + kGroup);
  auto r = load_config_file(path);
  ASSERT_FALSE(r.has_value());
  auto lines = lines_of(r.error().message);
  ASSERT_GE(lines.size(), 2u) << r.error().message;
  EXPECT_EQ(lines[0], d + ":3:8: group[0].name: duplicate group name g0 (see group[0].name at " +
                          path + ":2:8)");
  // The same group twice: the member is listed twice in it (core/validate.hpp's rule).
  EXPECT_EQ(lines[1], d + ":5:8: group[0].member[0].name: m0 is listed twice in group g0 (see "
                          "group[0].member[0].name at " + path + ":4:8)");
}

TEST_F(TempDir, UnreadableDropInDirectory) {
  auto path = write("mpathd.conf", "");
  write("mpathd.conf.d", "a file, not a directory");
  auto r = load_config_file(path);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::config);
  EXPECT_EQ(r.error().message.rfind(path + ".d: cannot read directory: ", 0), 0u) << r.error().message;
}

// docs/config-example.conf is the example of mpathd.conf(5); it must stay valid.
TEST(ConfigFile, ShippedExampleIsValid) {
  auto path = std::filesystem::path(__FILE__).parent_path() / "../../docs/config-example.conf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "not found: " << path;
  auto r = load_config_file(path.string());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->groups.size(), 2u);
  EXPECT_EQ(r->groups[0].name, "g0");
  EXPECT_EQ(r->groups[0].interface, "ipmp0");
  EXPECT_EQ(r->groups[0].members.size(), 2u);
}

// Issue 10: the association registry's settings and the group's release switch.
TEST(ConfigFile, SharedAddressSettings) {
  auto defaults = parse_config("", "d.conf");
  ASSERT_TRUE(defaults.has_value());
  EXPECT_EQ(defaults->association_cgroup, "");
  EXPECT_TRUE(defaults->association_ebpf);
  EXPECT_EQ(errors_of("association-cgroup = \"system.slice\""),
            "t.conf:1:22: association-cgroup: \"system.slice\" is not an absolute path (a cgroup2 directory, or \"\" "
            "for none)");
  EXPECT_EQ(errors_of("association-ebpf = \"no\""), "t.conf:1:20: association-ebpf: expected a boolean (true or false), got a string");
  auto g = parse_config("[[group]]\nname = \"g0\"\nmember = [ { name = \"m0\" } ]\n", "d.conf");
  ASSERT_TRUE(g.has_value()) << g.error().message;
  EXPECT_TRUE(g->groups[0].release_shared_on_failure);
}

// Issue 12: group health as Pacemaker node attributes, off by default.
TEST(ConfigFile, NodeAttributes) {
  auto defaults = parse_config("", "d.conf");
  ASSERT_TRUE(defaults.has_value());
  EXPECT_FALSE(defaults->node_attributes);
  auto on = parse_config("node-attributes = true\n", "d.conf");
  ASSERT_TRUE(on.has_value()) << on.error().message;
  EXPECT_TRUE(on->node_attributes);
  EXPECT_EQ(errors_of("node-attributes = 1"), "t.conf:1:19: node-attributes: expected a boolean (true or false), got an integer");
}

}  // namespace

TEST(ConfigFile, MetricsFileIsAnAbsolutePathAndOffByDefault) {
  EXPECT_EQ(parse_config("", "t.conf")->metrics_file, "");
  auto r = parse_config("metrics-file = \"/var/lib/prometheus/node-exporter/mpathd.prom\"", "t.conf");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->metrics_file, "/var/lib/prometheus/node-exporter/mpathd.prom");
  EXPECT_EQ(errors_of("metrics-file = \"mpathd.prom\""),
            "t.conf:1:16: metrics-file: \"mpathd.prom\" is not an absolute path");
  EXPECT_EQ(errors_of("metrics-file = \"\""), "t.conf:1:16: metrics-file: \"\" is not an absolute path");
  EXPECT_EQ(errors_of("metrics-file = 1"), "t.conf:1:16: metrics-file: expected a string, got an integer");
}

}  // namespace mpathd

namespace mpathd {
namespace {
TEST(ConfigFile, ReplicationKeys) {
  auto d = parse_config("", "t.conf");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->replication);
  EXPECT_EQ(d->replication_group, "mpathd");
  EXPECT_EQ(d->replication_max_associations, 65536U);
  auto r = parse_config("replication = false\nreplication-group = \"web\"\nreplication-max-associations = 10\n", "t.conf");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->replication);
  EXPECT_EQ(r->replication_group, "web");
  EXPECT_EQ(r->replication_max_associations, 10U);
  EXPECT_EQ(errors_of("replication-group = \"\""),
            "t.conf:1:21: replication-group: \"\" is not a process group name (1 to 127 bytes)");
  EXPECT_NE(errors_of("replication-max-associations = 0").find("t.conf:1:32: replication-max-associations"),
            std::string::npos);
  EXPECT_NE(errors_of("replication = \"yes\"").find("t.conf:1:15: replication"), std::string::npos);
}
}  // namespace
}  // namespace mpathd
