#include "dbus/systemd.hpp"

#include <systemd/sd-bus.h>

#include <cstring>
#include <list>
#include <map>

#include <spdlog/spdlog.h>

#include "guard/guard.hpp"

namespace mpathd::dbus {

namespace {
constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kIface = "org.freedesktop.systemd1.Manager";
constexpr std::size_t kMaxEarly = 1024;  // JobRemoved seen before the reply naming the job

std::uint64_t usec(Duration d) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
}
}  // namespace

std::string JobOutcome::describe() const {
  return method + " " + unit + ": " + (result.empty() ? error : result);
}

struct SystemdManager::Impl {
  struct Job {
    Impl* owner = nullptr;
    JobOutcome outcome;
    Duration timeout{};
    Done done;
    sd_bus_slot* call = nullptr;
    sd_event_source* timer = nullptr;
    bool replied = false;
    std::string failure;  // set: the timer fires at once and reports it
  };

  sd_event* loop;
  sd_bus* bus = nullptr;
  bool closed = false;  // Disconnected seen: a new connection before the next job
  std::list<std::unique_ptr<Job>> jobs;
  std::map<std::string, std::string> early;  // job path -> result

  explicit Impl(sd_event* e) : loop(sd_event_ref(e)) {}
  ~Impl() {
    for (auto& j : jobs) drop(*j);
    jobs.clear();
    if (bus) sd_bus_flush_close_unref(bus);
    sd_event_unref(loop);
  }

  static void drop(Job& j) {
    j.call = sd_bus_slot_unref(j.call);
    j.timer = sd_event_source_disable_unref(j.timer);
  }

  // The connection, made when first needed: the JobRemoved match and Subscribe go out
  // first, so the bus delivers every JobRemoved of the jobs asked for after them.
  Result<void> connect() {
    if (bus && !closed && sd_bus_is_open(bus) > 0) return {};
    if (bus) bus = sd_bus_flush_close_unref(bus);
    closed = false;
    int r = sd_bus_open_system(&bus);
    if (r >= 0) r = sd_bus_set_exit_on_disconnect(bus, 0);
    if (r >= 0) r = sd_bus_attach_event(bus, loop, SD_EVENT_PRIORITY_NORMAL);
    if (r >= 0)
      r = sd_bus_match_signal_async(bus, nullptr, kDest, kPath, kIface, "JobRemoved", &Impl::on_removed, nullptr, this);
    if (r >= 0)
      r = sd_bus_match_signal(bus, nullptr, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                              "org.freedesktop.DBus.Local", "Disconnected", &Impl::on_disconnected, this);
    if (r >= 0) r = sd_bus_call_method_async(bus, nullptr, kDest, kPath, kIface, "Subscribe", &Impl::on_subscribed, this, "");
    if (r < 0) {
      if (bus) bus = sd_bus_flush_close_unref(bus);
      return fail(Errc::system, std::string("cannot connect to the system bus: ") + std::strerror(-r));
    }
    return {};
  }

  void run(std::string_view method, const std::string& unit, Duration timeout, Done done) {
    auto job = std::make_unique<Job>();
    Job* j = job.get();
    j->owner = this;
    j->outcome.method = std::string(method);
    j->outcome.unit = unit;
    j->timeout = timeout;
    j->done = std::move(done);
    jobs.push_back(std::move(job));
    std::uint64_t now = 0;
    sd_event_now(loop, CLOCK_MONOTONIC, &now);
    if (auto c = connect(); !c) {
      j->failure = c.error().message;
    } else {
      sd_bus_message* m = nullptr;
      int r = sd_bus_message_new_method_call(bus, &m, kDest, kPath, kIface, j->outcome.method.c_str());
      if (r >= 0) r = sd_bus_message_append(m, "ss", unit.c_str(), "replace");
      if (r >= 0) r = sd_bus_call_async(bus, &j->call, m, &Impl::on_reply, j, usec(timeout));
      sd_bus_message_unref(m);
      if (r < 0) j->failure = std::string("cannot call ") + j->outcome.method + ": " + std::strerror(-r);
    }
    const std::uint64_t at = j->failure.empty() ? now + usec(timeout) : now;
    if (int r = sd_event_add_time(loop, &j->timer, CLOCK_MONOTONIC, at, 1000, &Impl::on_timer, j); r < 0)
      spdlog::error("systemd {} {}: timer: {}", j->outcome.method, unit, std::strerror(-r));
  }

