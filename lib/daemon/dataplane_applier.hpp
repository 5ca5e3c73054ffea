// Keeps the kernel in line with the Engine's placement: diffs the desired data plane
// (core/dataplane.hpp) against what it last applied and performs only the difference,
// then announces moved addresses to the neighbours. What disappears behind its back
// (an address, route or rule it applied) is forgotten, so that the next reconcile()
// puts it back, with a bounded back-off (RestoreBackoff) for objects that keep
// disappearing.
#pragma once

#include <systemd/sd-event.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dataplane.hpp"
#include "core/engine.hpp"
#include "daemon/notifier.hpp"
#include "net/kernel.hpp"
#include "net/packet.hpp"

namespace mpathd {


class DataPlaneApplier {
 public:
  DataPlaneApplier(net::Kernel& kernel, net::PacketSender& packets, sd_event* event, const Config& config,
                   const TimeSource& clock);
  ~DataPlaneApplier();

  // A kernel address event. Before start() this seeds what is already applied (so
  // addresses in place are adopted, not re-added); afterwards an applied data address
  // that someone else removed is noticed and restored by the next reconcile().
  void observe_address(unsigned ifindex, const IpPrefix& prefix, bool present);
  // A route of ours that the kernel deleted (it flushes routes through an interface
  // that goes down): forgotten, so that the next reconcile() puts it back. True if it
  // was one we had applied.
  bool forget_route(const net::Route& route);
  // A rule of ours that someone deleted: forgotten, as forget_route().
  bool forget_rule(const net::Rule& rule);
  // Compares what was applied with what the kernel has (dumps) and forgets what is
  // gone. The kernel flushes the IPv4 routes through an interface without telling
  // anyone when it goes down or loses its last IPv4 address; an address event or a
  // link event is the cue to look. Returns the number of objects forgotten.
  std::size_t audit();
  // Learns the rules and routes a previous run left, so stale ones get removed.
  void start(const Engine& engine);
  // Applies the difference; returns the number of kernel changes made. `kept`: released
  // shared addresses that stay in place for now (SharedAddresses::kept()).
  std::size_t reconcile(const Engine& engine, const std::vector<KeptAddress>& kept = {});

  // The interface came up: what could not be restored through it is tried again at
  // once (the back-off starts afresh).
  void retry_through(unsigned ifindex) { backoff_.forgive(ifindex); }
  // When an object held back by the back-off may be restored (the daemon arms a timer
  // and reconciles then); nullopt when none is held.
  std::optional<TimePoint> next_retry() const;

  // Addresses the kernel refused to add on the member they were placed on, with the
  // kernel's error ("add 2001:db8::10/64 on m0: Permission denied"). They are tried again
  // (with the restore back-off); the error is logged once, when it first happens or changes.
  const std::map<IpAddress, std::string>& refused() const { return refused_; }
  // When the first notification since the last call went out (failover latency).
  std::optional<Notifier::FirstSent> take_first_announcement();
  // Start-up: the first notifications wait until release (Notifier::hold).
  void hold_announcements() { notifier_->hold(); }
  void release_announcements() { notifier_->release(); }

 private:
  // IPv6 addresses just moved: a neighbour solicitation for each IPv6 gateway of the new
  // holder's routes, from the address, now and when the kernel reports the address
  // (see the .cpp).
  struct Solicit {
    unsigned ifindex = 0;
    Mac mac;
    IpAddress source;
    std::vector<IpAddress> gateways;
  };
  void solicit_gateways(const Member& m, const PlacedAddress& d, const DataPlaneState& want);
  void send_solicitations(const Solicit& p);
  std::vector<Solicit> solicit_;  // waiting for the kernel's report of their address
  bool is_data_address(const IpAddress& a) const;
  template <typename T>
  void lost(const T& object);  // logs and records a disappearance
  template <typename T>
  void hold_back(const T& object);  // records a failed add for the back-off (the caller logs it)
  template <typename T>
  bool may_restore(const T& object) const;
  template <typename T>
  bool forget(std::vector<T>& applied, const T& gone);  // lost() and erased, if applied

  net::Kernel& kernel_;
  net::PacketSender& packets_;
  const Config& config_;
  const TimeSource& clock_;
  DataPlaneState applied_;
  RestoreBackoff backoff_;
  std::map<IpAddress, std::string> refused_;
  std::unique_ptr<Notifier> notifier_;
};

}  // namespace mpathd
