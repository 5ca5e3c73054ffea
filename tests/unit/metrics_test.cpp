// Metrics: what the Engine's events and model render to, in the Prometheus text format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

#include "daemon/metrics.hpp"
#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {
// The grammar of the text exposition format (version 0.0.4) as node_exporter's
// textfile collector reads it: HELP and TYPE once per family, before its samples;
// sample names of the family; label names and escaped values; a float value; no
// series twice. Returns the first violation, "" when the text is valid.
std::string violation(const std::string& text) {
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|untyped|summary|histogram))");
  static const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*,?\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)( -?[0-9]+)?)");
  if (text.empty() || text.back() != '\n') return "does not end with a newline";
  std::set<std::string> families, series;
  std::string current;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::smatch m;
    const std::string where = "line " + std::to_string(n) + ": " + line;
    if (std::regex_match(line, m, help)) {
      if (!families.insert(m[1]).second) return where + " (family repeated)";
      current = m[1];
    } else if (std::regex_match(line, m, type)) {
      if (m[1] != current) return where + " (TYPE without its HELP)";
    } else if (std::regex_match(line, m, sample)) {
      if (m[1] != current) return where + " (sample outside its family)";
      if (m[2].matched ? !series.insert(std::string(m[1]) + std::string(m[2])).second
                       : !series.insert(m[1]).second)
        return where + " (series repeated)";
    } else {
      return where + " (not HELP, TYPE or a sample)";
    }
  }
  return "";
}

struct MetricsRig : Rig {
  Metrics metrics{clock};
  explicit MetricsRig(Config c) : Rig(std::move(c)) {
    engine.subscribe([this](const Event& e) { metrics.on_event(e, engine); });
  }
  std::string text() const { return metrics.render(engine); }
};
}  // namespace

TEST(Metrics, TheValidatorRejectsWhatTheCollectorWould) {
  EXPECT_EQ(violation("# HELP a x\n# TYPE a gauge\na 1\na{b=\"c\"} 2\n"), "");
  EXPECT_NE(violation("# HELP a x\n# TYPE a gauge\na 1"), "");                // no final newline
  EXPECT_NE(violation("# HELP a x\n# TYPE a gauge\nb 1\n"), "");              // outside its family
  EXPECT_NE(violation("# HELP a x\n# TYPE a gauge\na 1\na 2\n"), "");         // repeated series
  EXPECT_NE(violation("# HELP a x\n# TYPE a gauge\na{b=\"c\"d\"} 1\n"), "");  // bad escaping
  EXPECT_NE(violation("# HELP a x\n# TYPE a gauge\na one\n"), "");            // not a number
  EXPECT_NE(violation("# HELP a x\n# TYPE a gauge\n# HELP a y\n"), "");       // family repeated
  EXPECT_NE(violation("# HELP 1a x\n"), "");                                  // bad name
}

TEST(Metrics, StatesOfGroupsAndMembers) {
  MetricsRig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}));
  r.start_all_up({"m0", "m1", "m2"});
  const auto t = r.text();
  EXPECT_EQ(violation(t), "") << t;
  EXPECT_THAT(t, HasSubstr("# TYPE mpathd_group_state gauge\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_group_state{group=\"g0\",state=\"ok\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_group_state{group=\"g0\",state=\"failed\"} 0\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_member_state{group=\"g0\",interface=\"m0\",state=\"ok\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_member_active{group=\"g0\",interface=\"m2\"} 0\n"));  // standby
  EXPECT_THAT(t, HasSubstr("mpathd_member_active{group=\"g0\",interface=\"m0\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_group_failure_detection_time_seconds{group=\"g0\"} 10\n"));
  // Nothing failed over yet: no failover series, and no duration.
  EXPECT_THAT(t, Not(HasSubstr("mpathd_failovers_total{")));
  EXPECT_THAT(t, Not(HasSubstr("mpathd_group_last_failover_duration_seconds{")));
}

TEST(Metrics, AFailoverIsCountedWithTheMembersReasonAndTimed) {
  MetricsRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.metrics.applied();
  r.link("m0", false);
  r.clock.advance(250ms);  // the kernel work of the daemon
  r.metrics.applied();
  const auto t = r.text();
  EXPECT_EQ(violation(t), "") << t;
  EXPECT_THAT(t, HasSubstr("# TYPE mpathd_failovers_total counter\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_failovers_total{group=\"g0\",reason=\"link-down\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_address_moves_total{group=\"g0\",reason=\"failover\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_address_moves_total{group=\"g0\",reason=\"startup\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_group_last_failover_duration_seconds{group=\"g0\"} 0.25\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_member_state{group=\"g0\",interface=\"m0\",state=\"failed\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_member_failures_total{group=\"g0\",interface=\"m0\"} 1\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_group_state{group=\"g0\",state=\"degraded\"} 1\n"));

  // Repair (the address fails back) and fail again: counters go on, the duration is
  // the last one's.
  r.link("m0", true);
  r.metrics.applied();
  r.link("m0", false);
  r.clock.advance(1s);
  r.metrics.applied();
  const auto t2 = r.text();
  EXPECT_THAT(t2, HasSubstr("mpathd_failovers_total{group=\"g0\",reason=\"link-down\"} 2\n"));
  EXPECT_THAT(t2, HasSubstr("mpathd_group_last_failover_duration_seconds{group=\"g0\"} 1\n"));
}

