#include "daemon/daemon.hpp"

#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <utility>
#include <sstream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/dataplane.hpp"
#include "daemon/atomic_file.hpp"
#include "daemon/config_file.hpp"
#include "daemon/dataplane_applier.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/hooks.hpp"
#include "daemon/log.hpp"
#include "daemon/log_limiter.hpp"
#include "daemon/member_sysctls.hpp"
#include "daemon/metrics.hpp"
#include "daemon/node_attributes.hpp"
#include "daemon/probing.hpp"
#include "daemon/restarter.hpp"
#include "daemon/shared_addresses.hpp"
#include "daemon/state_file.hpp"
#include "daemon/state_store.hpp"
#include "daemon/status.hpp"
#include "dbus/service.hpp"
#include "net/kernel.hpp"
#include "net/monitor.hpp"
#include "net/packet.hpp"

namespace mpathd {

namespace {
// When the program was loaded (static initialisation, before main): the start-up's
// debug line reports the time before Daemon::start() (options, config, saved state).
const auto kLoadedAt = std::chrono::steady_clock::now();

std::chrono::nanoseconds thread_cpu_time() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
}

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

constexpr const char* kStateName = "state.json";
constexpr const char* kSysctlName = "sysctl.json";
// Direct D-Bus connections (lib/dbus/direct.cpp), in the runtime directory: the
// client library's kDirectSocket is this name in the default one.
constexpr const char* kDirectSocketName = "private";

// The saved state, the runtime copy first (state_store.hpp); a corrupt copy is reported
// and set aside, and the next one is read (the durable copy after a bad runtime copy),
// else the daemon starts from the configuration and the kernel. Groups changed at
// runtime replace the file's groups while the file is the one they started from.
PersistedState load_saved_state(StateStore& store, const std::string& digest, Config& config) {
  auto copy = store.load(kStateName);
  Result<PersistedState> st = PersistedState{};
  while (copy) {
    st = parse_state(copy->text, copy->path);
    if (st) break;
    spdlog::error("{}; set aside as {}", st.error().message, set_aside(copy->path));
    copy = store.load_durable_after(*copy, kStateName);
  }
  if (!st) {
    spdlog::info("starting from the configuration and the kernel");
    return {};
  }
  // A crash may have come before the writer thread: the durable copy catches up.
  if (copy && copy->path == store.runtime_path(kStateName)) (void)store.save(kStateName, copy->text);
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
  LogLimiter log_limiter{clock, {}};  // event lines, per member, group and address
  Engine engine;
  sd_event* event = nullptr;
  net::Kernel kernel;
  net::PacketSender packets;
  std::unique_ptr<net::Monitor> monitor;
  DataPlaneApplier applier;
  std::unique_ptr<StateStore> store;  // state.json and sysctl.json (runtime + durable copies)
  std::unique_ptr<SharedAddresses> shared;  // the kernel side of shared addresses (lib/cluster)
  std::unique_ptr<Probing> probing;
  std::unique_ptr<Hooks> hook_hosts;   // plugin hosts (mpathd-hookhost), off this loop
  AssociationFeed association_feed;     // registry reports -> one connect/disconnect per connection
  std::unique_ptr<Restarter> restarter;  // the systemd hooks: units around releases and takeovers
  std::unique_ptr<dbus::Service> bus;  // after applier: destroyed first
  bool ready = false;                  // start-up over: READY=1 sent, status.json "started"
  unsigned realtime_priority = 0;      // in force (apply_scheduling); 0 = normal scheduling
  std::string scheduling_problem;      // why the configured one is not, "" when it is
  MemberSysctls sysctls;
  Metrics metrics{clock};
  std::unique_ptr<MetricsFile> metrics_file;
  NodeAttributes node_attributes{event, clock};  // group health for Pacemaker
  sd_event_source* engine_timer = nullptr;
  sd_event_source* audit_source = nullptr;  // deferred: compare the data plane with the kernel
  sd_event_source* status_source = nullptr;  // deferred: write status.json
  sd_event_source* realtime_source = nullptr;  // post: back to SCHED_RR before the loop waits
  sd_event_source* restore_timer = nullptr;  // an object held back by the restore back-off
  sd_event_source* log_timer = nullptr;      // writes the limiter's summaries
  sd_event_source* status_timer = nullptr;   // status.json for counters only: at most once a second
  bool status_dirty = true;
  std::uint64_t releases_seen = 0;  // SharedAddresses::releases_begun() after the last input
  std::vector<std::pair<net::AddrInfo, bool>> early_addresses;  // seen before probing starts
  std::map<unsigned, std::string> link_names;  // ifindex -> name, to see renames
  std::string digest;      // of the configuration file the groups came from
  PersistedState saved;    // what state.json holds now
  std::string groups_json;  // serialize_groups(groups_json_of)
  std::vector<GroupConfig> groups_json_of;
  Result<void> persisted;  // the last attempt to write state.json's runtime copy
  FailoverLatency latency;  // netlink link event -> first GARP/NA (status.json)
  std::optional<TimePoint> link_event_at;  // the first link event of the input being handled
  std::chrono::nanoseconds link_event_cpu{};   // the loop thread's CPU time then
  std::optional<TimePoint> state_written_at;  // of that input
  std::map<std::string, std::string> unsuitable;  // member name -> why its link cannot be one

  Impl(DaemonOptions o, Config c, sd_event* e, net::Kernel k, net::PacketSender p, std::unique_ptr<StateStore> st)
      : options(std::move(o)),
        engine(clock, std::move(c)),
        event(e),
        kernel(std::move(k)),
        packets(std::move(p)),
        applier(kernel, packets, event, engine.config(), clock),
        store(std::move(st)),
        sysctls(net::Sysctl(), load_sysctls(*store), store->runtime_path(kSysctlName),
                [this](std::string json) { (void)store->save(kSysctlName, std::move(json)); }),
        metrics_file(std::make_unique<MetricsFile>(event, metrics, engine)) {
    store->on_problem_changed = [this] {
      status_dirty = true;
      if (ready) write_status();
      if (bus) bus->state_problem_changed();
    };
  }

  // The saved sysctl originals ("" = none); a runtime copy read is made durable too.
  static std::string load_sysctls(StateStore& store) {
    auto copy = store.load(kSysctlName);
    if (!copy) return {};
    if (copy->path == store.runtime_path(kSysctlName)) (void)store.save(kSysctlName, copy->text);
    return copy->text;
  }

  ~Impl() {
    sd_event_source_disable_unref(engine_timer);
    sd_event_source_disable_unref(audit_source);
    sd_event_source_disable_unref(status_source);
    sd_event_source_disable_unref(realtime_source);
    sd_event_source_disable_unref(restore_timer);
    sd_event_source_disable_unref(log_timer);
    sd_event_source_disable_unref(status_timer);
    metrics_file.reset();
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

  // Renames (the kernel keeps the index): logged, and a member's interface renamed
  // away gets its ARP settings back under its new name. The Engine does the rest.
  void note_rename(const net::LinkInfo& l, bool exists) {
    auto it = link_names.find(l.ifindex);
    if (!exists) {
      if (it != link_names.end()) link_names.erase(it);
      return;
    }
    if (it == link_names.end() || it->second == l.name) {
      link_names[l.ifindex] = l.name;
      return;
    }
    const std::string old = std::exchange(it->second, l.name);
    const Group* was = engine.group_of(old);
    const Group* now = engine.group_of(l.name);
    std::string what;
    if (was && !was->anonymous())
      what += "; member " + old + " of group " + was->name + " has no interface now (as if removed)";
    if (now && !now->anonymous())
      what += "; it joins group " + now->name + " as member " + l.name + " (as if created)";
    spdlog::info("interface {} (index {}) renamed to {}{}", old, l.ifindex, l.name, what);
    if (was && !was->anonymous()) sysctls.restore(old, l.name);
  }

  void on_link(const net::LinkInfo& l, bool exists) {
    if (!link_event_at && engine.started()) {  // (start-up is not a failover)
      link_event_at = Clock::now();
      link_event_cpu = thread_cpu_time();
    }
    note_rename(l, exists);
    const LinkObservation obs{l.name, l.ifindex, exists, l.admin_up && l.lower_up, l.mac, l.loopback, l.flags};
    if (exists && is_member(l.name)) {
      // The Engine treats such a member as absent; say why, once.
      if (auto problem = member_link_problem(l.name, obs.facts())) {
        if (unsuitable[l.name] != *problem) spdlog::error("{}; it is not used as a member", *problem);
        unsuitable[l.name] = *problem;
      } else {
        unsuitable.erase(l.name);
        sysctls.apply(l.name, l.ifindex, l.ipv4_conf);
      }
    }
    // A member that was taken down lost its IPv4 routes without a notification; once
    // it is up again they can be put back.
    if (exists && l.admin_up && member_index(l.ifindex)) {
      applier.retry_through(l.ifindex);  // what it refused while down is due now
      request_audit();
      if (probing) probing->request_targets();  // routers' routes may have gone with it, silently
    }
    engine.observe_link(obs);
    after_input();
  }

  void on_address(const net::AddrInfo& a, bool present) {
    applier.observe_address(a.ifindex, a.prefix, present);
    // The kernel flushes routes silently when an interface loses its last IPv4 address
    // (and, with promote_secondaries=0, secondaries with their primary).
    if (!present && member_index(a.ifindex)) {
      request_audit();
      if (probing) probing->request_targets();  // the same for the routes to probe targets
    }
    if (probing) {
      probing->on_address(a.ifindex, a.prefix, present);
      if (!a.prefix.addr.is_v4() && a.prefix.addr.is_link_local() && member_index(a.ifindex))
        probing->request_sync();  // a member's icmp6 source
    } else {
      early_addresses.emplace_back(a, present);
    }
    if (!engine.started())  // the name from the link dump, not a socket and an ioctl per address
      if (auto it = link_names.find(a.ifindex); it != link_names.end()) engine.observe_address(it->second, a.prefix, present);
    if (engine.started()) after_input();
  }

  // The state is written before the kernel is changed (seed 003: write updates
  // synchronously, recover on start): its runtime copy here, a rename on a tmpfs with
  // no fsync, which survives a restart of mpathd; the durable copy, which survives a
  // reboot, is the writer thread's (StateStore), so that no disk, full, read-only or
  // hung, can delay or stop a failover. Problems are reported by the store, once per
  // cause; a state whose runtime copy could not be written is tried again after every
  // input.
  // The groups' part of the text is kept until they change (runtime changes, reload):
  // only the state is written out on this path (state_file.hpp).
  void persist() {
    const auto& groups = engine.config().groups;
    auto state = engine.export_state();
    const bool same_groups = groups == saved.groups;
    if (same_groups && digest == saved.config_digest && state == saved.state && persisted) return;
    if (groups_json.empty() || groups != groups_json_of) {
      groups_json = serialize_groups(groups);
      groups_json_of = groups;
    }
    persisted = store->save(kStateName, serialize_state(digest, groups_json, state));
    if (!persisted) return;
    if (!same_groups) saved.groups = groups;
    saved.config_digest = digest;
    saved.state = std::move(state);
  }

  // After a D-Bus change: as after any input; `reply` gets the outcome once the state
  // is durable (or has failed, or stalled): a state that could not be saved is the
  // caller's error. The loop does not wait for it.
  void after_change(std::function<void(Result<void>)> reply) {
    const std::uint64_t since = releases_seen;  // the releases this change began come after
    after_input();
    // A release waiting for its services to stop answers once they did (bounded by the
    // systemd hook's timeout), so that whoever released it (the OCF agent's stop) can
    // place the address elsewhere without finding it still here.
    if (shared)
      shared->when_released(since, [this, reply = std::move(reply)]() mutable { reply_when_durable(std::move(reply)); });
    else reply_when_durable(std::move(reply));
  }

  void reply_when_durable(std::function<void(Result<void>)> reply) {
    if (!persisted) {
      reply(fail(Errc::system, std::string(kStateNotSaved) + " (" + persisted.error().message +
                                   "): the change is in force but is lost when mpathd restarts"));
      return;
    }
    store->when_written(kStateName, [reply = std::move(reply)](const Result<void>& r) {
      if (r) return reply({});
      reply(fail(Errc::system, std::string(kStateNotSaved) + " (" + r.error().message +
                                   "): the change is in force and survives a restart of mpathd, but is lost "
                                   "when the machine restarts"));
    });
  }

  // After every input: save the state, bring the kernel in line, re-arm the Engine's
  // timer, publish.
  void after_input() {
    if (!engine.started()) return;
    sysctls.retry_renamed();
    sysctls.flush();
    persist();
    if (link_event_at) state_written_at = Clock::now();
    const bool changed = applier.reconcile(engine, shared ? shared->kept() : std::vector<KeptAddress>{}) > 0;
    note_latency();
    if (changed) step_down();
    if (shared) shared->after_reconcile(engine);  // lifts drops, tracks, tickles
    if (hook_hosts)  // takeover-after, release-after (once the address is gone)
      hook_hosts->after_reconcile([this](const IpAddress& a) { return shared && shared->pending(a); });
    if (auto when = applier.next_retry()) {
      int r = arm_timer(event, &restore_timer, *when, milliseconds(10), &Impl::on_restore_timer, this);
      if (r < 0) spdlog::error("restore timer: {}", std::strerror(-r));
    }
    // Addresses the kernel refused are down, with its reason.
    for (const auto& g : engine.groups())
      for (const auto& a : g.data) {
        // No copy on this path (it runs after every input): only a change is passed on,
        // and the Engine's event marks the status dirty.
        auto it = applier.refused().find(a.prefix.addr);
        const std::string_view refused = it == applier.refused().end() ? std::string_view() : it->second;
        if (refused != a.refused) engine.observe_address_refused(a.prefix.addr, std::string(refused));
      }
    metrics.applied();
    node_attributes.update(engine);  // starts a child at most: never waits
    if (auto when = engine.next_deadline()) {
      int r = arm_timer(event, &engine_timer, *when, milliseconds(1), &Impl::on_engine_timer, this);
      if (r < 0) spdlog::error("engine timer: {}", std::strerror(-r));
    }
    if (status_dirty) request_status();
    if (shared) releases_seen = shared->releases_begun();
  }

  // status.json is rewritten whole (~100 KB at 64 x 4): once after a burst of inputs,
  // from a deferred source that runs after the netlink events already queued (the
  // monitor's priority is higher), so that when many links fail at once each failover
  // does not wait for the status writes of the ones before it.
  void request_status() {
    if (!status_source)
      if (int r = sd_event_add_defer(event, &status_source, &Impl::on_status, this); r < 0) {
        spdlog::error("status.json: {}", std::strerror(-r));
        return write_status();
      }
    sd_event_source_set_enabled(status_source, SD_EVENT_ONESHOT);
  }

  static int on_status(sd_event_source*, void* self) {
    return guarded("status.json", [&] {
      auto* d = static_cast<Impl*>(self);
      if (d->status_dirty) d->write_status();
    });
  }

  // From the first link event of this input to the first GARP/NA it caused; at debug,
  // where the time went: state.json's runtime copy written, the first notification
  // handed to the kernel, its send returned, and the loop's CPU time for the input up
  // to here (the kernel requests after the notification included), which the load of
  // the machine does not change.
  void note_latency() {
    const auto event_at = std::exchange(link_event_at, std::nullopt);
    const auto written_at = std::exchange(state_written_at, std::nullopt);
    const auto sent = applier.take_first_announcement();
    if (!event_at || !sent) return;
    auto us = [&](TimePoint t) { return std::chrono::duration_cast<std::chrono::microseconds>(t - *event_at); };
    latency.add(us(sent->sent));
    spdlog::debug("failover latency: link event to first announcement {} us (state written {} us, announcement "
                  "issued {} us, sent {} us; CPU {} us, {} us of it before the announcement)",
                  us(sent->sent).count(), written_at ? us(*written_at).count() : -1, us(sent->issued).count(),
                  us(sent->sent).count(),
                  std::chrono::duration_cast<std::chrono::microseconds>(thread_cpu_time() - link_event_cpu).count(),
                  std::chrono::duration_cast<std::chrono::microseconds>(sent->cpu_at_issue - link_event_cpu).count());
  }

  static int on_engine_timer(sd_event_source*, uint64_t, void* self) {
    return guarded("engine timer", [&] {
      auto* d = static_cast<Impl*>(self);
      d->engine.on_timer();
      d->after_input();
    });
  }

  static int on_restore_timer(sd_event_source*, uint64_t, void* self) {
    return guarded("restore timer", [&] { static_cast<Impl*>(self)->after_input(); });
  }

  // Deferred, so that a burst of kernel events is followed by one look at the kernel,
  // after the events already queued have been read (the monitor's priority is higher).
  void request_audit() {
    if (!engine.started()) return;  // start() reads what is there
    if (!audit_source)
      if (int r = sd_event_add_defer(event, &audit_source, &Impl::on_audit, this); r < 0) {
        spdlog::error("data plane audit: {}", std::strerror(-r));
        return;
      }
    sd_event_source_set_enabled(audit_source, SD_EVENT_ONESHOT);
  }

  static int on_audit(sd_event_source*, void* self) {
    return guarded("data plane audit", [&] {
      auto* d = static_cast<Impl*>(self);
      if (d->applier.audit() > 0) d->after_input();
    });
  }

  // Counters that change often (replication) reach status.json within a second.
  void arm_status_timer() {
    int enabled = SD_EVENT_OFF;
    if (status_timer && sd_event_source_get_enabled(status_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF) return;
    int r = arm_timer(event, &status_timer, clock.now() + seconds(1), milliseconds(100), &Impl::on_status_timer, this);
    if (r < 0) spdlog::error("status timer: {}", std::strerror(-r));
  }

  static int on_status_timer(sd_event_source*, uint64_t, void* self) {
    return guarded("status timer", [&] {
      auto* d = static_cast<Impl*>(self);
      if (d->ready && d->status_dirty) d->write_status();
    });
  }

  void write_status() {
    status_dirty = false;
    // Interface names are bytes: never let one that is not UTF-8 stop the daemon.
    const RegistryStatus registry = shared ? RegistryStatus{shared->level(), shared->level_reason()} : RegistryStatus{};
    auto j = status_json(ready, registry);
    const auto problem = store->problem();
    j["persistence"] = {{"ok", problem.empty()}, {"problem", problem}};
    j["failover_latency"] = latency.json();
    j["scheduling"] = {{"realtime_priority", realtime_priority}, {"problem", scheduling_problem}};
    if (hook_hosts) j["hooks"] = hook_hosts->status();
    if (shared) {
      const auto r = shared->replication_status();
      j["replication"] = {{"enabled", r.enabled}, {"state", r.state}, {"reason", r.reason}, {"group", r.group},
                          {"node_id", r.node_id}, {"members", r.members}, {"messages_sent", r.messages_sent},
                          {"bytes_sent", r.bytes_sent}, {"messages_received", r.messages_received},
                          {"bytes_received", r.bytes_received}, {"try_again", r.try_again},
                          {"imported", r.imported}, {"capped", r.capped}};
    }
    if (restarter && !restarter->empty())
      for (auto& h : restarter->status()) j["hooks"].push_back(std::move(h));
    for (const auto& h : node_attribute_hooks())
      j["hooks"].push_back({{"name", h.name}, {"type", h.type}, {"state", h.state}, {"last_error", h.last_error}});
    const auto text = status_text(j, engine);
    if (auto r = write_file_atomically(options.runtime_dir + "/status.json", text, false); !r)
      spdlog::warn("{}", r.error().message);
  }

  void on_event(const Event& e) {
    if (hook_hosts) hook_hosts->on_event(e);  // queued only: hosts get it from the loop later
    if (probing) probing->on_event(e);
    log_event(e);
    if (shared) shared->on_event(e);  // a release blocks and destroys before the reconcile removes the address
    metrics.on_event(e, engine);
    metrics_file->changed();
    if (std::holds_alternative<ProbeCompleted>(e)) return;
    status_dirty = true;
    // Members that join get the ARP-flux settings; members that leave get theirs back.
    if (const auto* t = std::get_if<TopologyChanged>(&e); t && !t->member.empty() && !t->group.empty()) {
      if (!t->added)
        sysctls.restore(t->member);
      else if (const Member* m = engine.find_member(t->member); m && m->ifindex)
        sysctls.apply(m->name, m->ifindex);
    }
  }

  // Event lines are rate-limited per subject, so that a flapping link cannot flood the
  // log: a suppressed line goes to debug, and a timer writes the summary with the last
  // one when the interval ends (also when the flapping has stopped).
  void log_event(const Event& e) {
    if (std::holds_alternative<ProbeCompleted>(e)) return log::event(e);  // trace, never limited
    const std::string line = describe(e);
    const auto fields = log::fields_of(e);
    const auto subject = log_subject(e);
    if (!subject) return log::write(log::level_of(e), fields, "{}", line);
    auto v = log_limiter.offer(subject->subject, subject->noun, line);
    for (const auto& s : v.summaries) spdlog::info("{}", s);
    log::write(v.log ? log::level_of(e) : spdlog::level::debug, fields, "{}", line);
    if (!v.log) arm_log_timer();  // a summary is due only for suppressed lines
  }

  void arm_log_timer() {
    if (auto when = log_limiter.next_deadline()) {
      int r = arm_timer(event, &log_timer, *when, milliseconds(100), &Impl::on_log_timer, this);
      if (r < 0) spdlog::error("log timer: {}", std::strerror(-r));
    }
  }

  static int on_log_timer(sd_event_source*, uint64_t, void* self) {
    return guarded("log timer", [&] {
      auto* d = static_cast<Impl*>(self);
      for (const auto& s : d->log_limiter.expire()) spdlog::info("{}", s);
      d->arm_log_timer();
    });
  }

  // SIGHUP and D-Bus Reload: a configuration with errors is rejected as a whole and the
  // running state stays; otherwise only the difference is applied.
  Result<void> reload() {
    sd_notify(0, "RELOADING=1\nSTATUS=reloading configuration");
    auto next = load_config_file(options.config_path);
    if (next)
      if (auto r = engine.check_links(*next); !r)
        next = fail(Errc::config, options.config_path + ": " + r.error().message);
    if (!next) {
      spdlog::error("reload rejected, running configuration kept:\n{}", next.error().message);
      sd_notify(0, ("READY=1\n" + status_line()).c_str());
      return std::unexpected(next.error());
    }
    engine.reconfigure(*next);
    apply_scheduling();
    configure_hooks();
    metrics_file->set_path(engine.config().metrics_file);
    node_attributes.set_enabled(engine.config().node_attributes_on());
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

  std::vector<IpAddress> shared_addresses() const {
    std::vector<IpAddress> out;
    for (const auto& g : engine.config().groups)
      for (const auto& a : g.shared_addresses) out.push_back(a.addr);
    return out;
  }

  // The [[hook]]s of type node-attributes, as Manager.Hooks shows hooks: "running", or
  // "retrying" while attrd_updater fails (it is retried with back-off).
  std::vector<dbus::HookState> node_attribute_hooks() const {
    std::vector<dbus::HookState> out;
    for (const auto& h : engine.config().hooks)
      if (h.type == "node-attributes")
        out.push_back({h.name, h.type, node_attributes.last_error().empty() ? "running" : "retrying", 0, 0,
                       node_attributes.last_error()});
    return out;
  }

  void configure_hooks() {
    if (!restarter && std::any_of(engine.config().hooks.begin(), engine.config().hooks.end(),
                                  [](const HookConfig& h) { return h.type == "systemd"; }))
      restarter = std::make_unique<Restarter>(event, [this] {
        status_dirty = true;
        if (ready) write_status();
      });
    if (restarter) restarter->configure(engine.config().hooks);
    if (!hook_hosts && engine.config().hooks.empty()) return;
    if (!hook_hosts)
      hook_hosts = std::make_unique<Hooks>(event, options.hook_host, [this] {
        status_dirty = true;
        if (ready) write_status();
      });
    hook_hosts->configure(engine.config().hooks, shared_addresses());
  }

  // mpathd.conf(5) realtime-priority: the loop's thread (the calling one) SCHED_RR at
  // that priority, or back to normal at 0; threads and children made afterwards start
  // normal (SCHED_RESET_ON_FORK). Not allowed (no CAP_SYS_NICE, an RT cgroup without
  // runtime): one warning per cause, and the loop runs with normal scheduling.
  void apply_scheduling() {
    const unsigned want = engine.config().realtime_priority;
    std::string problem;
    if (int e = set_loop_policy(want); e)
      problem = fmt::format("realtime-priority {}: cannot set SCHED_RR: {}{}; the event loop runs with normal "
                            "scheduling",
                            want, std::strerror(e),
                            e == EPERM ? " (mpathd needs CAP_SYS_NICE, and its cgroup real-time runtime)" : "");
    if (!problem.empty() && problem != scheduling_problem) spdlog::warn("{}", problem);
    if (problem.empty() && want && want != realtime_priority)
      spdlog::info("event loop scheduled SCHED_RR, priority {}", want);
    scheduling_problem = std::move(problem);
    realtime_priority = scheduling_problem.empty() ? want : 0;
  }

  // The calling thread (the loop's) SCHED_RR at `priority`, or normal at 0; children
  // and threads made afterwards start normal. 0 or the errno.
  static int set_loop_policy(unsigned priority) {
    sched_param p{};
    p.sched_priority = static_cast<int>(priority);
    return ::sched_setscheduler(0, (priority ? SCHED_RR : SCHED_OTHER) | SCHED_RESET_ON_FORK, &p) < 0 ? errno : 0;
  }

  // After the kernel was changed (the announcements are out), the loop runs with normal
  // scheduling until it waits again: the kernel queues work of ours on this CPU (IPv6's
  // DAD work, which installs a moved address's local route, even with IFA_F_NODAD),
  // and a SCHED_RR loop would hold it behind everything else it still has to do (the
  // old instance's delete, hooks, status.json). A post source, run before the loop
  // polls, puts SCHED_RR back.
  void step_down() {
    if (!realtime_priority) return;
    if (!realtime_source) {
      if (int r = sd_event_add_post(event, &realtime_source, &Impl::on_step_up, this); r < 0) {
        spdlog::error("scheduling: {}", std::strerror(-r));
        return;
      }
    }
    if (set_loop_policy(0) == 0) sd_event_source_set_enabled(realtime_source, SD_EVENT_ONESHOT);
  }

  static int on_step_up(sd_event_source*, void* self) {
    const unsigned priority = static_cast<Impl*>(self)->realtime_priority;
    if (int e = priority ? set_loop_policy(priority) : 0; e)
      spdlog::warn("scheduling: back to SCHED_RR: {}", std::strerror(e));
    return 0;
  }

  Result<void> start() {
    apply_scheduling();
    // Where start-up time goes, at debug (bench/restart.py's cold start).
    const TimePoint t0 = Clock::now();
    // Each phase: wall time and the process' CPU time (what the load does not change).
    auto cpu_ms = [] {
      timespec ts{};
      ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);  // since exec
      return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
    };
    std::string phases = fmt::format("before start-up {:.1f} ms ({:.1f} CPU)",
                                     std::chrono::duration<double, std::milli>(t0 - kLoadedAt).count(), cpu_ms());
    TimePoint last = t0;
    double last_cpu = cpu_ms();
    auto phase = [&](const char* what) {
      const TimePoint now = Clock::now();
      const double cpu = cpu_ms();
      phases += fmt::format(", {} {:.1f} ms ({:.1f} CPU)", what,
                            std::chrono::duration<double, std::milli>(now - last).count(), cpu - last_cpu);
      last = now;
      last_cpu = cpu;
    };
    engine.subscribe([this](const Event& e) { on_event(e); });
    configure_hooks();  // first: hooks see the events of the start-up too
    net::Monitor::Handlers h;
    h.link_changed = [this](const net::LinkInfo& l) { on_link(l, true); };
    h.link_removed = [this](const net::LinkInfo& l) { on_link(l, false); };
    h.address = [this](const net::AddrInfo& a, bool present) { on_address(a, present); };
    h.route = [this](const net::Route& r, bool present) {
      // One of ours deleted (by someone, or by the kernel where it says so): put it back.
      if (!present && r.protocol == kRouteProtocol && applier.forget_route(r)) after_input();
      if (probing && may_change_probe_targets(r)) probing->request_targets();  // routers may have come or gone
    };
    h.rule = [this](const net::Rule& r, bool present) {
      if (!present && r.priority == engine.config().rule_priority && applier.forget_rule(r)) after_input();
    };
    h.resync = [this] {
      spdlog::warn("netlink events were lost; re-reading links and addresses");
      if (auto r = monitor->dump(); !r) spdlog::error("{}", r.error().message);
      request_audit();  // route and rule events may have been lost too
      if (probing) probing->request_targets();
    };
    auto m = net::Monitor::open(event, std::move(h));
    if (!m) return std::unexpected(m.error());
    monitor = std::move(*m);
    sysctls.hold();  // the members' originals saved once for the whole dump
    auto dumped = monitor->dump();
    phase("links and addresses dumped");
    sysctls.release();
    if (!dumped) return dumped;
    phase("member sysctls");
    // Members the kernel has but that cannot be members (the loopback, a tunnel).
    if (auto r = engine.check_links(engine.config()); !r)
      return fail(Errc::config, options.config_path + ": " + r.error().message);
    // Members that left the configuration get their ARP settings back.
    sysctls.restore_all_except([this](const std::string& n) { return is_member(n); });
    engine.import_state(saved.state);
    // Shared addresses: the registry and the actions exist before the Engine starts, so
    // that the addresses it finds held are tracked from the first reconcile.
    {
      cluster::RegistryOptions ro;
      ro.cgroup = engine.config().association_cgroup;
      ro.ebpf = engine.config().association_ebpf;
      shared = std::make_unique<SharedAddresses>(
          cluster::Registry::create(event, ro,
                                    [this](const IpAddress& a, const cluster::Association& x, bool present) {
                                      if (shared) shared->association_changed(a, x);
                                      spdlog::debug("{}: association {} {}:{} {}", a.str(), present ? "seen" : "gone",
                                                    x.remote.str(), x.remote_port,
                                                    x.proto == cluster::Proto::tcp ? "tcp" : "udp");
                                      if (auto j = association_feed(a, x, present); j && hook_hosts)
                                        hook_hosts->publish(std::move(*j));
                                    },
                                    [this](cluster::SocketEvent ev, const cluster::BoundSocket& s) {
                                      if (hook_hosts) hook_hosts->publish(hook_socket_event(ev, s));
                                    }),
          cluster::Actions::create(event));
      {
        const auto& cfg = engine.config();
        cluster::ReplicationOptions rep;
        rep.enabled = cfg.replication;
        rep.group = cfg.replication_group;
        rep.max_associations = cfg.replication_max_associations;
        shared->start_replication(event, rep, cfg.replication ? cluster::GroupTransport::create_cpg(event) : nullptr,
                                  cfg.replication ? "" : "disabled by configuration (replication = false)",
                                  [this](bool now) {
                                    status_dirty = true;
                                    if (now && ready) write_status();
                                    if (!now) arm_status_timer();
                                  });
      }
      shared->stop_hooks = [this](const std::string& group, const IpAddress& a, std::function<void()> done) {
        return restarter && restarter->stop(group, a, std::move(done));
      };
      shared->start_hooks = [this](const std::string& group, const IpAddress& a) {
        if (restarter) restarter->start(group, a);
      };
      shared->changed = [this] { after_input(); };  // a release whose services stopped goes on
      if (shared->level_reason().empty())
        spdlog::info("association registry: level {}", shared->level());
      else
        spdlog::warn("association registry: level {} ({})", shared->level(), shared->level_reason());
    }
    phase("association registry");
    engine.start();
    applier.start(engine);
    phase("placement, rules and routes read");
    applier.hold_announcements();  // sent after READY=1
    after_input();
    phase("data plane applied");
    // A dual-stack member's per-family probe state changes without an Engine event;
    // status.json shows it.
    probing = std::make_unique<Probing>(
        event, engine, kernel, [this] { after_input(); }, [this] { status_dirty = true; });
    for (const auto& [a, present] : early_addresses) probing->on_address(a.ifindex, a.prefix, present);
    early_addresses.clear();
    probing->sync();
    phase("probing started");
    after_input();
    // The data plane works without a bus; the D-Bus API is optional.
    dbus::ServiceHooks hooks{
        .after_change = [this](auto reply) { after_change(std::move(reply)); },
        .reload = [this] { return reload(); },
        .state_problem = [this] { return store->problem(); },
        .export_associations = [this](const IpAddress& a) { return shared->export_json(a); },
        .import_associations = [this](const IpAddress& a, std::string_view text) { return shared->import_json(a, text); },
        .registry_level = [this] { return std::pair{shared->level(), shared->level_reason()}; },
        .replication = [this] {
          const auto r = shared->replication_status();
          return std::pair{r.state, r.reason};
        },
        .hook_states =
            [this] {
              auto out = hook_hosts ? hook_hosts->states() : std::vector<dbus::HookState>{};
              if (restarter)
                for (auto& s : restarter->states()) out.push_back(std::move(s));
              for (auto& s : node_attribute_hooks()) out.push_back(std::move(s));
              return out;
            },
    };
    if (auto b = dbus::Service::open(event, engine, std::move(hooks), options.bus_name,
                                         options.runtime_dir + "/" + kDirectSocketName))
      bus = std::move(*b);
    else
      spdlog::warn("D-Bus API unavailable: {}; running without it", b.error().message);
    phase("D-Bus");
    ready = true;
    metrics_file->set_path(engine.config().metrics_file);
    node_attributes.set_enabled(engine.config().node_attributes_on());
    node_attributes.update(engine);
    sd_notify(0, ("READY=1\n" + status_line()).c_str());
    phase("READY=1");
    const double cpu = cpu_ms();  // since exec
    // status.json (~100 KB at 64 x 4, a snapshot for scripts) is not part of what
    // READY=1 promises (placed, saved, served): it follows it at once, before the
    // announcements and before the loop runs anything else.
    write_status();
    phase("status.json");
    applier.release_announcements();
    phase("announcements");
    spdlog::info("mpathd started: {} group(s)", engine.groups().size());
    spdlog::debug("start-up: {:.1f} ms ({}); CPU until READY=1 {:.1f} ms",
                  std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), phases, cpu);
    return {};
  }

  static int on_signal(sd_event_source* s, const signalfd_siginfo* si, void* self) {
    return guarded("signal", [&] {
      auto* d = static_cast<Impl*>(self);
      if (si->ssi_signo == SIGHUP) {
        (void)d->reload();
        return;
      }
      for (const auto& line : d->log_limiter.flush()) spdlog::info("{}", line);  // the last states
      spdlog::info("{}: stopping; data addresses stay where they are", strsignal(static_cast<int>(si->ssi_signo)));
      d->write_status();
      sd_notify(0, "STOPPING=1");
      d->store->close(seconds(2));  // the durable copies; the runtime ones go when written
      if (d->probing) d->probing->close_sockets();  // at once, not one grace period each
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
  std::unique_ptr<StateStore> store;
  try {
    store = std::make_unique<StateStore>(event, options.runtime_dir, options.state_dir);
  } catch (const std::exception& e) {
    sd_event_unref(event);
    return fail(Errc::system, e.what());
  }
  PersistedState saved = load_saved_state(*store, digest, config);
  auto impl = std::make_unique<Impl>(std::move(options), std::move(config), event, std::move(*kernel),
                                     std::move(*packets), std::move(store));
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
