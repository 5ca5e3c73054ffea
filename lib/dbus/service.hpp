// The D-Bus API of mpathd (org.ipmp.Mpathd1 on the system bus): an adapter over the
// checked-in contract dbus/org.ipmp.Mpathd1.xml. It reads the Engine on every request,
// turns Engine events into signals and admin methods into Engine commands. The core
// does not know this class exists; only lib/dbus includes <systemd/sd-bus.h>.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <memory>
#include <cstdint>
#include <string>
#include <vector>
#include <string_view>
#include <utility>

#include "core/engine.hpp"
#include "core/error.hpp"

namespace mpathd::dbus {

// One [[hook]] as Manager.Hooks shows it (lib/daemon/hooks.hpp, mpathd-hooks(7)).
struct HookState {
  std::string name;
  std::string type;   // plugin, exec
  std::string state;  // starting, running, restarting, disabled
  std::uint64_t restarts = 0;
  std::uint64_t lost = 0;
  std::string last_error;
};

struct ServiceHooks {
  // Called after every method that changed the Engine (the daemon saves the state and
  // reconciles the kernel there, then calls `reply` once the state is durable, maybe
  // later: the method's reply waits for it, the loop does not). An error (the state
  // could not be saved) is the method's error reply: the change is in force, but the
  // caller learns it will not survive a restart.
  using Reply = std::function<void(Result<void>)>;
  std::function<void(Reply reply)> after_change;
  // Re-reads the configuration (Manager.Reload); empty = not available.
  std::function<Result<void>()> reload;
  // Why the state cannot be saved now, "" when it can (Manager.StateProblem).
  std::function<std::string()> state_problem;
  // The association registry of shared addresses (lib/cluster, owned by the daemon);
  // empty = not available. Export: the JSON text of cluster/association_json.hpp.
  // Import: that text, refused as a whole when invalid; returns the entries held.
  std::function<Result<std::string>(const IpAddress&)> export_associations;
  std::function<Result<std::size_t>(const IpAddress&, std::string_view)> import_associations;
  // The level in force ("ebpf" or "sock-diag") and why eBPF is not ("" when it is).
  std::function<std::pair<std::string, std::string>()> registry_level;
  // Association replication: "joined" or "off", and why it is off ("" when joined).
  std::function<std::pair<std::string, std::string>()> replication;
  // The hooks and their state (Manager.Hooks); empty = none configured.
  std::function<std::vector<HookState>()> hook_states;
};

class Service {
 public:
  static constexpr const char* kDefaultName = "org.ipmp.Mpathd1";

  // Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured), attaches to
  // `event`, registers the objects and requests `bus_name` (mpathd@NAME instances use
  // org.ipmp.Mpathd1.ns_NAME; the object paths and interfaces stay the same). `engine`
  // must outlive the Service. A bus that cannot be reached (now, or later when it
  // goes away) is connected to again in the background, with back-off; a name that
  // cannot be owned is an error. `direct_socket` (non-empty): also serve direct
  // connections there (peer-to-peer, root only, no signals; direct.cpp); a socket that
  // cannot be made is logged and the bus served without it.
  static Result<std::unique_ptr<Service>> open(sd_event* event, Engine& engine, ServiceHooks hooks,
                                               const std::string& bus_name = kDefaultName,
                                               const std::string& direct_socket = {});
  ~Service();

  // The answer of hooks.state_problem changed: PropertiesChanged(StateProblem).
  void state_problem_changed();

  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  struct Impl;

 private:
  explicit Service(std::shared_ptr<Impl> impl);
  // Shared so the Engine listener can hold a weak reference: the Engine has no
  // unsubscribe, and outlives the Service in the daemon.
  std::shared_ptr<Impl> impl_;
};

}  // namespace mpathd::dbus
