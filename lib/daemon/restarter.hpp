// The built-in systemd hook, the data-service restarter (seed 003's stop_net/start_net;
// mpathd-hooks(7)): for a shared address, or every shared address of a group, units
// stopped before a release and started or restarted once a takeover put the address in
// place, through systemd's Manager on the system bus (lib/dbus SystemdManager).
//
// It runs on mpathd's loop but never waits on it: every job is an asynchronous call
// whose result (JobRemoved) or timeout comes back as a callback. A release that has
// stops to wait for is held by SharedAddresses (pending: the address stays in the
// kernel, new packets dropped) until stop()'s `done`. Failed jobs are logged and shown
// (status.json "hooks", Manager.Hooks); none is fatal.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "dbus/service.hpp"

namespace mpathd {

namespace dbus {
class SystemdManager;
}

class Restarter {
 public:
  // changed: a hook's counters or last error changed (status.json).
  Restarter(sd_event* event, std::function<void()> changed);
  ~Restarter();
  Restarter(const Restarter&) = delete;
  Restarter& operator=(const Restarter&) = delete;

  // Keeps the [[hook]]s of type systemd (the others are the hook hosts').
  void configure(const std::vector<HookConfig>& hooks);
  bool empty() const { return hooks_.empty(); }

  // A release of `address` (of `group`): every stop unit of the hooks for it is asked
  // to stop, all at once. Returns false when there is none (`done` is not called);
  // else `done` is called once, from the loop and never inside this call, when every
  // stop job ended or its hook's timeout passed.
  bool stop(const std::string& group, const IpAddress& address, std::function<void()> done);
  // A takeover of `address` is in place: its start units are started and its restart
  // units restarted. Nothing waits for them; their results are logged.
  void start(const std::string& group, const IpAddress& address);

  nlohmann::json status() const;               // entries of status.json "hooks"
  std::vector<dbus::HookState> states() const;  // entries of Manager.Hooks

 private:
  struct Hook {
    HookConfig cfg;
    std::uint64_t jobs = 0, failed = 0, pending = 0;
    std::string last_error;
  };
  std::vector<const Hook*> hooks_for(const std::string& group, const IpAddress& address) const;
  // Runs one job of the hook named `hook`; then(ok) after its result is logged.
  void run(const std::string& hook, const char* method, const std::string& unit, Duration timeout,
           const std::string& why, std::function<void()> then);
  Hook* find(const std::string& name);

  std::function<void()> changed_;
  std::vector<Hook> hooks_;
  std::unique_ptr<dbus::SystemdManager> manager_;
};

}  // namespace mpathd
