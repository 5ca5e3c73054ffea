#include "core/probe.hpp"

#include <algorithm>
#include <cmath>

namespace mpathd {

Duration probe_interval(Duration fdt) {
  return std::max(fdt, Config::kMinFailureDetectionTime) / probe::kIntervalsPerFdt;
}

unsigned choose_sends_per_interval(std::size_t lost, std::size_t completed, unsigned fail_threshold,
                                   unsigned min_k, unsigned max_k) {
  min_k = std::max(1u, min_k);
  max_k = std::max(min_k, max_k);
  if (min_k == max_k) return min_k;
  lost = std::min(lost, completed);
  const double p = (static_cast<double>(lost) + 0.5) / (static_cast<double>(completed) + 1.0);
  if (p >= 1.0) return max_k;
  // p^(k N) <= target  <=>  k >= ln(target) / (N ln p)   (both logarithms negative)
  const double k = std::log(probe::kFalseRunTarget) / (std::max(1u, fail_threshold) * std::log(p));
  if (!(k < max_k)) return max_k;  // also NaN
  return std::clamp(static_cast<unsigned>(std::ceil(k)), min_k, max_k);
}

// --- RttEstimator ---------------------------------------------------------------

void RttEstimator::Scaled::fold(Duration m) {
  if (!have) {
    sa = 8 * m;
    sv = 2 * m;
    have = true;
    return;
  }
  const Duration err = m - sa / 8;
  sa += err;
  if (sa < Duration::zero()) sa = Duration::zero();
  sv += (err < Duration::zero() ? -err : err) - sv / 4;
}

RttEstimator::Outcome RttEstimator::add(Duration sample, Duration interval) {
  if (sample < Duration::zero() || sample > probe::kHistorySize * interval) return Outcome::ignored;
  Scaled trial{sa_, sv_, have_};
  trial.fold(sample);
  if (trial.sa / 8 + trial.sv > interval) {
    if (deferred_.size() < probe::kMaxDeferredRtt) {
      deferred_.push_back(sample);
      return Outcome::deferred;
    }
    // Confirmed by another suspicious sample: take them all.
    Scaled all{sa_, sv_, have_};
    for (Duration d : deferred_) all.fold(d);
    all.fold(sample);
    trial = all;
  }
  deferred_.clear();
  sa_ = trial.sa;
  sv_ = trial.sv;
  have_ = trial.have;
  return Outcome::integrated;
}

bool RttEstimator::lower(Duration sample, Duration interval) {
  if (!have_ || sample < Duration::zero() || sample > probe::kHistorySize * interval) return false;
  Scaled trial{sa_, sv_, have_};
  trial.fold(sample);
  if (trial.sa / 8 + trial.sv >= crtt()) return false;
  sa_ = trial.sa;
  sv_ = trial.sv;
  deferred_.clear();
  return true;
}

void RttEstimator::reset() {
  sa_ = sv_ = Duration::zero();
  have_ = false;
  deferred_.clear();
}

// --- ProbeHistory -----------------------------------------------------------------

ProbeHistory::ProbeHistory(unsigned fail_threshold, unsigned repair_threshold)
    : fail_threshold_(std::max(1u, fail_threshold)), repair_threshold_(std::max(1u, repair_threshold)) {}

ProbeRecord* ProbeHistory::find_mut(ProbeSeq seq) {
  for (auto it = records_.rbegin(); it != records_.rend(); ++it)
    if (it->seq == seq) return &*it;
  return nullptr;
}

const ProbeRecord* ProbeHistory::find(ProbeSeq seq) const {
  for (auto it = records_.rbegin(); it != records_.rend(); ++it)
    if (it->seq == seq) return &*it;
  return nullptr;
}

std::vector<ProbeRecord> ProbeHistory::sent(ProbeSeq seq, const IpAddress& target, TimePoint when,
                                            std::optional<std::uint64_t> interval) {
  const std::uint64_t number = interval ? *interval : ++own_intervals_;
  std::vector<ProbeRecord> forced;
  // Probes of at most two intervals (this one and the one before) stay outstanding.
  for (auto& r : records_) {
    if (r.status == ProbeStatus::unacked && r.interval + probe::kMaxOutstanding <= number) {
      r.status = ProbeStatus::lost;
      forced.push_back(r);
    }
  }
  // A reused sequence number (after 65536 probes) replaces nothing still relevant,
  // but never leave two records with one number.
  std::erase_if(records_, [&](const ProbeRecord& r) { return r.seq == seq; });
  records_.push_back({.sent = when, .interval = number, .target = target, .seq = seq});
  // Enough intervals for the repair run even at the most probes per interval, and
  // enough probes for the loss estimate.
  const std::size_t keep = std::max({std::size_t{probe::kHistorySize},
                                     (fail_threshold_ + repair_threshold_ + 2) * std::size_t{probe::kMaxSendsPerInterval},
                                     probe::kLossWindow + 2 * std::size_t{probe::kMaxSendsPerInterval}});
  while (records_.size() > keep) records_.pop_front();
  update_verdict();
  return forced;
}

std::optional<ProbeRecord> ProbeHistory::acked(ProbeSeq seq, TimePoint received) {
  ProbeRecord* r = find_mut(seq);
  if (!r || r->status != ProbeStatus::unacked) return std::nullopt;
  r->status = ProbeStatus::acked;
  r->acked_at = received;
  if (!last_success_ || received > *last_success_) last_success_ = received;
  update_verdict();
  return *r;
}

std::optional<ProbeRecord> ProbeHistory::lost(ProbeSeq seq) {
  ProbeRecord* r = find_mut(seq);
  if (!r || r->status != ProbeStatus::unacked) return std::nullopt;
  r->status = ProbeStatus::lost;
  update_verdict();
  return *r;
}

std::optional<ProbeRecord> ProbeHistory::answered_late(ProbeSeq seq, TimePoint received) {
  ProbeRecord* r = find_mut(seq);
  if (!r || r->status != ProbeStatus::lost) return std::nullopt;
  r->status = ProbeStatus::late;
  r->acked_at = received;
  if (!last_success_ || received > *last_success_) last_success_ = received;
  update_verdict();
  return *r;
}

void ProbeHistory::forget_outstanding() {
  std::erase_if(records_, [](const ProbeRecord& r) { return r.status == ProbeStatus::unacked; });
}

void ProbeHistory::clear() { records_.clear(); }

namespace {
// What one interval's probes say, newest interval first.
struct IntervalSummary {
  bool in_time = false;   // an answer in time
  bool late = false;      // a late answer
  bool pending = false;   // a probe still outstanding
  TimePoint first_sent{};
};

template <class F>
void for_each_interval(const std::deque<ProbeRecord>& records, F&& f) {
  auto it = records.rbegin();
  while (it != records.rend()) {
    const std::uint64_t number = it->interval;
    IntervalSummary s;
    for (; it != records.rend() && it->interval == number; ++it) {
      s.in_time |= it->status == ProbeStatus::acked;
      s.late |= it->status == ProbeStatus::late;
      s.pending |= it->status == ProbeStatus::unacked;
      s.first_sent = it->sent;
    }
    if (!f(s)) return;
  }
}
}  // namespace

unsigned ProbeHistory::consecutive_losses() const {
  unsigned n = 0;
  for_each_interval(records_, [&](const IntervalSummary& s) {
    if (s.in_time || s.late) return false;
    if (!s.pending) ++n;
    return true;
  });
  return n;
}

unsigned ProbeHistory::consecutive_losses(const IpAddress& target) const {
  unsigned n = 0;
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
    if (it->target != target || it->status == ProbeStatus::unacked) continue;
    if (it->status == ProbeStatus::acked || it->status == ProbeStatus::late) break;
    ++n;
  }
  return n;
}

