// Where mpathd keeps what must survive it, in two copies of each file:
//  - the runtime copy (runtime directory, a tmpfs under systemd: write + rename, no
//    fsync), written synchronously before the daemon acts. It survives a restart or a
//    kill -9 of the daemon, not a reboot, and costs microseconds: the failover path
//    writes only this one.
//  - the durable copy (state directory: write, fsync, rename, fsync of the directory),
//    written by a writer thread, never by the event loop. Writes are coalesced per
//    file: the newest content wins, older queued content is dropped. A write that fails
//    is tried again (back-off 1 s doubling up to 5 s, and at once with newer content); one that hangs (a dead disk or NFS server)
//    stalls only the writer thread, and is reported once it has taken `stall`.
// Loading prefers the runtime copy (the newest of this boot); after a reboot, or after
// a clean stop (close() removes the runtime copies once the durable ones are written),
// the durable copy is read.
// Problems are logged once per cause, with "saved again" when they end, and problem()
// says what is wrong now (status.json "persistence").
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"

namespace mpathd {

class StateStore {
 public:
  // Called on the loop thread with the outcome of the durable write of the content
  // given (or of newer content of the same file), or an error once it has stalled.
  using Done = std::function<void(const Result<void>&)>;

  StateStore(sd_event* event, std::string runtime_dir, std::string state_dir, Duration stall = seconds(2));
  ~StateStore();  // close(seconds(2)) if not closed
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  struct Loaded {
    std::string path;  // the copy read
    std::string text;
  };
  // The newest copy of `name`; nullopt when there is none. A runtime copy that was
  // read successfully should be given to save() again: the durable copy may be older (a
  // crash came before the writer).
  std::optional<Loaded> load(const std::string& name) const;
  // After a copy turned out to be unreadable: the other one, if `bad` was the runtime
  // copy (nullopt otherwise).
  std::optional<Loaded> load_durable_after(const Loaded& bad, const std::string& name) const;

  // Writes the runtime copy now and queues the durable one. The result is the runtime
  // write's (a failure removes the stale runtime copy, so the durable one is read next).
  Result<void> save(const std::string& name, std::string content, Done done = {});
  // Calls done once everything queued for `name` so far is durable (at once when
  // nothing is pending: with the last outcome).
  void when_written(const std::string& name, Done done);

  // Before a clean exit: waits up to `timeout` for the durable writes; the runtime
  // copies of the files that are durable are removed.
  void close(Duration timeout);

  // What is wrong with saving now ("" when nothing): the runtime or durable write's
  // error, or "writing PATH has not finished for N s".
  std::string problem() const;
  // Called (on the loop thread) when problem() changes.
  std::function<void()> on_problem_changed;

  std::string runtime_path(const std::string& name) const { return runtime_dir_ + "/" + name; }
  std::string durable_path(const std::string& name) const { return state_dir_ + "/" + name; }

  struct Shared;  // between the loop and the writer thread (state_store.cpp)

 private:
  struct Waiter {
    std::uint64_t generation;
    TimePoint deadline;
    Done done;
  };
  struct File {
    std::uint64_t queued = 0;   // generation of the newest content handed to the writer
    std::uint64_t written = 0;  // newest generation made durable
    std::uint64_t reported = 0;  // newest generation the writer has finished with
    std::optional<Error> durable_error;
    std::optional<Error> runtime_error;
    bool stalled = false;  // reported as not responding
    std::vector<Waiter> waiters;
    std::string retry_content;  // the content of a failed write, tried again
    std::uint64_t retry_generation = 0;
    Duration backoff{};
    TimePoint retry_at{};
  };

  static int on_wake(sd_event_source*, int, uint32_t, void* self);
  static int on_timer(sd_event_source*, uint64_t, void* self);
  static int on_kick(sd_event_source*, void* self);
  void drain();
  void check_timers();
  void rearm();
  void report(const std::string& name, File& f);
  void queue(const std::string& name, std::uint64_t generation, std::string content);

  sd_event* event_;
  std::string runtime_dir_;
  std::string state_dir_;
  Duration stall_;
  std::shared_ptr<Shared> shared_;
  sd_event_source* wake_ = nullptr;
  sd_event_source* timer_ = nullptr;
  sd_event_source* kick_ = nullptr;  // wakes the writer after the current input
  std::map<std::string, File> files_;
  std::string last_problem_;  // as logged, so that each cause is logged once
  bool closed_ = false;
};

}  // namespace mpathd
