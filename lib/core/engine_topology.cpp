// Engine: runtime changes of groups, members and data addresses, and reload.
#include "core/engine.hpp"

#include <algorithm>
#include "core/names.hpp"
#include "core/validate.hpp"

#include "core/engine_internal.hpp"

namespace mpathd {

using namespace engine_detail;

// --- runtime changes of the group set ------------------------------------------------

void Engine::init_member(Group& g, Member& m) {
  // An interface tracked without a group stops being ungrouped when it joins one.
  if (anonymous_.find(m.name)) {
    std::erase_if(anonymous_.members, [&](const Member& x) { return x.name == m.name; });
    publish(TopologyChanged{"", m.name, false});
  }
  for (const auto& l : links_)
    if (l.name == m.name) {
      m.ifindex = l.ifindex;
      m.mac = l.mac;
      set_link(m, l.up ? LinkState::up : LinkState::down);
    }
  publish(TopologyChanged{g.name, m.name, true});
}

Result<void> Engine::check_link(std::string_view ifname) const {
  for (const auto& l : links_)
    if (l.name == ifname)
      if (auto problem = member_link_problem(ifname, l.facts()))
        return fail(Errc::invalid_argument, *problem);
  return {};
}

// What a new member is on its own: a valid name, a link that can be a member, valid
// test addresses. How it fits the groups is check_claims().
Result<void> Engine::check_member(const MemberConfig& mc) const {
  if (auto problem = ifname_problem(mc.name)) return fail(Errc::invalid_argument, *problem);
  if (auto r = check_link(mc.name); !r) return r;
  for (const auto& t : mc.test_addresses)
    if (auto problem = address_problem(t, AddressRole::test)) return fail(Errc::invalid_argument, *problem);
  return {};
}

// The rules between groups (core/validate.hpp), as the configuration file parser
// applies them: `fresh` against what the running groups claim and against itself.
Result<void> Engine::check_claims(const std::vector<Claim>& fresh) const {
  std::vector<Claim> taken;
  for (const auto& g : groups_) {
    auto claims = claims_of(g.config);
    taken.insert(taken.end(), claims.begin(), claims.end());
  }
  if (auto why = first_conflict(taken, fresh)) return fail(Errc::exists, *why);
  return {};
}

Result<void> Engine::check_links(const Config& config) const {
  std::string problems;
  for (const auto& gc : config.groups)
    for (const auto& mc : gc.members)
      if (auto r = check_link(mc.name); !r)
        problems += (problems.empty() ? "" : "\n") + ("group " + gc.name + ": " + r.error().message);
  if (problems.empty()) return {};
  return fail(Errc::config, std::move(problems));
}

Result<void> Engine::create_group(GroupConfig gc) {
  if (auto problem = group_name_problem(gc.name)) return fail(Errc::invalid_argument, *problem);
  if (gc.interface.empty()) gc.interface = gc.name;
  if (auto problem = ifname_problem(gc.interface))
    return fail(Errc::invalid_argument, "group interface " + *problem);
  for (auto [list, role] : {std::pair{&gc.data_addresses, AddressRole::data}, std::pair{&gc.shared_addresses, AddressRole::shared}})
    for (const auto& p : *list)
      if (auto problem = address_problem(p, role)) return fail(Errc::invalid_argument, *problem);
  for (const auto& mc : gc.members)
    if (auto r = check_member(mc); !r) return r;
  if (auto r = check_claims(claims_of(gc)); !r) return r;
  config_.groups.push_back(gc);
  groups_.push_back(make_group(gc, config_));
  Group& g = groups_.back();
  publish(TopologyChanged{g.name, "", true});
  for (auto& m : g.members) init_member(g, m);
  if (started_) {
    check_hwaddr(g);
    for (auto& m : g.members) apply_state(g, m, Reason::member_added, Transition::initial);
    run_policy(g, Reason::member_added, false);
  }
  return {};
}

Result<void> Engine::destroy_group(std::string_view name) {
  auto it = std::find_if(groups_.begin(), groups_.end(), [&](const Group& g) { return g.name == name; });
  if (it == groups_.end()) return fail(Errc::no_such_group, "no group " + echo(name));
  std::string gname = it->name;
  std::vector<std::string> members;
  for (const auto& m : it->members) members.push_back(m.name);
  it->config.shared_addresses.clear();
  sync_shared(*it, Reason::config_reload);  // held shared addresses are released first
  groups_.erase(it);
  std::erase_if(config_.groups, [&](const GroupConfig& gc) { return gc.name == gname; });
  for (const auto& m : members) publish(TopologyChanged{gname, m, false});
  publish(TopologyChanged{gname, "", false});
  return {};
}

Result<void> Engine::add_member(std::string_view group, MemberConfig mc) {
  Group* g = nullptr;
  for (auto& x : groups_)
    if (x.name == group) g = &x;
  if (!g) return fail(Errc::no_such_group, "no group " + echo(group));
  if (auto r = check_member(mc); !r) return r;
  std::vector<Claim> claims{{Claim::Kind::member, mc.name, g->name, {}, {}}};
  for (const auto& t : mc.test_addresses) claims.push_back(address_claim(t, AddressRole::test, g->name, mc.name));
  if (auto r = check_claims(claims); !r) return r;
  g->config.members.push_back(mc);
  for (auto& gc : config_.groups)
    if (gc.name == g->name) gc.members.push_back(mc);
  g->members.push_back(make_member(g->config, mc));
  Member& m = g->members.back();
  init_member(*g, m);
  if (started_) {
    check_hwaddr(*g);
    refresh(*g, g->members.back(), Reason::member_added, Transition::initial);
  }
  return {};
}

Result<void> Engine::remove_member(std::string_view ifname) {
  Group* g = nullptr;
  Member* m = member_by_name(ifname, &g);
  if (!m) return fail(Errc::no_such_interface, "no interface " + echo(ifname) + " is tracked");
  if (g->anonymous()) return fail(Errc::not_in_group, "'" + m->name + "' is not in a group");
  if (m->usable() && g->load(m->name) > 0 && others_for_offline(*g, *m) == 0)
    return fail(Errc::last_usable_member, "cannot remove '" + m->name + "': it is the last usable member of group '" +
                                              g->name + "' and holds its data addresses");
  drop_member(*g, m->name);
  return {};
}

void Engine::drop_member(Group& g, const std::string& name) {
  const Member* leaving = g.find(name);
  const bool was_active = leaving && leaving->active();
  std::erase_if(g.members, [&](const Member& x) { return x.name == name; });
  std::erase_if(g.config.members, [&](const MemberConfig& x) { return x.name == name; });
  for (auto& gc : config_.groups)
    if (gc.name == g.name) std::erase_if(gc.members, [&](const MemberConfig& x) { return x.name == name; });
  publish(TopologyChanged{g.name, name, false});
  if (started_) {
    check_hwaddr(g);  // a duplicate of the leaving member may be unique now
    run_policy(g, Reason::member_removed, was_active);
  }
  // Tracking every interface: it goes on as an ungrouped one.
  if (!config_.track_interfaces_only_with_groups) {
    auto it = std::find_if(links_.begin(), links_.end(), [&](const LinkObservation& l) { return l.name == name; });
    if (it != links_.end()) observe_link(LinkObservation(*it));  // a copy: observe_link edits links_
  }
}

void Engine::reconfigure(const Config& next) {
  // Daemon-wide settings first, as one value: groups that do not override them follow.
  const DaemonSettings before = config_.settings();
  if (before != next.settings()) {
    config_.settings() = next.settings();
    publish(SettingsChanged{"", "", Reason::config_reload});
  }
  // Groups gone from the file, then members that move between groups are freed
  // before they are added elsewhere.
  std::vector<std::string> gone;
  for (const auto& g : groups_)
    if (std::none_of(next.groups.begin(), next.groups.end(), [&](const GroupConfig& n) { return n.name == g.name; }))
      gone.push_back(g.name);
  for (const auto& name : gone) (void)destroy_group(name);
  for (const auto& gc : next.groups)
    for (auto& g : groups_) {
      if (g.name == gc.name) continue;
      std::vector<std::string> moving;
      for (const auto& m : g.members)
        if (std::any_of(gc.members.begin(), gc.members.end(), [&](const MemberConfig& x) { return x.name == m.name; }))
          moving.push_back(m.name);
      for (const auto& n : moving) drop_member(g, n);
    }
  for (const auto& gc : next.groups) {
    auto it = std::find_if(groups_.begin(), groups_.end(), [&](const Group& g) { return g.name == gc.name; });
    if (it == groups_.end()) {
      (void)create_group(gc);
      continue;
    }
    reconfigure_group(*it, gc, before);
  }
  if (!config_.track_interfaces_only_with_groups && before.track_interfaces_only_with_groups) {
    for (const auto& l : std::vector<LinkObservation>(links_))  // a copy: observe_link edits links_
      if (!member_by_name(l.name)) observe_link(l);
  } else if (config_.track_interfaces_only_with_groups && !anonymous_.members.empty()) {
    for (const auto& m : anonymous_.members) publish(TopologyChanged{"", m.name, false});
    anonymous_.members.clear();
  }
}

void Engine::reconfigure_group(Group& g, const GroupConfig& next, const DaemonSettings& before) {
  GroupConfig want = next;
  if (want.interface.empty()) want.interface = want.name;
  // The group's settings as one value, and what they resolve to with the daemon's.
  const bool failback = config_.failback_of(want);
  const Duration configured_fdt = config_.failure_detection_time_of(want);
  const bool fdt_changed = configured_fdt != before.failure_detection_time_of(g.config);
  const bool settings_changed = g.config.settings() != want.settings() || g.failback != failback || fdt_changed;
  if (!settings_changed && g.config == want) return;  // untouched
  g.ifname = want.interface;
  g.failback = failback;
  // The FDT in force stays, also when the RTTs raised it, unless the configured one
  // changed: then the group and its members' detectors (Probing re-arms them, and they
  // report anew) start over from it.
  if (fdt_changed) {
    for (auto& m : g.members) m.needed_fdt = {};
    g.fdt = configured_fdt;
  }
  // Members: removed, changed in place (standby, test addresses), added.
  bool lost_active = false;
  std::vector<std::string> removed;
  for (const auto& m : g.members)
    if (std::none_of(want.members.begin(), want.members.end(), [&](const MemberConfig& x) { return x.name == m.name; }))
      removed.push_back(m.name);
  for (const auto& n : removed) drop_member(g, n);
  for (const auto& mc : want.members) {
    if (Member* m = g.find(mc.name)) {
      const bool standby_changed = m->standby != mc.standby;
      if (standby_changed || m->test_addresses != mc.test_addresses) {
        lost_active = lost_active || (standby_changed && m->active());
        m->test_addresses = mc.test_addresses;
        m->standby = mc.standby;
        publish(SettingsChanged{g.name, m->name, Reason::config_reload});
      }
      if (standby_changed)
        set_inactive(g, *m, m->usable() && decide_inactive(g, *m, Transition::initial), Reason::config_reload);
      continue;
    }
    g.members.push_back(make_member(want, mc));
    Member& m = g.members.back();
    init_member(g, m);
    if (started_) refresh(g, m, Reason::member_added, Transition::initial);
  }
  // Keep the configured member order.
  std::stable_sort(g.members.begin(), g.members.end(), [&](const Member& a, const Member& b) {
    auto pos = [&](const std::string& n) {
      return std::find_if(want.members.begin(), want.members.end(), [&](const MemberConfig& x) { return x.name == n; }) -
             want.members.begin();
    };
    return pos(a.name) < pos(b.name);
  });
  // Data addresses: removed ones leave the kernel, new ones are placed.
  std::vector<IpAddress> drop;
  for (const auto& a : g.data)
    if (std::none_of(want.data_addresses.begin(), want.data_addresses.end(), [&](const IpPrefix& p) { return p == a.prefix; }))
      drop.push_back(a.prefix.addr);
  for (const auto& a : drop) (void)remove_data_address(g.name, a);
  for (const auto& p : want.data_addresses)
    if (std::none_of(g.data.begin(), g.data.end(), [&](const DataAddress& a) { return a.prefix == p; })) {
      g.data.push_back({p, "", pick_home(g, p.addr.family), {}});
      publish(DataAddressesChanged{g.name, p, g.data.back().home, "", Reason::config_reload});
    }
  // The other settings (routes, targets, shared addresses, probe method) are read from
  // the group's configuration, applied here as a whole.
  g.config = want;
  for (auto& gc : config_.groups)
    if (gc.name == g.name) gc = want;
  sync_shared(g, Reason::config_reload);  // before SettingsChanged: readers see the new list
  if (settings_changed) publish(SettingsChanged{g.name, "", Reason::config_reload});
  if (started_) {
    check_hwaddr(g);
    run_policy(g, Reason::config_reload, lost_active);
  }
}

Result<void> Engine::add_data_address(std::string_view group, const IpPrefix& address) {
  if (auto problem = address_problem(address, AddressRole::data)) return fail(Errc::invalid_argument, *problem);
  Group* g = nullptr;
  for (auto& x : groups_)
    if (x.name == group) g = &x;
  if (auto r = check_claims({address_claim(address, AddressRole::data, std::string(group))}); !r) return r;
  if (!g) return fail(Errc::no_such_group, "no group " + echo(group));
  g->data.push_back({address, "", pick_home(*g, address.addr.family), {}});
  g->config.data_addresses.push_back(address);
  for (auto& gc : config_.groups)
    if (gc.name == g->name) gc.data_addresses.push_back(address);
  publish(DataAddressesChanged{g->name, address, g->data.back().home, "", Reason::address_added});
  if (started_) run_policy(*g, Reason::address_added, false);
  return {};
}

Result<void> Engine::remove_data_address(std::string_view group, const IpAddress& address) {
  Group* g = nullptr;
  for (auto& x : groups_)
    if (x.name == group) g = &x;
  if (!g) return fail(Errc::no_such_group, "no group " + echo(group));
  auto it = std::find_if(g->data.begin(), g->data.end(), [&](const DataAddress& a) { return a.prefix.addr == address; });
  if (it == g->data.end())
    return fail(Errc::no_such_address, address.str() + " is not a data address of group '" + g->name + "'");
  AddressMoved ev{g->name, it->prefix, it->holder, "", Reason::address_removed};
  const IpPrefix prefix = it->prefix;
  g->data.erase(it);
  auto same = [&](const IpPrefix& p) { return p.addr == address; };
  std::erase_if(g->config.data_addresses, same);
  for (auto& gc : config_.groups)
    if (gc.name == g->name) std::erase_if(gc.data_addresses, same);
  publish(ev);
  publish(DataAddressesChanged{g->name, prefix, "", "", Reason::address_removed});
  if (started_) run_policy(*g, Reason::address_removed, false);
  return {};
}

}  // namespace mpathd