unsigned ProbeHistory::consecutive_successes() const {
  unsigned n = 0;
  for_each_interval(records_, [&](const IntervalSummary& s) {
    if (s.in_time) {
      ++n;
      return true;
    }
    return s.pending;  // still open: skipped; all lost or late: the run ends
  });
  return n;
}

std::pair<std::size_t, std::size_t> ProbeHistory::recent_loss(std::size_t window) const {
  std::size_t lost = 0, completed = 0;
  for (auto it = records_.rbegin(); it != records_.rend() && completed < window; ++it) {
    if (it->status == ProbeStatus::unacked) continue;
    ++completed;
    if (it->status != ProbeStatus::acked) ++lost;
  }
  return {lost, completed};
}

std::optional<TimePoint> ProbeHistory::first_failure() const {
  std::optional<TimePoint> tff;
  for_each_interval(records_, [&](const IntervalSummary& s) {
    if (s.in_time || s.late) return false;
    if (!s.pending) tff = s.first_sent;
    return true;
  });
  return tff;
}

std::size_t ProbeHistory::outstanding() const {
  return static_cast<std::size_t>(std::count_if(records_.begin(), records_.end(), [](const ProbeRecord& r) {
    return r.status == ProbeStatus::unacked;
  }));
}

void ProbeHistory::update_verdict() {
  if (!failed_ && !hold_ && consecutive_losses() >= fail_threshold_) failed_ = true;
  else if (failed_ && consecutive_successes() >= repair_threshold_) failed_ = false;
}

