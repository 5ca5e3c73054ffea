#include "daemon/state_store.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "daemon/atomic_file.hpp"
#include "daemon/event_loop.hpp"

namespace mpathd {

namespace {
constexpr Duration kFirstRetry = seconds(1);
constexpr Duration kMaxRetry = seconds(5);
constexpr Duration kPoll = milliseconds(250);  // while a durable write is outstanding

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

// Everything the writer thread touches; it holds a reference of its own, so that a
// thread stuck in a write that never returns can be left behind at exit.
struct StateStore::Shared {
  struct Job {
    std::uint64_t generation;
    std::string content;
  };
  struct Completed {
    std::string name;
    std::uint64_t generation;
    Result<void> result;
    std::string content;  // kept when the write failed: it is tried again
  };
  struct Busy {
    std::string name;
    std::uint64_t generation;
    TimePoint since;
  };

  std::string state_dir;
  int efd = -1;  // the writer's "something completed" to the loop
  std::mutex mu;
  std::condition_variable work;  // jobs or stop, for the writer
  std::condition_variable idle;  // no job and none running, for close()
  std::map<std::string, Job> jobs;
  std::optional<Busy> busy;
  std::vector<Completed> completed;
  bool stop = false;

  ~Shared() {
    if (efd >= 0) ::close(efd);
  }