  void finish(Job* j) {
    auto it = std::find_if(jobs.begin(), jobs.end(), [&](const auto& p) { return p.get() == j; });
    if (it == jobs.end()) return;
    std::unique_ptr<Job> own = std::move(*it);
    jobs.erase(it);
    drop(*own);
    if (!own->outcome.job.empty()) early.erase(own->outcome.job);
    if (own->done) own->done(own->outcome);
  }

  static int on_timer(sd_event_source*, uint64_t, void* self) {
    return guard_void_callback("systemd job timer", [&] {
      auto* j = static_cast<Job*>(self);
      j->outcome.error = !j->failure.empty() ? j->failure
                                               : "no result within " +
                                                     std::to_string(std::chrono::duration_cast<milliseconds>(j->timeout).count()) +
                                                     " ms" + (j->replied ? " (job " + j->outcome.job + ")" : "");
      j->owner->finish(j);
    });
  }

  static int on_reply(sd_bus_message* m, void* self, sd_bus_error*) {
    return guard_void_callback("systemd job reply", [&] {
      auto* j = static_cast<Job*>(self);
      j->call = sd_bus_slot_unref(j->call);
      j->replied = true;
      if (const sd_bus_error* e = sd_bus_message_get_error(m)) {
        j->outcome.error = std::string(e->name ? e->name : "error") + (e->message ? std::string(": ") + e->message : "");
        return j->owner->finish(j);
      }
      const char* path = nullptr;
      if (int r = sd_bus_message_read(m, "o", &path); r < 0) {
        j->outcome.error = std::string("bad reply: ") + std::strerror(-r);
        return j->owner->finish(j);
      }
      j->outcome.job = path;
      if (auto it = j->owner->early.find(path); it != j->owner->early.end()) {
        j->outcome.result = it->second;
        j->owner->finish(j);
      }
    });
  }

  static int on_removed(sd_bus_message* m, void* self, sd_bus_error*) {
    return guard_void_callback("systemd JobRemoved", [&] {
      auto* d = static_cast<Impl*>(self);
      std::uint32_t id = 0;
      const char *path = nullptr, *unit = nullptr, *result = nullptr;
      if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0) return;
      for (auto& j : d->jobs)
        if (j->replied && j->outcome.job == path) {
          j->outcome.result = result;
          return d->finish(j.get());
        }
      // Maybe one of ours whose reply is still on its way.
      if (std::any_of(d->jobs.begin(), d->jobs.end(), [](const auto& j) { return !j->replied; })) {
        if (d->early.size() >= kMaxEarly) d->early.erase(d->early.begin());
        d->early[path] = result;
      }
    });
  }

  static int on_subscribed(sd_bus_message* m, void*, sd_bus_error*) {
    if (const sd_bus_error* e = sd_bus_message_get_error(m))
      spdlog::debug("systemd Subscribe: {}", e->message ? e->message : "failed");
    return 0;
  }

  // The bus went away: jobs whose reply came will get no JobRemoved on this connection.
  static int on_disconnected(sd_bus_message*, void* self, sd_bus_error*) {
    return guard_void_callback("systemd bus disconnected", [&] {
      auto* d = static_cast<Impl*>(self);
      d->closed = true;
      std::vector<Job*> waiting;
      for (auto& j : d->jobs)
        if (j->replied) waiting.push_back(j.get());
      for (Job* j : waiting) {
        j->outcome.error = "the system bus went away before the job's result";
        d->finish(j);
      }
    });
  }
};

SystemdManager::SystemdManager(sd_event* event) : impl_(std::make_unique<Impl>(event)) {}
SystemdManager::~SystemdManager() = default;

void SystemdManager::run(std::string_view method, const std::string& unit, Duration timeout, Done done) {
  impl_->run(method, unit, timeout, std::move(done));
}

std::size_t SystemdManager::pending() const { return impl_->jobs.size(); }

}  // namespace mpathd::dbus