TEST(Metrics, AMemberFailureThatMovesNothingIsNoFailover) {
  MetricsRig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}));
  r.start_all_up({"m0", "m1", "m2"});
  r.metrics.applied();
  ASSERT_TRUE(r.engine.offline("m2"));  // the idle standby: nothing moves
  r.metrics.applied();
  EXPECT_THAT(r.text(), Not(HasSubstr("mpathd_failovers_total{")));
  r.link("m0", false);  // now a real one, whose reason must not be the standby's
  r.metrics.applied();
  const auto t = r.text();
  EXPECT_THAT(t, HasSubstr("mpathd_failovers_total{group=\"g0\",reason=\"link-down\"} 1\n"));
  EXPECT_THAT(t, Not(HasSubstr("reason=\"admin-offline\"")));
  EXPECT_THAT(t, HasSubstr("mpathd_member_state{group=\"g0\",interface=\"m2\",state=\"offline\"} 1\n"));
}

TEST(Metrics, ProbesAndRtts) {
  MetricsRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  const auto target = *IpAddress::parse("198.18.1.1");
  for (int i = 0; i < 5; ++i) r.metrics.on_event(ProbeCompleted{"g0", "m0", 1, target, i != 2}, r.engine);
  const auto other = *IpAddress::parse("198.18.1.2");
  r.engine.observe_targets("m0", TargetMode::routes, {{target, 1500us, 250us}, {other, {}, {}}});
  const auto t = r.text();
  EXPECT_EQ(violation(t), "") << t;
  EXPECT_THAT(t, HasSubstr("mpathd_probes_sent_total{group=\"g0\",interface=\"m0\"} 5\n"));
  EXPECT_THAT(t, HasSubstr("mpathd_probes_lost_total{group=\"g0\",interface=\"m0\"} 1\n"));
  EXPECT_THAT(t, Not(HasSubstr("mpathd_probes_sent_total{group=\"g0\",interface=\"m1\"}")));
  EXPECT_THAT(t,
              HasSubstr("mpathd_probe_rtt_average_seconds{group=\"g0\",interface=\"m0\",target=\"198.18.1.1\"} 0.0015\n"));
  EXPECT_THAT(t, HasSubstr(
                     "mpathd_probe_rtt_deviation_seconds{group=\"g0\",interface=\"m0\",target=\"198.18.1.1\"} 0.00025\n"));
  EXPECT_THAT(t, Not(HasSubstr("target=\"198.18.1.2\"")));  // no estimate yet: no RTT
}

// status.json "failover_latency": buckets over every sample, quantiles over the window.
TEST(FailoverLatency, HistogramAndQuantiles) {
  FailoverLatency l;
  EXPECT_EQ(l.json()["count"], 0);
  EXPECT_EQ(l.json()["p99_us"], 0);
  for (int i = 1; i <= 100; ++i) l.add(std::chrono::microseconds(i * 10));  // 10 .. 1000 us
  auto j = l.json();
  EXPECT_EQ(j["count"], 100);
  EXPECT_EQ(j["last_us"], 1000);
  EXPECT_EQ(j["max_us"], 1000);
  EXPECT_EQ(j["p50_us"], 510);  // nearest rank of 99 * 0.5 (+0.5)
  EXPECT_EQ(j["p99_us"], 990);
  ASSERT_EQ(j["buckets"].size(), std::size(FailoverLatency::kBucketsUs));
  EXPECT_EQ(j["buckets"][0]["le_us"], 50);
  EXPECT_EQ(j["buckets"][0]["count"], 5);     // 10..50
  EXPECT_EQ(j["buckets"][4]["le_us"], 1000);
  EXPECT_EQ(j["buckets"][4]["count"], 100);   // cumulative
  // The window keeps the last kWindow samples: old fast ones drop out of the quantiles.
  for (std::size_t i = 0; i < FailoverLatency::kWindow; ++i) l.add(std::chrono::microseconds(5000));
  j = l.json();
  EXPECT_EQ(j["p50_us"], 5000);
  EXPECT_EQ(j["count"], 100 + FailoverLatency::kWindow);
  EXPECT_EQ(j["buckets"][4]["count"], 100);  // the histogram keeps every sample
}