// --- ProbeSchedule ----------------------------------------------------------------

ProbeSchedule::ProbeSchedule(Random random) : random_(std::move(random)) {}

double ProbeSchedule::draw() {
  double r = random_ ? random_() : 0.5;
  if (!(r >= 0.0)) r = 0.0;  // also catches NaN
  if (r >= 1.0) r = std::nextafter(1.0, 0.0);
  return r;
}

namespace {
Duration scale(Duration d, double f) {
  return Duration(static_cast<Duration::rep>(static_cast<double>(d.count()) * f));
}
}  // namespace

void ProbeSchedule::plan() {
  const double at = (static_cast<double>(slot_) + draw()) / static_cast<double>(sends_);
  next_ = base_ + scale(interval_, first_ ? at : 0.5 + 0.5 * at);
}

void ProbeSchedule::next_interval(bool first) {
  ++number_;
  slot_ = 0;
  sends_ = wanted_sends_;
  first_ = first;
}

void ProbeSchedule::start(TimePoint now, Duration interval) {
  interval_ = interval;
  base_ = now;
  next_interval(true);
  plan();
}

unsigned ProbeSchedule::advance(TimePoint now) {
  if (++slot_ < sends_) {
    plan();
    return 0;
  }
  base_ += interval_;
  next_interval(false);
  unsigned missed = 0;
  // Every whole interval that ended before now had its send times pass unused.
  while (interval_ > Duration::zero() && base_ + interval_ <= now) {
    base_ += interval_;
    ++number_;
    ++missed;
  }
  missed_ += missed;
  plan();
  return missed;
}

void ProbeSchedule::set_interval(TimePoint now, Duration interval) {
  interval_ = interval;
  base_ = now;
  next_interval(false);
  plan();
}

// --- ProbeSession -----------------------------------------------------------------

ProbeSession::ProbeSession(Options options)
    : options_(std::move(options)),
      fdt_(std::max(options_.fdt, Config::kMinFailureDetectionTime)),
      interval_(probe_interval(fdt_)),
      schedule_(options_.random ? options_.random : [] { return 0.5; }),
      history_(options_.fail_threshold, options_.repair_threshold) {
  schedule_.set_sends(wanted_sends());
}

unsigned ProbeSession::wanted_sends() const {
  const auto [lost, completed] = history_.recent_loss();
  return choose_sends_per_interval(lost, completed, history_.fail_threshold(), options_.min_sends,
                                   options_.max_sends);
}

void ProbeSession::set_targets(std::vector<IpAddress> targets) {
  std::vector<IpAddress> unique;
  for (auto& t : targets)
    if (std::find(unique.begin(), unique.end(), t) == unique.end()) unique.push_back(t);
  targets_ = std::move(unique);
  std::erase_if(stats_, [&](const auto& kv) {
    return std::find(targets_.begin(), targets_.end(), kv.first) == targets_.end();
  });
  for (auto& t : targets_) stats_.try_emplace(t);
  next_target_ = 0;
}

void ProbeSession::set_fdt(Duration fdt, TimePoint now) {
  fdt_ = std::max(fdt, Config::kMinFailureDetectionTime);
  interval_ = probe_interval(fdt_);
  last_raise_ = TimePoint{};
  adapt_interval(now);
  if (running_) schedule_.set_interval(now, interval_);
}

