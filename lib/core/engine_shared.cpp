// Engine: shared (cluster-wide) addresses (DESIGN.md §5): takeover and release, their
// placement on the group's active members, the release of a failed group's addresses,
// and their adoption at start-up.
#include <algorithm>

#include "core/engine.hpp"
#include "core/engine_internal.hpp"

namespace mpathd {

using namespace engine_detail;

namespace {

bool hosted(const SharedAddress& s) { return s.state != SharedState::released; }

// The active member that should carry a held shared address: where it is when that
// member is active, else the active member with the fewest addresses (data and shared,
// ties in member order); "" when the group has no active member.
std::string best_member(const Group& g, const SharedAddress& s) {
  if (const Member* h = g.find(s.holder); h && h->active()) return h->name;
  const Member* best = nullptr;
  std::size_t best_load = 0;
  for (const auto& m : g.members) {
    if (!m.active()) continue;
    std::size_t load = g.load(m.name) + static_cast<std::size_t>(std::count_if(
                                            g.shared.begin(), g.shared.end(), [&](const SharedAddress& x) {
                                              return &x != &s && hosted(x) && x.holder == m.name;
                                            }));
    if (!best || load < best_load) {
      best = &m;
      best_load = load;
    }
  }
  return best ? best->name : std::string();
}

// The group and the entry of a configured shared address (configuration keeps them unique).
Result<std::pair<Group*, SharedAddress*>> find_shared(std::vector<Group>& groups, const IpAddress& address) {
  for (auto& g : groups)
    for (auto& s : g.shared)
      if (s.prefix.addr == address) return std::pair{&g, &s};
  return fail(Errc::not_shared, address.str() + " is not a shared address of any group");
}

}  // namespace

Result<void> Engine::takeover_shared(const IpAddress& address) {
  auto found = find_shared(groups_, address);
  if (!found) return std::unexpected(found.error());
  auto [g, s] = *found;
  if (hosted(*s))
    return fail(Errc::already_held, s->prefix.str() + " is already held here (" + std::string(to_string(s->state)) +
                                        (s->holder.empty() ? "" : " on " + s->holder) + ")");
  const std::string to = best_member(*g, *s);
  if (to.empty()) return fail(Errc::not_usable, "group '" + g->name + "' has no active member to hold " + s->prefix.str());
  set_shared(*g, *s, SharedState::held, to, Reason::admin_takeover);
  return {};
}

Result<void> Engine::release_shared(const IpAddress& address) {
  auto found = find_shared(groups_, address);
  if (!found) return std::unexpected(found.error());
  auto [g, s] = *found;
  if (!hosted(*s)) return fail(Errc::not_held, s->prefix.str() + " is not held here (released)");
  set_shared(*g, *s, SharedState::released, "", Reason::admin_release);
  return {};
}

// The list follows the group's configuration: a shared address removed from it is
// released first (the daemon runs the release sequence), a new one starts released.
void Engine::sync_shared(Group& g, Reason reason) {
  for (auto& s : g.shared)
    if (hosted(s) && std::none_of(g.config.shared_addresses.begin(), g.config.shared_addresses.end(),
                                  [&](const IpPrefix& p) { return p == s.prefix; }))
      set_shared(g, s, SharedState::released, "", reason, "no longer a shared address of the group");
  std::erase_if(g.shared, [&](const SharedAddress& s) {
    return std::none_of(g.config.shared_addresses.begin(), g.config.shared_addresses.end(),
                        [&](const IpPrefix& p) { return p == s.prefix; });
  });
  for (const auto& p : g.config.shared_addresses)
    if (std::none_of(g.shared.begin(), g.shared.end(), [&](const SharedAddress& s) { return s.prefix == p; }))
      g.shared.push_back(SharedAddress{p, SharedState::released, "", Reason::none, ""});
  // Configuration order.
  std::stable_sort(g.shared.begin(), g.shared.end(), [&](const SharedAddress& a, const SharedAddress& b) {
    auto pos = [&](const IpPrefix& x) {
      return std::find(g.config.shared_addresses.begin(), g.config.shared_addresses.end(), x) -
             g.config.shared_addresses.begin();
    };
    return pos(a.prefix) < pos(b.prefix);
  });
}

// After every policy run: the list follows the group's configuration (a shared address
// removed from it is released first), then each hosted address goes to the best active
// member. With no active member the group's addresses are released when the group says
// so (release-shared-on-failure), else they stay where they are, unserviceable.
void Engine::place_shared(Group& g, Reason reason) {
  sync_shared(g, reason);
  for (auto& s : g.shared) {
    if (!hosted(s)) continue;
    const std::string to = best_member(g, s);
    if (!to.empty()) {
      const Member* from = g.find(s.holder);
      const Reason why = s.state == SharedState::unserviceable ? Reason::repaired
                         : !from || from->usable()             ? reason
                                                               : Reason::failover;
      set_shared(g, s, SharedState::held, to, why);
    } else if (g.config.release_shared_on_failure) {
      set_shared(g, s, SharedState::released, "", Reason::group_failure,
                 "group '" + g.name + "' has no active member; released (release-shared-on-failure)");
    } else {
      set_shared(g, s, SharedState::unserviceable, s.holder, Reason::group_failure,
                 "group '" + g.name + "' has no active member; kept (release-shared-on-failure = false)");
    }
  }
}

// At start-up, before the first policy run: a shared address the kernel already carries
// on a member of the group is held there as it is (adopted, not removed and re-added);
// one saved as held (import_state) is held again, on its saved member as a hint.
void Engine::adopt_shared(Group& g) {
  for (auto& s : g.shared) {
    for (const auto& [ifname, prefix] : kernel_addresses_)
      if (prefix.addr == s.prefix.addr && g.find(ifname)) {
        set_shared(g, s, SharedState::held, ifname, Reason::adopted);
        break;
      }
    if (s.state != SharedState::released) continue;
    // Held before the restart but gone from the kernel since (removed by hand, by the
    // OCF agent's stop while mpathd was away, or by a reboot): the kernel decides, so
    // that an address the cluster may have moved elsewhere is never brought back here
    // by itself. A crash in the middle of a move lands here too; the cluster manager's
    // monitor sees the address released and starts it again (docs/design-decisions.md).
    for (const auto& saved : restored_shared_)
      if (saved.prefix.addr == s.prefix.addr) {
        set_shared(g, s, SharedState::released, "", Reason::startup,
                   "held before mpathd started but not in the kernel: left released");
        break;
      }
  }
}

}  // namespace mpathd
