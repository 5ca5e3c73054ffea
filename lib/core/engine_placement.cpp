// Engine: the policy that keeps members active and places data addresses on them.
#include "core/engine.hpp"

#include <algorithm>

#include "core/engine_internal.hpp"

namespace mpathd {

using namespace engine_detail;

// --- placement --------------------------------------------------------------------

void Engine::run_policy(Group& g, Reason reason, bool lost_active) {
  normalize_active(g, lost_active);
  place_addresses(g, reason);
  refresh_group_state(g, reason);
  place_shared(g, reason);
}

void Engine::normalize_active(Group& g, bool lost_active) {
  const std::size_t target = active_target(g);
  auto active = [&] { return count_if_members(g, [](const Member& m) { return m.active(); }); };
  // An active member was lost: activate INACTIVE ones up to the target, standbys
  // first (in.mpathd's phyint_activate_another). A repaired member under FAILBACK=no
  // stays INACTIVE until then.
  for (bool standby_pass : {true, false}) {
    for (auto& m : g.members) {
      if ((!lost_active && !standby_pass) || active() >= target) break;
      if (m.usable() && m.inactive && m.standby == standby_pass)
        set_inactive(g, m, false, Reason::standby_needed);
    }
  }
  // Too many: release active standbys, the last one first.
  for (auto it = g.members.rbegin(); it != g.members.rend() && active() > target; ++it)
    if (it->standby && it->active()) set_inactive(g, *it, true, Reason::standby_released);
}

// The placement in one pass, then only the difference is published: each address
// moves at most once per policy run, and only when its holder really changes.
//  1. An address whose home member is active is on its home (pinned) when FAILBACK is
//     on, when it is there already, or when its holder is not active.
//  2. Every other address on an active member stays there for now; one on a member
//     that is not active goes to the least loaded active member.
//  3. Balance by count, per family, with the addresses not pinned: move from the most
//     loaded member that has such an address to the least loaded active member while
//     they differ by more than one, preferring addresses whose home is the destination.
// Pinned addresses are never balanced away, so failback and balancing cannot undo
// each other. With no active member (group failure) addresses stay where they are.
void Engine::place_addresses(Group& g, Reason reason) {
  constexpr std::size_t none = static_cast<std::size_t>(-1);
  const std::size_t n = g.data.size();
  auto index_of = [&](std::string_view name) {
    for (std::size_t k = 0; k < g.members.size(); ++k)
      if (g.members[k].name == name) return k;
    return none;
  };
  auto active = [&](std::size_t k) { return k != none && g.members[k].active(); };
  auto fam = [&](std::size_t i) { return g.data[i].prefix.addr.family == Family::v4 ? 0 : 1; };
  std::vector<std::size_t> plan(n, none);  // member index of the new holder
  std::vector<bool> pinned(n, false);
  std::vector<std::size_t> load[2] = {std::vector<std::size_t>(g.members.size()),
                                      std::vector<std::size_t>(g.members.size())};
  auto place = [&](std::size_t i, std::size_t k) {
    if (plan[i] != none) --load[fam(i)][plan[i]];
    plan[i] = k;
    if (k != none) ++load[fam(i)][k];
  };
  auto least_loaded = [&](int f) {  // ties go to member order
    std::size_t best = none;
    for (std::size_t k = 0; k < g.members.size(); ++k)
      if (active(k) && (best == none || load[f][k] < load[f][best])) best = k;
    return best;
  };
  for (std::size_t i = 0; i < n; ++i) {  // 1.
    const std::size_t holder = index_of(g.data[i].holder);
    const std::size_t home = index_of(g.data[i].home);
    place(i, holder);
    if (active(home) && (g.failback || home == holder || !active(holder))) {
      place(i, home);
      pinned[i] = true;
    }
  }
  for (std::size_t i = 0; i < n; ++i)  // 2.
    if (!pinned[i] && !active(plan[i]))
      if (const std::size_t to = least_loaded(fam(i)); to != none) place(i, to);
  for (int f : {0, 1}) {  // 3.
    for (std::size_t guard = 0; guard < n; ++guard) {
      const std::size_t lo = least_loaded(f);
      std::size_t hi = none;
      for (std::size_t i = 0; i < n; ++i)
        if (!pinned[i] && fam(i) == f && active(plan[i]) && (hi == none || load[f][plan[i]] > load[f][hi]))
          hi = plan[i];
      if (lo == none || hi == none || load[f][hi] <= load[f][lo] + 1) break;
      std::size_t pick = none;
      for (std::size_t i = 0; i < n; ++i)
        if (!pinned[i] && fam(i) == f && plan[i] == hi && (pick == none || g.data[i].home == g.members[lo].name))
          pick = i;
      place(pick, lo);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    DataAddress& a = g.data[i];
    if (plan[i] == none || g.members[plan[i]].name == a.holder) continue;
    const std::string to = g.members[plan[i]].name;
    const Member* holder = g.find(a.holder);
    if (!g.find(a.home)) {  // its home left the group
      a.home = to;
      publish(DataAddressesChanged{g.name, a.prefix, a.home, a.refused, reason});
    }
    // A holder that still works was only released (a standby going back to INACTIVE).
    Reason why = !holder             ? reason
                 : !holder->usable() ? Reason::failover
                 : to == a.home      ? Reason::failback
                                     : Reason::rebalance;
    move(g, a, to, why);
  }
}

}  // namespace mpathd
