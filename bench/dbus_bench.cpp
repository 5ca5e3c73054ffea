// dbus_bench: the client side of bench/dbus.py (D-Bus latencies of mpathd).
//
//   dbus_bench query  --runs N [--wait S] [--objects] [--direct SOCKET] [--watch PID]...
//                                             times Client::snapshot() (Manager.GetState;
//                                             with --objects snapshot_from_objects(), i.e.
//                                             GetManagedObjects) N times on one connection
//                                             (--direct: mpathd's direct socket, no bus);
//                                             prints one JSON object: per call its wall
//                                             time, and the CPU time and the time spent
//                                             waiting for a CPU (schedstat) of this thread
//                                             and of each --watch process's main thread
//   dbus_bench events --count N [--timeout S] prints one JSON line per
//                                             Interface.StateChanged received, with
//                                             the CLOCK_MONOTONIC receive time (ns)
//                                             and the CLOCK_REALTIME one (us)
//
// The bus is $DBUS_SYSTEM_BUS_ADDRESS (or the system bus), as for ipmpctl. `query`
// waits up to --wait seconds for mpathd to appear on the bus (by NameOwnerChanged,
// not by polling). `events` prints {"event":"ready"} once its match is in place and
// mpathd answered, then stops after N events, after --timeout seconds, or on
// SIGINT/SIGTERM. Exit codes: 0 ok, 1 bus or daemon error, 2 usage, 3 timeout.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.hpp"

namespace {

using mpathd::client::Client;
namespace mc = mpathd::client;

constexpr int kOk = 0, kError = 1, kUsage = 2, kTimeout = 3;

std::int64_t mono_ns() {
  struct timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int usage(std::string_view why) {
  std::cerr << "dbus_bench: " << why << "\n"
            << "usage: dbus_bench query --runs N [--wait SECONDS] [--objects] [--direct SOCKET] [--watch PID]...\n"
            << "       dbus_bench events --count N [--timeout SECONDS]\n";
  return kUsage;
}

bool parse_long(std::string_view s, long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 0;
}

int fail(std::string_view what, const mc::Error& e) {
  std::cerr << "dbus_bench: " << what << ": " << mc::describe(e) << "\n";
  return kError;
}

// Nearest rank, as bench/*.py compute it.
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::max<std::size_t>(1, rank) - 1];
}

// A snapshot, waiting up to `wait` for mpathd to own its name on the bus.
mc::Result<mc::Snapshot> first_snapshot(Client& c, std::chrono::milliseconds wait) {
  bool present = false;
  mc::Callbacks cb;
  cb.daemon_presence = [&](bool p) {
    present = p;
    if (p) c.stop();
  };
  if (auto r = c.subscribe(std::move(cb)); !r) return std::unexpected(r.error());
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto s = c.snapshot();
    if (s || s.error().failure != mc::Failure::unreachable) return s;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return s;
    present = false;
    auto w = c.run(left);  // until NameOwnerChanged says it is there
    if (!w) return std::unexpected(w.error());
    if (*w == mc::Wake::timeout && !present) return s;
  }
}

// A thread's CPU time and its time runnable but not running (ns), from schedstat; zeros
// if it cannot be read (the process is gone).
struct Sched {
  std::int64_t run_ns = 0, wait_ns = 0;
};
Sched schedstat(const std::string& path) {
  Sched s;
  if (std::FILE* f = std::fopen(path.c_str(), "re")) {
    long long run = 0, wait = 0;
    if (std::fscanf(f, "%lld %lld", &run, &wait) == 2) s = {run, wait};
    std::fclose(f);
  }
  return s;
}

