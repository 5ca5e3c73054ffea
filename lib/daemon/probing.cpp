#include "daemon/probing.hpp"

#include <spdlog/spdlog.h>

#include "daemon/log.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/dataplane.hpp"
#include "daemon/event_loop.hpp"

#include "detect/factory.hpp"
#include "detect/probe_base.hpp"
#include "detect/targets.hpp"

namespace mpathd {

namespace {

std::optional<IpAddress> first_v4(const std::vector<IpPrefix>& v) {
  for (const auto& p : v)
    if (p.addr.is_v4()) return p.addr;
  return std::nullopt;
}

// The subnet routers are looked for in: the first IPv4 test or data address's.
std::optional<IpPrefix> group_subnet(const Group& g, Family f) {
  for (const auto& m : g.members)
    for (const auto& t : m.test_addresses)
      if (t.addr.family == f) return t.network();
  for (const auto& a : g.data)
    if (a.prefix.addr.family == f) return a.prefix.network();
  return std::nullopt;
}

// A member's log fields: its name and its group's.
log::Fields member_fields(const Engine& engine, const std::string& member) {
  const Group* g = engine.group_of(member);
  return log::member_fields(g ? g->name : std::string(), member);
}
}  // namespace

DetectorSpec detector_spec(const Config& config, const Group& g, const Member& m, std::optional<IpAddress> link_local) {
  const bool v4_data =
      std::any_of(g.data.begin(), g.data.end(), [](const DataAddress& a) { return a.prefix.addr.is_v4(); });
  const bool v4_target =
      std::any_of(g.config.targets.begin(), g.config.targets.end(), [](const IpAddress& a) { return a.is_v4(); }) ||
      std::any_of(g.config.routes.begin(), g.config.routes.end(), [](const RouteConfig& r) { return r.via.is_v4(); });
  const auto test_v4 = first_v4(m.test_addresses);
  DetectorSpec spec;
  spec.kind = choose_probe_kind(g.config.probe_method, {test_v4.has_value(), link_local.has_value(), v4_data, v4_target});
  if (spec.kind == ProbeKind::none) return spec;
  spec.source = spec.kind == ProbeKind::icmp ? test_v4 : spec.kind == ProbeKind::icmp6 ? link_local : std::nullopt;
  spec.fdt = config.failure_detection_time_of(g.config);
  const bool test_v6 = std::any_of(m.test_addresses.begin(), m.test_addresses.end(),
                                   [](const IpPrefix& p) { return !p.addr.is_v4(); });
  if (spec.kind == ProbeKind::icmp && test_v6 && link_local) spec.source6 = link_local;
  return spec;
}

bool detector_runs(const Member& m) { return m.link == LinkState::up && !m.admin_offline && !m.hwaddr_dup; }

bool may_change_probe_targets(const net::Route& r) { return r.table == kMainTable && r.gateway.has_value(); }

Probing::Probing(sd_event* event, Engine& engine, net::Kernel& kernel, std::function<void()> after_change,
                 std::function<void()> status_changed)
    : event_(event),
      engine_(engine),
      kernel_(kernel),
      after_change_(std::move(after_change)),
      status_changed_(std::move(status_changed)) {}

Probing::~Probing() { sd_event_source_disable_unref(defer_); }

void Probing::close_sockets() {
  defer_ = sd_event_source_disable_unref(defer_);
  std::vector<int> fds;
  for (auto& [_, d] : detectors_)
    for (auto& p : d.paths)
      if (p.base) fds.push_back(p.base->release_socket());
  detect::sock::close_all(std::move(fds));
}

void Probing::request_sync() {
  sync_pending_ = true;
  arm();
}

void Probing::arm() {
  if (!defer_)
    if (int r = sd_event_add_defer(event_, &defer_, &Probing::on_defer, this); r < 0) {
      spdlog::error("probing: cannot defer: {}", std::strerror(-r));
      return;
    }
  sd_event_source_set_enabled(defer_, SD_EVENT_ONESHOT);
}

int Probing::on_defer(sd_event_source*, void* self) {
  return guarded("probing", [&] { static_cast<Probing*>(self)->run_deferred(); });
}

void Probing::run_deferred() {
  if (sync_pending_) {
    sync_pending_ = false;
    members_pending_.clear();  // sync() re-evaluates every member
    sync();
  }
  for (const auto& name : std::exchange(resets_pending_, {}))
    if (auto it = detectors_.find(name); it != detectors_.end())
      for (auto& p : it->second.paths) p.base->reset(true);
  for (const auto& name : std::exchange(members_pending_, {})) {
    auto it = detectors_.find(name);
    const Member* m = engine_.find_member(name);
    if (it != detectors_.end() && m) pause_or_resume(*m, it->second);
  }
  for (const auto& group : std::exchange(group_failures_pending_, {})) {
    selectors_[group].flush_discovered();
    for (auto& [name, d] : detectors_)
      if (d.group == group)
        for (auto& p : d.paths) p.base->reset(true);
    targets_pending_ = true;
  }
  if (targets_pending_) refresh_targets();
  if (after_change_) after_change_();  // status and state follow what changed here
}

std::optional<IpAddress> Probing::link_local(unsigned ifindex, const std::optional<IpAddress>& prefer) const {
  if (prefer)
    for (const auto& [idx, p] : addresses_)
      if (idx == ifindex && p.addr == *prefer) return p.addr;
  for (const auto& [idx, p] : addresses_)
    if (idx == ifindex && !p.addr.is_v4() && p.addr.is_link_local()) return p.addr;
  return std::nullopt;
}

void Probing::on_address(unsigned ifindex, const IpPrefix& prefix, bool present) {
  auto same = [&](const auto& e) { return e.first == ifindex && e.second.addr == prefix.addr; };
  std::erase_if(addresses_, same);
  if (present) addresses_.emplace_back(ifindex, prefix);
}

void Probing::request_targets() {
  targets_pending_ = true;
  arm();
}

void Probing::set_group_targets(const Group& g, const std::vector<net::Route>& routes,
                                const TargetSelector::LocalAddresses& local) {
  auto& sel = selectors_[g.name];
  sel.set_local_addresses(local);
  sel.set_static(g.config.targets);
  std::vector<unsigned> ifindexes;
  for (const auto& m : g.members)
    if (m.ifindex) ifindexes.push_back(m.ifindex);
  std::vector<IpAddress> routers;
  if (auto subnet = group_subnet(g, Family::v4)) routers = detect::routers_in_subnet(routes, *subnet);
  if (group_subnet(g, Family::v6)) {
    auto v6 = detect::link_local_routers(routes, ifindexes);
    routers.insert(routers.end(), v6.begin(), v6.end());
  }
  sel.set_routers(std::move(routers));
  const auto now = Clock::now();
  auto active = sel.active(now);
  for (auto& [name, d] : detectors_) {
    if (d.group != g.name || d.paths.empty()) continue;
    // A path probes targets of its own family.
    std::vector<std::vector<IpAddress>> mine(d.paths.size());
    std::vector<ProbeTargetInfo> info;
    for (std::size_t i = 0; i < d.paths.size(); ++i)
      for (const auto& t : active)
        if (t.is_v4() == (d.paths[i].family() == Family::v4)) {
          mine[i].push_back(t);
          info.push_back({t, {}, {}});
        }
    // The Engine learns the targets first: setting them may report a verdict at once,
    // and what is published then must already show them.
    engine_.observe_targets(name, sel.mode(), std::move(info));
    for (std::size_t i = 0; i < d.paths.size(); ++i) {
      auto& base = *d.paths[i].base;
      if (mine[i] != base.targets() || sel.mode() != base.mode()) base.set_targets(mine[i], sel.mode());
      if (sel.wants_discovery() && d.paths[i].kind != ProbeKind::arp) (void)base.discover();
    }
  }
}

void Probing::refresh_targets() {
  if (targets_pending_ || !routes_) {
    targets_pending_ = false;
    std::vector<net::Route> routes;
    bool complete = true;
    for (Family f : {Family::v4, Family::v6}) {
      auto r = kernel_.dump_routes(f, kMainTable);
      if (!r) {
        spdlog::warn("probe targets: {}", r.error().message);
        complete = false;
        continue;
      }
      routes.insert(routes.end(), r->begin(), r->end());
    }
    routes_ = std::move(routes);
    if (!complete) targets_pending_ = true;  // the next refresh reads them again
  }
  std::vector<IpAddress> local;  // the host's addresses, one set shared by every group
  local.reserve(addresses_.size());
  for (const auto& [_, p] : addresses_) local.push_back(p.addr);
  const auto shared_local = TargetSelector::local_addresses(std::move(local));
  for (const auto& g : engine_.groups()) set_group_targets(g, *routes_, shared_local);
}

void Probing::pause_or_resume(const Member& m, Detector& d) {
  const bool run = detector_runs(m);
  for (auto& p : d.paths) {
    if (run && p.base->paused()) {
      p.base->resume();
    } else if (!run && !p.base->paused()) {
      p.base->pause();
      p.base->reset(true);  // old successes must not count for the repair
    }
  }
}

bool Probing::Detector::same_paths(const std::vector<std::pair<ProbeKind, std::optional<IpAddress>>>& want) const {
  if (want.size() != paths.size()) return false;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (paths[i].kind != want[i].first || paths[i].source != want[i].second) return false;
  return true;
}

ProbeVerdict Probing::verdict_of(const Detector& d) {
  if (d.paths.size() == 1) return d.paths.front().base->verdict();
  std::vector<FamilyVerdict> families;
  for (const auto& p : d.paths) families.push_back({p.family(), p.base->verdict()});
  return combine_family_verdicts(families);
}

void Probing::on_path_verdict(const std::string& member) {
  auto it = detectors_.find(member);
  if (it == detectors_.end()) return;  // a path's first verdict, while its detector is being made
  const ProbeVerdict v = verdict_of(it->second);
  if (v.fdt_unachievable)
    log::write(spdlog::level::warn, member_fields(engine_, member),
               "{}: the RTTs make the failure detection time impossible; {} is in force", member,
               format_duration(v.needed_fdt));
  // A dual-stack member whose one family fails while the other is answered stays in
  // service; say so (once per change of the per-family states).
  const Member* m = engine_.find_member(member);
  if (m && (v.v4 || v.v6) && (m->probe_v4 != v.v4 || m->probe_v6 != v.v6)) {
    auto str = [](const std::optional<ProbeState>& st) { return st ? to_string(*st) : std::string_view("-"); };
    const bool one_failed = (v.v4 == ProbeState::failed) != (v.v6 == ProbeState::failed);
    log::write(one_failed && v.state == ProbeState::ok ? spdlog::level::warn : spdlog::level::info,
               member_fields(engine_, member), "{}: probes IPv4 {}, IPv6 {}{}", member, str(v.v4), str(v.v6),
               one_failed && v.state == ProbeState::ok ? "; one family still answers, so the member stays in service"
                                                       : "");
    if (status_changed_) status_changed_();
  }
  engine_.observe_probe(member, v);
  if (after_change_) after_change_();
}

std::unique_ptr<detect::ProbeBase> Probing::open_path(const Group& g, const Member& m, ProbeKind kind,
                                                      const std::optional<IpAddress>& source, Duration fdt) {
  detect::ProbeSource src{m.ifindex, m.name, m.mac, kind == ProbeKind::icmp ? source : std::nullopt,
                          kind == ProbeKind::icmp6 ? source : std::nullopt};
  auto strategy = detect::open_strategy(event_, kind, src);
  if (!strategy) {
    log::write(spdlog::level::warn, log::member_fields(g.name, m.name), "{}: cannot probe ({}): {}", m.name,
               to_string(kind), strategy.error().message);
    return nullptr;
  }
  detect::ProbeBase::Callbacks cb;
  cb.result = [this](const ProbeResult& r) { engine_.observe_probe_result(r); };
  cb.verdict = [this](const std::string& member, const ProbeVerdict&) { on_path_verdict(member); };
  // A target that alone stops answering, or answers far slower than the others,
  // sits out (TargetSelector::mark_dead) and the next candidate takes its place.
  auto retire = [this](const std::string& member, const IpAddress& target, const char* why) {
    const Group* grp = engine_.group_of(member);
    if (!grp) return;
    log::write(spdlog::level::info, member_fields(engine_, member), "{}: target {} {}; replacing it", member,
               target.str(), why);
    selectors_[grp->name].mark_dead(target, Clock::now());
    request_targets();
  };
  cb.target_dead = [retire](const std::string& member, const IpAddress& target) {
    retire(member, target, "stopped answering alone");
  };
  cb.target_slow = [retire](const std::string& member, const IpAddress& target) {
    retire(member, target, "answers exceptionally slowly");
  };
  cb.unsolicited = [](const std::string& member, std::uint64_t since_last, std::uint64_t total) {
    spdlog::warn("{}: {} unsolicited ARP replies claiming a probe target ({} in all): someone on the link "
                 "answers for it (forged?); the target's answers do not count while they go on",
                 member, since_last, total);
  };
  cb.discovered = [this](const std::string& member, const IpAddress& host) {
    const Group* grp = engine_.group_of(member);
    if (grp && selectors_[grp->name].add_discovered(host)) request_targets();
  };
  auto base = detect::ProbeBase::create(event_, m.name, std::move(*strategy), fdt, std::move(cb),
                                        engine_.config().probe_quiet_period);
  if (!base) {
    log::write(spdlog::level::warn, log::member_fields(g.name, m.name), "{}: cannot probe: {}", m.name,
               base.error().message);
    return nullptr;
  }
  log::write(spdlog::level::info, log::member_fields(g.name, m.name), "{}: probing with {} every {}", m.name,
             to_string(kind), format_duration(fdt / 7));
  return std::move(*base);
}

void Probing::sync() {
  std::vector<std::string> wanted;
  for (const auto& g : engine_.groups()) {
    for (const auto& m : g.members) {
      if (!m.ifindex) continue;
      std::optional<IpAddress> prefer;  // a link-local test address is the icmp6 source
      for (const auto& t : m.test_addresses)
        if (!t.addr.is_v4() && t.addr.is_link_local()) {
          prefer = t.addr;
          break;
        }
      const DetectorSpec spec = detector_spec(engine_.config(), g, m, link_local(m.ifindex, prefer));
      if (spec.kind == ProbeKind::none) continue;
      std::vector<std::pair<ProbeKind, std::optional<IpAddress>>> want{{spec.kind, spec.source}};
      if (spec.source6) want.emplace_back(ProbeKind::icmp6, spec.source6);
      const Duration fdt = spec.fdt;
      wanted.push_back(m.name);
      auto it = detectors_.find(m.name);
      if (it != detectors_.end() && it->second.same_paths(want) && it->second.ifindex == m.ifindex &&
          it->second.group == g.name) {
        // Only a real change re-arms its schedule (and drops an RTT-driven FDT raise).
        if (it->second.fdt != fdt) {
          for (auto& p : it->second.paths) p.base->set_fdt(fdt);
          it->second.fdt = fdt;
        }
        continue;
      }
      // A path that stays (same kind and source, same interface and group) is kept with
      // its history: a dual-stack member whose link-local comes later (DAD) gains its
      // IPv6 path without its IPv4 one starting over.
      Detector d{g.name, m.ifindex, fdt, {}};
      Detector* old = it != detectors_.end() && it->second.ifindex == m.ifindex && it->second.group == g.name
                          ? &it->second
                          : nullptr;
      for (const auto& [kind, source] : want) {
        auto same = old ? std::find_if(old->paths.begin(), old->paths.end(),
                                       [&](const Path& p) { return p.kind == kind && p.source == source; })
                        : std::vector<Path>::iterator{};
        if (old && same != old->paths.end()) {
          if (old->fdt != fdt) same->base->set_fdt(fdt);
          d.paths.push_back(std::move(*same));
          old->paths.erase(same);
          continue;
        }
        if (auto base = open_path(g, m, kind, source, fdt)) {
          if (m.restored_failed) base->reset(true);  // failed before a restart: earn the repair
          d.paths.push_back({kind, source, std::move(base)});
        }
      }
      detectors_.erase(m.name);  // the paths not kept
      if (d.paths.empty()) continue;
      if (d.paths.size() < want.size())  // one family could not be opened (yet): again at the next sync
        log::write(spdlog::level::warn, log::member_fields(g.name, m.name),
                   "{}: probed on one family only for now", m.name);
      detectors_[m.name] = std::move(d);
    }
  }
  std::erase_if(detectors_, [&](const auto& e) {
    return std::find(wanted.begin(), wanted.end(), e.first) == wanted.end();
  });
  for (const auto& g : engine_.groups()) {
    for (const auto& m : g.members) {
      auto it = detectors_.find(m.name);
      if (it == detectors_.end()) {
        if (m.probe != ProbeState::disabled) engine_.observe_probe(m.name, ProbeVerdict::disabled());
        engine_.observe_targets(m.name, TargetMode::disabled, {});
        continue;
      }
      pause_or_resume(m, it->second);
    }
  }
  refresh_targets();
  for (const auto& g : engine_.groups()) {
    for (const auto& m : g.members)
      if (auto it = detectors_.find(m.name); it != detectors_.end())
        engine_.observe_probe(m.name, verdict_of(it->second));
  }
}

void Probing::on_event(const Event& e) {
  if (const auto* c = std::get_if<MemberChanged>(&e)) {
    if (c->before.link == c->after.link && c->before.state == c->after.state) return;
    // An interface that appeared or went away (possibly with a new ifindex): its
    // detector is made anew.
    if (c->before.link == LinkState::unknown || c->after.link == LinkState::unknown || !detectors_.contains(c->member)) {
      sync_pending_ = true;
    } else {
      // The link went down: old successes must not count, even if it is back up by
      // the time the deferred work runs.
      if (c->before.link == LinkState::up && c->after.link != LinkState::up) resets_pending_.push_back(c->member);
      members_pending_.push_back(c->member);
    }
  } else if (const auto* g = std::get_if<GroupChanged>(&e)) {
    if (g->after != GroupState::failed || g->reason != Reason::group_failure) return;
    group_failures_pending_.push_back(g->group);
  } else if (std::holds_alternative<TopologyChanged>(e)) {
    sync_pending_ = true;
  } else {
    return;
  }
  arm();
}

}  // namespace mpathd
