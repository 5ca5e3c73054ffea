// Probe-based failure detection, the pure part: RTT estimation, probe history and
// loss counting, send scheduling, the per-member verdict and target choice. No
// sockets and no clock of its own: every call takes the time, and randomness comes
// through a seam, so tests drive all of it with made-up times.
//
// The algorithm is in.mpathd's (see DESIGN.md §2), restated here in our words, with
// one change to the failure rule (docs/design-decisions.md, "The failure rule"):
// - A member is probed at a steady rate: interval = FDT / 7. Each interval carries
//   k probes (1 to 5, spread over the interval's second half, round-robin over the
//   targets), so that when interval n is probed, interval n-2 must be answered or
//   lost while n-1 may still be in flight.
// - k follows the loss measured over the member's last 100 probes: the smallest k
//   that makes five lost intervals in a row less likely than 1e-9 per interval
//   (choose_sends_per_interval()). A clean path gets in.mpathd's one probe.
// - Each target has its own Jacobson/Karels RTT estimate; a probe is lost when no
//   answer came within the target's crtt (avg + 4 dev), or within one interval when
//   the target has no estimate yet. Probes of two intervals may be outstanding.
// - An interval is lost when every probe of it is lost. 5 lost intervals in a row
//   fail the member; an answer that comes after its probe was declared lost but
//   before the member failed still saves its interval. Coming back needs 10
//   intervals in a row with an answer in time. If one target alone stops answering
//   while others answer, the target is dead, not the member.
// - If every target is slower than the interval allows, the requested FDT cannot be
//   met: the interval is raised (2 x crtt) and that is reported rather than members
//   being failed. While it is raised, RTT-only probes go out at the configured
//   interval in between: they count for nothing but the RTT estimate, which they
//   may only lower, so that the FDT comes back down soon after the network does.
//   One target far slower than all the others (4 or more) is dropped instead
//   (exceptionally_slow()).
// - After probing starts, an optional quiet period (Options::quiet_period) holds
//   failures back until it ends or the first answer comes.
//
// Glossary: the probe types and where they live
//   FDT             failure detection time: how fast a failure must be noticed. The
//                   group's, else the daemon's (Config::failure_detection_time_of);
//                   default and minimum in Config. Group::fdt is the one in force,
//                   raised above the configured one when the RTTs need it.
//   probe interval  FDT / 7 (probe_interval()); raised by the session when every
//                   target is too slow for it ("FDT unachievable").
//   TFF / TLS       time of first failure (first probe of the current loss run) /
//                   time of last success (reception time of the latest ack).
//   RttEstimator    one target's Jacobson/Karels RTT estimate; crtt = avg + 4 dev is
//                   how long an answer may take before the probe counts as lost.
//   ProbeRecord     one probe sent: sequence, target, times, interval,
//                   unacked/acked/lost/late.
//   interval        the unit of the failure rule: the probes sent in one probe
//                   interval (ProbeRecord::interval). Lost when all its probes are
//                   lost; answered when one of them is (in time, or late).
//   ProbeHistory    a member's recent ProbeRecords across targets; counts the runs of
//                   lost and answered intervals behind the failed/repaired
//                   hysteresis (5 / 10), and the recent loss ratio.
//   ProbeSchedule   when the next probe leaves (k jittered sends in each interval).
//   ProbeSession    everything about probing one member except I/O: targets in
//                   round-robin, schedule, history, RTTs, FDT adaptation; turns timer
//                   ticks and replies into results and a verdict.
//   ProbeVerdict    what a session concludes about its member: ok/failed/unknown/
//                   disabled, with TFF, TLS and whether the FDT is achievable. The
//                   Engine gets it only when it changes (Engine::observe_probe).
//   ProbeResult     one acked or lost probe (a line of `ipmpctl probes`); every one
//                   reaches the Engine (Engine::observe_probe_result), an ack also
//                   moves the member's TLS there.
//   targets         hosts probed: static (config), routes (routers on the subnet) or
//                   multicast (discovered); TargetSelector picks at most 5 and reports
//                   the source as TargetMode. ProbeTargetInfo (model.hpp) is a target
//                   with its RTT as the views show it.
//   ProbeKind       how a member is probed (icmp, icmp6, arp, none), resolved from the
//                   group's ProbeMethod by choose_probe_kind().
//   Not here: the I/O. lib/detect's ProbeBase drives a ProbeSession with real time
//   and a strategy (icmp.*, arp.*) that sends and recognises answers; lib/daemon's
//   Probing creates one ProbeBase per member and feeds the Engine.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/enums.hpp"
#include "core/types.hpp"