void ProbeSession::start(TimePoint now) {
  if (running_) return;
  running_ = true;
  if (!started_once_) {
    started_once_ = true;
    if (options_.quiet_period > Duration::zero()) {
      quiet_until_ = now + options_.quiet_period;
      history_.hold_failure(true);
    }
  }
  schedule_.start(now, interval_);
}

void ProbeSession::stop() {
  running_ = false;
  history_.forget_outstanding();
}

void ProbeSession::reset(TimePoint now, bool require_repair) {
  const bool failed = history_.failed() || require_repair;
  history_.clear();
  history_.set_failed(failed);
  for (auto& [t, s] : stats_) s = TargetStats{};
  interval_ = probe_interval(fdt_);
  last_raise_ = TimePoint{};
  schedule_.set_sends(wanted_sends());
  if (running_) schedule_.set_interval(now, interval_);
  if (failed && !was_failed_) failed_since_ = now;
  was_failed_ = failed;
}

Duration ProbeSession::timeout(const IpAddress& target) const {
  auto it = stats_.find(target);
  if (it != stats_.end() && it->second.rtt.has_estimate()) return it->second.rtt.crtt();
  return interval_;
}

bool ProbeSession::losses_due(TimePoint now) const {
  if (!running_) return false;
  return std::any_of(history_.records().begin(), history_.records().end(), [&](const ProbeRecord& r) {
    return r.status == ProbeStatus::unacked && r.sent + timeout(r.target) <= now;
  });
}

void ProbeSession::end_quiet() {
  if (!quiet_until_) return;
  quiet_until_.reset();
  history_.hold_failure(false);  // losses that went on all through it fail now
  after_count_change();
}

std::optional<TimePoint> ProbeSession::next_deadline() const {
  if (!running_) return std::nullopt;
  std::optional<TimePoint> when = quiet_until_;
  if (!targets_.empty() && (!when || schedule_.next() < *when)) when = schedule_.next();
  if (!targets_.empty() && rtt_next_ && (!when || *rtt_next_ < *when)) when = rtt_next_;
  for (const auto& r : history_.records()) {
    if (r.status != ProbeStatus::unacked) continue;
    const TimePoint due = r.sent + timeout(r.target);
    if (!when || due < *when) when = due;
  }
  // With neither targets nor probes in flight there is nothing to wait for.
  return when;
}

ProbeResult ProbeSession::result_for(const ProbeRecord& r, bool acked) const {
  ProbeResult out;
  out.seq = r.seq;
  out.target = r.target;
  out.acked = acked;
  if (auto it = stats_.find(r.target); it != stats_.end() && it->second.rtt.has_estimate()) {
    out.rtt_avg = it->second.rtt.avg();
    out.rtt_dev = it->second.rtt.dev();
  }
  return out;
}

void ProbeSession::on_lost(const ProbeRecord& r, Tick& tick) {
  tick.results.push_back(result_for(r, false));
  // One target alone stopping to answer: the target is at fault, not the member.
  // Alone: other targets of this session answer. With one target there are no others
  // (with k probes per interval its five lost probes can fall in fewer than five
  // intervals, which is no sign of a dead target but of a path that may be dying).
  if (targets_.size() > 1 && history_.consecutive_losses() < history_.fail_threshold() &&
      history_.consecutive_losses(r.target) == history_.fail_threshold() &&
      std::find(targets_.begin(), targets_.end(), r.target) != targets_.end())
    tick.dead_targets.push_back(r.target);
}

void ProbeSession::check_losses(TimePoint now, Tick& tick) {
  std::vector<ProbeSeq> due;
  for (const auto& r : history_.records())
    if (r.status == ProbeStatus::unacked && r.sent + timeout(r.target) <= now) due.push_back(r.seq);
  for (ProbeSeq s : due)
    if (auto r = history_.lost(s)) on_lost(*r, tick);
  after_count_change();
}

void ProbeSession::after_count_change() {
  const bool failed = history_.failed();
  if (failed && !was_failed_) {
    failed_since_ = history_.first_failure().value_or(TimePoint{});
    // Samples taken while failing say little about the repaired path.
    for (auto& [t, s] : stats_) s = TargetStats{};
    interval_ = probe_interval(fdt_);
    last_raise_ = TimePoint{};
  }
  was_failed_ = failed;
}

