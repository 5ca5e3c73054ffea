// The failure rule (lib/core/probe.*, docs/design-decisions.md "The failure rule"):
// intervals of k probes, k from the measured loss, late answers saving their
// interval; its detection bound and its false-failure rate, on a fake clock with a
// simulated network (seeded std::mt19937_64: every run sees the same losses).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "core/probe.hpp"

using namespace mpathd;
using namespace std::chrono_literals;

namespace {

IpAddress ip(const char* t) { return *IpAddress::parse(t); }
const TimePoint T0 = TimePoint{} + std::chrono::hours(1);
const IpAddress kTarget = ip("198.18.0.1");

// ----------------------------------------------------------------------------------
TEST(ProbesPerInterval, FollowTheMeasuredLoss) {
  // p = (lost + 1/2) / (completed + 1); k = ceil(ln 1e-9 / (5 ln p)), within [1, 5].
  EXPECT_EQ(choose_sends_per_interval(0, 0, 5), 5u);    // nothing known: p = 1/2
  EXPECT_EQ(choose_sends_per_interval(0, 10, 5), 2u);   // p = 0.045: k >= 1.34
  EXPECT_EQ(choose_sends_per_interval(0, 30, 5), 2u);   // p = 0.016: k >= 1.01
  EXPECT_EQ(choose_sends_per_interval(0, 31, 5), 1u);   // p = 0.0156: k >= 0.998
  EXPECT_EQ(choose_sends_per_interval(0, 50, 5), 1u);   // a clean path: in.mpathd's one
  EXPECT_EQ(choose_sends_per_interval(1, 50, 5), 2u);   // p = 0.029: k >= 1.18
  EXPECT_EQ(choose_sends_per_interval(5, 50, 5), 2u);   // p = 0.108: k >= 1.86
  EXPECT_EQ(choose_sends_per_interval(10, 50, 5), 3u);  // p = 0.206 (10 % each way): k >= 2.62
  EXPECT_EQ(choose_sends_per_interval(18, 50, 5), 5u);  // p = 0.363 (20 % each way): k >= 4.09
  EXPECT_EQ(choose_sends_per_interval(50, 50, 5), 5u);  // everything lost
  EXPECT_EQ(choose_sends_per_interval(99, 50, 5), 5u);  // nonsense input is clamped
  // min = max fixes k; min is a floor.
  EXPECT_EQ(choose_sends_per_interval(50, 50, 5, 1, 1), 1u);
  EXPECT_EQ(choose_sends_per_interval(0, 50, 5, 3, 5), 3u);
  EXPECT_EQ(choose_sends_per_interval(0, 0, 5, 2, 1), 2u);
}

TEST(ProbeHistoryIntervals, AnIntervalIsLostOnlyWhenAllItsProbesAre) {
  ProbeHistory h;
  ProbeSeq s = 0;
  // Five intervals of three probes: two lost, one answered -> no loss counted.
  for (std::uint64_t n = 1; n <= 5; ++n) {
    for (int j = 0; j < 3; ++j) h.sent(static_cast<ProbeSeq>(s + j), kTarget, T0 + n * 1s + j * 100ms, n);
    h.lost(s++);
    h.lost(s++);
    ASSERT_TRUE(h.acked(s++, T0 + n * 1s + 201ms));
  }
  EXPECT_EQ(h.consecutive_losses(), 0u);
  EXPECT_EQ(h.consecutive_losses(kTarget), 0u);
  EXPECT_EQ(h.consecutive_successes(), 5u);
  EXPECT_EQ(h.recent_loss(), (std::pair<std::size_t, std::size_t>{10, 15}));
  // Then five intervals of three lost probes: failed, TFF = the first of them.
  for (std::uint64_t n = 6; n <= 10; ++n) {
    for (int j = 0; j < 3; ++j) h.sent(static_cast<ProbeSeq>(s + j), kTarget, T0 + n * 1s + j * 100ms, n);
    for (int j = 0; j < 3; ++j) h.lost(s++);
    EXPECT_EQ(h.failed(), n == 10) << n;
  }
  EXPECT_EQ(h.consecutive_losses(), 5u);
  EXPECT_EQ(h.first_failure(), T0 + 6s);
}

TEST(ProbeHistoryIntervals, AnIntervalWithAProbeInFlightIsNotYetLost) {
  ProbeHistory h;
  for (ProbeSeq s = 0; s < 4; ++s) {
    h.sent(s, kTarget, T0 + s * 1s, s);
    h.lost(s);
  }
  h.sent(4, kTarget, T0 + 4s, 4);
  h.sent(5, kTarget, T0 + 4s + 100ms, 4);
  h.lost(4);
  EXPECT_EQ(h.consecutive_losses(), 4u);  // interval 4 waits for probe 5
  EXPECT_FALSE(h.failed());
  h.lost(5);
  EXPECT_EQ(h.consecutive_losses(), 5u);
  EXPECT_TRUE(h.failed());
}

TEST(ProbeHistoryIntervals, ALateAnswerSavesItsIntervalButNeverRepairs) {
  ProbeHistory h;
  for (ProbeSeq s = 0; s < 4; ++s) {
    h.sent(s, kTarget, T0 + s * 1s, s);
    h.lost(s);
  }
  EXPECT_EQ(h.consecutive_losses(), 4u);
  // The answer to probe 1 comes late, before a fifth loss: the run restarts after it.
  ASSERT_TRUE(h.answered_late(1, T0 + 3500ms));
  EXPECT_EQ(h.find(1)->status, ProbeStatus::late);
  EXPECT_EQ(h.consecutive_losses(), 2u);
  EXPECT_EQ(h.last_success(), T0 + 3500ms);
  EXPECT_FALSE(h.answered_late(1, T0 + 3600ms));  // once
  EXPECT_FALSE(h.answered_late(9, T0 + 3600ms));  // never sent
  h.sent(4, kTarget, T0 + 4s, 4);
  h.lost(4);
  EXPECT_FALSE(h.failed());
  // Late answers are no repair: a failed member needs ten answers in time.
  ProbeHistory f;
  ProbeSeq s = 0;
  for (; s < 5; ++s) {
    f.sent(s, kTarget, T0, s);
    f.lost(s);
  }
  ASSERT_TRUE(f.failed());
  for (int i = 0; i < 12; ++i, ++s) {
    f.sent(s, kTarget, T0, s);
    f.lost(s);
    f.answered_late(s, T0);
  }
  EXPECT_TRUE(f.failed());
  EXPECT_EQ(f.consecutive_successes(), 0u);
  // And they count as losses for the loss estimate.
  EXPECT_EQ(f.recent_loss().first, f.recent_loss().second);
}

TEST(ProbeHistoryIntervals, ProbesOfTwoIntervalsStayOutstanding) {
  ProbeHistory h;
  h.sent(0, kTarget, T0, 1);
  h.sent(1, kTarget, T0 + 100ms, 1);
  h.sent(2, kTarget, T0 + 1s, 2);
  EXPECT_EQ(h.outstanding(), 3u);
  auto forced = h.sent(3, kTarget, T0 + 2s, 3);  // interval 1 must be over by now
  ASSERT_EQ(forced.size(), 2u);
  EXPECT_EQ(forced[0].seq, 0);
  EXPECT_EQ(forced[1].seq, 1);
  EXPECT_EQ(h.outstanding(), 2u);
}

TEST(ProbeScheduleSends, KSendsSpreadOverTheSecondHalfOfEachInterval) {
  std::mt19937_64 rng(7);
  ProbeSchedule s([&] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); });
  s.set_sends(3);
  s.start(T0, 1000ms);
  EXPECT_EQ(s.sends(), 3u);
  const std::uint64_t first = s.interval_number();
  // The first interval: spread over all of it, one send in each third.
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(s.interval_number(), first);
    EXPECT_GE(s.next(), T0 + j * 1000ms / 3);
    EXPECT_LT(s.next(), T0 + (j + 1) * 1000ms / 3);
    s.advance(s.next());
  }
  s.set_sends(4);  // from the next interval
  for (int i = 1; i <= 20; ++i) {
    const TimePoint base = T0 + i * 1000ms;
    EXPECT_EQ(s.interval_number(), first + i);
    EXPECT_EQ(s.sends(), i == 1 ? 3u : 4u);
    const unsigned k = s.sends();
    for (unsigned j = 0; j < k; ++j) {
      const Duration slot = 500ms / k;
      EXPECT_GE(s.next(), base + 500ms + j * slot) << i << " " << j;
      EXPECT_LT(s.next(), base + 500ms + (j + 1) * slot) << i << " " << j;
      EXPECT_EQ(s.interval_number(), first + i);
      EXPECT_EQ(s.advance(s.next()), 0u);
    }
  }
}

// ----------------------------------------------------------------------------------
// A member probing one target through a simulated network: every probe and every
// answer is dropped with probability `loss_each_way`, answers take `rtt` (plus, for
// `late_share` of them, one to three extra intervals: a slow responder or a loaded
// daemon), and from `cut` on nothing comes back at all. Event-driven on the fake
// clock: the session's deadlines and the answers' arrivals.
struct Network {
  double loss_each_way = 0.0;
  Duration rtt = 1ms;
  double late_share = 0.0;
  std::optional<TimePoint> cut;
};

struct SimResult {
  unsigned failures = 0;  // ok -> failed transitions
  std::uint64_t sent = 0;
  std::uint64_t intervals = 0;
  std::optional<TimePoint> first_failed_at;
};

class Simulator {
 public:
  Simulator(ProbeSession::Options options, Network net, std::uint64_t seed)
      : rng_(seed), net_(net), s_([&] {
          options.random = [this] { return uniform(); };
          return options;
        }()) {
    s_.set_targets({kTarget});
    s_.start(now_);
  }

  SimResult run_until(TimePoint end) {
    while (true) {
      TimePoint next = *s_.next_deadline();
      const bool reply = !inflight_.empty() && inflight_.begin()->first <= next;
      if (reply) next = inflight_.begin()->first;
      if (next > end) break;
      now_ = next;
      if (reply) {
        auto [at, probe] = *inflight_.begin();
        inflight_.erase(inflight_.begin());
        s_.on_reply(probe.first, kTarget, probe.second, at, at);
      } else {
        const std::uint64_t before = s_.history().records().empty() ? 0 : s_.history().records().back().interval;
        auto t = s_.on_timer(now_);
        if (t.send) {
          ++res_.sent;
          if (s_.history().records().back().interval != before) ++res_.intervals;
          if (!dropped() && !dropped()) {  // the request, then the answer
            Duration rtt = net_.rtt;
            if (net_.late_share > 0 && uniform() < net_.late_share)
              rtt += s_.interval() * (1 + static_cast<int>(uniform() * 3));
            if (!net_.cut || now_ + rtt < *net_.cut) inflight_.emplace(now_ + rtt, std::pair{t.send->seq, now_});
          }
        }
      }
      if (auto v = s_.take_verdict_change(); v && v->state == ProbeState::failed) {
        ++res_.failures;
        if (!res_.first_failed_at) res_.first_failed_at = now_;
      }
    }
    return res_;
  }
  TimePoint now() const { return now_; }
  ProbeSession& session() { return s_; }