namespace mpathd {

namespace probe {
inline constexpr unsigned kFailThreshold = 5;     // lost intervals in a row that fail a member
inline constexpr unsigned kRepairThreshold = 10;  // intervals answered in time in a row that repair it
inline constexpr unsigned kIntervalsPerFdt = kFailThreshold + 2;
inline constexpr unsigned kMaxDeferredRtt = 1;    // suspicious samples held back
inline constexpr unsigned kHistorySize = 52;      // probes remembered; also the RTT sanity factor
inline constexpr std::size_t kMaxOutstanding = 2;  // intervals with probes in flight
inline constexpr unsigned kMaxSendsPerInterval = 5;  // k, the probes per interval, is 1..5
inline constexpr std::size_t kLossWindow = 100;     // probes the loss estimate looks at
inline constexpr double kFalseRunTarget = 1e-9;     // wanted P(5 lost intervals) per interval
inline constexpr std::size_t kMinTargets = 3;
inline constexpr std::size_t kMaxTargets = 5;
inline constexpr unsigned kLowerFdtTrigger = 4;  // lower a raised FDT when crtt < interval/4
inline constexpr Duration kSettlingTime = seconds(60);  // no lowering sooner after a raise
inline constexpr Duration kTargetRecoveryTime = seconds(60);  // a dead target sits out this long
}  // namespace probe

// FDT/7, with the FDT clamped to its minimum (Config::kMinFailureDetectionTime).
Duration probe_interval(Duration fdt);

// The probes per interval for a loss measured as `lost` of `completed` probes: the
// smallest k in [min_k, max_k] with p^(k x fail_threshold) <= kFalseRunTarget, where
// p = (lost + 1/2) / (completed + 1) (with no data p = 1/2: start cautious).
unsigned choose_sends_per_interval(std::size_t lost, std::size_t completed, unsigned fail_threshold,
                                   unsigned min_k = 1, unsigned max_k = probe::kMaxSendsPerInterval);

// Sequence numbers are the 16-bit ICMP ones; the history window (52) is far smaller
// than the sequence space, so wrap-around is harmless.
using ProbeSeq = std::uint16_t;

// ---------------------------------------------------------------------------------
// Jacobson/Karels estimator for one target. sa = 8 x average, sv = 4 x mean deviation.
class RttEstimator {
 public:
  enum class Outcome : std::uint8_t {
    integrated,  // the estimate now includes the sample (and any deferred ones)
    deferred,    // suspicious: held back until another suspicious one confirms it
    ignored,     // negative or beyond the sanity bound (52 intervals)
  };

  // `interval` is the probe interval in force: a sample that would alone lift crtt
  // above it is suspicious.
  Outcome add(Duration sample, Duration interval);
  // An RTT-only probe's sample: taken only if it lowers crtt (it may not raise it).
  bool lower(Duration sample, Duration interval);
  void reset();

  bool has_estimate() const { return have_; }
  Duration avg() const { return sa_ / 8; }
  Duration dev() const { return sv_ / 4; }
  Duration crtt() const { return sa_ / 8 + sv_; }  // avg + 4 dev
  std::size_t deferred() const { return deferred_.size(); }

