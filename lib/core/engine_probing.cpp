// Engine: probe verdicts and results, interface vs group failure, the FDT in force.
#include "core/engine.hpp"

#include <algorithm>

#include "core/engine_internal.hpp"

namespace mpathd {

using namespace engine_detail;

// --- probing ---------------------------------------------------------------------------

bool Engine::another_working(const Group& g, const Member& m) const {
  for (const auto& o : g.members) {
    if (&o == &m || !o.usable() || o.link != LinkState::up) continue;  // offline/failed never vouch
    if (o.probe == ProbeState::disabled) return true;
    if (o.probe_last_success > m.probe_first_failure) return true;
  }
  return false;
}

void Engine::group_failure(Group& g) {
  // Members whose probes were answered until now are failed with it; members
  // without targets (probe unknown) or without probing keep their state.
  for (auto& o : g.members)
    if (o.probe == ProbeState::ok && o.state != MemberState::offline) set_probe(o, ProbeState::failed);
  for (auto& o : g.members) set_state(g, o, derive_state(o), Reason::group_failure);
  run_policy(g, Reason::group_failure, true);
}

void Engine::refresh_fdt(Group& g) {
  Duration fdt = config_.failure_detection_time_of(g.config);
  const Duration configured = fdt;
  for (const auto& m : g.members) fdt = std::max(fdt, m.needed_fdt);
  if (fdt == g.fdt) return;
  FdtChanged ev{g.name, g.fdt, fdt, fdt > configured};
  g.fdt = fdt;
  publish(ev);
}

void Engine::observe_probe(std::string_view ifname, const ProbeVerdict& v) {
  Group* g = nullptr;
  Member* m = member_by_name(ifname, &g);
  if (!m) return;
  m->probe_first_failure = v.first_failure;
  m->probe_last_success = v.last_success;
  m->needed_fdt = v.fdt_unachievable ? v.needed_fdt : Duration{};
  m->probe_v4 = v.v4;
  m->probe_v6 = v.v6;
  refresh_fdt(*g);
  if (!started_) {
    set_probe(*m, v.state);
    return;
  }
  switch (v.state) {
    case ProbeState::failed:
      if (m->probe == ProbeState::failed) return;
      if (m->link != LinkState::up || m->state == MemberState::offline) {
        // Its detector was reset (no link, offline): the link or the admin is the
        // reason; the probes only have to earn the repair later.
        set_probe(*m, ProbeState::failed);
        commit(*g, *m, m->reason);
        return;
      }
      if (g->anonymous() || another_working(*g, *m)) {
        set_probe(*m, ProbeState::failed);
        refresh(*g, *m, Reason::probe_loss);
      } else {
        set_probe(*m, ProbeState::failed);
        group_failure(*g);
      }
      return;
    case ProbeState::ok: {
      Reason why = m->probe == ProbeState::failed || m->restored_failed ? Reason::repaired : Reason::probing_started;
      set_probe(*m, ProbeState::ok);
      m->restored_failed = false;
      refresh(*g, *m, why);
      return;
    }
    case ProbeState::unknown:
    case ProbeState::disabled: {
      Reason why = v.state == ProbeState::disabled ? Reason::probing_stopped : Reason::probing_started;
      if (m->probe == v.state) return;
      // Probing stops because the interface is gone: that stays the reason shown.
      if (v.state == ProbeState::disabled && m->ifindex == 0 &&
          (m->reason == Reason::interface_removed || m->reason == Reason::interface_renamed))
        why = m->reason;
      // Targets gone (flushed after a group failure, routers withdrawn) are no repair:
      // a failed member stays failed until its probes are answered again.
      if (v.state == ProbeState::unknown && m->probe == ProbeState::failed) return;
      if (v.state == ProbeState::disabled) m->restored_failed = false;  // nothing could repair it
      set_probe(*m, v.state);
      refresh(*g, *m, why);
      return;
    }
  }
}

void Engine::observe_address_refused(const IpAddress& address, std::string error) {
  for (auto& g : groups_)
    for (auto& a : g.data)
      if (a.prefix.addr == address && a.refused != error) {
        a.refused = std::move(error);
        publish(DataAddressesChanged{g.name, a.prefix, a.home, a.refused, Reason::none});
        return;
      }
}

void Engine::observe_targets(std::string_view ifname, TargetMode mode, std::vector<ProbeTargetInfo> targets) {
  Group* g = nullptr;
  Member* m = member_by_name(ifname, &g);
  if (!m) return;
  bool same = m->target_mode == mode && m->targets.size() == targets.size() &&
              std::equal(targets.begin(), targets.end(), m->targets.begin(),
                         [](const ProbeTargetInfo& a, const ProbeTargetInfo& b) { return a.address == b.address; });
  if (same) return;  // the RTTs are kept; they change with every probe
  m->target_mode = mode;
  m->targets = std::move(targets);
  TargetsChanged ev{g->name, m->name, mode, {}};
  for (const auto& t : m->targets) ev.targets.push_back(t.address);
  publish(ev);
}

void Engine::observe_probe_result(const ProbeResult& r) {
  Group* g = nullptr;
  Member* m = member_by_name(r.member, &g);
  if (!m) return;
  if (r.acked) m->probe_last_success = std::max(m->probe_last_success, r.received);
  for (auto& t : m->targets)
    if (t.address == r.target) {
      t.rtt_avg = r.rtt_avg;
      t.rtt_dev = r.rtt_dev;
    }
  publish(ProbeCompleted{g->name, m->name, static_cast<std::uint32_t>(r.seq), r.target, r.acked, r.net_rtt,
                         r.rtt, r.rtt_avg, r.rtt_dev});
}

}  // namespace mpathd
