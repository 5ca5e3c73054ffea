// Probe statistics (lib/core/probe.*) driven with made-up times: no sockets, no sleeps.
#include <gtest/gtest.h>

#include "core/probe.hpp"

using namespace mpathd;
using namespace std::chrono_literals;

namespace {

IpAddress ip(const char* t) { return *IpAddress::parse(t); }
const TimePoint T0 = TimePoint{} + std::chrono::hours(1);

// ----------------------------------------------------------------------------------
TEST(RttEstimator, FirstSampleAndUpdatesMatchHandComputedValues) {
  RttEstimator e;
  EXPECT_FALSE(e.has_estimate());
  const Duration interval = 1000ms;
  // First sample m=100: sa=800, sv=200 -> avg 100, dev 50, crtt 300.
  EXPECT_EQ(e.add(100ms, interval), RttEstimator::Outcome::integrated);
  EXPECT_TRUE(e.has_estimate());
  EXPECT_EQ(e.avg(), 100ms);
  EXPECT_EQ(e.dev(), 50ms);
  EXPECT_EQ(e.crtt(), 300ms);
  // m=60: err=-40, sa=760, sv=200+40-50=190 -> avg 95, dev 47.5, crtt 285.
  EXPECT_EQ(e.add(60ms, interval), RttEstimator::Outcome::integrated);
  EXPECT_EQ(e.avg(), 95ms);
  EXPECT_EQ(e.dev(), 47500us);
  EXPECT_EQ(e.crtt(), 285ms);
  // m=200: err=105, sa=865, sv=190+105-47.5=247.5 -> avg 108.125, crtt 355.625.
  EXPECT_EQ(e.add(200ms, interval), RttEstimator::Outcome::integrated);
  EXPECT_EQ(e.avg(), 108125us);
  EXPECT_EQ(e.crtt(), 355625us);
}

TEST(RttEstimator, AverageIsFlooredAtZero) {
  RttEstimator e;
  e.add(Duration(8), 1000ms);   // sa=64ns, sv=16ns
  e.add(Duration(0), 1000ms);   // err=-8 -> sa=56
  EXPECT_GE(e.avg(), Duration::zero());
  for (int i = 0; i < 50; ++i) e.add(Duration(0), 1000ms);
  EXPECT_EQ(e.avg(), Duration::zero());
}

TEST(RttEstimator, SuspiciousSampleIsDeferredThenIntegratedWithTheNextOne) {
  RttEstimator e;
  const Duration interval = 1000ms;
  e.add(100ms, interval);  // crtt 300
  // m=800 alone: err=700, sa=1500, sv=200+700-50=850 -> crtt 187.5+850 > 1000: deferred.
  EXPECT_EQ(e.add(800ms, interval), RttEstimator::Outcome::deferred);
  EXPECT_EQ(e.crtt(), 300ms);
  EXPECT_EQ(e.deferred(), 1u);
  // A second suspicious one integrates both, in order.
  EXPECT_EQ(e.add(900ms, interval), RttEstimator::Outcome::integrated);
  EXPECT_EQ(e.deferred(), 0u);
  // 800: sa=1500, sv=850. 900: err=712.5, sa=2212.5, sv=850+712.5-212.5=1350.
  EXPECT_EQ(e.avg(), Duration(276562500));  // 2212.5/8 ms
  EXPECT_EQ(e.crtt(), Duration(276562500) + 1350ms);
}

TEST(RttEstimator, NormalSampleDiscardsDeferredOnes) {
  RttEstimator e;
  const Duration interval = 1000ms;
  e.add(100ms, interval);
  EXPECT_EQ(e.add(800ms, interval), RttEstimator::Outcome::deferred);
  EXPECT_EQ(e.add(100ms, interval), RttEstimator::Outcome::integrated);
  EXPECT_EQ(e.deferred(), 0u);
  // Only the normal sample was folded in: err=0, sv=200-50=150.
  EXPECT_EQ(e.avg(), 100ms);
  EXPECT_EQ(e.crtt(), 250ms);
}

TEST(RttEstimator, SanityBoundIgnoresHugeSamples) {
  RttEstimator e;
  EXPECT_EQ(e.add(53s, 1s), RttEstimator::Outcome::ignored);
  EXPECT_EQ(e.add(-1ms, 1s), RttEstimator::Outcome::ignored);
  EXPECT_FALSE(e.has_estimate());
  // 52 intervals is still a sample (suspicious, so deferred).
  EXPECT_EQ(e.add(52s, 1s), RttEstimator::Outcome::deferred);
}

// ----------------------------------------------------------------------------------
TEST(ProbeHistory, FiveLossesFailWithTheFirstLossAsTff) {
  ProbeHistory h;
  const IpAddress a = ip("198.18.0.1");
  h.sent(0, a, T0);
  h.acked(0, T0 + 1ms);
  for (ProbeSeq s = 1; s <= 5; ++s) {
    h.sent(s, a, T0 + s * 1s);
    h.lost(s);
    EXPECT_EQ(h.failed(), s == 5) << s;
  }
  EXPECT_EQ(h.consecutive_losses(), 5u);
  EXPECT_EQ(h.first_failure(), T0 + 1s);
  EXPECT_EQ(h.last_success(), T0 + 1ms);
}

TEST(ProbeHistory, FourLossesAndAnAckStayOk) {
  ProbeHistory h;
  const IpAddress a = ip("198.18.0.1");
  for (ProbeSeq s = 0; s < 4; ++s) {
    h.sent(s, a, T0 + s * 1s);
    h.lost(s);
  }
  h.sent(4, a, T0 + 4s);
  ASSERT_TRUE(h.acked(4, T0 + 4s + 1ms));
  EXPECT_FALSE(h.failed());
  EXPECT_EQ(h.consecutive_losses(), 0u);
  EXPECT_EQ(h.consecutive_successes(), 1u);
  EXPECT_FALSE(h.first_failure());
}

TEST(ProbeHistory, RepairNeedsExactlyTenAcks) {
  ProbeHistory h;
  const IpAddress a = ip("198.18.0.1");
  ProbeSeq s = 0;
  for (; s < 5; ++s) {
    h.sent(s, a, T0 + s * 1s);
    h.lost(s);
  }
  ASSERT_TRUE(h.failed());
  for (int i = 1; i <= 10; ++i, ++s) {
    h.sent(s, a, T0 + s * 1s);
    h.acked(s, T0 + s * 1s + 1ms);
    EXPECT_EQ(h.failed(), i < 10) << i;
  }
  // A loss in the middle starts the count again.
  ProbeHistory h2;
  for (s = 0; s < 5; ++s) {
    h2.sent(s, a, T0);
    h2.lost(s);
  }
  for (int i = 0; i < 9; ++i, ++s) {
    h2.sent(s, a, T0);
    h2.acked(s, T0);
  }
  h2.sent(s, a, T0);
  h2.lost(s++);
  for (int i = 0; i < 9; ++i, ++s) {
    h2.sent(s, a, T0);
    h2.acked(s, T0);
  }
  EXPECT_TRUE(h2.failed());
  h2.sent(s, a, T0);
  h2.acked(s, T0);
  EXPECT_FALSE(h2.failed());
}

TEST(ProbeHistory, ThresholdsAreParameters) {
  ProbeHistory h(2, 3);
  const IpAddress a = ip("198.18.0.1");
  h.sent(0, a, T0);
  h.lost(0);
  h.sent(1, a, T0);
  h.lost(1);
  EXPECT_TRUE(h.failed());
}

TEST(ProbeHistory, AtMostTwoOutstandingTheOldestIsForcedLost) {
  ProbeHistory h;
  const IpAddress a = ip("198.18.0.1");
  EXPECT_TRUE(h.sent(0, a, T0).empty());
  EXPECT_TRUE(h.sent(1, a, T0 + 1s).empty());
  EXPECT_EQ(h.outstanding(), 2u);
  auto forced = h.sent(2, a, T0 + 2s);
  ASSERT_EQ(forced.size(), 1u);
  EXPECT_EQ(forced[0].seq, 0);
  EXPECT_EQ(h.outstanding(), 2u);
  EXPECT_EQ(h.consecutive_losses(), 1u);
  // The forced-lost probe's late answer does not count.
  EXPECT_FALSE(h.acked(0, T0 + 2s));
}

TEST(ProbeHistory, StaleUnknownAndDuplicateSequencesDoNotCount) {
  ProbeHistory h;
  const IpAddress a = ip("198.18.0.1");
  EXPECT_FALSE(h.acked(7, T0));  // never sent
  h.sent(1, a, T0);
  EXPECT_TRUE(h.acked(1, T0 + 1ms));
  EXPECT_FALSE(h.acked(1, T0 + 2ms));  // duplicate
  h.sent(2, a, T0);
  h.lost(2);
  EXPECT_FALSE(h.acked(2, T0));  // already lost
  EXPECT_FALSE(h.lost(1));       // already acked
  EXPECT_EQ(h.consecutive_successes(), 0u);
  // Old probes fall out of the window and their answers are unknown.
  for (ProbeSeq s = 100; s < 100 + 4 * probe::kHistorySize; ++s) {
    h.sent(s, a, T0);
    h.acked(s, T0);
  }
  EXPECT_EQ(h.find(1), nullptr);
}

TEST(ProbeHistory, PerTargetLossesIgnoreOtherTargets) {
  ProbeHistory h;
  const IpAddress a = ip("198.18.0.1"), b = ip("198.18.0.2");
  ProbeSeq s = 0;
  for (int i = 0; i < 5; ++i) {
    h.sent(s, a, T0);
    h.lost(s++);
    h.sent(s, b, T0);
    h.acked(s++, T0);
  }
  EXPECT_EQ(h.consecutive_losses(), 0u);
  EXPECT_EQ(h.consecutive_losses(a), 5u);
  EXPECT_EQ(h.consecutive_losses(b), 0u);
  EXPECT_FALSE(h.failed());
}

TEST(ProbeHistory, ClearForgetsAcksButKeepsFailure) {
  ProbeHistory h;
  const IpAddress a = ip("198.18.0.1");
  for (ProbeSeq s = 0; s < 5; ++s) {
    h.sent(s, a, T0);
    h.lost(s);
  }
  for (ProbeSeq s = 5; s < 14; ++s) {
    h.sent(s, a, T0);
    h.acked(s, T0);
  }
  h.clear();
  h.sent(20, a, T0);
  h.acked(20, T0);
  EXPECT_TRUE(h.failed());  // 9 old acks + 1 new are not 10
}

// ----------------------------------------------------------------------------------
TEST(ProbeSchedule, SendsStayInsideTheJitterWindow) {
  for (double r : {0.0, 0.999999, 0.5}) {
    ProbeSchedule s([r] { return r; });
    s.start(T0, 1000ms);
    EXPECT_GE(s.next(), T0);
    EXPECT_LT(s.next(), T0 + 1000ms);
    TimePoint now = s.next();
    for (int i = 1; i <= 5; ++i) {
      EXPECT_EQ(s.advance(now), 0u);
      const TimePoint base = T0 + i * 1000ms;
      EXPECT_GE(s.next(), base + 500ms) << r;
      EXPECT_LT(s.next(), base + 1000ms) << r;
      now = s.next();
    }
  }
  // Out-of-range random values are clamped into [0, 1).
  ProbeSchedule bad([] { return 7.0; });
  bad.start(T0, 1000ms);
  EXPECT_LT(bad.next(), T0 + 1000ms);
}

TEST(ProbeSchedule, LateTimerCountsMissedProbes) {
  ProbeSchedule s([] { return 0.0; });
  s.start(T0, 1000ms);
  // Next base is T0+1s; waking at T0+3.2s skips the intervals [1,2) and [2,3).
  EXPECT_EQ(s.advance(T0 + 3200ms), 2u);
  EXPECT_EQ(s.missed(), 2u);
  EXPECT_EQ(s.next(), T0 + 3500ms);
}

TEST(ProbeInterval, IsFdtOverSevenWithMinimum) {
  EXPECT_EQ(probe_interval(7s), 1s);
  EXPECT_EQ(probe_interval(10s), Duration(10'000'000'000 / 7));
  EXPECT_EQ(probe_interval(10ms), probe_interval(100ms));
}

// One default and one minimum, shared by the config model and the probe session.
TEST(ProbeInterval, FdtDefaultAndMinimumAreTheConfigOnes) {
  EXPECT_EQ(ProbeSession::Options{}.fdt, Config::kDefaultFailureDetectionTime);
  EXPECT_EQ(Config{}.failure_detection_time, Config::kDefaultFailureDetectionTime);
  EXPECT_EQ(probe_interval(Duration::zero()), Config::kMinFailureDetectionTime / probe::kIntervalsPerFdt);
  ProbeSession s{ProbeSession::Options{}};
  s.set_fdt(Duration::zero(), T0);
  EXPECT_EQ(s.fdt(), Config::kMinFailureDetectionTime);
}

// The group's FDT, else the daemon's.
TEST(ProbeInterval, GroupFdtOverridesTheDaemons) {
  Config c;
  c.failure_detection_time = 3s;
  GroupConfig g;
  EXPECT_EQ(c.failure_detection_time_of(g), 3s);
  g.failure_detection_time = 500ms;
  EXPECT_EQ(c.failure_detection_time_of(g), 500ms);
}

// ----------------------------------------------------------------------------------
// A session with fixed jitter (0 -> sends at base + interval/2), FDT 7 s (1 s interval).
// One probe per interval unless `max_sends` says otherwise: in.mpathd's shape, which
// the mechanics below (RTTs, dead targets, repair) are easiest to follow in.
struct SessionRig {
  ProbeSession s;
  TimePoint now = T0;
  std::vector<ProbeResult> results;
  std::vector<IpAddress> dead;

  explicit SessionRig(std::vector<IpAddress> targets, unsigned max_sends = 1)
      : s(ProbeSession::Options{5, 10, 7s, [] { return 0.0; }, 1, max_sends}) {
    s.set_targets(std::move(targets));
    s.start(now);
  }
  // Runs timers up to the next send and returns it.
  ProbeSession::Send next_send() {
    for (int guard = 0; guard < 100; ++guard) {
      now = *s.next_deadline();
      auto t = s.on_timer(now);
      results.insert(results.end(), t.results.begin(), t.results.end());
      dead.insert(dead.end(), t.dead_targets.begin(), t.dead_targets.end());
      if (t.send) return *t.send;
    }
    ADD_FAILURE() << "no send";
    return {};
  }
  ProbeSession::Reply answer(const ProbeSession::Send& p, Duration rtt) {
    return s.on_reply(p.seq, p.target, now, now + rtt, now + rtt);
  }
};

TEST(ProbeSession, AckedProbesGiveResultsAndEstimates) {
  SessionRig r({ip("198.18.0.1")});
  EXPECT_EQ(r.s.verdict().state, ProbeState::ok);
  auto p = r.next_send();
  EXPECT_EQ(p.target, ip("198.18.0.1"));
  auto reply = r.answer(p, 10ms);
  ASSERT_EQ(reply.kind, ProbeSession::ReplyKind::accepted);
  ASSERT_TRUE(reply.result);
  EXPECT_TRUE(reply.result->acked);
  EXPECT_EQ(reply.result->rtt, 10ms);
  EXPECT_EQ(reply.result->rtt_avg, 10ms);
  EXPECT_EQ(reply.result->rtt_dev, 5ms);
  EXPECT_EQ(reply.result->received, r.now + 10ms) << "the Engine's TLS comes from here";
  EXPECT_EQ(reply.result->received, r.s.verdict().last_success);
  EXPECT_EQ(r.s.estimator(p.target)->crtt(), 30ms);
}

TEST(ProbeSession, FiveLostProbesFailTheMemberWithTff) {
  SessionRig r({ip("198.18.0.1")});
  ASSERT_TRUE(r.s.take_verdict_change());  // first call reports the initial verdict
  auto first = r.next_send();
  const TimePoint tff = r.now;
  (void)first;
  for (int i = 0; i < 6; ++i) r.next_send();  // each send lets earlier ones expire
  EXPECT_GE(r.results.size(), 5u);
  for (auto& res : r.results) EXPECT_FALSE(res.acked);
  auto v = r.s.take_verdict_change();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->state, ProbeState::failed);
  EXPECT_EQ(v->first_failure, tff);
  EXPECT_FALSE(r.s.take_verdict_change());
  EXPECT_TRUE(r.dead.empty());  // one target: the member failed, not the target
}

TEST(ProbeSession, LossIsDeclaredAtCrttOrOneIntervalWithoutEstimate) {
  SessionRig r({ip("198.18.0.1")});
  auto p = r.next_send();
  const TimePoint sent = r.now;
  EXPECT_EQ(*r.s.next_deadline(), sent + 1s);  // no estimate: one interval
  r.answer(p, 10ms);                              // crtt 30 ms
  auto q = r.next_send();
  const TimePoint sent2 = r.now;
  EXPECT_EQ(*r.s.next_deadline(), sent2 + 30ms);
  auto t = r.s.on_timer(sent2 + 30ms);
  ASSERT_EQ(t.results.size(), 1u);
  EXPECT_EQ(t.results[0].seq, q.seq);
  EXPECT_FALSE(t.results[0].acked);
  EXPECT_EQ(r.s.history().consecutive_losses(), 1u);
  // The late answer is recognised as ours and does not count as an ack, but it saves
  // its interval from the failure rule (the member has not failed).
  auto late = r.s.on_reply(q.seq, q.target, sent2, sent2 + 40ms, sent2 + 40ms);
  EXPECT_EQ(late.kind, ProbeSession::ReplyKind::late);
  EXPECT_FALSE(late.result);
  EXPECT_EQ(r.s.history().consecutive_losses(), 0u);
  EXPECT_EQ(r.s.history().consecutive_successes(), 0u);
}

TEST(ProbeSession, RepairNeedsTenAcks) {
  SessionRig r({ip("198.18.0.1")});
  for (int i = 0; i < 7; ++i) r.next_send();
  ASSERT_EQ(r.s.verdict().state, ProbeState::failed);
  int acks = 0;
  while (r.s.verdict().state == ProbeState::failed && acks < 20) {
    auto p = r.next_send();
    if (r.answer(p, 5ms).kind == ProbeSession::ReplyKind::accepted) ++acks;
  }
  EXPECT_EQ(acks, 10);
  EXPECT_EQ(r.s.verdict().state, ProbeState::ok);
}

TEST(ProbeSession, OneSilentTargetIsDeadNotTheMember) {
  const IpAddress a = ip("198.18.0.1"), b = ip("198.18.0.2"), c = ip("198.18.0.3");
  SessionRig r({a, b, c});
  for (int i = 0; i < 30 && r.dead.empty(); ++i) {
    auto p = r.next_send();
    if (p.target != b) r.answer(p, 1ms);
  }
  ASSERT_EQ(r.dead.size(), 1u);
  EXPECT_EQ(r.dead[0], b);
  EXPECT_EQ(r.s.verdict().state, ProbeState::ok);
  EXPECT_EQ(r.s.history().consecutive_losses(b), 5u);
  // After the caller replaces it, probes no longer go to b.
  r.s.set_targets({a, c});
  for (int i = 0; i < 6; ++i) EXPECT_NE(r.next_send().target, b);
}

TEST(ProbeSession, TargetsAreProbedRoundRobin) {
  const IpAddress a = ip("198.18.0.1"), b = ip("198.18.0.2");
  SessionRig r({a, b});
  EXPECT_EQ(r.next_send().target, a);
  EXPECT_EQ(r.next_send().target, b);
  EXPECT_EQ(r.next_send().target, a);
}

TEST(ProbeSession, ReplyFromAnotherAddressOrUnknownSeqIsRejected) {
  SessionRig r({ip("198.18.0.1")});
  auto p = r.next_send();
  auto wrong = r.s.on_reply(p.seq, ip("198.18.0.9"), r.now, r.now, r.now);
  EXPECT_EQ(wrong.kind, ProbeSession::ReplyKind::wrong_target);
  auto unknown = r.s.on_reply(static_cast<ProbeSeq>(p.seq + 100), p.target, r.now, r.now, r.now);
  EXPECT_EQ(unknown.kind, ProbeSession::ReplyKind::unknown);
  EXPECT_EQ(r.answer(p, 1ms).kind, ProbeSession::ReplyKind::accepted);
  EXPECT_EQ(r.answer(p, 1ms).kind, ProbeSession::ReplyKind::unknown);  // duplicate
}

TEST(ProbeSession, ForgedSendTimeInTheAnswerGivesAnRttWithinTheProbe) {
  // The send time comes back in the echo payload: any 64-bit value can arrive
  // (found by the probe_reply fuzz target). It must not overflow (UB) or give a
  // negative or larger-than-measured network RTT.
  for (TimePoint forged : {TimePoint::min(), TimePoint::max(), TimePoint{} + Duration(1), T0 - 1h}) {
    SessionRig r({ip("198.18.0.1")});
    auto p = r.next_send();
    const TimePoint received = r.now + 5ms;
    auto reply = r.s.on_reply(p.seq, p.target, forged, received, received);
    ASSERT_EQ(reply.kind, ProbeSession::ReplyKind::accepted);
    ASSERT_TRUE(reply.result);
    EXPECT_GE(reply.result->net_rtt, Duration::zero()) << forged.time_since_epoch().count();
    EXPECT_LE(reply.result->net_rtt, 5ms) << forged.time_since_epoch().count();
  }
}

TEST(ProbeSession, UnknownWithoutTargetsAndNoSends) {
  ProbeSession s(ProbeSession::Options{});
  s.start(T0);
  EXPECT_EQ(s.verdict().state, ProbeState::unknown);
  EXPECT_FALSE(s.next_deadline());
  s.set_targets({ip("198.18.0.1")});
  EXPECT_EQ(s.verdict().state, ProbeState::ok);
  EXPECT_TRUE(s.next_deadline());
}

TEST(ProbeSession, ResetRequiresRepairAndForgetsOldAcks) {
  SessionRig r({ip("198.18.0.1")});
  for (int i = 0; i < 5; ++i) r.answer(r.next_send(), 1ms);
  r.s.reset(r.now, true);
  auto v = r.s.verdict();
  EXPECT_EQ(v.state, ProbeState::failed);
  EXPECT_EQ(v.first_failure, r.now);
  EXPECT_FALSE(r.s.estimator(ip("198.18.0.1"))->has_estimate());
  for (int i = 0; i < 9; ++i) r.answer(r.next_send(), 1ms);
  EXPECT_EQ(r.s.verdict().state, ProbeState::failed);
  r.answer(r.next_send(), 1ms);
  EXPECT_EQ(r.s.verdict().state, ProbeState::ok);
}

TEST(ProbeSession, StopForgetsOutstandingProbes) {
  SessionRig r({ip("198.18.0.1")});
  r.next_send();
  r.s.stop();
  EXPECT_FALSE(r.s.next_deadline());
  EXPECT_EQ(r.s.history().outstanding(), 0u);
  r.s.start(r.now + 10s);
  r.now += 10s;
  r.next_send();
  EXPECT_TRUE(r.results.empty());
}

TEST(ProbeSession, SlowTargetsMakeTheFdtUnachievableInsteadOfFailing) {
  // Every target answers after 1.5 intervals: each probe is lost first, then its
  // late answer teaches the estimator; the interval is raised before 5 losses.
  const IpAddress a = ip("198.18.0.1");
  ProbeSession s{ProbeSession::Options{5, 10, 7s, [] { return 0.0; }}};
  s.set_targets({a});
  s.start(T0);
  std::vector<std::pair<ProbeSession::Send, TimePoint>> pending;  // answers in flight
  TimePoint now = T0;
  unsigned sends = 0;
  while (sends < 20) {
    // The next event: the session's deadline or the earliest answer due.
    TimePoint when = *s.next_deadline();
    for (auto& e : pending) when = std::min(when, e.second + 1500ms);
    now = when;
    std::erase_if(pending, [&](const auto& e) {
      if (e.second + 1500ms > now) return false;
      s.on_reply(e.first.seq, e.first.target, e.second, now, now);
      return true;
    });
    auto t = s.on_timer(now);
    if (t.send) {
      pending.push_back({*t.send, now});
      ++sends;
    }
    ASSERT_NE(s.verdict().state, ProbeState::failed) << "after " << sends << " sends";
  }
  struct {
    ProbeSession& s;
  } r{s};
  auto v = r.s.verdict();
  EXPECT_EQ(v.state, ProbeState::ok);
  EXPECT_TRUE(v.fdt_unachievable);
  const Duration crtt = r.s.estimator(a)->crtt();
  EXPECT_GT(crtt, 1s);
  EXPECT_GT(v.needed_fdt, 7s);
  EXPECT_GT(r.s.interval(), 1s);
  EXPECT_EQ(v.needed_fdt, r.s.interval() * 7);
}

TEST(ProbeSession, RaisedIntervalIsTwiceMaxCrtt) {
  const IpAddress a = ip("198.18.0.1");
  SessionRig r({a});
  // Two suspicious samples of 900 ms: integrated together (crtt > 1 s), raise.
  auto p1 = r.next_send();
  r.answer(p1, 900ms);
  EXPECT_FALSE(r.s.verdict().fdt_unachievable);  // first one deferred
  auto p2 = r.next_send();
  r.answer(p2, 900ms);
  const Duration crtt = r.s.estimator(a)->crtt();
  EXPECT_EQ(crtt, 900ms + 4 * (r.s.estimator(a)->dev()));
  auto v = r.s.verdict();
  EXPECT_TRUE(v.fdt_unachievable);
  EXPECT_EQ(v.needed_fdt, 7 * 2 * crtt);
}

TEST(ProbeSession, FdtChangeChangesTheInterval) {
  SessionRig r({ip("198.18.0.1")});
  r.s.set_fdt(14s, r.now);
  EXPECT_EQ(r.s.interval(), 2s);
  r.s.set_fdt(1ms, r.now);  // clamped to 100 ms
  EXPECT_EQ(r.s.fdt(), 100ms);
}

// ----------------------------------------------------------------------------------
TEST(TargetSelector, StaticThenRoutersThenMulticastOwnExcluded) {
  TargetSelector t;
  t.set_local_addresses(TargetSelector::local_addresses({ip("198.18.0.20"), ip("198.18.0.10"), ip("198.18.0.20")}));
  t.set_local_addresses(TargetSelector::local_addresses({ip("198.18.0.10")}));
  EXPECT_EQ(t.mode(), TargetMode::disabled);
  EXPECT_TRUE(t.wants_discovery());
  EXPECT_FALSE(t.add_discovered(ip("198.18.0.10")));  // our own
  EXPECT_TRUE(t.add_discovered(ip("198.18.0.20")));
  EXPECT_FALSE(t.add_discovered(ip("198.18.0.20")));
  EXPECT_EQ(t.mode(), TargetMode::multicast);
  EXPECT_TRUE(t.wants_discovery());  // fewer than 3
  t.set_routers({ip("198.18.0.1"), ip("198.18.0.10")});
  EXPECT_EQ(t.mode(), TargetMode::routes);
  EXPECT_FALSE(t.wants_discovery());
  EXPECT_EQ(t.active(T0), std::vector<IpAddress>{ip("198.18.0.1")});
  t.set_static({ip("198.18.0.30"), ip("198.18.0.31")});
  EXPECT_EQ(t.mode(), TargetMode::static_);
  EXPECT_EQ(t.active(T0).size(), 2u);
}

TEST(TargetSelector, AtMostFiveAndDeadOnesAreReplacedThenRecover) {
  TargetSelector t;
  std::vector<IpAddress> routers;
  for (int i = 1; i <= 7; ++i) routers.push_back(IpAddress::v4(0xC6120000u + static_cast<unsigned>(i)));
  t.set_routers(routers);
  auto act = t.active(T0);
  ASSERT_EQ(act.size(), 5u);
  EXPECT_EQ(act[0], routers[0]);
  t.mark_dead(routers[0], T0);
  act = t.active(T0);
  ASSERT_EQ(act.size(), 5u);
  EXPECT_EQ(act[0], routers[1]);
  EXPECT_EQ(act[4], routers[5]);  // the next candidate took its place
  EXPECT_EQ(t.active(T0 + 61s)[0], routers[0]);
}

TEST(TargetSelector, DeadHostIsDroppedAndAllDeadStillProbed) {
  TargetSelector t;
  t.add_discovered(ip("198.18.0.20"));
  t.add_discovered(ip("198.18.0.21"));
  t.mark_dead(ip("198.18.0.20"), T0);
  EXPECT_EQ(t.active(T0), std::vector<IpAddress>{ip("198.18.0.21")});
  TargetSelector r;
  r.set_routers({ip("198.18.0.1")});
  r.mark_dead(ip("198.18.0.1"), T0);
  EXPECT_EQ(r.active(T0), std::vector<IpAddress>{ip("198.18.0.1")});
}

TEST(ChooseProbeKind, AutoRule) {
  ProbeCapabilities c;
  EXPECT_EQ(choose_probe_kind(ProbeMethod::auto_, c), ProbeKind::none);
  c.v6_link_local = true;
  EXPECT_EQ(choose_probe_kind(ProbeMethod::auto_, c), ProbeKind::icmp6);  // IPv6-only group
  c.group_v4_data = true;
  EXPECT_EQ(choose_probe_kind(ProbeMethod::auto_, c), ProbeKind::none);  // v4 data, no v4 target
  c.v4_target_known = true;
  EXPECT_EQ(choose_probe_kind(ProbeMethod::auto_, c), ProbeKind::arp);
  c.v4_test_address = true;
  EXPECT_EQ(choose_probe_kind(ProbeMethod::auto_, c), ProbeKind::icmp);
  EXPECT_EQ(choose_probe_kind(ProbeMethod::none, c), ProbeKind::none);
  EXPECT_EQ(choose_probe_kind(ProbeMethod::arp, c), ProbeKind::arp);
  c.v4_test_address = false;
  EXPECT_EQ(choose_probe_kind(ProbeMethod::icmp, c), ProbeKind::icmp6);
  EXPECT_EQ(to_string(ProbeKind::icmp6), "icmp6");
}

}  // namespace
