// A small client of systemd's D-Bus API (org.freedesktop.systemd1 on the system bus),
// for the built-in systemd hook (the data-service restarter, mpathd-hooks(7)):
// Manager.StartUnit / StopUnit / RestartUnit(ss) -> o with mode "replace", and the
// job's result from the Manager's JobRemoved(uoss) signal. Everything is asynchronous
// on the caller's sd-event loop: nothing here ever waits for systemd.
//
// As systemctl does: the JobRemoved match is installed and Manager.Subscribe called
// when the connection is made, before any job; a JobRemoved that arrives before the
// reply naming its job is kept until that reply comes.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/types.hpp"

namespace mpathd::dbus {

// How one job ended. `result` is systemd's ("done", "canceled", "timeout", "failed",
// "dependency", "skipped") when the job ended; otherwise `error` says why there is no
// result (the call failed, the bus went away, no result within the time allowed).
struct JobOutcome {
  std::string method;  // StartUnit, StopUnit, RestartUnit
  std::string unit;
  std::string job;     // the job's object path, once known
  std::string result;
  std::string error;
  bool ok() const { return result == "done"; }
  std::string describe() const;  // "StopUnit nginx.service: done", "... : no result within 5000 ms"
};

class SystemdManager {
 public:
  using Done = std::function<void(const JobOutcome&)>;

  // Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured) when first needed,
  // and again after the bus went away.
  explicit SystemdManager(sd_event* event);
  ~SystemdManager();
  SystemdManager(const SystemdManager&) = delete;
  SystemdManager& operator=(const SystemdManager&) = delete;

  // Queues method(unit, "replace"); `done` is called exactly once, from the loop and
  // never inside this call: with the job's result, or with an error at `timeout` (the
  // job itself goes on in systemd). Destroying the manager drops the callbacks.
  void run(std::string_view method, const std::string& unit, Duration timeout, Done done);

  // Jobs waiting for their result.
  std::size_t pending() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpathd::dbus
