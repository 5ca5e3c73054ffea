// The log rate limit (issue 8, item 9): a flapping member cannot flood the log, the
// first lines and the last state are still logged.
#include <gtest/gtest.h>

#include "daemon/log_limiter.hpp"
#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;
using namespace std::chrono_literals;

namespace {

const LogLimiter::Limits kLimits{3, 10s};

// Offers a line and returns what is to be logged now, in order.
std::vector<std::string> offer(LogLimiter& l, const std::string& subject, const std::string& line) {
  auto v = l.offer(subject, "transitions", line);
  if (v.log) v.summaries.push_back(line);
  return v.summaries;
}

}  // namespace

TEST(LogLimiter, BurstIsLoggedThenCountedAndSummarisedWhenTheIntervalEnds) {
  FakeClock clock;
  LogLimiter l(clock, kLimits);
  const auto t0 = clock.now();
  EXPECT_EQ(offer(l, "g0/m0", "g0/m0: ok -> failed (link-down)"),
            std::vector<std::string>{"g0/m0: ok -> failed (link-down)"});
  clock.advance(1s);
  EXPECT_EQ(offer(l, "g0/m0", "g0/m0: failed -> ok (link-up)").size(), 1u);
  EXPECT_EQ(offer(l, "g0/m0", "g0/m0: ok -> failed (link-down)").size(), 1u);
  EXPECT_FALSE(l.next_deadline()) << "nothing suppressed yet";
  for (int i = 0; i < 1000; ++i) {
    clock.advance(1ms);
    EXPECT_TRUE(offer(l, "g0/m0", i % 2 ? "g0/m0: ok -> failed (link-down)" : "g0/m0: failed -> ok (link-up)").empty());
  }
  ASSERT_TRUE(l.next_deadline());
  EXPECT_EQ(*l.next_deadline(), t0 + 10s);
  clock.advance(5s);
  EXPECT_TRUE(l.expire().empty()) << "the interval is not over";
  clock.advance(t0 + 10s - clock.now());
  EXPECT_EQ(l.expire(), std::vector<std::string>{
                            "g0/m0: 1000 more transitions suppressed in the last 10s (last: ok -> failed (link-down))"});
  EXPECT_FALSE(l.next_deadline());
  EXPECT_TRUE(l.expire().empty()) << "a summary is written once";
  // Quiet again: the next line is logged at once.
  EXPECT_EQ(offer(l, "g0/m0", "g0/m0: failed -> ok (repaired)").size(), 1u);
}

TEST(LogLimiter, SubjectsAreLimitedEachOnItsOwn) {
  FakeClock clock;
  LogLimiter l(clock, kLimits);
  for (int i = 0; i < 10; ++i) (void)offer(l, "g0/m0", "g0/m0: x");
  EXPECT_EQ(offer(l, "g0/m1", "g0/m1: ok -> failed (link-down)").size(), 1u);
  EXPECT_EQ(offer(l, "group g0", "group g0: ok -> degraded (link-down)").size(), 1u);
  EXPECT_TRUE(offer(l, "g0/m0", "g0/m0: x").empty());
}

TEST(LogLimiter, LineAfterAnIntervalWithoutItsTimerGetsTheSummaryFirst) {
  // The timer may be late: the summary still comes before the next line.
  FakeClock clock;
  LogLimiter l(clock, kLimits);
  for (int i = 0; i < 5; ++i) (void)offer(l, "g0/m0", "g0/m0: line " + std::to_string(i));
  clock.advance(11s);
  EXPECT_EQ(offer(l, "g0/m0", "g0/m0: failed -> ok (repaired)"),
            (std::vector<std::string>{"g0/m0: 2 more transitions suppressed in the last 10s (last: line 4)",
                                      "g0/m0: failed -> ok (repaired)"}));
  EXPECT_FALSE(l.next_deadline());
}

TEST(LogLimiter, FlushSummarisesWhatIsPendingAtExit) {
  FakeClock clock;
  LogLimiter l(clock, kLimits);
  for (int i = 0; i < 5; ++i) (void)offer(l, "g0/m0", "g0/m0: line " + std::to_string(i));
  (void)offer(l, "g0/m1", "g0/m1: only line");
  clock.advance(1s);
  EXPECT_TRUE(l.expire().empty());
  EXPECT_EQ(l.flush(), std::vector<std::string>{"g0/m0: 2 more transitions suppressed in the last 10s (last: line 4)"});
  EXPECT_FALSE(l.next_deadline());
}

TEST(LogLimiter, NoSummaryWhenNothingWasSuppressed) {
  FakeClock clock;
  LogLimiter l(clock, kLimits);
  (void)offer(l, "g0/m0", "g0/m0: a");
  (void)offer(l, "g0/m0", "g0/m0: b");
  clock.advance(1min);
  EXPECT_TRUE(l.expire().empty());
  EXPECT_FALSE(l.next_deadline());
}

TEST(LogLimiter, SixtySecondsOfFlappingStayBoundedAndEndWithTheLastState) {
  // A link flapping 700 times a second for 60 s (the issue saw 44 000 lines): per
  // subject at most burst + 1 lines per interval, and the last line logged for the
  // member names its final transition.
  FakeClock clock;
  LogLimiter l(clock, LogLimiter::Limits{});
  std::vector<std::string> logged;
  auto run_timer = [&] {
    if (auto d = l.next_deadline(); d && *d <= clock.now())
      for (auto& s : l.expire()) logged.push_back(s);
  };
  std::string last;
  for (int i = 0; i < 60 * 700; ++i) {
    clock.advance(std::chrono::microseconds(1000000 / 700));
    run_timer();
    last = i % 2 ? "g0/m0: failed -> ok (link-up)" : "g0/m0: ok -> failed (link-down)";
    for (auto& s : offer(l, "g0/m0", last)) logged.push_back(s);
  }
  clock.advance(10s);
  run_timer();
  EXPECT_LE(logged.size(), 7u * 11u) << "7 intervals of at most 10 lines and a summary";
  EXPECT_GE(logged.size(), 6u * 11u);
  EXPECT_EQ(logged.front(), "g0/m0: ok -> failed (link-down)");
  EXPECT_TRUE(logged.back().ends_with("(last: failed -> ok (link-up))")) << logged.back();
  EXPECT_FALSE(l.next_deadline());
}

TEST(LogLimiter, EventSubjectsAreTheLinePrefixes) {
  const IpPrefix a = *IpPrefix::parse("198.18.1.10/24");
  const std::vector<Event> events{
      MemberChanged{"g0", "m0", {}, {MemberState::failed, LinkState::down, ProbeState::disabled, 0}, Reason::link_down},
      GroupChanged{"g0", GroupState::ok, GroupState::degraded, Reason::link_down},
      AddressMoved{"g0", a, "m0", "m1", Reason::failover},
      TargetsChanged{"g0", "m0", TargetMode::routes, {a.addr}},
  };
  for (const auto& e : events) {
    auto s = log_subject(e);
    ASSERT_TRUE(s) << describe(e);
    EXPECT_TRUE(describe(e).starts_with(s->subject + ":") || describe(e).starts_with(s->subject + " "))
        << describe(e) << " / " << s->subject;
  }
  EXPECT_EQ(log_subject(events[2])->subject, "group g0: 198.18.1.10/24");
  EXPECT_NE(log_subject(events[0])->subject, log_subject(events[3])->subject);
  EXPECT_FALSE(log_subject(TopologyChanged{"g0", "m0", true}));
  EXPECT_FALSE(log_subject(ProbeCompleted{}));
}