std::optional<ProbeSession::Send> ProbeSession::rtt_probe(TimePoint now) {
  if (!raised()) {
    rtt_next_.reset();
    return std::nullopt;
  }
  const Duration user = probe_interval(fdt_);
  if (!rtt_next_) {
    rtt_next_ = now + user;
    return std::nullopt;
  }
  if (targets_.empty() || now < *rtt_next_) return std::nullopt;
  rtt_next_ = now + user;
  if (next_target_ >= targets_.size()) next_target_ = 0;
  Send send{next_seq_++, targets_[next_target_], true};
  next_target_ = (next_target_ + 1) % targets_.size();
  rtt_probes_.push_back({send.seq, send.target, now});
  while (rtt_probes_.size() > probe::kHistorySize) rtt_probes_.pop_front();
  return send;
}

ProbeSession::Tick ProbeSession::on_timer(TimePoint now) {
  Tick tick;
  if (!running_) return tick;
  if (quiet_until_ && now >= *quiet_until_) end_quiet();
  check_losses(now, tick);
  if (!targets_.empty() && now >= schedule_.next()) {
    const std::uint64_t interval = schedule_.interval_number();
    schedule_.set_sends(wanted_sends());  // from the next interval on
    schedule_.advance(now);
    if (next_target_ >= targets_.size()) next_target_ = 0;
    const IpAddress target = targets_[next_target_];
    next_target_ = (next_target_ + 1) % targets_.size();
    const ProbeSeq seq = next_seq_++;
    for (const auto& r : history_.sent(seq, target, now, interval)) on_lost(r, tick);
    after_count_change();
    tick.send = Send{seq, target};
    if (schedule_.interval() != interval_) schedule_.set_interval(now, interval_);
    if (raised() && !rtt_next_) rtt_next_ = now + probe_interval(fdt_);
  } else {
    tick.send = rtt_probe(now);
  }
  return tick;
}

ProbeSession::Reply ProbeSession::on_reply(ProbeSeq seq, const IpAddress& from, TimePoint sent,
                                           TimePoint received, TimePoint now) {
  Reply reply;
  const ProbeRecord* rec = history_.find(seq);
  if (!rec) {
    auto rp = std::find_if(rtt_probes_.begin(), rtt_probes_.end(), [&](const RttProbe& p) { return p.seq == seq; });
    if (rp == rtt_probes_.end()) return reply;
    if (rp->target != from) {
      reply.kind = ReplyKind::wrong_target;
      return reply;
    }
    const Duration sample = received - rp->sent;
    rtt_probes_.erase(rp);
    reply.kind = ReplyKind::rtt_only;
    if (auto it = stats_.find(from); it != stats_.end() && !history_.failed() && it->second.rtt.lower(sample, interval_))
      adapt_interval(now);
    if (!raised()) rtt_next_.reset();
    return reply;
  }
  if (rec->target != from) {
    reply.kind = ReplyKind::wrong_target;
    return reply;
  }
  if (rec->status == ProbeStatus::acked) return reply;  // duplicate
  const TimePoint started = rec->sent;
  const bool late = rec->status == ProbeStatus::lost;
  auto it = stats_.find(from);
  // Learn the RTT even from a late answer: a network that became slower must raise
  // crtt (and maybe the FDT) rather than lose every probe. Only the newest answer of
  // a target teaches, and nothing is learnt while the member is failed.
  if (it != stats_.end() && !history_.failed() &&
      (!it->second.highest_acked || static_cast<std::int16_t>(seq - *it->second.highest_acked) > 0)) {
    it->second.highest_acked = seq;
    it->second.rtt.add(received - started, interval_);
    if (exceptionally_slow(from)) reply.slow_target = from;
    adapt_interval(now);
  }
  if (late) {
    reply.kind = ReplyKind::late;
    // Before the member has failed, the answer saves its interval: the path works,
    // the answer (or our reading of it) was only slow.
    if (!history_.failed() && history_.answered_late(seq, received)) after_count_change();
    return reply;
  }
  auto acked = history_.acked(seq, received);
  if (!acked) return reply;
  end_quiet();  // the first answer ends the quiet period
  after_count_change();
  reply.kind = ReplyKind::accepted;
  ProbeResult res = result_for(*acked, true);
  // `sent` comes back in the answer's payload, so it is the network's word: a time
  // outside [our own send, reception] (a forged, corrupt or echoed-wrong payload) would
  // give a nonsense RTT or overflow; our own send time stands in for it.
  const TimePoint echoed = sent >= started && sent <= received ? sent : started;
  res.net_rtt = received > echoed ? received - echoed : Duration::zero();
  res.rtt = now - started;
  res.received = received;
  reply.result = res;
  return reply;
}

