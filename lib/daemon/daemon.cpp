#include "daemon/daemon.hpp"

#include <net/if.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/dataplane.hpp"
#include "daemon/atomic_file.hpp"
#include "daemon/config_file.hpp"
#include "daemon/dataplane_applier.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/member_sysctls.hpp"
#include "daemon/probing.hpp"
#include "daemon/state_file.hpp"
#include "daemon/status.hpp"
#include "dbus/service.hpp"
#include "net/kernel.hpp"
#include "net/monitor.hpp"
#include "net/packet.hpp"

namespace mpathd {

namespace {
std::unexpected<Error> sd_fail(const char* what, int r) {
  return fail(Errc::system, std::string(what) + ": " + std::strerror(-r));
}

// Of the configuration file and its drop-ins (without drop-ins: of the file's text alone,
// as before drop-ins existed, so that saved state stays valid across an upgrade).
std::string file_digest(const std::string& path) {
  auto files = read_config_files(path);
  if (!files) return config_digest("");
  std::string all = (*files)[0].text;
  for (std::size_t i = 1; i < files->size(); ++i)
    all += '\0' + (*files)[i].name + '\0' + (*files)[i].text;
  return config_digest(all);
}

// The saved state; a corrupt one is reported and set aside, and the daemon starts from
// the configuration and the kernel. Groups changed at runtime replace the file's
// groups while the file is the one they started from.
PersistedState load_saved_state(const std::string& path, const std::string& digest, Config& config) {
  auto st = load_state_file(path);
  if (!st) {
    spdlog::error("{}; set aside as {}; starting from the configuration and the kernel", st.error().message,
                  set_aside(path));
    return {};
  }
  if (!st->groups.empty() || !st->state.empty()) {
    if (st->config_digest == digest) {
      config.groups = st->groups;
    } else {
      spdlog::info("{} changed since the state was saved: its groups are used, runtime changes dropped",
                   "the configuration file");
    }
  }
  return *st;
}
}  // namespace

struct Daemon::Impl {
  DaemonOptions options;
  SteadyTimeSource clock;
  Engine engine;
  sd_event* event = nullptr;
  net::Kernel kernel;
  net::PacketSender packets;
  std::unique_ptr<net::Monitor> monitor;
  DataPlaneApplier applier;
  std::unique_ptr<Probing> probing;
  std::unique_ptr<dbus::Service> bus;  // after applier: destroyed first
  MemberSysctls sysctls;
  sd_event_source* engine_timer = nullptr;
  bool status_dirty = true;
  std::vector<std::pair<net::AddrInfo, bool>> early_addresses;  // seen before probing starts
  std::string digest;      // of the configuration file the groups came from
  PersistedState saved;    // what state.json holds now

  Impl(DaemonOptions o, Config c, sd_event* e, net::Kernel k, net::PacketSender p)
      : options(std::move(o)),
        engine(clock, std::move(c)),
        event(e),
        kernel(std::move(k)),
        packets(std::move(p)),
        applier(kernel, packets, event, engine.config()),
        sysctls(net::Sysctl(), options.state_dir + "/sysctl.json") {}

  ~Impl() {
    sd_event_source_disable_unref(engine_timer);
    monitor.reset();
    sd_event_unref(event);
  }

  bool member_index(unsigned ifindex) const {
    for (const auto& g : engine.groups())
      for (const auto& m : g.members)
        if (m.ifindex == ifindex) return true;
    return false;
  }

  bool is_member(const std::string& ifname) const {
    const Group* g = engine.group_of(ifname);
    return g && !g->anonymous();
  }

  void on_link(const net::LinkInfo& l, bool exists) {
    if (exists && is_member(l.name)) sysctls.apply(l.name, l.ifindex);
    engine.observe_link({l.name, l.ifindex, exists, l.admin_up && l.lower_up, l.mac, l.loopback, l.flags});
    after_input();
  }

  void on_address(const net::AddrInfo& a, bool present) {
    applier.observe_address(a.ifindex, a.prefix, present);
    if (probing) {
      probing->on_address(a.ifindex, a.prefix, present);
      if (!a.prefix.addr.is_v4() && a.prefix.addr.is_link_local() && member_index(a.ifindex))
        probing->request_sync();  // a member's icmp6 source
    } else {
      early_addresses.emplace_back(a, present);
    }
    char name[IF_NAMESIZE] = {};
    if (!engine.started() && if_indextoname(a.ifindex, name)) engine.observe_address(name, a.prefix, present);
    if (engine.started()) after_input();
  }

