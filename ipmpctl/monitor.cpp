// monitor: mpathd's events as they happen, one line each (or JSON lines with -o json).
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <ostream>

#include "ipmpctl.hpp"
#include "views.hpp"

namespace ipmpctl {

namespace {

struct Args {
  bool probes = false;
  long count = -1;  // stop after this many events
};

std::uint64_t realtime_usec() {
  struct timeval tv{};
  gettimeofday(&tv, nullptr);
  return static_cast<std::uint64_t>(tv.tv_sec) * 1000000U + static_cast<std::uint64_t>(tv.tv_usec);
}

std::string local_time(std::uint64_t usec) {
  time_t secs = static_cast<time_t>(usec / 1000000U);
  struct tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03u", buf, static_cast<unsigned>((usec / 1000U) % 1000U));
  return out;
}

int monitor(Context& ctx, const Args& a) {
  if (!ctx.no_fields("monitor")) return kUsage;
  auto c = ctx.client(true);
  if (!c) return ctx.fail("monitor", "monitor", "mpathd", c.error());
  client::Client& cl = **c;
  const bool json = ctx.output.mode == OutputMode::json;
  long seen = 0;

  auto emit = [&](const std::string& line, nlohmann::json j) {
    auto now = realtime_usec();
    if (json) {
      j["time_usec"] = now;
      ctx.out() << j.dump() << std::endl;
    } else {
      ctx.out() << local_time(now) << ' ' << line << std::endl;
    }
    if (a.count >= 0 && ++seen >= a.count) cl.stop();
  };

  client::Callbacks cb;
  cb.interface_state_changed = [&](const auto& e) { emit(event_line(e), event_json(e)); };
  cb.group_state_changed = [&](const auto& e) { emit(event_line(e), event_json(e)); };
  cb.address_moved = [&](const auto& e) { emit(event_line(e), event_json(e)); };
  cb.shared_address_changed = [&](const auto& e) { emit(event_line(e), event_json(e)); };
  if (a.probes) cb.probe_result = [&](const auto& e) { emit(event_line(e), event_json(e)); };
  cb.object_added = [&](const auto& e) { emit(event_line(e, true), event_json(e, true)); };
  cb.object_removed = [&](const auto& e) { emit(event_line(e, false), event_json(e, false)); };
  cb.daemon_presence = [&](bool present) {
    emit(present ? "mpathd appeared on the bus" : "mpathd left the bus",
         {{"event", present ? "daemon_appeared" : "daemon_lost"}});
  };
  if (auto r = cl.subscribe(std::move(cb)); !r) return ctx.fail("monitor", "monitor", "mpathd", r.error());
  // Say hello to the daemon so that a missing daemon is reported, not waited for.
  if (auto s = cl.snapshot(); !s) return ctx.fail("monitor", "monitor", "mpathd", s.error());
  // As busctl monitor: says on stderr that the subscription is in place.
  ctx.err() << "Monitoring mpathd events (Ctrl-C to stop)." << std::endl;

  int sfd = stop_signal_fd();
  int code = kOk;
  for (;;) {
    auto w = cl.run(std::chrono::milliseconds(-1), sfd);
    if (!w) {
      code = ctx.fail("monitor", "monitor", "mpathd", w.error());
      break;
    }
    if (*w != client::Wake::timeout) break;  // stopped (count reached) or Ctrl-C
  }
  if (sfd >= 0) close(sfd);
  return code;
}

}  // namespace

void setup_monitor(CLI::App& app, Runner* run) {
  auto* cmd = add_verb(app, "monitor", "print state changes, address moves and shared address transitions as they happen");
  auto a = std::make_shared<Args>();
  cmd->add_flag("--probes", a->probes, "also print every probe result");
  cmd->add_option("--count", a->count, "exit after N events")->check(positive_count());
  cmd->callback([run, a] { *run = [a](Context& ctx) { return monitor(ctx, *a); }; });
}

}  // namespace ipmpctl
