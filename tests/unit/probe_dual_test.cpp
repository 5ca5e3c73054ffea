// Dual-stack members (lib/core/probe.* combine_family_verdicts(), issue 13): a member
// probed over IPv4 and IPv6 is failed only when both families fail, and repaired when
// one of them is, as in.mpathd. First the combination rule case by case, then two
// real ProbeSessions (one per family) on the fake clock with a simulated network in
// which each family can be cut on its own.
#include <gtest/gtest.h>

#include <map>

#include "core/probe.hpp"

using namespace mpathd;
using namespace std::chrono_literals;

namespace {

const TimePoint T0 = TimePoint{} + std::chrono::hours(1);

ProbeVerdict v(ProbeState s, TimePoint tff = {}, TimePoint tls = {}) {
  ProbeVerdict r;
  r.state = s;
  r.first_failure = tff;
  r.last_success = tls;
  return r;
}

ProbeVerdict both(const ProbeVerdict& v4, const ProbeVerdict& v6) {
  return combine_family_verdicts({{Family::v4, v4}, {Family::v6, v6}});
}

TEST(DualStackVerdict, FailedOnlyWhenEveryFamilyThatCanTellHasFailed) {
  using enum ProbeState;
  struct Case {
    ProbeState v4, v6, want;
  };
  for (const Case& c : {Case{ok, ok, ok}, Case{failed, ok, ok}, Case{ok, failed, ok}, Case{failed, failed, failed},
                        // a family without targets (unknown) or not probed tells nothing
                        Case{failed, unknown, failed}, Case{unknown, failed, failed}, Case{ok, unknown, ok},
                        Case{unknown, unknown, unknown}, Case{failed, disabled, failed},
                        Case{disabled, disabled, disabled}, Case{unknown, disabled, unknown}}) {
    const ProbeVerdict r = both(v(c.v4), v(c.v6));
    EXPECT_EQ(r.state, c.want) << to_string(c.v4) << " + " << to_string(c.v6);
    EXPECT_EQ(r.v4, c.v4);
    EXPECT_EQ(r.v6, c.v6);
  }
  EXPECT_EQ(combine_family_verdicts({}).state, ProbeState::disabled);
  // One family alone: its own state, and only its field set.
  const ProbeVerdict one = combine_family_verdicts({{Family::v6, v(ProbeState::failed, T0)}});
  EXPECT_EQ(one.state, ProbeState::failed);
  EXPECT_EQ(one.v4, std::nullopt);
  EXPECT_EQ(one.v6, ProbeState::failed);
}

TEST(DualStackVerdict, TimesAndTheFdtCombine) {
  // TFF: the later one (from then on nothing of the member worked); TLS: the later.
  const ProbeVerdict f = both(v(ProbeState::failed, T0 + 1s, T0), v(ProbeState::failed, T0 + 3s, T0 + 2s));
  EXPECT_EQ(f.first_failure, T0 + 3s);
  EXPECT_EQ(f.last_success, T0 + 2s);
  // Not failed: no TFF.
  EXPECT_EQ(both(v(ProbeState::failed, T0 + 1s), v(ProbeState::ok, {}, T0 + 5s)).first_failure, TimePoint{});
  // An unachievable FDT on either family is the member's, the larger one in force.
  ProbeVerdict a = v(ProbeState::ok), b = v(ProbeState::ok);
  a.fdt_unachievable = true;
  a.needed_fdt = 14s;
  EXPECT_TRUE(both(a, b).fdt_unachievable);
  EXPECT_EQ(both(a, b).needed_fdt, 14s);
  b.fdt_unachievable = true;
  b.needed_fdt = 28s;
  EXPECT_EQ(both(a, b).needed_fdt, 28s);
  // A change of one family's state is a change of the verdict (it is shown).
  EXPECT_FALSE(both(v(ProbeState::ok), v(ProbeState::ok)).same_as(both(v(ProbeState::ok), v(ProbeState::failed))));
}

// Two sessions, IPv4 and IPv6, each probing one target; answers take 1 ms unless the
// family is cut. Event-driven on the fake clock.
class DualNet {
 public:
  explicit DualNet(Duration fdt) {
    for (int i = 0; i < 2; ++i) {
      ProbeSession::Options o;
      o.fdt = fdt;
      paths_[i].s.emplace(o);
      paths_[i].s->set_targets({paths_[i].target});
      paths_[i].s->start(now_);
    }
  }
  void cut(Family f, bool cut) { path(f).cut = cut; }
  ProbeVerdict verdict() const {
    return combine_family_verdicts({{Family::v4, paths_[0].s->verdict()}, {Family::v6, paths_[1].s->verdict()}});
  }
  TimePoint now() const { return now_; }
  // Runs until `end` or until pred(verdict) holds; returns the time it first held.
  template <class Pred>
  std::optional<TimePoint> run_until(TimePoint end, Pred pred, std::optional<ProbeState> must_stay = std::nullopt) {
    while (true) {
      if (pred(verdict())) return now_;
      if (must_stay) {
        EXPECT_EQ(verdict().state, *must_stay) << "at +" << (now_ - T0).count() << " ns";
      }
      // The earliest event of either path: a deadline or an answer's arrival.
      int which = -1;
      bool reply = false;
      TimePoint next = TimePoint::max();
      for (int i = 0; i < 2; ++i) {
        auto& p = paths_[i];
        if (auto d = p.s->next_deadline(); d && *d < next) next = *d, which = i, reply = false;
        if (!p.inflight.empty() && p.inflight.begin()->first <= next)
          next = p.inflight.begin()->first, which = i, reply = true;
      }
      if (next > end) return std::nullopt;
      now_ = next;
      auto& p = paths_[which];
      if (reply) {
        auto [at, probe] = *p.inflight.begin();
        p.inflight.erase(p.inflight.begin());
        p.s->on_reply(probe.first, p.target, probe.second, at, at);
      } else if (auto t = p.s->on_timer(now_); t.send && !p.cut) {
        p.inflight.emplace(now_ + 1ms, std::pair{t.send->seq, now_});
      }
    }
  }