  std::string state_path() const { return options.state_dir + "/state.json"; }

  // The state is on disk before the kernel is changed (seed 003: write updates
  // synchronously, recover on start).
  void persist() {
    PersistedState now{engine.config().groups, digest, engine.export_state()};
    if (now == saved) return;
    if (auto r = write_file_atomically(state_path(), serialize_state(now)); !r) {
      spdlog::error("state not saved: {}", r.error().message);
      return;
    }
    saved = std::move(now);
  }

  // After every input: save the state, bring the kernel in line, re-arm the Engine's
  // timer, publish.
  void after_input() {
    if (!engine.started()) return;
    sysctls.flush();
    persist();
    applier.reconcile(engine);
    if (auto when = engine.next_deadline()) {
      int r = arm_timer(event, &engine_timer, *when, milliseconds(1), &Impl::on_engine_timer, this);
      if (r < 0) spdlog::error("engine timer: {}", std::strerror(-r));
    }
    if (status_dirty) write_status();
  }

  static int on_engine_timer(sd_event_source*, uint64_t, void* self) {
    return guarded("engine timer", [&] {
      auto* d = static_cast<Impl*>(self);
      d->engine.on_timer();
      d->after_input();
    });
  }

  void write_status() {
    status_dirty = false;
    // Interface names are bytes: never let one that is not UTF-8 stop the daemon.
    const auto text = status_json(engine).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (auto r = write_file_atomically(options.runtime_dir + "/status.json", text, false); !r)
      spdlog::warn("{}", r.error().message);
  }

  void on_event(const Event& e) {
    if (probing) probing->on_event(e);
    if (std::holds_alternative<ProbeCompleted>(e)) {
      spdlog::trace("{}", describe(e));
      return;
    }
    status_dirty = true;
    spdlog::info("{}", describe(e));
    // Members that join get the ARP-flux settings; members that leave get theirs back.
    if (const auto* t = std::get_if<TopologyChanged>(&e); t && !t->member.empty() && !t->group.empty()) {
      if (!t->added)
        sysctls.restore(t->member);
      else if (const Member* m = engine.find_member(t->member); m && m->ifindex)
        sysctls.apply(m->name, m->ifindex);
    }
  }

  // SIGHUP and D-Bus Reload: a configuration with errors is rejected as a whole and the
  // running state stays; otherwise only the difference is applied.
  Result<void> reload() {
    sd_notify(0, "RELOADING=1\nSTATUS=reloading configuration");
    auto next = load_config_file(options.config_path);
    if (!next) {
      spdlog::error("reload rejected, running configuration kept:\n{}", next.error().message);
      sd_notify(0, ("READY=1\n" + status_line()).c_str());
      return std::unexpected(next.error());
    }
    engine.reconfigure(*next);
    if (probing) probing->request_sync();
    digest = file_digest(options.config_path);  // runtime changes give way to the file
    after_input();
    spdlog::info("configuration reloaded from {}", options.config_path);
    sd_notify(0, ("READY=1\n" + status_line()).c_str());
    return {};
  }

  std::string status_line() const {
    std::size_t ok = 0, degraded = 0, failed = 0;
    for (const auto& g : engine.groups()) {
      ok += g.state == GroupState::ok;
      degraded += g.state == GroupState::degraded;
      failed += g.state == GroupState::failed;
    }
    return "STATUS=" + std::to_string(engine.groups().size()) + " groups: " + std::to_string(ok) + " ok, " +
           std::to_string(degraded) + " degraded, " + std::to_string(failed) + " failed";
  }

