// Group health as Pacemaker node attributes (issue 12; `node-attributes` in
// mpathd.conf): after every input the number of usable members of each group goes to
// the attribute mpathd-<group> through `attrd_updater -n NAME -U VALUE` (`-D` for a
// group that is gone, or when switched off), run as a child process found on PATH.
// Never blocks the loop: one child at a time, watched by a pidfd, killed after a
// timeout; the latest value wins; a failure (Pacemaker absent or slow) is logged once
// and retried with back-off (core/node_attributes.hpp decides, this file executes).
// The built-in hook [[hook]] type = "node-attributes" (or node-attributes = true).
#pragma once

#include <systemd/sd-event.h>
#include <sys/types.h>

#include <optional>
#include <string>

#include "core/engine.hpp"
#include "core/node_attributes.hpp"
#include "core/types.hpp"

namespace mpathd {

class NodeAttributes {
 public:
  static constexpr Duration kTimeout = std::chrono::seconds(5);

  NodeAttributes(sd_event* event, const TimeSource& clock, std::string command = "attrd_updater");
  ~NodeAttributes();
  NodeAttributes(const NodeAttributes&) = delete;
  NodeAttributes& operator=(const NodeAttributes&) = delete;

  // From the configuration (start and reload). Switched off, the attributes set so far
  // are deleted.
  void set_enabled(bool on);
  // After every input: the values the groups ask for now.
  void update(const Engine& engine);
  // Why the last update failed, "" once one worked (status.json, Manager.Hooks).
  const std::string& last_error() const { return last_error_; }

 private:
  void kick();
  bool spawn(const NodeAttributeQueue::Update& u);
  void finished(bool ok, const std::string& why);
  void close_child();
  static int on_child(sd_event_source*, int fd, uint32_t revents, void* self);
  static int on_timeout(sd_event_source*, uint64_t, void* self);
  static int on_retry(sd_event_source*, uint64_t, void* self);

  sd_event* event_;
  const TimeSource& clock_;
  std::string command_;
  bool enabled_ = false;
  std::string last_error_;
  NodeAttributeQueue queue_;
  std::optional<NodeAttributeQueue::Update> current_;  // what the child does
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int err_ = -1;  // the child's standard error (a pipe), read when it has exited
  bool timed_out_ = false;
  sd_event_source* child_source_ = nullptr;
  sd_event_source* timeout_source_ = nullptr;
  sd_event_source* retry_source_ = nullptr;
};

}  // namespace mpathd