 private:
  struct Scaled {
    Duration sa{};
    Duration sv{};
    bool have = false;
    void fold(Duration m);
  };
  Duration sa_{};
  Duration sv_{};
  bool have_ = false;
  std::vector<Duration> deferred_;
};

// ---------------------------------------------------------------------------------
// late: declared lost, then answered (before the member failed): the path works, but
// the answer was not in time (it saves its interval from the failure rule; it does
// not count for a repair, and counts as a loss in the loss estimate).
enum class ProbeStatus : std::uint8_t { unacked, acked, lost, late };

// Laid out largest first: 48 bytes, not 56 (a member keeps ~110 of them).
struct ProbeRecord {
  TimePoint sent{};
  TimePoint acked_at{};  // reception time of the answer (acked and late only)
  std::uint64_t interval = 0;  // the probe interval it was sent in (ProbeSchedule)
  IpAddress target;
  ProbeSeq seq = 0;
  ProbeStatus status = ProbeStatus::unacked;
};

// The recent probes of one member, across its targets, and the counts the failure
// and repair rules look at. Counting walks back from the newest interval; intervals
// with probes outstanding and none answered are skipped (neither good nor bad yet).
class ProbeHistory {
 public:
  explicit ProbeHistory(unsigned fail_threshold = probe::kFailThreshold,
                        unsigned repair_threshold = probe::kRepairThreshold);

  // Records a new probe sent in `interval` (none: an interval of its own, one probe
  // per interval as in.mpathd). Probes still outstanding from two intervals before
  // are forced lost first; the records forced lost are returned.
  std::vector<ProbeRecord> sent(ProbeSeq seq, const IpAddress& target, TimePoint when,
                                std::optional<std::uint64_t> interval = std::nullopt);
  // An answer to `seq`. nullopt when no outstanding probe has that number (never
  // sent, already answered, already lost, or too old): such answers do not count.
  std::optional<ProbeRecord> acked(ProbeSeq seq, TimePoint received);
  // Declares an outstanding probe lost; nullopt when it is not outstanding.
  std::optional<ProbeRecord> lost(ProbeSeq seq);
  // An answer to a probe already declared lost: it becomes late (and saves its
  // interval if the member has not failed yet). nullopt when `seq` is not lost.
  std::optional<ProbeRecord> answered_late(ProbeSeq seq, TimePoint received);
  // Looks a probe up without changing it.
  const ProbeRecord* find(ProbeSeq seq) const;

  // Forgets the probes in flight without counting them (pause).
  void forget_outstanding();
  // Forgets everything (link down): old acks must not help a repair.
  void clear();

  // Lost intervals in a row (the newest ones, pending ones skipped).
  unsigned consecutive_losses() const;
  // Lost probes in a row to one target, whatever the other targets did.
  unsigned consecutive_losses(const IpAddress& target) const;
  // Intervals in a row with an answer in time.
  unsigned consecutive_successes() const;
  // Among the newest `window` completed probes: how many were lost (late included),
  // and how many there were.
  std::pair<std::size_t, std::size_t> recent_loss(std::size_t window = probe::kLossWindow) const;
  // Time the first probe of the current run of lost intervals was sent (TFF).
  std::optional<TimePoint> first_failure() const;
  // Reception time of the latest ack (TLS); survives clear() only if never set.
  std::optional<TimePoint> last_success() const { return last_success_; }
  std::size_t outstanding() const;
  const std::deque<ProbeRecord>& records() const { return records_; }

  // The failed/repaired hysteresis: failed after fail_threshold losses, ok again only
  // after repair_threshold acks. Updated by every call above.
  bool failed() const { return failed_; }
  void set_failed(bool failed) { failed_ = failed; }
  // While held, losses do not fail (a quiet period); released, the count decides.
  void hold_failure(bool hold) {
    hold_ = hold;
    update_verdict();
  }
  unsigned fail_threshold() const { return fail_threshold_; }
  unsigned repair_threshold() const { return repair_threshold_; }

 private:
  ProbeRecord* find_mut(ProbeSeq seq);
  void update_verdict();

  unsigned fail_threshold_;
  unsigned repair_threshold_;
  std::deque<ProbeRecord> records_;  // oldest first
  std::uint64_t own_intervals_ = 0;  // for sent() without an interval
  std::optional<TimePoint> last_success_;
  bool failed_ = false;
  bool hold_ = false;
};

// ---------------------------------------------------------------------------------
// When to send: k sends per interval, send j at base + (0.5 + 0.5 x (j + u) / k) x
// interval with u uniform in [0, 1) (k = 1: in.mpathd's base + uniform(0.5, 1.0) x
// interval), base advancing by one interval when the interval's sends are done. A
// timer that fires late skips the intervals it overslept, counting them as missed.
// `random` returns values in [0, 1).
class ProbeSchedule {
 public:
  using Random = std::function<double()>;
  explicit ProbeSchedule(Random random);