  Result<void> start() {
    engine.subscribe([this](const Event& e) { on_event(e); });
    net::Monitor::Handlers h;
    h.link_changed = [this](const net::LinkInfo& l) { on_link(l, true); };
    h.link_removed = [this](const net::LinkInfo& l) { on_link(l, false); };
    h.address = [this](const net::AddrInfo& a, bool present) { on_address(a, present); };
    h.route = [this](const net::Route& r, bool present) {
      // One of ours flushed by the kernel (an interface went down): put it back.
      if (!present && r.protocol == kRouteProtocol && applier.forget_route(r)) after_input();
      if (probing) probing->request_targets();  // routers may have come or gone
    };
    h.resync = [this] {
      spdlog::warn("netlink events were lost; re-reading links and addresses");
      if (auto r = monitor->dump(); !r) spdlog::error("{}", r.error().message);
    };
    auto m = net::Monitor::open(event, std::move(h));
    if (!m) return std::unexpected(m.error());
    monitor = std::move(*m);
    if (auto r = monitor->dump(); !r) return r;
    // Members that left the configuration get their ARP settings back.
    sysctls.restore_all_except([this](const std::string& n) { return is_member(n); });
    engine.import_state(saved.state);
    engine.start();
    applier.start(engine);
    after_input();
    probing = std::make_unique<Probing>(event, engine, kernel, [this] { after_input(); });
    for (const auto& [a, present] : early_addresses) probing->on_address(a.ifindex, a.prefix, present);
    early_addresses.clear();
    probing->sync();
    after_input();
    // The data plane works without a bus; the D-Bus API is optional.
    if (auto b = dbus::Service::open(event, engine, {.after_change = [this] { after_input(); }, .reload = [this] { return reload(); }},
                                     options.bus_name))
      bus = std::move(*b);
    else
      spdlog::warn("D-Bus API unavailable: {}; running without it", b.error().message);
    write_status();
    sd_notify(0, ("READY=1\n" + status_line()).c_str());
    spdlog::info("mpathd started: {} group(s)", engine.groups().size());
    return {};
  }

  static int on_signal(sd_event_source* s, const signalfd_siginfo* si, void* self) {
    return guarded("signal", [&] {
      auto* d = static_cast<Impl*>(self);
      if (si->ssi_signo == SIGHUP) {
        (void)d->reload();
        return;
      }
      spdlog::info("{}: stopping; data addresses stay where they are", strsignal(static_cast<int>(si->ssi_signo)));
      d->write_status();
      sd_notify(0, "STOPPING=1");
      sd_event_exit(sd_event_source_get_event(s), 0);
    });
  }
};

Result<std::unique_ptr<Daemon>> Daemon::create(DaemonOptions options, Config config) {
  for (const auto* dir : {&options.state_dir, &options.runtime_dir})
    if (auto r = make_directory(*dir, 0755); !r) return std::unexpected(r.error());
  sd_event* event = nullptr;
  if (int r = sd_event_new(&event); r < 0) return sd_fail("sd_event_new", r);
  // Under WatchdogSec= the loop itself sends WATCHDOG=1: a stuck loop stops the pings.
  if (int r = sd_event_set_watchdog(event, true); r < 0) spdlog::warn("watchdog: {}", std::strerror(-r));
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  auto kernel = net::Kernel::open();
  if (!kernel) {
    sd_event_unref(event);
    return std::unexpected(kernel.error());
  }
  auto packets = net::PacketSender::open();
  if (!packets) {
    sd_event_unref(event);
    return std::unexpected(packets.error());
  }
  const std::string digest = file_digest(options.config_path);
  PersistedState saved = load_saved_state(options.state_dir + "/state.json", digest, config);
  auto impl = std::make_unique<Impl>(std::move(options), std::move(config), event, std::move(*kernel),
                                     std::move(*packets));
  impl->digest = digest;
  impl->saved = std::move(saved);
  for (int sig : {SIGTERM, SIGINT, SIGHUP})
    if (int r = sd_event_add_signal(event, nullptr, sig, &Impl::on_signal, impl.get()); r < 0)
      return sd_fail("sd_event_add_signal", r);
  if (auto r = impl->start(); !r) return std::unexpected(r.error());
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

int Daemon::run() {
  int r = sd_event_loop(impl_->event);
  if (r < 0) {
    spdlog::critical("event loop: {}", std::strerror(-r));
    return 1;
  }
  return r;
}

sd_event* Daemon::event() const { return impl_->event; }
Engine& Daemon::engine() { return impl_->engine; }

}  // namespace mpathd