 private:
  struct Path {
    IpAddress target;
    std::optional<ProbeSession> s;
    bool cut = false;
    std::multimap<TimePoint, std::pair<ProbeSeq, TimePoint>> inflight;
  };
  Path& path(Family f) { return paths_[f == Family::v4 ? 0 : 1]; }
  TimePoint now_ = T0;
  std::array<Path, 2> paths_{Path{*IpAddress::parse("198.18.0.1"), {}, false, {}},
                             Path{*IpAddress::parse("fe80::1"), {}, false, {}}};
};

TEST(DualStackVerdict, OneFamilyLostKeepsTheMemberBothLostFailItWithinTheFdtOneBackRepairs) {
  const Duration fdt = 1s;
  DualNet net(fdt);
  auto state_is = [](ProbeState s) { return [s](const ProbeVerdict& x) { return x.state == s; }; };
  ASSERT_TRUE(net.run_until(T0 + 10s, [](const ProbeVerdict& x) {
    return x.v4 == ProbeState::ok && x.v6 == ProbeState::ok && x.state == ProbeState::ok;
  }));
  // Let the loss estimate settle (k = 1, in.mpathd's single probe per interval).
  net.run_until(T0 + 20s, [](const ProbeVerdict&) { return false; }, ProbeState::ok);

  // IPv6 lost: its family fails within the FDT, the member stays ok all along.
  const TimePoint cut6 = net.now();
  net.cut(Family::v6, true);
  auto v6_failed = net.run_until(cut6 + 3 * fdt, [](const ProbeVerdict& x) { return x.v6 == ProbeState::failed; },
                                 ProbeState::ok);
  ASSERT_TRUE(v6_failed);
  EXPECT_LE(*v6_failed - cut6, fdt);
  net.run_until(cut6 + 30s, [](const ProbeVerdict&) { return false; }, ProbeState::ok);
  EXPECT_EQ(net.verdict().v4, ProbeState::ok);

  // IPv4 lost too: the member fails within the FDT of that cut; TFF is IPv4's.
  const TimePoint cut4 = net.now();
  net.cut(Family::v4, true);
  auto failed = net.run_until(cut4 + 3 * fdt, state_is(ProbeState::failed), ProbeState::ok);
  ASSERT_TRUE(failed);
  EXPECT_LE(*failed - cut4, fdt);
  EXPECT_GE(net.verdict().first_failure, cut6 + 1s);  // not IPv6's older run

  // IPv6 back alone: it earns the repair (ten intervals answered) and the member is
  // ok again although IPv4 is still lost; as in.mpathd, within about 10/7 FDT.
  net.run_until(net.now() + 5s, [](const ProbeVerdict&) { return false; }, ProbeState::failed);
  const TimePoint back6 = net.now();
  net.cut(Family::v6, false);
  auto repaired = net.run_until(back6 + 3 * fdt, state_is(ProbeState::ok), ProbeState::failed);
  ASSERT_TRUE(repaired);
  EXPECT_LE(*repaired - back6, 2 * fdt);
  EXPECT_EQ(net.verdict().v4, ProbeState::failed);
  EXPECT_EQ(net.verdict().v6, ProbeState::ok);

  // IPv4 back: both ok.
  net.cut(Family::v4, false);
  EXPECT_TRUE(net.run_until(net.now() + 3 * fdt, [](const ProbeVerdict& x) { return x.v4 == ProbeState::ok; },
                            ProbeState::ok));
}

}  // namespace
