// Probe-based failure detection, wired: one detector (lib/detect ProbeBase with the
// strategy core's choose_probe_kind() picks) per group member, targets per group, and
// the Engine fed with verdicts, results and targets. The detectors never call the
// policy: the Engine classifies interface vs group failure.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/probe.hpp"
#include "net/kernel.hpp"

namespace mpathd::detect {
class ProbeBase;
}

namespace mpathd {

// What a member's detector should be, and whether it probes now: the decisions of
// Probing::sync(), pure (unit-tested in tests/unit/probing_test.cpp without sockets).
struct DetectorSpec {
  ProbeKind kind = ProbeKind::none;  // none: the member is not probed
  std::optional<IpAddress> source;   // icmp: its first IPv4 test address; icmp6: its link-local one
  Duration fdt{};                    // the configured FDT (the detector raises it itself)
  // A dual-stack member (kind icmp, and an IPv6 test address besides the IPv4 one) is
  // also probed by ICMPv6 from this link-local address, as in.mpathd probes both
  // families; the verdicts combine by combine_family_verdicts() (both must fail).
  std::optional<IpAddress> source6;
  bool operator==(const DetectorSpec&) const = default;
};
// For member `m` of `g`, given the link-local address its interface has, if any (its
// link-local test address, when it has one and the kernel has it).
DetectorSpec detector_spec(const Config& config, const Group& g, const Member& m, std::optional<IpAddress> link_local);
// A detector probes while its link is up, the member is not offline and its MAC is
// unique; otherwise it is paused (and reset, so old successes do not count).
bool detector_runs(const Member& m);
// Whether a route event can change the probe targets: those come from the main table's
// routes with a gateway (refresh_targets() dumps that table, detect:: keeps the
// gateways), so the kernel's own prefix, local and multicast routes cannot. Without this
// every burst of them (256 links finishing IPv6 DAD: ~1 s of bursts) cost two route
// dumps.
bool may_change_probe_targets(const net::Route& r);

class Probing {
 public:
  // after_change runs after a verdict changed the Engine (the daemon reconciles);
  // status_changed before it when only what status.json shows changed (a dual-stack
  // member's per-family probe state, which makes no Engine event).
  Probing(sd_event* event, Engine& engine, net::Kernel& kernel, std::function<void()> after_change,
          std::function<void()> status_changed = {});
  ~Probing();
  Probing(const Probing&) = delete;
  Probing& operator=(const Probing&) = delete;

  // Creates, keeps or drops detectors so that every group member has the one its
  // configuration and addresses call for. Call after start, reload and topology or
  // address changes; detectors that stay are not disturbed.
  void sync();
  // As sync(), from a deferred event source: safe to call from any callback, also one
  // of a detector's own (which sync() may replace).
  void request_sync();
  // Engine events: links going down/up and offline pause and reset detectors; a group
  // failure makes every member of the group earn its repair and flushes discovered
  // targets. Handled deferred, like request_sync().
  void on_event(const Event& e);
  // Kernel address events: link-local addresses (icmp6 sources) and the host's own
  // addresses (never targets).
  void on_address(unsigned ifindex, const IpPrefix& prefix, bool present);
  // Route changes that may_change_probe_targets(): routers may have come or gone
  // (deferred; one route dump for all groups).
  void request_targets();
  // Shutdown: every detector stops and its socket is closed, all at once
  // (detect::sock::close_all(): one after another they took 10 s at 1024 members).
  void close_sockets();

 private:
  // One probed family of a member: its kind (icmp/arp: IPv4, icmp6: IPv6), source,
  // detector and latest verdict.
  struct Path {
    ProbeKind kind = ProbeKind::none;
    std::optional<IpAddress> source;
    std::unique_ptr<detect::ProbeBase> base;
    Family family() const { return kind == ProbeKind::icmp6 ? Family::v6 : Family::v4; }
  };
  // A member's detection: one path, or two for a dual-stack member.
  struct Detector {
    std::string group;
    unsigned ifindex = 0;
    Duration fdt{};
    std::vector<Path> paths;
    bool same_paths(const std::vector<std::pair<ProbeKind, std::optional<IpAddress>>>& want) const;
  };
  // Every group's targets from the main table's routes: dumped again only when a route
  // event may have changed them (request_targets) or none were read yet; a sync (an
  // address or member change) reuses the last dump.
  void refresh_targets();
  void set_group_targets(const Group& g, const std::vector<net::Route>& routes,
                         const TargetSelector::LocalAddresses& local);
  std::optional<IpAddress> link_local(unsigned ifindex, const std::optional<IpAddress>& prefer = std::nullopt) const;
  void pause_or_resume(const Member& m, Detector& d);
  // The member's verdict: its path's, or both families' combined.
  static ProbeVerdict verdict_of(const Detector& d);
  std::unique_ptr<detect::ProbeBase> open_path(const Group& g, const Member& m, ProbeKind kind,
                                               const std::optional<IpAddress>& source, Duration fdt);
  void on_path_verdict(const std::string& member);
  void run_deferred();
  void arm();
  static int on_defer(sd_event_source* s, void* self);

  sd_event* event_;
  Engine& engine_;
  net::Kernel& kernel_;
  std::map<std::string, Detector> detectors_;           // by member name
  std::map<std::string, TargetSelector> selectors_;     // by group name
  std::vector<std::pair<unsigned, IpPrefix>> addresses_;  // the host's addresses
  std::function<void()> after_change_;
  std::function<void()> status_changed_;
  sd_event_source* defer_ = nullptr;
  bool sync_pending_ = false;
  bool targets_pending_ = false;  // the routes may have changed: dump them again
  std::optional<std::vector<net::Route>> routes_;  // the main table's, as last dumped
  std::vector<std::string> members_pending_;        // pause/resume to re-evaluate
  std::vector<std::string> resets_pending_;         // detectors whose link went down
  std::vector<std::string> group_failures_pending_;  // groups to reset and rediscover
};

}  // namespace mpathd
