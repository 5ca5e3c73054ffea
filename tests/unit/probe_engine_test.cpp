// The Engine's side of probing: interface vs group failure, repair, and the rule that
// link and probes must both agree before a member is repaired.
#include <gtest/gtest.h>

#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;
using namespace std::chrono_literals;

namespace {
ProbeVerdict verdict(ProbeState s, TimePoint tff = {}, TimePoint tls = {}) { return {s, tff, tls, false, {}, {}, {}}; }

struct ProbeRig : Rig {
  using Rig::Rig;
  void report(const std::string& m, ProbeVerdict v) { engine.observe_probe(m, v); }
  // One answered probe, as the detector reports it (no verdict change).
  void ack(const std::string& m, TimePoint received) {
    ProbeResult res;
    res.member = m;
    res.target = *IpAddress::parse("198.18.1.1");
    res.acked = true;
    res.received = received;
    engine.observe_probe_result(res);
  }
};
}  // namespace

TEST(ProbeEngine, FailureWhileAnotherMemberAnswersIsInterfaceFailure) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  auto t0 = r.clock.now();
  r.report("m0", verdict(ProbeState::ok, {}, t0));
  r.report("m1", verdict(ProbeState::ok, {}, t0));
  EXPECT_EQ(r.m("m0").reason, Reason::probing_started);
  r.clock.advance(1s);
  r.ack("m1", r.clock.now());  // m1 keeps answering after m0's first loss: no verdict change
  r.ack("m1", t0);  // an answer with an older reception time does not lower the TLS
  r.report("m0", verdict(ProbeState::failed, t0 + 200ms, t0));
  EXPECT_EQ(r.m("m0").state, MemberState::failed);
  EXPECT_EQ(r.m("m0").reason, Reason::probe_loss);
  EXPECT_EQ(r.m("m0").link, LinkState::up) << "carrier is still up: a silent failure";
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
  EXPECT_EQ(r.g().state, GroupState::degraded);
}

// Only answered probes vouch for the network: a lost one reported by another member's
// detector does not turn a group failure into an interface failure.
TEST(ProbeEngine, LostProbesOfAnotherMemberDoNotVouch) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  auto t0 = r.clock.now();
  r.report("m0", verdict(ProbeState::ok, {}, t0));
  r.report("m1", verdict(ProbeState::ok, {}, t0));
  r.clock.advance(1s);
  ProbeResult lost;
  lost.member = "m1";
  lost.target = *IpAddress::parse("198.18.1.1");
  lost.acked = false;
  lost.received = r.clock.now();  // ignored: not an answer
  r.engine.observe_probe_result(lost);
  r.report("m0", verdict(ProbeState::failed, t0 + 200ms, t0));
  EXPECT_EQ(r.m("m0").reason, Reason::group_failure);
  EXPECT_EQ(r.g().state, GroupState::failed);
}

TEST(ProbeEngine, EveryoneLosingProbesTogetherIsGroupFailureAndNothingMoves) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  auto t0 = r.clock.now();
  r.report("m0", verdict(ProbeState::ok, {}, t0));
  r.report("m1", verdict(ProbeState::ok, {}, t0));
  r.events.clear();
  r.clock.advance(1s);
  // m1's last success is before m0's first failure: nobody vouches for the network.
  r.report("m0", verdict(ProbeState::failed, t0 + 100ms, t0));
  EXPECT_EQ(r.m("m0").state, MemberState::failed);
  EXPECT_EQ(r.m("m1").state, MemberState::failed);
  EXPECT_EQ(r.m("m0").reason, Reason::group_failure);
  EXPECT_EQ(r.g().state, GroupState::failed);
  EXPECT_EQ(r.g().reason, Reason::group_failure);
  EXPECT_TRUE(r.of<AddressMoved>().empty());
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  // Members repair one by one after their own good probes.
  r.report("m1", verdict(ProbeState::ok, {}, r.clock.now()));
  EXPECT_EQ(r.m("m1").state, MemberState::ok);
  EXPECT_EQ(r.m("m1").reason, Reason::repaired);
  EXPECT_EQ(r.holder("198.18.1.10"), "m1");
}

TEST(ProbeEngine, SingletonProbeFailureIsGroupFailure) {
  ProbeRig r(make_config({{"m0", false}}));
  r.start_all_up({"m0"});
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  r.report("m0", verdict(ProbeState::failed, r.clock.now(), {}));
  EXPECT_EQ(r.m("m0").reason, Reason::group_failure);
  EXPECT_EQ(r.g().state, GroupState::failed);
}

TEST(ProbeEngine, UnprobedMemberWithLinkVouchesButOfflineOneDoesNot) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}, {"m2", false}}));
  r.start_all_up({"m0", "m1", "m2"});
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  r.report("m1", verdict(ProbeState::ok, {}, r.clock.now()));
  ASSERT_TRUE(r.engine.offline("m2"));  // m2 is not probed, and offline: no evidence
  r.clock.advance(1s);
  r.report("m0", verdict(ProbeState::failed, r.clock.now(), {}));
  EXPECT_EQ(r.m("m0").reason, Reason::group_failure);
}