 private:
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }
  bool dropped() { return net_.loss_each_way > 0 && uniform() < net_.loss_each_way; }

  std::mt19937_64 rng_;
  Network net_;
  TimePoint now_ = T0;
  ProbeSession s_;
  std::multimap<TimePoint, std::pair<ProbeSeq, TimePoint>> inflight_;  // arrival -> (seq, sent)
  SimResult res_;
};

ProbeSession::Options rule(Duration fdt) { return {5, 10, fdt, {}, 1, probe::kMaxSendsPerInterval}; }
ProbeSession::Options inmpathd(Duration fdt) { return {5, 10, fdt, {}, 1, 1}; }

// ----------------------------------------------------------------------------------
// Detection: a path that dies is still detected within the FDT, from any moment,
// with whatever k the loss before it had chosen.
TEST(FailureRule, ARealFailureIsDetectedWithinTheFdt) {
  const Duration fdt = 1s;
  const Duration interval = probe_interval(fdt);
  struct Case {
    const char* what;
    Network net;
  };
  for (const Case& c : {Case{"clean, RTT 1 ms", {0.0, 1ms, 0.0, {}}},
                        Case{"20 % loss each way", {0.2, 1ms, 0.0, {}}},
                        Case{"10 % each way, 5 % late", {0.1, 1ms, 0.05, {}}},
                        Case{"RTT a quarter interval", {0.0, interval / 4, 0.0, {}}}}) {
    Duration worst{};
    for (std::uint64_t trial = 0; trial < 300; ++trial) {
      std::mt19937_64 pick(trial);
      // The cut falls anywhere after 10 to 20 s of probing.
      const TimePoint cut = T0 + 10s + Duration(static_cast<Duration::rep>(
                                          std::uniform_real_distribution<double>(0, 1)(pick) * 1e10));
      Network net = c.net;
      net.cut = cut;
      Simulator sim(rule(fdt), net, 1000 + trial);
      auto r = sim.run_until(cut + 3 * fdt);
      // A false failure before the cut would end the trial early: none may happen.
      ASSERT_TRUE(r.first_failed_at) << c.what << " trial " << trial;
      ASSERT_GE(*r.first_failed_at, cut) << c.what << " trial " << trial;
      worst = std::max(worst, *r.first_failed_at - cut);
    }
    std::printf("  detection, %-26s worst %6.1f ms of 300 cuts (FDT %lld ms)\n", c.what,
                std::chrono::duration<double, std::milli>(worst).count(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(fdt).count()));
    EXPECT_LE(worst, fdt) << c.what;
  }
}