void ProbeSession::adapt_interval(TimePoint now) {
  const Duration user = probe_interval(fdt_);
  Duration max_crtt{};
  Duration min_crtt = Duration::max();
  bool any = false;
  for (const auto& t : targets_) {
    auto it = stats_.find(t);
    if (it == stats_.end() || !it->second.rtt.has_estimate()) continue;
    any = true;
    max_crtt = std::max(max_crtt, it->second.rtt.crtt());
    min_crtt = std::min(min_crtt, it->second.rtt.crtt());
  }
  if (!any) return;
  if (min_crtt > interval_) {
    // Every target is slower than the interval allows: raise instead of failing.
    interval_ = std::max(interval_, 2 * max_crtt);
    last_raise_ = now;
  } else if (interval_ > user && max_crtt < interval_ / probe::kLowerFdtTrigger &&
             now - last_raise_ >= probe::kSettlingTime) {
    interval_ = std::max(interval_ / 2, user);
    if (interval_ != user) last_raise_ = now;
  }
}

ProbeVerdict ProbeSession::verdict() const {
  ProbeVerdict v;
  if (targets_.empty()) v.state = ProbeState::unknown;
  else v.state = history_.failed() ? ProbeState::failed : ProbeState::ok;
  if (history_.failed()) v.first_failure = history_.first_failure().value_or(failed_since_);
  v.last_success = history_.last_success().value_or(TimePoint{});
  const Duration user = probe_interval(fdt_);
  if (interval_ > user) {
    v.fdt_unachievable = true;
    v.needed_fdt = interval_ * probe::kIntervalsPerFdt;
  }
  return v;
}

ProbeVerdict combine_family_verdicts(const std::vector<FamilyVerdict>& families) {
  ProbeVerdict v;
  v.state = ProbeState::disabled;
  bool any_told = false;
  bool all_failed = true;
  for (const auto& [family, f] : families) {
    (family == Family::v4 ? v.v4 : v.v6) = f.state;
    v.last_success = std::max(v.last_success, f.last_success);
    if (f.fdt_unachievable) {
      v.fdt_unachievable = true;
      v.needed_fdt = std::max(v.needed_fdt, f.needed_fdt);
    }
    if (f.state == ProbeState::ok || f.state == ProbeState::failed) {
      any_told = true;
      if (f.state == ProbeState::failed) v.first_failure = std::max(v.first_failure, f.first_failure);
      else all_failed = false;
    } else if (f.state == ProbeState::unknown) {
      if (v.state == ProbeState::disabled) v.state = ProbeState::unknown;
    }
  }
  if (any_told) v.state = all_failed ? ProbeState::failed : ProbeState::ok;
  if (v.state != ProbeState::failed) v.first_failure = {};
  return v;
}

std::optional<ProbeVerdict> ProbeSession::take_verdict_change() {
  ProbeVerdict v = verdict();
  if (last_verdict_ && last_verdict_->same_as(v)) return std::nullopt;
  last_verdict_ = v;
  return v;
}

bool ProbeSession::exceptionally_slow(const IpAddress& target) const {
  if (targets_.size() < probe::kMinTargets + 1) return false;
  auto it = stats_.find(target);
  if (it == stats_.end() || !it->second.rtt.has_estimate() || it->second.rtt.crtt() <= interval_) return false;
  return std::all_of(targets_.begin(), targets_.end(), [&](const IpAddress& t) {
    if (t == target) return true;
    auto o = stats_.find(t);
    return o != stats_.end() && o->second.rtt.has_estimate() && o->second.rtt.crtt() < interval_ / 2;
  });
}

const RttEstimator* ProbeSession::estimator(const IpAddress& target) const {
  auto it = stats_.find(target);
  return it == stats_.end() ? nullptr : &it->second.rtt;
}