TEST(ProbeEngine, LinkAndProbesMustBothAgreeOnRepair) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  r.report("m1", verdict(ProbeState::ok, {}, r.clock.now()));
  r.link("m0", false);
  r.report("m0", verdict(ProbeState::failed, r.clock.now(), {}));  // the detector was reset
  r.link("m0", true);
  EXPECT_EQ(r.m("m0").state, MemberState::failed) << "link up alone does not repair a probed member";
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
}

TEST(ProbeEngine, NoTargetsIsOptimisticAndRestoredFailedNeedsProbes) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.engine.import_state({{"g0", {{"m0", false, true}}, {}, {}}});
  r.start_all_up({"m0", "m1"});
  r.report("m1", verdict(ProbeState::unknown));
  EXPECT_EQ(r.m("m1").state, MemberState::ok) << "no targets: optimistically working";
  EXPECT_EQ(r.m("m1").probe, ProbeState::unknown);
  r.report("m0", verdict(ProbeState::failed, r.clock.now(), {}));  // its detector was reset
  EXPECT_EQ(r.m("m0").state, MemberState::failed) << "failed before the restart: stays out";
  EXPECT_EQ(r.m("m1").state, MemberState::ok) << "a member without targets is not failed with the group";
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
}

TEST(ProbeEngine, UnachievableFdtRaisesTheFdtInForce) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.report("m0", {ProbeState::ok, {}, r.clock.now(), true, 21s, {}, {}});
  EXPECT_EQ(r.g().fdt, 21s);
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  EXPECT_EQ(r.g().fdt, 10s);
}

TEST(ProbeEngine, ProbeResultsArePublishedAndUpdateTargetRtts) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.engine.observe_targets("m0", TargetMode::routes, {{*IpAddress::parse("198.18.1.1"), {}, {}}});
  r.events.clear();
  ProbeResult res;
  res.member = "m0";
  res.seq = 7;
  res.target = *IpAddress::parse("198.18.1.1");
  res.acked = true;
  res.rtt_avg = 300us;
  r.engine.observe_probe_result(res);
  auto done = r.of<ProbeCompleted>();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].sequence, 7u);
  EXPECT_EQ(r.m("m0").targets[0].rtt_avg, 300us);
}

TEST(ProbeEngine, ResetDetectorOfMemberWithoutLinkIsNoGroupFailure) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}));
  r.start_all_up({"m0", "m1", "m2"});
  for (auto* m : {"m0", "m1", "m2"}) r.report(m, verdict(ProbeState::ok));  // no ack yet: TLS epoch
  r.link("m2", false);
  r.report("m2", verdict(ProbeState::failed));  // the daemon reset m2's detector
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
  EXPECT_EQ(r.m("m1").state, MemberState::ok);
  EXPECT_EQ(r.m("m2").reason, Reason::link_down);
  EXPECT_EQ(r.g().state, GroupState::degraded);
}

TEST(ProbeEngine, TargetsFlushedAfterGroupFailureAreNoRepair) {
  ProbeRig r(make_config({{"m0", false}}));
  r.start_all_up({"m0"});
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  r.report("m0", verdict(ProbeState::failed, r.clock.now(), {}));
  ASSERT_EQ(r.g().state, GroupState::failed);
  r.report("m0", verdict(ProbeState::unknown));  // discovered targets flushed
  EXPECT_EQ(r.m("m0").state, MemberState::failed);
  EXPECT_EQ(r.g().state, GroupState::failed);
}

TEST(ProbeEngine, LinkBounceStillNeedsGoodProbes) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  r.report("m1", verdict(ProbeState::ok, {}, r.clock.now()));
  r.link("m0", false);
  r.link("m0", true);  // down and up before the detector could be reset
  EXPECT_EQ(r.m("m0").state, MemberState::failed);
  r.report("m0", verdict(ProbeState::failed));  // the reset detector
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  EXPECT_EQ(r.m("m0").state, MemberState::ok);
}

// The detector of a member whose interface went away (renamed or removed) stops; the
// member keeps showing why: the interface, not the probing.
TEST(ProbeEngine, ProbingStoppedByAVanishedInterfaceKeepsTheInterfaceReason) {
  ProbeRig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.report("m0", verdict(ProbeState::ok, {}, r.clock.now()));
  r.report("m1", verdict(ProbeState::ok, {}, r.clock.now()));
  r.engine.observe_link({"x1", 11, true, true, mac_n(11), false});  // m1 renamed to x1
  EXPECT_EQ(r.m("m1").reason, Reason::interface_renamed);
  r.report("m1", ProbeVerdict::disabled());
  EXPECT_EQ(r.m("m1").probe, ProbeState::disabled);
  EXPECT_EQ(r.m("m1").reason, Reason::interface_renamed);
  r.engine.observe_link({"m0", 10, false, false, {}, false});  // m0 removed
  r.report("m0", ProbeVerdict::disabled());
  EXPECT_EQ(r.m("m0").reason, Reason::interface_removed);
}
