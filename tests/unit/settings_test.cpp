// Issue 9: settings are one value. A reload compares and applies the daemon's settings
// (DaemonSettings) and each group's (GroupSettings) whole, so every setting changed by a
// reload takes effect and announces SettingsChanged — also one added later. The tests
// change each field in turn, and prove that their lists of changes cover every field:
// a setting added to config.hpp without a change here fails EveryFieldIsChanged.
// A raised FDT survives a reload that leaves the configured FDT alone.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {

// The number of fields of an aggregate without nested aggregates: the most initializers
// T{...} accepts. (AnyField is only named in unevaluated contexts.)
struct AnyField {
  template <typename T>
  operator T() const;
};
template <typename T, typename... A>
constexpr std::size_t field_count() {
  if constexpr (requires { T{A{}..., AnyField{}}; })
    return field_count<T, A..., AnyField>();
  else
    return sizeof...(A);
}

template <typename S>
struct Change {
  std::string name;
  std::function<void(S&)> apply;
};

const std::vector<Change<DaemonSettings>>& daemon_changes() {
  static const std::vector<Change<DaemonSettings>> changes{
      {"failure-detection-time", [](DaemonSettings& s) { s.failure_detection_time = seconds(20); }},
      {"failback", [](DaemonSettings& s) { s.failback = false; }},
      {"track-interfaces-only-with-groups", [](DaemonSettings& s) { s.track_interfaces_only_with_groups = false; }},
      {"notification-count", [](DaemonSettings& s) { s.notification_count = 5; }},
      {"notification-interval", [](DaemonSettings& s) { s.notification_interval = seconds(2); }},
      {"link-flap-limit", [](DaemonSettings& s) { s.link_flap_limit = 4; }},
      {"link-flap-window", [](DaemonSettings& s) { s.link_flap_window = seconds(30); }},
      {"probe-quiet-period", [](DaemonSettings& s) { s.probe_quiet_period = seconds(40); }},
      {"realtime-priority", [](DaemonSettings& s) { s.realtime_priority = 0; }},
      {"routing-table-base", [](DaemonSettings& s) { s.routing_table_base = 50000; }},
      {"rule-priority", [](DaemonSettings& s) { s.rule_priority = 2000; }},
      {"metrics-file", [](DaemonSettings& s) { s.metrics_file = "/run/mpathd/metrics.prom"; }},
      {"hook", [](DaemonSettings& s) { HookConfig h;
         h.name = "h";
         h.type = "exec";
         h.command = {"/bin/true"};
         s.hooks.push_back(h); }},
      {"node-attributes", [](DaemonSettings& s) { s.node_attributes = true; }},
  };
  return changes;
}

const std::vector<Change<GroupSettings>>& group_changes() {
  static const std::vector<Change<GroupSettings>> changes{
      {"interface", [](GroupSettings& s) { s.interface = "ipmp9"; }},
      {"shared-addresses", [](GroupSettings& s) { s.shared_addresses.push_back(*IpPrefix::parse("198.18.1.99/24")); }},
      {"routes",
       [](GroupSettings& s) {
         s.routes.push_back({*IpPrefix::parse("198.18.9.0/24"), *IpAddress::parse("198.18.1.2")});
       }},
      {"probe-method", [](GroupSettings& s) { s.probe_method = ProbeMethod::arp; }},
      {"targets", [](GroupSettings& s) { s.targets.push_back(*IpAddress::parse("198.18.1.1")); }},
      {"failure-detection-time", [](GroupSettings& s) { s.failure_detection_time = seconds(20); }},
      {"failback", [](GroupSettings& s) { s.failback = false; }},
      {"release-shared-on-failure", [](GroupSettings& s) { s.release_shared_on_failure = false; }},
  };
  return changes;
}

// Each change changes something, and no two change the same field (applying j, then i
// differs from i alone): so there are as many changed fields as changes.
template <typename S>
void expect_distinct_fields(const std::vector<Change<S>>& changes, const S& base) {
  for (std::size_t i = 0; i < changes.size(); ++i) {
    S only_i = base;
    changes[i].apply(only_i);
    EXPECT_NE(only_i, base) << changes[i].name << " changes nothing";
    for (std::size_t j = 0; j < changes.size(); ++j) {
      if (i == j) continue;
      S j_then_i = base;
      changes[j].apply(j_then_i);
      changes[i].apply(j_then_i);
      EXPECT_NE(j_then_i, only_i) << changes[i].name << " and " << changes[j].name << " change the same field";
    }
  }
}

Config three() {
  return make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"});
}

struct Started : Rig {
  Started() : Rig(three()) {
    start_all_up({"m0", "m1", "m2"});
    events.clear();
  }
  std::size_t settings_events(const std::string& group) const {
    std::size_t n = 0;
    for (const auto& e : of<SettingsChanged>()) n += e.group == group && e.member.empty();
    return n;
  }
};

}  // namespace

TEST(Settings, EveryFieldIsChanged) {
  EXPECT_EQ(daemon_changes().size(), field_count<DaemonSettings>())
      << "a daemon setting has no change in daemon_changes()";
  EXPECT_EQ(group_changes().size(), field_count<GroupSettings>()) << "a group setting has no change in group_changes()";
  expect_distinct_fields(daemon_changes(), three().settings());
  expect_distinct_fields(group_changes(), three().groups[0].settings());
}