TEST(FailureRule, ASlowPathIsNoFailure) {
  // Every answer 2.5 intervals late (above crtt while the estimate learns): late
  // answers keep saving their intervals; the FDT is raised instead.
  Simulator slow(rule(1s), {0.0, probe_interval(1s) * 5 / 2, 0.0, {}}, 3);
  auto r = slow.run_until(T0 + std::chrono::minutes(10));
  EXPECT_EQ(r.failures, 0u);
  EXPECT_TRUE(slow.session().verdict().fdt_unachievable);
}

TEST(FailureRule, ProbesPerIntervalRiseWithLossAndFallWhenClean) {
  Simulator lossy(rule(1s), {0.2, 1ms, 0.0, {}}, 4);
  lossy.run_until(T0 + std::chrono::minutes(5));
  EXPECT_GE(lossy.session().sends_per_interval(), 4u);
  Simulator clean(rule(1s), {0.0, 1ms, 0.0, {}}, 4);
  EXPECT_EQ(clean.session().sends_per_interval(), 5u);  // nothing measured yet: cautious
  clean.run_until(T0 + 10s);
  EXPECT_EQ(clean.session().sends_per_interval(), 1u);
}

TEST(FailureRule, AnIntervalsProbesGoToDifferentTargetsAndOneDeadTargetFailsNothing) {
  ProbeSession s(rule(7s));
  const IpAddress a = ip("198.18.0.1"), b = ip("198.18.0.2"), c = ip("198.18.0.3");
  s.set_targets({a, b, c});
  TimePoint now = T0;
  s.start(now);
  std::vector<IpAddress> dead;
  std::map<std::uint64_t, std::vector<IpAddress>> per_interval;
  for (int i = 0; i < 400; ++i) {
    now = *s.next_deadline();
    auto t = s.on_timer(now);
    dead.insert(dead.end(), t.dead_targets.begin(), t.dead_targets.end());
    if (!t.send) continue;
    per_interval[s.history().records().back().interval].push_back(t.send->target);
    if (t.send->target != b) s.on_reply(t.send->seq, t.send->target, now, now + 1ms, now + 1ms);
  }
  // The first interval's five probes went round-robin over the three targets.
  const auto& first = per_interval.begin()->second;
  ASSERT_EQ(first.size(), 5u);
  EXPECT_EQ(first[0], a);
  EXPECT_EQ(first[1], b);
  EXPECT_EQ(first[2], c);
  EXPECT_EQ(s.verdict().state, ProbeState::ok);
  ASSERT_FALSE(dead.empty());
  EXPECT_EQ(dead.front(), b);
}

TEST(FailureRule, AnAnswerQueuedBeforeTheTimeoutIsReadFirst) {
  // losses_due() tells the I/O side to read its socket before on_timer() declares
  // anything lost.
  ProbeSession s(rule(7s));
  s.set_targets({kTarget});
  s.start(T0);
  const TimePoint sent = *s.next_deadline();
  auto t = s.on_timer(sent);
  ASSERT_TRUE(t.send);
  EXPECT_FALSE(s.losses_due(sent + 999ms));
  EXPECT_TRUE(s.losses_due(sent + 1s));  // no estimate yet: one interval
  s.on_reply(t.send->seq, kTarget, sent, sent + 2ms, sent + 1s);
  EXPECT_FALSE(s.losses_due(sent + 1s));
  EXPECT_EQ(s.history().consecutive_successes(), 1u);
}

// ----------------------------------------------------------------------------------
// False failures over simulated hours at FDT 1 s (25 200 intervals an hour), one
// member probing one target (the worst case: no second target to fall back on).
struct Rate {
  double loss_each_way;
  double late_share;
  int hours;
};

