// A STAND-IN for systemd's Manager, for the tests of mpathd's systemd hook (the
// data-service restarter) on a private test bus — not systemd. It owns
// org.freedesktop.systemd1 and serves /org/freedesktop/systemd1 with the
// org.freedesktop.systemd1.Manager methods the hook uses, with systemd's names and
// signatures: StartUnit(ss)->o, StopUnit(ss)->o, RestartUnit(ss)->o, Subscribe(), and
// the JobRemoved(uoss) signal. Nothing is started or stopped: each unit named on the
// command line behaves as told, and every call and signal is printed on stdout.
//
//   systemd-standin [UNIT=BEHAVIOUR]...
//     BEHAVIOUR: done[:MS] | failed[:MS] | never | early
//       done/failed: JobRemoved with that result, MS milliseconds after the reply (0)
//       never:       a job whose JobRemoved never comes (the caller's timeout)
//       early:       JobRemoved "done" sent before the reply naming the job
//     other units: the error org.freedesktop.systemd1.NoSuchUnit, as systemd answers
//
// Output, one line each (milliseconds on CLOCK_MONOTONIC):
//   ready
//   <ms> call <Method> <unit> <mode> <job path>
//   <ms> removed <id> <job path> <unit> <result>
// DBUS_SYSTEM_BUS_ADDRESS names the bus; SIGTERM ends it.
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>

namespace {

struct Behaviour {
  std::string result = "done";
  long delay_ms = 0;
  bool never = false;
  bool early = false;
};

struct Standin {
  sd_bus* bus = nullptr;
  sd_event* event = nullptr;
  std::map<std::string, Behaviour> units;
  std::uint32_t next_id = 0;
};

struct Pending {
  Standin* s;
  std::uint32_t id;
  std::string path, unit, result;
};

long now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int emit_removed(Standin& s, std::uint32_t id, const std::string& path, const std::string& unit,
                 const std::string& result) {
  std::printf("%ld removed %u %s %s %s\n", now_ms(), id, path.c_str(), unit.c_str(), result.c_str());
  std::fflush(stdout);
  return sd_bus_emit_signal(s.bus, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "JobRemoved",
                            "uoss", id, path.c_str(), unit.c_str(), result.c_str());
}

int on_delayed(sd_event_source* src, uint64_t, void* userdata) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(userdata));
  emit_removed(*p->s, p->id, p->path, p->unit, p->result);
  sd_event_source_unref(src);
  return 0;
}

int on_job(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  auto& s = *static_cast<Standin*>(userdata);
  const char *unit = nullptr, *mode = nullptr;
  if (int r = sd_bus_message_read(m, "ss", &unit, &mode); r < 0) return r;
  const char* method = sd_bus_message_get_member(m);
  auto it = s.units.find(unit);
  if (it == s.units.end()) {
    std::printf("%ld call %s %s %s none\n", now_ms(), method, unit, mode);
    std::fflush(stdout);
    return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", unit);
  }
  const Behaviour& b = it->second;
  const std::uint32_t id = ++s.next_id;
  const std::string path = "/org/freedesktop/systemd1/job/" + std::to_string(id);
  std::printf("%ld call %s %s %s %s\n", now_ms(), method, unit, mode, path.c_str());
  std::fflush(stdout);
  if (b.early) emit_removed(s, id, path, unit, "done");
  if (int r = sd_bus_reply_method_return(m, "o", path.c_str()); r < 0) return r;
  if (b.never || b.early) return 1;
  if (b.delay_ms == 0) {
    emit_removed(s, id, path, unit, b.result);
    return 1;
  }
  std::uint64_t now = 0;
  sd_event_now(s.event, CLOCK_MONOTONIC, &now);
  auto* p = new Pending{&s, id, path, unit, b.result};
  if (int r = sd_event_add_time(s.event, nullptr, CLOCK_MONOTONIC, now + static_cast<std::uint64_t>(b.delay_ms) * 1000,
                                1000, on_delayed, p);
      r < 0) {
    delete p;
    return r;
  }
  return 1;
}

int on_subscribe(sd_bus_message* m, void*, sd_bus_error*) { return sd_bus_reply_method_return(m, ""); }

const sd_bus_vtable kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("StartUnit", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(mode), "o", SD_BUS_PARAM(job), on_job, 0),
    SD_BUS_METHOD_WITH_NAMES("StopUnit", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(mode), "o", SD_BUS_PARAM(job), on_job, 0),
    SD_BUS_METHOD_WITH_NAMES("RestartUnit", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(mode), "o", SD_BUS_PARAM(job), on_job,
                             0),
    SD_BUS_METHOD("Subscribe", "", "", on_subscribe, 0),
    SD_BUS_SIGNAL_WITH_NAMES("JobRemoved", "uoss", SD_BUS_PARAM(id) SD_BUS_PARAM(job) SD_BUS_PARAM(unit) SD_BUS_PARAM(result),
                             0),
    SD_BUS_VTABLE_END};

bool parse(const std::string& arg, Standin& s) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  Behaviour b;
  std::string what = arg.substr(eq + 1);
  const auto colon = what.find(':');
  if (colon != std::string::npos) {
    b.delay_ms = std::strtol(what.c_str() + colon + 1, nullptr, 10);
    what.resize(colon);
  }
  if (what == "never") b.never = true;
  else if (what == "early") b.early = true;
  else if (what == "done" || what == "failed") b.result = what;
  else return false;
  s.units[arg.substr(0, eq)] = b;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Standin s;
  for (int i = 1; i < argc; ++i)
    if (!parse(argv[i], s)) {
      std::fprintf(stderr, "systemd-standin: bad argument '%s' (UNIT=done[:MS]|failed[:MS]|never|early)\n", argv[i]);
      return 2;
    }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int r = sd_event_default(&s.event);
  if (r >= 0) r = sd_event_add_signal(s.event, nullptr, SIGTERM, nullptr, nullptr);
  if (r >= 0) r = sd_event_add_signal(s.event, nullptr, SIGINT, nullptr, nullptr);
  if (r >= 0) r = sd_bus_open_system(&s.bus);
  if (r >= 0) r = sd_bus_add_object_vtable(s.bus, nullptr, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", kVtable, &s);
  if (r >= 0) r = sd_bus_request_name(s.bus, "org.freedesktop.systemd1", 0);
  if (r >= 0) r = sd_bus_attach_event(s.bus, s.event, 0);
  if (r < 0) {
    std::fprintf(stderr, "systemd-standin: %s\n", std::strerror(-r));
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  r = sd_event_loop(s.event);
  sd_bus_flush_close_unref(s.bus);
  sd_event_unref(s.event);
  return r < 0 ? 1 : 0;
}
