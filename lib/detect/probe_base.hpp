// The probe base: one per probed member. It owns the schedule timer, the statistics
// (a core ProbeSession: history, per-target RTTs, verdict) and the target list, asks
// its strategy to send, checks every answer against what was sent, and reports
// through callbacks. It never calls the policy (the Engine); the daemon subscribes.
//
// Wiring (what the owner calls):
//   link down            -> pause(); reset()        (history cleared; repair needs 10 acks)
//   link up              -> resume()
//   member offline       -> pause();  online -> resume()
//   targets changed      -> set_targets(list, mode)  (from a TargetSelector)
//   FDT changed (config) -> set_fdt(fdt)
//   callbacks.target_dead(member, t) -> mark it dead in the selector, set_targets(new list)
//   callbacks.target_slow(member, t) -> the same
//   callbacks.discovered(member, h)  -> selector.add_discovered(h), set_targets(...)
#pragma once

#include <systemd/sd-event.h>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/probe.hpp"
#include "detect/strategy.hpp"

namespace mpathd::detect {

class ProbeBase {
 public:
  static constexpr Duration kUnsolicitedReportInterval = seconds(10);
  struct Callbacks {
    // Every acked or lost probe (ipmpstat -p).
    std::function<void(const ProbeResult&)> result;
    // Only when the verdict changes (state, fdt_unachievable, needed_fdt).
    std::function<void(const std::string& member, const ProbeVerdict&)> verdict;
    // A target stopped answering while others answer: replace it.
    std::function<void(const std::string& member, const IpAddress& target)> target_dead;
    // A host answered our multicast echo (not filtered against local addresses).
    std::function<void(const std::string& member, const IpAddress& host)> discovered;
    // Unsolicited answers (someone claims a target: forged?) were received since the
    // last report; at most one report per kUnsolicitedReportInterval. `total` counts
    // them all.
    std::function<void(const std::string& member, std::uint64_t since_last, std::uint64_t total)> unsolicited;
    // A target answers far slower than all the others: replace it.
    std::function<void(const std::string& member, const IpAddress& target)> target_slow;
  };
  struct Counters {
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
    std::uint64_t lost = 0;
    std::uint64_t late = 0;         // our probe, answered after it was declared lost
    std::uint64_t rtt_only = 0;     // answers to RTT-only probes (FDT raised)
    std::uint64_t ignored = 0;      // not an answer to an outstanding probe of ours
    std::uint64_t send_errors = 0;
    std::uint64_t missed = 0;       // sends skipped because the loop ran late
  };

  // Starts probing at once (resumed) once targets are set. `random` in [0, 1) picks
  // send times; empty means a real random source.
  // `quiet_period`: ProbeSession::Options::quiet_period.
  static Result<std::unique_ptr<ProbeBase>> create(sd_event* event, std::string member,
                                                   std::unique_ptr<ProbeStrategy> strategy, Duration fdt,
                                                   Callbacks callbacks, Duration quiet_period = {},
                                                   std::function<double()> random = {});
  ~ProbeBase();
  ProbeBase(const ProbeBase&) = delete;
  ProbeBase& operator=(const ProbeBase&) = delete;

  void set_targets(std::vector<IpAddress> targets, TargetMode mode);
  void set_fdt(Duration fdt);
  // Clears history and RTTs; with require_repair (the default, for link down) the
  // verdict is failed until 10 intervals in a row are answered in time.
  void reset(bool require_repair = true);
  void pause();   // no probes, answers dropped, probes in flight forgotten
  void resume();
  bool paused() const { return paused_; }
  // Sends one multicast echo; answers come through callbacks.discovered.
  Result<void> discover();

  const std::string& member() const { return member_; }
  ProbeVerdict verdict() const { return session_.verdict(); }
  TargetMode mode() const { return mode_; }
  const std::vector<IpAddress>& targets() const { return session_.targets(); }
  Duration interval() const { return session_.interval(); }
  Counters counters() const;
  const ProbeSession& session() const { return session_; }
  const ProbeStrategy& strategy() const { return *strategy_; }
  // Shutdown: the probe timer stops and the socket is handed over (-1: none) to be
  // closed with the others (sock::close_all()).
  int release_socket();

 private:
  ProbeBase(sd_event* event, std::string member, std::unique_ptr<ProbeStrategy> strategy, Duration fdt,
            Callbacks callbacks, Duration quiet_period, std::function<double()> random);
  static int on_timer(sd_event_source* s, std::uint64_t usec, void* userdata) noexcept;
  void tick();
  void handle_reply(const ProbeReply& r);
  void handle_discovery(const IpAddress& from, std::uint64_t nonce);
  void publish();
  void arm();

  sd_event* event_;
  std::string member_;
  std::unique_ptr<ProbeStrategy> strategy_;
  Callbacks callbacks_;
  ProbeSession session_;
  TargetMode mode_ = TargetMode::disabled;
  sd_event_source* timer_ = nullptr;
  bool paused_ = false;
  // The nonces of the last kHistorySize probes (those the history can still match), in
  // slots by sequence number modulo kNonceSlots: a slot holds the newest probe of its
  // residue. Inline: a map of them cost 3.3 KB per member in nodes.
  struct Nonce {
    ProbeSeq seq = 0;
    bool used = false;
    std::uint64_t value = 0;
  };
  static constexpr std::size_t kNonceSlots = 64;
  static_assert(kNonceSlots >= probe::kHistorySize);
  bool nonce_matches(ProbeSeq seq, std::uint64_t nonce) const;
  std::array<Nonce, kNonceSlots> nonces_{};
  ProbeSeq newest_seq_ = 0;  // the last probe sent (nonces_ holds it)
  std::uint64_t discovery_nonce_ = 0;
  std::uint64_t unsolicited_reported_ = 0;
  TimePoint unsolicited_report_at_{};
  Counters counters_;
};

}  // namespace mpathd::detect