SimResult simulate(ProbeSession::Options o, const Rate& r, std::uint64_t seed) {
  Simulator sim(o, {r.loss_each_way, 1ms, r.late_share, {}}, seed);
  return sim.run_until(T0 + std::chrono::hours(r.hours));
}

void report(const char* rule_name, const Rate& r, const SimResult& res) {
  const double p = 1 - (1 - r.loss_each_way) * (1 - r.loss_each_way);
  std::printf("  %-9s loss %2.0f %% each way (%4.1f %% per probe), %2.0f %% late, %3d h: %4u false "
              "failures (%.3g / h), %.2f probes per interval\n",
              rule_name, 100 * r.loss_each_way, 100 * p, 100 * r.late_share, r.hours, res.failures,
              res.failures / static_cast<double>(r.hours),
              static_cast<double>(res.sent) / static_cast<double>(std::max<std::uint64_t>(1, res.intervals)));
}

TEST(FailureRule, InMpathdsRuleFailsAsItsArithmeticPredicts) {
  // The simulator itself is checked against the closed form: with one probe per
  // interval, p = 1 - 0.9^2 = 0.19 per probe and five in a row failing, a failure
  // starts at an interval with probability (1 - p) p^5 = 2.0e-4, i.e. ~5.0 an hour
  // (a little less: after each, ten answers in a row are needed before the next).
  const Rate r{0.10, 0.0, 4};
  auto res = simulate(inmpathd(1s), r, 11);
  report("in.mpathd", r, res);
  // Mean time to five losses in a row (1 - p^5) / ((1 - p) p^5) = 4985 intervals,
  // to ten answers in a row after it 38: 5.0 an hour, 20 in 4 h (Poisson 99.9 %: 7-36).
  EXPECT_GE(res.failures, 7u);
  EXPECT_LE(res.failures, 36u);
  // 20 % each way: p = 0.36: 257 intervals to fail, 238 to repair: 51 an hour.
  const Rate r2{0.20, 0.0, 1};
  auto res2 = simulate(inmpathd(1s), r2, 12);
  report("in.mpathd", r2, res2);
  EXPECT_GE(res2.failures, 30u);
  EXPECT_LE(res2.failures, 74u);
}

TEST(FailureRule, NoFalseFailuresOverSimulatedHoursAt10And20PercentLoss) {
  // The rule: P(false failure) per interval <= 1e-9 by construction of k, i.e.
  // <= 2.5e-5 an hour at FDT 1 s (design-decisions.md gives the arithmetic per loss).
  // 0 over these hours is what the arithmetic says; a handful would mean it is wrong.
  for (const Rate& r : {Rate{0.10, 0.0, 24}, Rate{0.20, 0.0, 24}, Rate{0.10, 0.05, 12},
                        Rate{0.20, 0.05, 12}}) {
    auto res = simulate(rule(1s), r, 21);
    report("new rule", r, res);
    EXPECT_EQ(res.failures, 0u) << r.loss_each_way << " " << r.late_share;
  }
}

TEST(FailureRule, ACleanPathCostsOneProbePerInterval) {
  auto res = simulate(rule(1s), {0.0, 0.0, 1}, 5);
  report("new rule", {0.0, 0.0, 1}, res);
  EXPECT_EQ(res.failures, 0u);
  // Cautious (5) for the first few intervals only, then in.mpathd's one.
  EXPECT_LT(static_cast<double>(res.sent) / static_cast<double>(res.intervals), 1.01);
}

}  // namespace

namespace {

// ----------------------------------------------------------------------------------
// in.mpathd's exception target (issue 13 item 3): one target answering far slower
// than all the others is dropped, not waited for; the FDT is not raised for it.
struct SlowRig {
  ProbeSession s{ProbeSession::Options{5, 10, 7s, [] { return 0.0; }, 1, 1}};
  TimePoint now = T0;
  std::vector<IpAddress> flagged;

