// Engine: state derivation (member state, INACTIVE, group state, link trust, duplicate
// hardware addresses).
#include "core/engine.hpp"

#include <algorithm>

#include "core/engine_internal.hpp"

namespace mpathd {

using namespace engine_detail;

// --- derivation ------------------------------------------------------------------

MemberState Engine::derive_state(const Member& m) const {
  if (m.admin_offline || m.hwaddr_dup) return MemberState::offline;
  switch (m.link) {
    case LinkState::unknown:
      return MemberState::unknown;
    case LinkState::down:
      return MemberState::failed;
    case LinkState::up:
      break;
  }
  if (!m.link_trusted || m.probe == ProbeState::failed) return MemberState::failed;
  if (m.restored_failed && m.probe != ProbeState::disabled) return MemberState::failed;
  return MemberState::ok;
}

// A member becoming usable: active or INACTIVE (in.mpathd's transition to running).
bool Engine::decide_inactive(const Group& g, const Member& m, Transition t) const {
  if (g.anonymous()) return false;
  std::size_t others_active = count_if_members(g, [&](const Member& o) { return &o != &m && o.active(); });
  if (m.standby) return others_active >= active_target(g);
  if (t != Transition::repair || g.failback) return false;  // surplus standbys are released later
  return others_active > 0;  // FAILBACK=no: stay INACTIVE unless the group had failed
}

void Engine::refresh(Group& g, Member& m, Reason reason, Transition t) {
  bool was_active = m.active();
  apply_state(g, m, reason, t);
  if (!g.anonymous()) run_policy(g, reason, was_active && !m.active());
}


void Engine::refresh_group_state(Group& g, Reason reason) {
  std::size_t usable = count_if_members(g, [](const Member& m) { return m.usable(); });
  GroupState next = usable == 0 ? GroupState::failed
                    : usable == g.members.size() ? GroupState::ok
                                                 : GroupState::degraded;
  if (next == g.state && g.reason != Reason::none) return;
  Reason why = g.reason == Reason::none      ? reason  // first evaluation (startup)
               : next == GroupState::failed    ? Reason::group_failure
               : g.state == GroupState::failed ? Reason::repaired
                                               : reason;
  set_group_state(g, next, why);
}

void Engine::note_link_up(Member& m, TimePoint now) const {
  auto& ups = m.link_up_times;
  ups.push_back(now);
  std::erase_if(ups, [&](TimePoint t) { return t + config_.link_flap_window <= now; });
  // More than link_flap_limit link-ups within the window: not trusted until the
  // oldest of the counted ones leaves the window.
  if (m.probe == ProbeState::disabled && ups.size() > config_.link_flap_limit) {
    m.link_trusted = false;
    m.trusted_at = ups[ups.size() - 1 - config_.link_flap_limit] + config_.link_flap_window;
  } else {
    m.link_trusted = true;
  }
}

void Engine::check_hwaddr(Group& g) {
  if (g.anonymous()) return;
  for (auto& m : g.members) {
    bool dup = false;
    if (m.ifindex != 0 && !m.mac.is_zero())
      for (const auto& o : g.members) {
        if (&o == &m) break;
        if (o.ifindex != 0 && !o.hwaddr_dup && o.mac == m.mac) dup = true;
      }
    if (dup == m.hwaddr_dup) continue;
    m.hwaddr_dup = dup;
    if (started_)
      refresh(g, m, dup ? Reason::hwaddr_duplicate : Reason::hwaddr_unique, Transition::online);
  }
}

}  // namespace mpathd
