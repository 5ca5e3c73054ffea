// Hooks (DESIGN §5, mpathd-hooks(7)): the Engine's events handed to plugins and commands
// that run in processes of their own (mpathd-hookhost), never on this loop.
//
// Per hook: a bounded queue of events (overflow counted, reported in status.json and the
// log), one call in flight at a time over a non-blocking SOCK_SEQPACKET socket, a time
// budget per call (over it: the host is killed), a restart with back-off after the host
// dies, and the hook disabled when it keeps failing. Nothing here ever waits for a host:
// every step is an sd-event callback.
//
// Protocol (JSON, one message per datagram), mpathd -> host:
//   {"t":"config","type":"plugin"|"exec","path":..,"args":[..],"command":[..],
//    "timeout_ms":N,"shared":[addresses],"log_level":..}   first, once
//   {"t":"shared","addresses":[..]}                          the shared addresses changed
//   {"t":"event","seq":N,"lost":L,"type":"member-changed",...} one at a time
// host -> mpathd:
//   {"t":"ready","mask":M} | {"t":"refused","error":"..."}   after loading
//   {"t":"done","seq":N[,"error":"..."]}                     after each event
#pragma once

#include <systemd/sd-event.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/cluster.hpp"
#include "core/config.hpp"
#include "core/events.hpp"
#include "daemon/hook_events.hpp"
#include "dbus/service.hpp"

namespace mpathd {

// The JSON of an Engine event as hooks see it, or nullopt for events hooks do not get.
std::optional<nlohmann::json> hook_event(const Event& e);

// The JSON of an association event of the registry (lib/cluster): connect/disconnect
// for TCP, udp-association for a new UDP client; nullopt for what hooks do not get.
std::optional<nlohmann::json> hook_association_event(const IpAddress& shared, const cluster::Association& a,
                                                     bool present);

// The registry reports a TCP association again at each state change (ESTABLISHED ->
// CLOSE_WAIT, ...); hooks get one connect per connection and one disconnect when it
// goes. This keeps the connections reported and filters hook_association_event.
class AssociationFeed {
 public:
  std::optional<nlohmann::json> operator()(const IpAddress& shared, const cluster::Association& a, bool present);

 private:
  std::set<std::tuple<IpAddress, std::uint16_t, IpAddress, std::uint16_t>> connected_;
};

// The JSON of a bound-socket event of the registry: bind, unbind, listen, unlisten.
nlohmann::json hook_socket_event(cluster::SocketEvent ev, const cluster::BoundSocket& s);

struct HookLimits {
  std::size_t queue = 1024;                       // events waiting per hook
  Duration first_backoff = milliseconds(200);     // after the first failure; doubles
  Duration max_backoff = seconds(10);
  unsigned max_failures = 5;                      // within failure_window: disabled
  Duration failure_window = seconds(60);
};

class Hooks {
 public:
  // host: the mpathd-hookhost binary. changed: a hook's state changed (status.json).
  Hooks(sd_event* event, std::string host, std::function<void()> changed, HookLimits limits = {});
  ~Hooks();
  Hooks(const Hooks&) = delete;
  Hooks& operator=(const Hooks&) = delete;

  // Starts, stops and restarts hosts so that they match the configuration: a hook whose
  // configuration is unchanged keeps its host and queue (a disabled one is tried again).
  void configure(const std::vector<HookConfig>& hooks, const std::vector<IpAddress>& shared);
  // Queues the event for every hook that wants it; returns at once.
  void on_event(const Event& e);
  // The kernel is in line with the Engine: the takeover-after and release-after events
  // of the shared-address changes seen since are queued; a release-after of an address
  // for which `releasing` is true (still waiting for its services to stop) waits for a
  // later call.
  void after_reconcile(const std::function<bool(const IpAddress&)>& releasing = {});
  // Queues an event of mpathd/hook.h not produced by the Engine (the registry's).
  void publish(nlohmann::json event);
  nlohmann::json status() const;  // status.json "hooks"
  std::vector<dbus::HookState> states() const;  // Manager.Hooks

 private:
  struct Hook;
  sd_event* event_;
  std::string host_;
  std::function<void()> changed_;
  HookLimits limits_;
  std::vector<std::string> shared_;
  std::vector<nlohmann::json> after_reconcile_;
  std::vector<std::unique_ptr<Hook>> hooks_;
};

}  // namespace mpathd
