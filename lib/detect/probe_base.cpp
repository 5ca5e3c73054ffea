#include "detect/probe_base.hpp"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <system_error>

#include "guard/guard.hpp"

namespace mpathd::detect {

namespace {
// Send-time jitter in [0, 1): the top 53 bits of sock::random64(). No state per member
// (a Mersenne Twister each was 2.5 KB: 2.5 MB at 1024 members) and no syscall.
double default_random() { return std::ldexp(static_cast<double>(sock::random64() >> 11), -53); }

std::uint64_t usec_of(TimePoint t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}
}  // namespace

ProbeBase::ProbeBase(sd_event* event, std::string member, std::unique_ptr<ProbeStrategy> strategy,
                     Duration fdt, Callbacks callbacks, Duration quiet_period, std::function<double()> random)
    : event_(event),
      member_(std::move(member)),
      strategy_(std::move(strategy)),
      callbacks_(std::move(callbacks)),
      session_(ProbeSession::Options{probe::kFailThreshold, probe::kRepairThreshold, fdt,
                                     random ? std::move(random) : std::function<double()>(default_random), 1,
                                     probe::kMaxSendsPerInterval, quiet_period}) {}

Result<std::unique_ptr<ProbeBase>> ProbeBase::create(sd_event* event, std::string member,
                                                     std::unique_ptr<ProbeStrategy> strategy, Duration fdt,
                                                     Callbacks callbacks, Duration quiet_period,
                                                     std::function<double()> random) {
  if (!event || !strategy) return fail(Errc::invalid_argument, "probe base needs an event loop and a strategy");
  std::unique_ptr<ProbeBase> b(
      new ProbeBase(event, std::move(member), std::move(strategy), fdt, std::move(callbacks), quiet_period,
                    std::move(random)));
  // steady_clock is CLOCK_MONOTONIC; the time is set for real in arm().
  int r = sd_event_add_time(event, &b->timer_, CLOCK_MONOTONIC, UINT64_MAX, 1, &ProbeBase::on_timer, b.get());
  if (r < 0) return fail(Errc::system, std::string("probe timer: ") + std::strerror(-r));
  (void)sd_event_source_set_description(b->timer_, "probe-timer");
  ProbeBase* self = b.get();
  self->strategy_->set_reply_handler([self](const ProbeReply& rep) { self->handle_reply(rep); });
  self->strategy_->set_discovery_handler(
      [self](const IpAddress& from, std::uint64_t nonce) { self->handle_discovery(from, nonce); });
  self->strategy_->set_interval(self->session_.interval());
  (void)self->session_.take_verdict_change();  // the initial verdict is queried, not announced
  self->session_.start(Clock::now());
  self->arm();
  return b;
}

ProbeBase::~ProbeBase() { sd_event_source_disable_unref(timer_); }

int ProbeBase::release_socket() {
  timer_ = sd_event_source_disable_unref(timer_);
  return strategy_->release_socket();
}

ProbeBase::Counters ProbeBase::counters() const {
  Counters c = counters_;
  c.missed = session_.missed();
  return c;
}

void ProbeBase::set_targets(std::vector<IpAddress> targets, TargetMode mode) {
  mode_ = mode;
  session_.set_targets(std::move(targets));
  publish();
  arm();
}

void ProbeBase::set_fdt(Duration fdt) {
  session_.set_fdt(fdt, Clock::now());
  strategy_->set_interval(session_.interval());
  publish();
  arm();
}

void ProbeBase::reset(bool require_repair) {
  session_.reset(Clock::now(), require_repair);
  nonces_.fill({});
  publish();
  arm();
}

void ProbeBase::pause() {
  if (paused_) return;
  paused_ = true;
  session_.stop();
  arm();
}

void ProbeBase::resume() {
  if (!paused_) return;
  paused_ = false;
  session_.start(Clock::now());
  arm();
}

Result<void> ProbeBase::discover() {
  discovery_nonce_ = sock::random64();
  return strategy_->discover(discovery_nonce_);
}

int ProbeBase::on_timer(sd_event_source*, std::uint64_t, void* userdata) noexcept {
  auto* self = static_cast<ProbeBase*>(userdata);
  // A callback threw: probing goes on from the next deadline.
  if (!guard_callback("probe timer", false, [&] {
        self->tick();
        return true;
      }))
    guard_void_callback("probe timer", [&] { self->arm(); });
  return 0;
}

void ProbeBase::tick() {
  // Answers already queued are taken before probes are declared lost (a loaded
  // loop may run the timer before the socket): handle_reply() may re-arm, harmless.
  if (session_.losses_due(Clock::now())) strategy_->drain();
  const TimePoint now = Clock::now();
  auto t = session_.on_timer(now);
  for (auto& res : t.results) {
    ++counters_.lost;
    res.member = member_;
    if (callbacks_.result) callbacks_.result(res);
  }
  if (t.send) {
    const std::uint64_t nonce = sock::random64();
    nonces_[t.send->seq % kNonceSlots] = {t.send->seq, true, nonce};
    newest_seq_ = t.send->seq;
    ++counters_.sent;
    if (!strategy_->send(t.send->seq, t.send->target, nonce)) ++counters_.send_errors;
  }
  for (const auto& dead : t.dead_targets)
    if (callbacks_.target_dead) callbacks_.target_dead(member_, dead);
  const std::uint64_t unsolicited = strategy_->counters().unsolicited;
  if (unsolicited > unsolicited_reported_ &&
      (unsolicited_report_at_ == TimePoint{} || now - unsolicited_report_at_ >= kUnsolicitedReportInterval)) {
    if (callbacks_.unsolicited) callbacks_.unsolicited(member_, unsolicited - unsolicited_reported_, unsolicited);
    unsolicited_reported_ = unsolicited;
    unsolicited_report_at_ = now;
  }
  publish();
  arm();
}

void ProbeBase::handle_reply(const ProbeReply& r) {
  if (paused_) return;  // the link is down or the member offline: nothing counts
  if (!nonce_matches(r.seq, r.nonce)) {
    ++counters_.ignored;
    return;
  }
  auto reply = session_.on_reply(r.seq, r.from, r.sent, r.received, Clock::now());
  switch (reply.kind) {
    case ProbeSession::ReplyKind::accepted:
      ++counters_.acked;
      if (reply.result && callbacks_.result) {
        reply.result->member = member_;
        callbacks_.result(*reply.result);
      }
      break;
    case ProbeSession::ReplyKind::late: ++counters_.late; break;
    case ProbeSession::ReplyKind::rtt_only: ++counters_.rtt_only; break;
    case ProbeSession::ReplyKind::unknown:
    case ProbeSession::ReplyKind::wrong_target: ++counters_.ignored; break;
  }
  if (reply.slow_target && callbacks_.target_slow) callbacks_.target_slow(member_, *reply.slow_target);
  strategy_->set_interval(session_.interval());
  publish();
  arm();
}

bool ProbeBase::nonce_matches(ProbeSeq seq, std::uint64_t nonce) const {
  const Nonce& n = nonces_[seq % kNonceSlots];
  return n.used && n.seq == seq && n.value == nonce &&
         static_cast<ProbeSeq>(newest_seq_ - seq) < probe::kHistorySize;
}

void ProbeBase::handle_discovery(const IpAddress& from, std::uint64_t nonce) {
  if (paused_ || discovery_nonce_ == 0 || nonce != discovery_nonce_) {
    ++counters_.ignored;
    return;
  }
  if (callbacks_.discovered) callbacks_.discovered(member_, from);
}

void ProbeBase::publish() {
  if (auto v = session_.take_verdict_change(); v && callbacks_.verdict) callbacks_.verdict(member_, *v);
}

void ProbeBase::arm() {
  auto when = paused_ ? std::nullopt : session_.next_deadline();
  int r = 0;
  if (!when) {
    r = sd_event_source_set_enabled(timer_, SD_EVENT_OFF);
  } else {
    // Coalescing window well under the interval (sd-event treats 0 as 250 ms).
    auto acc = std::chrono::duration_cast<std::chrono::microseconds>(session_.interval() / 20).count();
    if (acc < 1) acc = 1;
    r = sd_event_source_set_time(timer_, usec_of(*when));
    if (r >= 0) r = sd_event_source_set_time_accuracy(timer_, static_cast<std::uint64_t>(acc));
    if (r >= 0) r = sd_event_source_set_enabled(timer_, SD_EVENT_ONESHOT);
  }
  // Only a broken loop fails here; probing of this member would stop without a word.
  if (r < 0) throw std::system_error(-r, std::generic_category(), "arm the probe timer of " + member_);
}

}  // namespace mpathd::detect