  // The first interval's sends are spread over all of it (send j at base + (j + u) /
  // k x interval), so members started together do not probe in step.
  void start(TimePoint now, Duration interval);
  // Called when next() is reached (or later); plans the following send and returns
  // how many intervals were missed.
  unsigned advance(TimePoint now);
  // A new interval takes effect from now (a new interval number).
  void set_interval(TimePoint now, Duration interval);
  // Sends per interval (at least 1), from the next interval on.
  void set_sends(unsigned k) { wanted_sends_ = std::max(1u, k); }
  TimePoint next() const { return next_; }
  Duration interval() const { return interval_; }
  // The interval next() belongs to; it grows by one per interval.
  std::uint64_t interval_number() const { return number_; }
  unsigned sends() const { return sends_; }  // in the current interval
  std::uint64_t missed() const { return missed_; }

 private:
  double draw();
  void plan();
  void next_interval(bool first);
  Random random_;
  Duration interval_{};
  TimePoint base_{};
  TimePoint next_{};
  std::uint64_t missed_ = 0;
  std::uint64_t number_ = 0;
  unsigned sends_ = 1;
  unsigned wanted_sends_ = 1;
  unsigned slot_ = 0;
  bool first_ = false;  // the interval after start(): sends spread over all of it
};

// ---------------------------------------------------------------------------------
struct ProbeVerdict {
  ProbeState state = ProbeState::unknown;
  TimePoint first_failure{};  // TFF of the current loss run (meaningful when failed)
  TimePoint last_success{};   // TLS: latest ack; epoch when none yet
  bool fdt_unachievable = false;
  Duration needed_fdt{};  // the FDT in force when unachievable (7 x 2 x max crtt)
  // A dual-stack member's (combine_family_verdicts()): each family's own state, which
  // the combined `state` is made of. nullopt for a member probed on one family.
  std::optional<ProbeState> v4;
  std::optional<ProbeState> v6;

  // Verdicts differ when what they say differs; the TFF/TLS times are details.
  bool same_as(const ProbeVerdict& o) const {
    return state == o.state && fdt_unachievable == o.fdt_unachievable && needed_fdt == o.needed_fdt &&
           v4 == o.v4 && v6 == o.v6;
  }
  static ProbeVerdict disabled() {
    ProbeVerdict v;
    v.state = ProbeState::disabled;
    return v;
  }
};

// A dual-stack member is probed on both families, each by a session of its own (ICMP
// from its IPv4 test address, ICMPv6 from its link-local). As in in.mpathd (its
// failure_state(): the other family "must also" have failed; phyint_check_for_repair():
// repaired when v4 or v6 has its acks), the member's verdict is:
// - failed when every family that can tell (ok or failed: it has targets) has failed;
//   TFF the latest of theirs (from then on nothing of the member worked);
// - ok when one of them is ok: a family that failed alone keeps the member in service
//   (and shows as failed in v4/v6), and a failed member is repaired as soon as one
//   family has earned its repair (ten intervals answered in time);
// - otherwise unknown (no family has targets), or disabled (none is probed).
// TLS is the latest of all; the FDT is unachievable when it is for any family (the
// larger FDT in force). The result carries each family's state in v4/v6.
struct FamilyVerdict {
  Family family = Family::v4;
  ProbeVerdict verdict;
};
ProbeVerdict combine_family_verdicts(const std::vector<FamilyVerdict>& families);

// One line of ipmpstat -p: an acked or lost probe.
struct ProbeResult {
  std::string member;  // filled in by the detector
  ProbeSeq seq = 0;
  IpAddress target;
  bool acked = false;
  Duration net_rtt{};  // kernel send to kernel receive (acked only)
  Duration rtt{};      // our send call to the processing of the answer (acked only)
  TimePoint received{};  // the kernel's reception time of the answer (acked only): the TLS
  Duration rtt_avg{};  // the target's estimate after this probe
  Duration rtt_dev{};
};

// Everything about probing one member except the I/O: targets in round-robin, the
// schedule, the history, per-target RTTs, the verdict and the FDT adaptation.
class ProbeSession {
 public:
  struct Options {
    unsigned fail_threshold = probe::kFailThreshold;
    unsigned repair_threshold = probe::kRepairThreshold;
    Duration fdt = Config::kDefaultFailureDetectionTime;
    ProbeSchedule::Random random;  // empty: a fixed 0.75 (tests)
    // Probes per interval, chosen from the measured loss (choose_sends_per_interval);
    // min = max fixes it (1, 1: in.mpathd's rule).
    unsigned min_sends = 1;
    unsigned max_sends = probe::kMaxSendsPerInterval;
    // From the first start(): losses fail nothing until this has passed or an answer
    // came (Config::probe_quiet_period); zero: none.
    Duration quiet_period{};
  };
  struct Send {
    ProbeSeq seq = 0;
    IpAddress target;
    bool rtt_only = false;  // an RTT-only probe (the FDT is raised): never lost
  };
  struct Tick {
    std::optional<Send> send;            // send this probe now
    std::vector<ProbeResult> results;    // probes found lost
    std::vector<IpAddress> dead_targets; // targets that alone stopped answering
  };
  enum class ReplyKind : std::uint8_t {
    accepted,      // answered an outstanding probe
    late,          // answered a probe already declared lost: RTT learnt; saves its
                   // interval unless the member has failed, no ack counted
    rtt_only,      // answered an RTT-only probe: the estimate may have come down
    unknown,       // no such probe (never sent, too old, duplicate)
    wrong_target,  // the answer came from another address than the probe went to
  };
  struct Reply {
    ReplyKind kind = ReplyKind::unknown;
    std::optional<ProbeResult> result;  // accepted only
    // The answering target is exceptionally slow (exceptionally_slow()): replace it
    // rather than raise the FDT or fail the member.
    std::optional<IpAddress> slow_target;
  };

