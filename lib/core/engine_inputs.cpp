// Engine: what the kernel reports (links, addresses), start-up and the administrative
// commands (offline, online, move).
#include "core/engine.hpp"

#include <algorithm>

#include "core/engine_internal.hpp"

namespace mpathd {

using namespace engine_detail;

// --- inputs ----------------------------------------------------------------------

void Engine::release_ifindex(const LinkObservation& obs) {
  const Reason why = obs.exists ? Reason::interface_renamed : Reason::interface_removed;
  for (auto& g : groups_)
    for (auto& m : g.members) {
      if (m.ifindex != obs.ifindex || m.name == obs.name) continue;
      // Nothing of the interface stays with the name it no longer has.
      m.ifindex = 0;
      m.mac = Mac{};
      set_link(m, LinkState::unknown);
      m.hwaddr_dup = false;  // no interface, no duplicate
      if (!started_) continue;
      refresh(g, m, why);
      check_hwaddr(g);  // another member may be unique now
    }
  std::vector<std::string> gone;
  for (const auto& m : anonymous_.members)
    if (m.ifindex == obs.ifindex && m.name != obs.name) gone.push_back(m.name);
  for (const auto& name : gone) {
    std::erase_if(anonymous_.members, [&](const Member& x) { return x.name == name; });
    publish(TopologyChanged{"", name, false});
  }
}

void Engine::observe_link(const LinkObservation& obs) {
  // The same index under another name: renamed (or events were lost and it is gone).
  bool renamed = false;
  if (obs.ifindex != 0) {
    renamed = obs.exists && std::any_of(links_.begin(), links_.end(), [&](const LinkObservation& l) {
                return l.ifindex == obs.ifindex && l.name != obs.name;
              });
    std::erase_if(links_, [&](const LinkObservation& l) { return l.ifindex == obs.ifindex; });
    if (!obs.loopback) release_ifindex(obs);
  }
  std::erase_if(links_, [&](const LinkObservation& l) { return l.name == obs.name; });
  if (obs.exists) links_.push_back(obs);  // the loopback too: add_member refuses it by name
  if (obs.loopback) return;
  Group* g = nullptr;
  Member* m = member_by_name(obs.name, &g);
  if (!m) {
    if (config_.track_interfaces_only_with_groups || !obs.exists) return;
    Member fresh;
    fresh.name = obs.name;
    anonymous_.members.push_back(std::move(fresh));
    g = &anonymous_;
    m = &anonymous_.members.back();
    publish(TopologyChanged{"", m->name, true});
  }
  // A member's name on an interface that cannot be a member (a tunnel created under
  // that name): as if it were not there, so nothing is placed on it.
  const bool exists = obs.exists && (g->anonymous() || !member_link_problem(obs.name, obs.facts()));
  const auto now = clock_.now();
  const LinkState before = m->link;
  Reason reason = Reason::none;
  bool mac_changed = false;
  if (!exists && g->anonymous()) {  // an ungrouped interface that is gone is forgotten
    std::string name = m->name;
    std::erase_if(anonymous_.members, [&](const Member& x) { return x.name == name; });
    publish(TopologyChanged{"", name, false});
    return;
  }
  const std::uint32_t flags_before = m->link_flags;
  m->link_flags = exists ? obs.flags : 0;
  if (started_ && m->link_flags != flags_before)
    publish(LinkFlagsChanged{g->name, m->name, flags_before, m->link_flags});
  if (!exists) {
    m->ifindex = 0;
    set_link(*m, LinkState::unknown);
    reason = Reason::interface_removed;
  } else {
    if (m->ifindex == 0 && started_) reason = renamed ? Reason::interface_renamed : Reason::interface_added;
    m->ifindex = obs.ifindex;
    mac_changed = m->mac != obs.mac;
    m->mac = obs.mac;
    set_link(*m, obs.up ? LinkState::up : LinkState::down);
  }
  if (m->link == LinkState::up && before != LinkState::up) {
    ++m->counters.link_ups;
    if (started_ && before == LinkState::down) note_link_up(*m, now);
    if (reason == Reason::none) reason = m->link_trusted ? Reason::link_up : Reason::link_flapping;
  } else if (m->link == LinkState::down && before != LinkState::down) {
    ++m->counters.link_downs;
    if (reason == Reason::none) reason = Reason::link_down;
    // A probed member must earn its repair with good probes after the link is back
    // (its detector is reset too), also when the link bounces within one batch.
    if (m->probe == ProbeState::ok) set_probe(*m, ProbeState::failed);
  }
  if (!started_) return;
  if (mac_changed || !exists) check_hwaddr(*g);
  if (reason != Reason::none || mac_changed) refresh(*g, *m, reason == Reason::none ? Reason::link_up : reason);
}

void Engine::observe_address(std::string_view ifname, const IpPrefix& prefix, bool present) {
  if (started_) return;  // after start the data plane reconciles the kernel itself
  std::erase_if(kernel_addresses_, [&](const auto& e) { return e.first == ifname && e.second == prefix; });
  if (present) kernel_addresses_.emplace_back(std::string(ifname), prefix);
}

void Engine::start() {
  if (started_) return;
  started_ = true;
  for (auto& g : groups_) {
    check_hwaddr(g);
    // Adopt data addresses the kernel already carries on a member of the group.
    for (auto& a : g.data)
      for (const auto& [ifname, prefix] : kernel_addresses_)
        if (prefix.addr == a.prefix.addr && g.find(ifname) && a.holder.empty()) {
          a.holder = ifname;
          // An address found on a working member stays put: that member becomes its
          // home, unless a saved state knows its home.
          bool saved = std::find(restored_homes_.begin(), restored_homes_.end(), a.prefix.addr) != restored_homes_.end();
          if (!saved && derive_state(*g.find(ifname)) == MemberState::ok) a.home = ifname;
        }
    for (auto& m : g.members) apply_state(g, m, Reason::startup, Transition::initial);
    adopt_shared(g);
    run_policy(g, Reason::startup, false);
  }
  for (auto& m : anonymous_.members) set_state(anonymous_, m, derive_state(m), Reason::startup);
  kernel_addresses_.clear();
  restored_shared_.clear();
}

// --- administrative commands -------------------------------------------------------

Result<void> Engine::offline(std::string_view ifname) {
  Group* g = nullptr;
  Member* m = member_by_name(ifname, &g);
  if (!m) return fail(Errc::no_such_interface, "no interface " + echo(ifname) + " is tracked");
  if (g->anonymous())
    return fail(Errc::not_in_group, "'" + m->name + "' is not in a group; only group members can be taken offline");
  if (m->admin_offline) return fail(Errc::already_offline, "'" + m->name + "' is already offline");
  // in.mpathd's minimum redundancy of 1: another usable member must remain; in a
  // failed group any member that is not offline will do.
  if (others_for_offline(*g, *m) == 0)
    return fail(Errc::last_usable_member, "cannot offline '" + m->name + "': no other functioning interface is in group '" +
                                              g->name + "'");
  m->admin_offline = true;
  refresh(*g, *m, Reason::admin_offline);
  return {};
}

Result<void> Engine::online(std::string_view ifname) {
  Group* g = nullptr;
  Member* m = member_by_name(ifname, &g);
  if (!m) return fail(Errc::no_such_interface, "no interface " + echo(ifname) + " is tracked");
  if (m->hwaddr_dup)
    return fail(Errc::hwaddr_duplicate,
                "'" + m->name + "' has a hardware address that is not unique in group '" + g->name + "'" +
                    (m->admin_offline ? "" : "; it is offline for that reason and comes back by itself once its address is unique"));
  if (!m->admin_offline) return fail(Errc::not_offline, "'" + m->name + "' is not offline");
  m->admin_offline = false;
  refresh(*g, *m, Reason::admin_online, Transition::online);
  return {};
}

Result<void> Engine::move_address(const IpAddress& address, std::string_view to_member) {
  for (auto& g : groups_)
    for (auto& a : g.data) {
      if (a.prefix.addr != address) continue;
      Member* to = g.find(to_member);
      if (!to)
        return fail(Errc::not_in_group,
                    echo(to_member) + " is not a member of group '" + g.name + "'");
      if (!to->active())
        return fail(Errc::not_usable, "'" + to->name + "' is not an active member (state " +
                                          std::string(to_string(to->state)) +
                                          (to->inactive ? ", INACTIVE)" : ")"));
      if (a.home != to->name) {
        a.home = to->name;
        publish(DataAddressesChanged{g.name, a.prefix, a.home, a.refused, Reason::admin_move});
      }
      move(g, a, to->name, Reason::admin_move);
      return {};
    }
  return fail(Errc::no_such_address, "no data address " + address.str() + " is configured");
}

std::size_t Engine::others_for_offline(const Group& g, const Member& m) const {
  return count_if_members(g, [&](const Member& o) {
    return &o != &m && (g.state == GroupState::failed ? o.state != MemberState::offline : o.usable());
  });
}

}  // namespace mpathd