TEST(Settings, EveryDaemonSettingReloads) {
  for (const auto& change : daemon_changes()) {
    SCOPED_TRACE(change.name);
    Started r;
    Config next = three();
    change.apply(next.settings());
    r.engine.reconfigure(next);
    EXPECT_EQ(r.engine.config().settings(), next.settings());
    EXPECT_EQ(r.settings_events(""), 1u) << ::testing::PrintToString(r.lines());
    // What groups resolve from the daemon's settings follows.
    EXPECT_EQ(r.g().failback, next.failback);
    EXPECT_EQ(r.g().fdt, next.failure_detection_time);
    // The same configuration again changes nothing.
    r.events.clear();
    r.engine.reconfigure(next);
    EXPECT_TRUE(r.events.empty()) << ::testing::PrintToString(r.lines());
  }
}

TEST(Settings, EveryGroupSettingReloads) {
  for (const auto& change : group_changes()) {
    SCOPED_TRACE(change.name);
    Started r;
    Config next = three();
    change.apply(next.groups[0].settings());
    r.engine.reconfigure(next);
    EXPECT_EQ(r.g().config.settings(), next.groups[0].settings());
    EXPECT_EQ(r.engine.config().groups[0].settings(), next.groups[0].settings());
    EXPECT_EQ(r.g().ifname, next.groups[0].interface);
    EXPECT_EQ(r.g().failback, next.failback_of(next.groups[0]));
    EXPECT_EQ(r.g().fdt, next.failure_detection_time_of(next.groups[0]));
    EXPECT_EQ(r.settings_events("g0"), 1u) << ::testing::PrintToString(r.lines());
    EXPECT_EQ(r.settings_events(""), 0u) << "the daemon's settings did not change";
    r.events.clear();
    r.engine.reconfigure(next);
    EXPECT_TRUE(r.events.empty()) << ::testing::PrintToString(r.lines());
  }
}

namespace {
// m0's detector reports that its RTTs need 25 s: the group's FDT is raised.
void raise_fdt(Started& r) {
  ProbeVerdict v{ProbeState::ok, {}, r.clock.now(), false, {}, {}, {}};
  r.engine.observe_probe("m0", v);
  v.fdt_unachievable = true;
  v.needed_fdt = seconds(25);
  r.engine.observe_probe("m0", v);
  ASSERT_EQ(r.g().fdt, seconds(25));
  r.events.clear();
}
}  // namespace

TEST(Settings, RaisedFdtSurvivesAReloadThatKeepsTheConfiguredOne) {
  Started r;
  raise_fdt(r);
  // Unchanged: nothing at all.
  r.engine.reconfigure(three());
  EXPECT_TRUE(r.events.empty()) << ::testing::PrintToString(r.lines());
  EXPECT_EQ(r.g().fdt, seconds(25));
  // Other settings of the daemon and of the group change; the configured FDT does not
  // (the group's own is the daemon's value, written out).
  Config next = three();
  next.notification_count = 5;
  next.groups[0].failback = false;
  next.groups[0].failure_detection_time = next.failure_detection_time;
  r.engine.reconfigure(next);
  EXPECT_EQ(r.g().fdt, seconds(25));
  EXPECT_TRUE(r.of<FdtChanged>().empty());
  EXPECT_EQ(r.settings_events("g0"), 1u) << ::testing::PrintToString(r.lines());
  // The raise still ends when the RTTs allow the configured FDT again.
  r.events.clear();
  r.engine.observe_probe("m0", ProbeVerdict{ProbeState::ok, {}, r.clock.now(), false, {}, {}, {}});
  EXPECT_EQ(r.g().fdt, seconds(10));
  ASSERT_EQ(r.of<FdtChanged>().size(), 1u);
}

TEST(Settings, ReloadThatChangesTheConfiguredFdtStartsOverFromIt) {
  Started r;
  raise_fdt(r);
  Config next = three();
  next.groups[0].failure_detection_time = seconds(12);
  r.engine.reconfigure(next);
  EXPECT_EQ(r.g().fdt, seconds(12));
  EXPECT_EQ(r.m("m0").needed_fdt, Duration{});
  EXPECT_EQ(r.settings_events("g0"), 1u) << ::testing::PrintToString(r.lines());
  // The re-armed detector reports that its RTTs still need more: raised again.
  r.events.clear();
  r.engine.observe_probe("m0", ProbeVerdict{ProbeState::ok, {}, r.clock.now(), true, seconds(25), {}, {}});
  EXPECT_EQ(r.g().fdt, seconds(25));
  ASSERT_EQ(r.of<FdtChanged>().size(), 1u);
  EXPECT_TRUE(r.of<FdtChanged>()[0].raised);
  // The daemon's FDT changing reaches a group that follows it the same way.
  Config daemon = three();
  daemon.failure_detection_time = seconds(15);
  r.engine.reconfigure(daemon);
  EXPECT_EQ(r.g().fdt, seconds(15));
}