  explicit ProbeSession(Options options);

  // Keeps the estimates of targets that stay; the round-robin restarts.
  void set_targets(std::vector<IpAddress> targets);
  const std::vector<IpAddress>& targets() const { return targets_; }
  void set_fdt(Duration fdt, TimePoint now);
  Duration fdt() const { return fdt_; }
  Duration interval() const { return interval_; }  // raised when the FDT is unachievable

  void start(TimePoint now);  // no-op when running
  void stop();                // outstanding probes are forgotten, not counted
  bool running() const { return running_; }
  // Clears history and RTTs (link down). With require_repair the verdict is failed
  // until `repair_threshold` acks, as for a member that failed by probes.
  void reset(TimePoint now, bool require_repair);

  // The earliest time on_timer() has something to do; nullopt when stopped.
  std::optional<TimePoint> next_deadline() const;
  // on_timer(now) would declare a probe lost: read the answers waiting first.
  bool losses_due(TimePoint now) const;
  Tick on_timer(TimePoint now);
  // `sent` is the kernel's (or the strategy's) send time, `received` the kernel's
  // reception time of the answer, `now` the processing time.
  Reply on_reply(ProbeSeq seq, const IpAddress& from, TimePoint sent, TimePoint received,
                 TimePoint now);

  ProbeVerdict verdict() const;
  // The verdict if it differs from the one last taken (first call: always).
  std::optional<ProbeVerdict> take_verdict_change();

  const ProbeHistory& history() const { return history_; }
  const RttEstimator* estimator(const IpAddress& target) const;
  // in.mpathd's exception target: with at least kMinTargets + 1 targets, this one's
  // crtt exceeds the interval while every other target's is known and below half of
  // it. Such a target is dropped (for kTargetRecoveryTime) instead of the FDT being
  // raised for everyone or its probes holding the member's intervals open.
  bool exceptionally_slow(const IpAddress& target) const;
  std::uint64_t missed() const { return schedule_.missed(); }
  // Probes in the current interval (k).
  unsigned sends_per_interval() const { return schedule_.sends(); }

 private:
  Duration timeout(const IpAddress& target) const;
  unsigned wanted_sends() const;
  bool raised() const { return interval_ > probe_interval(fdt_); }
  std::optional<Send> rtt_probe(TimePoint now);
  void check_losses(TimePoint now, Tick& tick);
  void on_lost(const ProbeRecord& r, Tick& tick);
  void after_count_change();
  void adapt_interval(TimePoint now);
  ProbeResult result_for(const ProbeRecord& r, bool acked) const;

