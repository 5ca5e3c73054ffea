// The daemon: one sd-event loop wiring the kernel edge (lib/net) to the Engine and the
// Engine's events to the data plane, the status file and the logs.
#pragma once

#include <systemd/sd-event.h>

#include <memory>
#include <string>

#include "core/config.hpp"
#include "core/engine.hpp"
#include "core/error.hpp"

namespace mpathd {

struct DaemonOptions {
  std::string config_path = "/etc/mpathd/mpathd.conf";
  std::string state_dir = "/var/lib/mpathd";
  std::string runtime_dir = "/run/mpathd";
  std::string lock_dir = "/run/mpathd";  // one lock per network namespace (instance_lock.hpp)
  std::string bus_name = "org.ipmp.Mpathd1";  // mpathd@NAME uses org.ipmp.Mpathd1.ns_NAME
  std::string hook_host = MPATHD_HOOK_HOST;    // mpathd-hookhost (libexec; $MPATHD_HOOKHOST in tests)
};

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> create(DaemonOptions options, Config config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs the loop until SIGTERM/SIGINT; returns the process exit status.
  int run();

  sd_event* event() const;
  Engine& engine();

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpathd
