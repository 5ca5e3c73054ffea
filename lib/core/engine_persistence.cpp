// Engine: the state that survives a restart (export and import).
#include "core/engine.hpp"

#include <algorithm>

#include "core/engine_internal.hpp"

namespace mpathd {

using namespace engine_detail;

// --- persistence -------------------------------------------------------------------

std::vector<PersistedGroup> Engine::export_state() const {
  std::vector<PersistedGroup> out;
  for (const auto& g : groups_) {
    PersistedGroup pg{g.name, {}, {}, {}};
    for (const auto& m : g.members)
      pg.members.push_back({m.name, m.admin_offline, m.state == MemberState::failed || m.restored_failed});
    for (const auto& a : g.data) pg.addresses.push_back({a.prefix, a.holder, a.home});
    for (const auto& s : g.shared)
      if (s.state != SharedState::released) pg.shared.push_back({s.prefix, s.holder});
    out.push_back(std::move(pg));
  }
  return out;
}

void Engine::import_state(const std::vector<PersistedGroup>& state) {
  if (started_) return;
  for (const auto& pg : state) {
    Group* g = nullptr;
    for (auto& x : groups_)
      if (x.name == pg.name) g = &x;
    if (!g) continue;  // the group left the configuration
    for (const auto& pm : pg.members)
      if (Member* m = g->find(pm.name)) {
        m->admin_offline = pm.admin_offline;
        m->restored_failed = pm.failed;
        // Probed groups: out of service from the first moment, until probes repair it
        // (if it turns out it cannot be probed, its detector reports "disabled").
        if (pm.failed && g->config.probe_method != ProbeMethod::none) set_probe(*m, ProbeState::failed);
      }
    for (const auto& pa : pg.addresses)
      for (auto& a : g->data)
        if (a.prefix.addr == pa.prefix.addr && g->find(pa.home)) {
          a.home = pa.home;
          restored_homes_.push_back(a.prefix.addr);
        }
    for (const auto& ps : pg.shared)
      if (g->find_shared(ps.prefix.addr)) restored_shared_.push_back(ps);
  }
}

}  // namespace mpathd