  struct TargetStats {
    RttEstimator rtt;
    std::optional<ProbeSeq> highest_acked;
  };

  Options options_;
  Duration fdt_;
  Duration interval_;
  ProbeSchedule schedule_;
  ProbeHistory history_;
  std::vector<IpAddress> targets_;
  std::map<IpAddress, TargetStats> stats_;
  std::size_t next_target_ = 0;
  ProbeSeq next_seq_ = 0;
  bool running_ = false;
  bool was_failed_ = false;
  TimePoint last_raise_{};
  TimePoint failed_since_{};  // TFF to report when the history has none (after reset)
  std::optional<ProbeVerdict> last_verdict_;
  struct RttProbe {
    ProbeSeq seq;
    IpAddress target;
    TimePoint sent;
  };
  std::optional<TimePoint> quiet_until_;  // the quiet period, while it lasts
  bool started_once_ = false;
  void end_quiet();
  std::optional<TimePoint> rtt_next_;  // next RTT-only probe (only while raised)
  std::deque<RttProbe> rtt_probes_;     // recent RTT-only probes
};

// ---------------------------------------------------------------------------------
// Target choice for one member (or group). Rule: static targets from the config are
// the administrator's explicit choice and are used alone (mode static); otherwise
// routers on the test subnet (mode routes); otherwise hosts found by multicast echo
// (mode multicast). At most 5 are active. Our own addresses never qualify. A target
// marked dead sits out for 60 s and the next candidate takes its place; a dead
// multicast-learnt host is dropped. If every candidate is dead they are used anyway.
enum class TargetOrigin : std::uint8_t { router, static_, multicast };

class TargetSelector {
 public:
  // The host's own addresses, sorted, one set for all selectors: every group's
  // selector looks at the whole host's (a copy per group was 9 MB at 256 groups of 4:
  // the link-local of every member in every copy).
  using LocalAddresses = std::shared_ptr<const std::vector<IpAddress>>;
  static LocalAddresses local_addresses(std::vector<IpAddress> local);
  void set_local_addresses(LocalAddresses local);
  void set_routers(std::vector<IpAddress> routers);
  void set_static(std::vector<IpAddress> targets);
  // A host answered a multicast echo; false when it does not qualify or is known.
  bool add_discovered(const IpAddress& host);
  void flush_discovered();  // group failure: hosts are rediscovered
  void mark_dead(const IpAddress& target, TimePoint now);

  std::vector<IpAddress> active(TimePoint now) const;
  TargetMode mode() const;
  // Multicast discovery is worth a probe: no static targets, no routers and fewer
  // than kMinTargets hosts.
  bool wants_discovery() const;

 private:
  bool is_local(const IpAddress& a) const;
  LocalAddresses local_;
  std::vector<IpAddress> routers_;
  std::vector<IpAddress> static_;
  std::vector<IpAddress> discovered_;
  std::map<IpAddress, TimePoint> dead_until_;
};

// ---------------------------------------------------------------------------------
// Which probe a member gets. `icmp` means ICMP echo of the member's family, which the
// rule below resolves to icmp (IPv4) or icmp6.
enum class ProbeKind : std::uint8_t { none, icmp, icmp6, arp };

template <>
struct EnumNames<ProbeKind> {
  static constexpr std::array<std::string_view, 4> names{"none", "icmp", "icmp6", "arp"};
};

struct ProbeCapabilities {
  bool v4_test_address = false;  // the member has an IPv4 test address
  bool v6_link_local = false;    // the member has a usable IPv6 link-local address
  bool group_v4_data = false;    // the group has an IPv4 data address
  bool v4_target_known = false;  // a router or static IPv4 target is known
};

// auto:  icmp when the member has an IPv4 test address; else arp when the group has
//        IPv4 data addresses and an IPv4 target is known; else icmp6 when the group
//        is IPv6-only (no IPv4 data) and the member has a link-local; else none.
// icmp:  icmp with an IPv4 test address, else icmp6 with a link-local, else none.
// arp:   arp (targets must come from routes or static config).
// none:  none.
ProbeKind choose_probe_kind(ProbeMethod method, const ProbeCapabilities& caps);

}  // namespace mpathd