  explicit SlowRig(std::vector<IpAddress> targets) {
    s.set_targets(std::move(targets));
    s.start(now);
  }
  // Probes `rounds` times; answers from the targets in `slow` take 1.5 s (1.5
  // intervals), the others 1 ms.
  void run(int rounds, const std::vector<IpAddress>& slow) {
    for (int i = 0; i < rounds; ++i) {
      std::optional<ProbeSession::Send> send;
      while (!send) {
        now = *s.next_deadline();
        send = s.on_timer(now).send;
      }
      const bool is_slow = std::find(slow.begin(), slow.end(), send->target) != slow.end();
      const TimePoint at = now + (is_slow ? 1500ms : 1ms);
      auto reply = s.on_reply(send->seq, send->target, now, at, at);
      if (reply.slow_target) flagged.push_back(*reply.slow_target);
    }
  }
};

TEST(SlowTarget, OneFarSlowerThanFourOthersIsDroppedNotWaitedFor) {
  const IpAddress a = ip("198.18.0.1"), b = ip("198.18.0.2"), c = ip("198.18.0.3"), d = ip("198.18.0.4");
  SlowRig r({a, b, c, d});
  r.run(40, {d});
  ASSERT_FALSE(r.flagged.empty());
  for (const auto& t : r.flagged) EXPECT_EQ(t, d);
  EXPECT_TRUE(r.s.exceptionally_slow(d));
  EXPECT_FALSE(r.s.exceptionally_slow(a));
  EXPECT_FALSE(r.s.verdict().fdt_unachievable);  // nobody else pays for it
  EXPECT_EQ(r.s.verdict().state, ProbeState::ok);
}

TEST(SlowTarget, NoExceptionWithFewTargetsOrTwoSlowOnes) {
  const IpAddress a = ip("198.18.0.1"), b = ip("198.18.0.2"), c = ip("198.18.0.3"), d = ip("198.18.0.4");
  SlowRig three({a, b, c});  // fewer than kMinTargets + 1: no way to tell
  three.run(40, {c});
  EXPECT_TRUE(three.flagged.empty());
  SlowRig two_slow({a, b, c, d});  // the others are not all fast
  two_slow.run(40, {c, d});
  EXPECT_TRUE(two_slow.flagged.empty());
}

}  // namespace

namespace {

// ----------------------------------------------------------------------------------
// RTT-only probes while the FDT is raised (in.mpathd's PROBE_RTT, issue 13 item 3).
TEST(RttOnlyProbes, GoOutAtTheConfiguredIntervalWhileRaisedAndOnlyBringTheEstimateDown) {
  ProbeSession s{ProbeSession::Options{5, 10, 7s, [] { return 0.0; }, 1, 1}};
  s.set_targets({kTarget});
  s.start(T0);
  Duration rtt = 1500ms;  // 1.5 intervals: the interval gets raised
  std::multimap<TimePoint, std::pair<ProbeSession::Send, TimePoint>> pending;
  std::vector<TimePoint> rtt_sends_while_raised;
  std::optional<TimePoint> fast_at, back_at;
  TimePoint now = T0;
  unsigned fd_sends_while_raised = 0;
  while (now < T0 + std::chrono::minutes(12)) {
    TimePoint when = *s.next_deadline();
    if (!pending.empty()) when = std::min(when, pending.begin()->first);
    now = when;
    while (!pending.empty() && pending.begin()->first <= now) {
      auto [at, e] = *pending.begin();
      pending.erase(pending.begin());
      auto reply = s.on_reply(e.first.seq, e.first.target, e.second, at, at);
      EXPECT_EQ(reply.kind == ProbeSession::ReplyKind::rtt_only, e.first.rtt_only);
    }
    auto t = s.on_timer(now);
    for (const auto& r : t.results) EXPECT_FALSE(r.acked);
    ASSERT_NE(s.verdict().state, ProbeState::failed);
    if (t.send) {
      const bool raised = s.interval() > 1s;
      if (raised && t.send->rtt_only) rtt_sends_while_raised.push_back(now);
      if (raised && !t.send->rtt_only) ++fd_sends_while_raised;
      if (!raised) {
        EXPECT_FALSE(t.send->rtt_only) << "no RTT-only probes at the configured interval";
      }
      pending.emplace(now + rtt, std::pair{*t.send, now});
    }
    if (!fast_at && s.interval() > 1s && now > T0 + 30s) {
      rtt = 2ms;  // the network is fast again
      fast_at = now;
    }
    if (fast_at && !back_at && s.interval() == 1s) back_at = now;
  }
  ASSERT_TRUE(fast_at);
  ASSERT_TRUE(back_at) << "the FDT never came back down";
  EXPECT_FALSE(s.verdict().fdt_unachievable);
  // One RTT-only probe per configured interval (1 s) while raised, many more than the
  // failure-detection probes at the raised interval.
  ASSERT_GE(rtt_sends_while_raised.size(), 20u);
  for (std::size_t i = 1; i < rtt_sends_while_raised.size(); ++i) {
    const Duration gap = rtt_sends_while_raised[i] - rtt_sends_while_raised[i - 1];
    if (gap < 2s) {
      EXPECT_GE(gap, 1s);
    }
  }
  EXPECT_GT(rtt_sends_while_raised.size(), 2 * fd_sends_while_raised);
  std::printf("  raised for %.0f s after the network got fast; %zu RTT-only and %u detection probes while raised\n",
              std::chrono::duration<double>(*back_at - *fast_at).count(), rtt_sends_while_raised.size(),
              fd_sends_while_raised);
}

TEST(RttOnlyProbes, AnRttOnlySampleNeverRaisesTheEstimate) {
  RttEstimator e;
  EXPECT_FALSE(e.lower(5ms, 1s));  // nothing to lower yet
  e.add(100ms, 1s);
  const Duration before = e.crtt();
  EXPECT_FALSE(e.lower(900ms, 1s));
  EXPECT_EQ(e.crtt(), before);
  // A sample far below the average raises the deviation more than it lowers the
  // average (crtt 88.75 + 240 ms): not taken either.
  EXPECT_FALSE(e.lower(10ms, 1s));
  EXPECT_EQ(e.crtt(), before);
  // 90 ms: avg 98.75 ms, 4 dev 160 ms -> crtt 258.75 ms < 300 ms: taken.
  EXPECT_TRUE(e.lower(90ms, 1s));
  EXPECT_EQ(e.crtt(), 258750us);
}

}  // namespace