// --- TargetSelector ---------------------------------------------------------------

namespace {
std::vector<IpAddress> dedup(std::vector<IpAddress> v) {
  std::vector<IpAddress> out;
  for (auto& a : v)
    if (!a.is_unspecified() && std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  return out;
}
}  // namespace

TargetSelector::LocalAddresses TargetSelector::local_addresses(std::vector<IpAddress> local) {
  std::sort(local.begin(), local.end());
  local.erase(std::unique(local.begin(), local.end()), local.end());
  return std::make_shared<const std::vector<IpAddress>>(std::move(local));
}

bool TargetSelector::is_local(const IpAddress& a) const {
  return local_ && std::binary_search(local_->begin(), local_->end(), a);
}

void TargetSelector::set_local_addresses(LocalAddresses local) {
  local_ = std::move(local);
  std::erase_if(discovered_, [&](const IpAddress& a) { return is_local(a); });
}

void TargetSelector::set_routers(std::vector<IpAddress> routers) { routers_ = dedup(std::move(routers)); }

void TargetSelector::set_static(std::vector<IpAddress> targets) { static_ = dedup(std::move(targets)); }

bool TargetSelector::add_discovered(const IpAddress& host) {
  if (host.is_unspecified() || is_local(host)) return false;
  if (std::find(discovered_.begin(), discovered_.end(), host) != discovered_.end()) return false;
  if (discovered_.size() >= probe::kMaxTargets) return false;
  discovered_.push_back(host);
  return true;
}

void TargetSelector::flush_discovered() { discovered_.clear(); }

void TargetSelector::mark_dead(const IpAddress& target, TimePoint now) {
  if (mode() == TargetMode::multicast) {
    std::erase(discovered_, target);
    return;
  }
  dead_until_[target] = now + probe::kTargetRecoveryTime;
}

TargetMode TargetSelector::mode() const {
  if (!static_.empty()) return TargetMode::static_;
  if (std::any_of(routers_.begin(), routers_.end(), [&](const IpAddress& a) { return !is_local(a); }))
    return TargetMode::routes;
  if (!discovered_.empty()) return TargetMode::multicast;
  return TargetMode::disabled;
}

std::vector<IpAddress> TargetSelector::active(TimePoint now) const {
  const std::vector<IpAddress>* pool = &discovered_;
  switch (mode()) {
    case TargetMode::static_: pool = &static_; break;
    case TargetMode::routes: pool = &routers_; break;
    case TargetMode::multicast: pool = &discovered_; break;
    default: return {};
  }
  // Per family: a dual-stack member probes each family's targets on its own path, so
  // one family's targets all dead must not leave it with none while the other lives.
  std::vector<IpAddress> out;
  for (const Family f : {Family::v4, Family::v6}) {
    std::vector<IpAddress> alive, dead;
    for (const auto& a : *pool) {
      if (a.family != f || is_local(a)) continue;
      auto it = dead_until_.find(a);
      (it != dead_until_.end() && now < it->second ? dead : alive).push_back(a);
    }
    if (alive.empty()) alive = std::move(dead);
    if (alive.size() > probe::kMaxTargets) alive.resize(probe::kMaxTargets);
    out.insert(out.end(), alive.begin(), alive.end());
  }
  return out;
}

bool TargetSelector::wants_discovery() const {
  return static_.empty() && mode() != TargetMode::routes && discovered_.size() < probe::kMinTargets;
}

// --- method choice ----------------------------------------------------------------

ProbeKind choose_probe_kind(ProbeMethod method, const ProbeCapabilities& c) {
  switch (method) {
    case ProbeMethod::none: return ProbeKind::none;
    case ProbeMethod::arp: return ProbeKind::arp;
    case ProbeMethod::icmp:
      if (c.v4_test_address) return ProbeKind::icmp;
      return c.v6_link_local ? ProbeKind::icmp6 : ProbeKind::none;
    case ProbeMethod::auto_: break;
  }
  if (c.v4_test_address) return ProbeKind::icmp;
  if (c.group_v4_data && c.v4_target_known) return ProbeKind::arp;
  if (!c.group_v4_data && c.v6_link_local) return ProbeKind::icmp6;
  return ProbeKind::none;
}

}  // namespace mpathd