int query(long runs, long wait_s, bool objects, const std::string& direct, const std::vector<long>& watch) {
  auto c = direct.empty() ? Client::connect() : Client::connect_direct(direct);
  if (!c) return fail("connect", c.error());
  // Direct: mpathd made the socket, so it is up (and there is no bus to watch).
  auto first = direct.empty() ? first_snapshot(*c, std::chrono::seconds(wait_s)) : c->snapshot();
  if (!first) return fail("snapshot", first.error());
  if (direct.empty())
    if (auto r = c->subscribe({}); !r) return fail("unsubscribe", r.error());

  std::size_t addresses = 0;
  for (const auto& g : first->groups) addresses += g.data_addresses.size();
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(runs));
  // Per call and per process (this one first, then --watch's): CPU time and time spent
  // runnable but waiting for a CPU, from schedstat, read outside the timed call.
  std::vector<std::string> stat_paths{"/proc/thread-self/schedstat"};
  for (long pid : watch) stat_paths.push_back("/proc/" + std::to_string(pid) + "/schedstat");
  std::vector<std::vector<double>> cpu_ms(stat_paths.size()), wait_ms(stat_paths.size());
  std::vector<Sched> before(stat_paths.size());
  for (long i = 0; i < runs; ++i) {
    for (std::size_t k = stat_paths.size(); k-- > 0;) before[k] = schedstat(stat_paths[k]);  // own last
    auto t0 = std::chrono::steady_clock::now();
    auto s = objects ? c->snapshot_from_objects() : c->snapshot();
    auto t1 = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < stat_paths.size(); ++k) {
      const Sched after = schedstat(stat_paths[k]);
      cpu_ms[k].push_back(static_cast<double>(after.run_ns - before[k].run_ns) / 1e6);
      wait_ms[k].push_back(static_cast<double>(after.wait_ns - before[k].wait_ns) / 1e6);
    }
    if (!s) return fail("snapshot", s.error());
    if (s->groups.size() != first->groups.size() ||
        s->interfaces.size() != first->interfaces.size()) {
      std::cerr << "dbus_bench: the state changed during the bench\n";
      return kError;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  nlohmann::json j = {{"measure", objects ? "snapshot_from_objects" : "snapshot"},
                      {"groups", first->groups.size()},
                      {"interfaces", first->interfaces.size()},
                      {"data_addresses", addresses},
                      {"runs", runs},
                      {"samples_ms", ms},
                      {"cpu_ms", cpu_ms},
                      {"wait_ms", wait_ms}};
  if (!ms.empty()) {
    j["min_ms"] = *std::min_element(ms.begin(), ms.end());
    j["median_ms"] = percentile(ms, 50);
    j["p99_ms"] = percentile(ms, 99);
    j["max_ms"] = *std::max_element(ms.begin(), ms.end());
  }
  std::cout << j.dump() << std::endl;
  return kOk;
}

int stop_signal_fd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) < 0) return -1;
  return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int events(long count, long timeout_s) {
  int sfd = stop_signal_fd();
  if (sfd < 0) {
    std::perror("dbus_bench: signalfd");
    return kError;
  }
  auto c = Client::connect();
  if (!c) return fail("connect", c.error());
  long seen = 0;
  mc::Callbacks cb;
  cb.interface_state_changed = [&](const mc::InterfaceStateChanged& e) {
    const auto t = mono_ns();  // first thing: the receive time
    const auto real = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
    nlohmann::json j = {{"event", "interface_state_changed"},
                        {"mono_ns", t},
                        {"realtime_usec", real},  // against the interface's LastChangeUsec
                        {"interface", e.interface},
                        {"old_state", e.old_state},
                        {"new_state", e.new_state},
                        {"new_flags", e.new_flags},
                        {"reason", e.reason}};
    std::cout << j.dump() << std::endl;
    if (++seen >= count) c->stop();
  };
  // The match is in place when subscribe() returns; the snapshot proves mpathd answers.
  if (auto r = c->subscribe(std::move(cb)); !r) return fail("subscribe", r.error());
  if (auto s = c->snapshot(); !s) return fail("snapshot", s.error());
  std::cout << nlohmann::json{{"event", "ready"}, {"mono_ns", mono_ns()}}.dump() << std::endl;

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (seen < count) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return kTimeout;
    auto w = c->run(left, sfd);
    if (!w) return fail("run", w.error());
    if (*w == mc::Wake::fd_ready) break;  // SIGINT/SIGTERM: a normal end
    if (*w == mc::Wake::timeout) return kTimeout;
  }
  close(sfd);
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return usage("missing mode");
  const auto mode = args[0];
  long runs = 200, count = -1, wait_s = 10, timeout_s = 60;
  bool objects = false;
  std::vector<long> watch;
  std::string direct;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--direct") {
      if (i + 1 >= args.size() || args[i + 1].empty()) return usage("--direct needs a socket path");
      direct = args[++i];
      continue;
    }
    if (args[i] == "--objects") {
      objects = true;
      continue;
    }
    if (args[i] == "--watch") {
      long pid = 0;
      if (i + 1 >= args.size() || !parse_long(args[i + 1], pid)) return usage("--watch needs a pid");
      watch.push_back(pid);
      ++i;
      continue;
    }
    long* target = nullptr;
    if (args[i] == "--runs") target = &runs;
    else if (args[i] == "--count") target = &count;
    else if (args[i] == "--wait") target = &wait_s;
    else if (args[i] == "--timeout") target = &timeout_s;
    else return usage("unknown option " + std::string(args[i]));
    if (i + 1 >= args.size() || !parse_long(args[i + 1], *target))
      return usage(std::string(args[i]) + " needs a non-negative number");
    ++i;
  }
  if (mode == "query") return query(runs, wait_s, objects, direct, watch);
  if (mode == "events") {
    if (count <= 0) return usage("events needs --count N (N > 0)");
    return events(count, timeout_s);
  }
  return usage("unknown mode " + std::string(mode));
}