namespace {

// ----------------------------------------------------------------------------------
// The quiet period after a member's probing starts (in.mpathd's 40 s for spanning
// tree; Config::probe_quiet_period, off by default).
TEST(QuietPeriod, LossesFailNothingUntilItEndsThenTheCountDecides) {
  ProbeSession::Options o = rule(7s);  // 1 s interval
  o.quiet_period = 10s;
  ProbeSession s(o);
  s.set_targets({kTarget});
  s.start(T0);
  TimePoint now = T0;
  while (now < T0 + 10s) {
    now = *s.next_deadline();
    if (now >= T0 + 10s) break;
    s.on_timer(now);  // nothing is ever answered
    EXPECT_EQ(s.verdict().state, ProbeState::ok) << "quiet, at +" << (now - T0).count();
  }
  EXPECT_GE(s.history().consecutive_losses(), 5u);
  // The quiet period's end is a deadline of its own; then the losses count at once.
  EXPECT_EQ(*s.next_deadline(), T0 + 10s);
  s.on_timer(T0 + 10s);
  EXPECT_EQ(s.verdict().state, ProbeState::failed);
  EXPECT_LT(s.verdict().first_failure, T0 + 10s);
}

TEST(QuietPeriod, TheFirstAnswerEndsItAndAStopDoesNotStartItAgain) {
  ProbeSession::Options o = rule(7s);
  o.quiet_period = 40s;
  ProbeSession s(o);
  s.set_targets({kTarget});
  s.start(T0);
  TimePoint now = *s.next_deadline();
  auto t = s.on_timer(now);
  ASSERT_TRUE(t.send);
  s.on_reply(t.send->seq, kTarget, now, now + 1ms, now + 1ms);
  s.stop();
  s.start(now + 1s);  // a pause (link down, offline) is no new interface
  std::optional<TimePoint> failed_at;
  for (int i = 0; i < 200 && !failed_at; ++i) {
    now = *s.next_deadline();
    s.on_timer(now);
    if (s.verdict().state == ProbeState::failed) failed_at = now;
  }
  ASSERT_TRUE(failed_at);
  EXPECT_LT(*failed_at, T0 + 10s);  // within the FDT (7 s) of the last answer, not 40 s
}

TEST(QuietPeriod, OffByDefault) {
  ProbeSession s(rule(7s));
  s.set_targets({kTarget});
  s.start(T0);
  TimePoint now = T0;
  for (int i = 0; i < 200 && s.verdict().state != ProbeState::failed; ++i) {
    now = *s.next_deadline();
    s.on_timer(now);
  }
  EXPECT_EQ(s.verdict().state, ProbeState::failed);
  EXPECT_LE(now, T0 + 7s);
}

}  // namespace