  static void run(std::shared_ptr<Shared> s) {
    // A write into a pipe whose reader went away (a FIFO put where a file belongs) fails
    // with EPIPE and is retried; its SIGPIPE, directed at this thread, stays blocked here
    // instead of ending the daemon.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::unique_lock lk(s->mu);
    for (;;) {
      s->work.wait(lk, [&] { return s->stop || !s->jobs.empty(); });
      if (s->jobs.empty()) return;  // stopping, nothing left
      auto it = s->jobs.begin();
      std::string name = it->first;
      Job job = std::move(it->second);
      s->jobs.erase(it);
      s->busy = Busy{name, job.generation, Clock::now()};
      lk.unlock();
      auto r = write_file_atomically(s->state_dir + "/" + name, job.content, true);
      lk.lock();
      s->busy.reset();
      s->completed.push_back({std::move(name), job.generation, r, r ? std::string() : std::move(job.content)});
      const std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(s->efd, &one, sizeof one);
      if (s->jobs.empty()) s->idle.notify_all();
    }
  }
};

StateStore::StateStore(sd_event* event, std::string runtime_dir, std::string state_dir, Duration stall)
    : event_(event),
      runtime_dir_(std::move(runtime_dir)),
      state_dir_(std::move(state_dir)),
      stall_(stall),
      shared_(std::make_shared<Shared>()) {
  shared_->state_dir = state_dir_;
  shared_->efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (shared_->efd < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  if (int r = sd_event_add_io(event_, &wake_, shared_->efd, EPOLLIN, &StateStore::on_wake, this); r < 0)
    throw std::runtime_error(std::string("state writer: ") + std::strerror(-r));
  // A later iteration of the loop than the input that queued the write (the netlink
  // monitor's events, of higher priority, first).
  if (sd_event_add_defer(event_, &kick_, &StateStore::on_kick, this) >= 0) {
    sd_event_source_set_priority(kick_, SD_EVENT_PRIORITY_NORMAL);
    sd_event_source_set_enabled(kick_, SD_EVENT_OFF);
  }
  std::thread(&Shared::run, shared_).detach();  // close() waits for it, bounded
}

StateStore::~StateStore() {
  if (!closed_) close(seconds(2));
  sd_event_source_disable_unref(wake_);
  sd_event_source_disable_unref(timer_);
  sd_event_source_disable_unref(kick_);
}

std::optional<StateStore::Loaded> StateStore::load(const std::string& name) const {
  if (auto t = read_text(runtime_path(name))) return Loaded{runtime_path(name), std::move(*t)};
  if (auto t = read_text(durable_path(name))) return Loaded{durable_path(name), std::move(*t)};
  return std::nullopt;
}

std::optional<StateStore::Loaded> StateStore::load_durable_after(const Loaded& bad, const std::string& name) const {
  if (bad.path != runtime_path(name)) return std::nullopt;
  if (auto t = read_text(durable_path(name))) return Loaded{durable_path(name), std::move(*t)};
  return std::nullopt;
}

void StateStore::queue(const std::string& name, std::uint64_t generation, std::string content) {
  {
    std::lock_guard lk(shared_->mu);
    shared_->jobs[name] = {generation, std::move(content)};  // the newest wins
  }
  // The writer is woken once the loop has finished the current input: on a busy
  // machine a woken thread can take the CPU from the loop before it has changed the
  // kernel and announced the move.
  if (kick_) sd_event_source_set_enabled(kick_, SD_EVENT_ONESHOT);
  else shared_->work.notify_one();
}

int StateStore::on_kick(sd_event_source*, void* self) {
  static_cast<StateStore*>(self)->shared_->work.notify_one();
  return 0;
}

Result<void> StateStore::save(const std::string& name, std::string content, Done done) {
  File& f = files_[name];
  auto r = write_file_atomically(runtime_path(name), content, false);
  if (!r) {
    f.runtime_error = r.error();
    ::unlink(runtime_path(name).c_str());  // never leave a stale copy to be preferred
  } else {
    f.runtime_error.reset();
  }
  const std::uint64_t gen = ++f.queued;
  f.retry_content.clear();  // superseded
  queue(name, gen, std::move(content));
  if (done) f.waiters.push_back({gen, Clock::now() + stall_, std::move(done)});
  report(name, f);
  rearm();
  return r;
}

void StateStore::when_written(const std::string& name, Done done) {
  File& f = files_[name];
  if (f.reported >= f.queued) {
    done(f.durable_error ? Result<void>(std::unexpected(*f.durable_error)) : Result<void>{});
    return;
  }
  f.waiters.push_back({f.queued, Clock::now() + stall_, std::move(done)});
  rearm();
}

int StateStore::on_wake(sd_event_source*, int fd, uint32_t, void* self) {
  return guarded("state writer", [&] {
    std::uint64_t n = 0;
    [[maybe_unused]] auto r = ::read(fd, &n, sizeof n);
    static_cast<StateStore*>(self)->drain();
  });
}

void StateStore::drain() {
  std::vector<Shared::Completed> done;
  {
    std::lock_guard lk(shared_->mu);
    done.swap(shared_->completed);
  }
  for (auto& c : done) {
    File& f = files_[c.name];
    f.reported = std::max(f.reported, c.generation);
    f.stalled = false;
    if (c.result) {
      f.written = std::max(f.written, c.generation);
      f.durable_error.reset();
      f.backoff = {};
    } else {
      f.durable_error = c.result.error();
      if (c.generation == f.queued) {  // nothing newer on its way: try this again
        f.retry_content = std::move(c.content);
        f.retry_generation = c.generation;
        f.backoff = f.backoff == Duration{} ? kFirstRetry : std::min(kMaxRetry, f.backoff * 2);
        f.retry_at = Clock::now() + f.backoff;
      }
    }
    std::vector<Waiter> due;
    std::erase_if(f.waiters, [&](Waiter& w) {
      if (w.generation > c.generation) return false;
      due.push_back(std::move(w));
      return true;
    });
    for (auto& w : due) w.done(c.result);
    report(c.name, f);
  }
  rearm();
}

void StateStore::check_timers() {
  const auto now = Clock::now();
  std::optional<Shared::Busy> busy;
  {
    std::lock_guard lk(shared_->mu);
    busy = shared_->busy;
  }
  if (busy && now - busy->since >= stall_) {
    File& f = files_[busy->name];
    if (!f.stalled) {
      f.stalled = true;
      report(busy->name, f);
    }
  }
  for (auto& [name, f] : files_) {
    std::vector<Waiter> due;
    std::erase_if(f.waiters, [&](Waiter& w) {
      if (w.deadline > now) return false;
      due.push_back(std::move(w));
      return true;
    });
    for (auto& w : due)
      w.done(fail(Errc::system, "writing " + durable_path(name) + " has not finished for " +
                                    std::to_string(std::chrono::duration_cast<milliseconds>(stall_).count()) +
                                    " ms (the state directory is not responding)"));
    if (!f.retry_content.empty() && f.retry_at <= now && f.retry_generation == f.queued) {
      spdlog::debug("state writer: trying {} again", durable_path(name));
      queue(name, f.retry_generation, std::exchange(f.retry_content, {}));
    }
  }
}

int StateStore::on_timer(sd_event_source*, uint64_t, void* self) {
  return guarded("state writer timer", [&] {
    auto* s = static_cast<StateStore*>(self);
    s->check_timers();
    s->rearm();
  });
}

void StateStore::rearm() {
  std::optional<TimePoint> next;
  auto at = [&](TimePoint t) { next = next ? std::min(*next, t) : t; };
  const auto now = Clock::now();
  for (const auto& [name, f] : files_) {
    if (f.reported < f.queued) at(now + kPoll);  // watch for a stall
    for (const auto& w : f.waiters) at(w.deadline);
    if (!f.retry_content.empty()) at(f.retry_at);
  }
  if (!next) {
    if (timer_) sd_event_source_set_enabled(timer_, SD_EVENT_OFF);
    return;
  }
  if (int r = arm_timer(event_, &timer_, *next, milliseconds(10), &StateStore::on_timer, this); r < 0)
    spdlog::error("state writer timer: {}", std::strerror(-r));
}

std::string StateStore::problem() const {
  std::string out;
  auto add = [&](const std::string& p) { out += (out.empty() ? "" : "; ") + p; };
  for (const auto& [name, f] : files_) {
    if (f.runtime_error) add(f.runtime_error->message);
    if (f.stalled)
      add("writing " + durable_path(name) + " has not finished for " +
          std::to_string(std::chrono::duration_cast<milliseconds>(stall_).count()) +
          " ms (the state directory is not responding)");
    else if (f.durable_error)
      add(f.durable_error->message);
  }
  return out;
}

void StateStore::report(const std::string& name, File& f) {
  (void)f;
  auto p = problem();
  if (p == last_problem_) return;
  if (!p.empty())
    spdlog::error("state not saved: {}; mpathd goes on failing over and keeps trying", p);
  else
    spdlog::info("state saved again to {}", durable_path(name));
  last_problem_ = std::move(p);
  if (on_problem_changed) on_problem_changed();
}

void StateStore::close(Duration timeout) {
  if (closed_) return;
  closed_ = true;
  bool idle = false;
  {
    std::unique_lock lk(shared_->mu);
    shared_->stop = true;
    shared_->work.notify_one();  // also what a pending kick would have woken
    idle = shared_->idle.wait_for(lk, timeout, [&] { return shared_->jobs.empty() && !shared_->busy; });
  }
  drain();
  for (auto& [name, f] : files_) {
    if (idle && f.written == f.queued && !f.durable_error) {
      // Durable: the next start reads the state directory.
      ::unlink(runtime_path(name).c_str());
    } else if (f.queued > f.written) {
      spdlog::warn("{} not written before exit ({}); {} keeps the newest state until the next reboot",
                   durable_path(name), f.durable_error ? f.durable_error->message : "still being written",
                   runtime_path(name));
    }
  }
}

}  // namespace mpathd
