#include "core/engine.hpp"

#include "core/names.hpp"
#include "core/validate.hpp"

#include <algorithm>

namespace mpathd {

namespace {

std::size_t count_if_members(const Group& g, auto pred) {
  return static_cast<std::size_t>(std::count_if(g.members.begin(), g.members.end(), pred));
}

// How many members the policy keeps active: as many as non-standby members, never zero.
std::size_t active_target(const Group& g) {
  return std::max<std::size_t>(1, count_if_members(g, [](const Member& m) { return !m.standby; }));
}

// The member a new data address of family f calls home: round-robin over the
// non-standby members (all members if every one is a standby), each family on its own.
std::string pick_home(const Group& g, Family f) {
  std::vector<const Member*> homes;
  for (const auto& m : g.members)
    if (!m.standby) homes.push_back(&m);
  if (homes.empty())
    for (const auto& m : g.members) homes.push_back(&m);
  if (homes.empty()) return "";
  auto n = static_cast<std::size_t>(
      std::count_if(g.data.begin(), g.data.end(), [&](const DataAddress& a) { return a.prefix.addr.family == f; }));
  return homes[n % homes.size()]->name;
}

Member make_member(const GroupConfig& gc, const MemberConfig& mc) {
  Member m;
  m.name = mc.name;
  m.group = gc.name;
  m.standby = mc.standby;
  m.test_addresses = mc.test_addresses;
  return m;
}

Group make_group(const GroupConfig& gc, const Config& c) {
  Group g;
  g.name = gc.name;
  g.ifname = gc.interface.empty() ? gc.name : gc.interface;
  g.config = gc;
  g.config.interface = g.ifname;
  g.failback = gc.failback.value_or(c.failback);
  g.fdt = c.failure_detection_time_of(gc);
  for (const auto& mc : gc.members) g.members.push_back(make_member(gc, mc));
  for (const auto& p : gc.data_addresses) g.data.push_back({p, "", pick_home(g, p.addr.family), {}});
  return g;
}

}  // namespace

std::uint32_t Member::flags() const {
  std::uint32_t f = 0;
  if (state == MemberState::failed) f |= flag::failed;
  if (link == LinkState::up) f |= flag::running;
  if (standby) f |= flag::standby;
  if (inactive) f |= flag::inactive;
  if (state == MemberState::offline) f |= flag::offline;
  if (hwaddr_dup) f |= flag::hwaddr_dup;
  return f;
}

Member* Group::find(std::string_view member) {
  for (auto& m : members)
    if (m.name == member) return &m;
  return nullptr;
}

const Member* Group::find(std::string_view member) const {
  for (const auto& m : members)
    if (m.name == member) return &m;
  return nullptr;
}

bool Group::up(const DataAddress& a) const {
  const Member* holder = find(a.holder);
  return holder && holder->active() && a.refused.empty();
}

std::size_t Group::load(std::string_view member) const {
  return static_cast<std::size_t>(
      std::count_if(data.begin(), data.end(), [&](const DataAddress& a) { return a.holder == member; }));
}

Engine::Engine(const TimeSource& clock, Config config) : clock_(clock), config_(std::move(config)) {
  for (const auto& gc : config_.groups) groups_.push_back(make_group(gc, config_));
  anonymous_.state = GroupState::ok;
}

// --- lookups ---------------------------------------------------------------------

const Group* Engine::find_group(std::string_view name) const {
  for (const auto& g : groups_)
    if (g.name == name) return &g;
  return nullptr;
}

const Member* Engine::find_member(std::string_view ifname) const {
  return const_cast<Engine*>(this)->member_by_name(ifname);
}

const Group* Engine::group_of(std::string_view ifname) const {
  Group* g = nullptr;
  const_cast<Engine*>(this)->member_by_name(ifname, &g);
  return g;
}

Member* Engine::member_by_name(std::string_view ifname, Group** group) {
  for (auto& g : groups_)
    if (auto* m = g.find(ifname)) {
      if (group) *group = &g;
      return m;
    }
  if (auto* m = anonymous_.find(ifname)) {
    if (group) *group = &anonymous_;
    return m;
  }
  return nullptr;
}

// --- the writers -----------------------------------------------------------------

void Engine::publish(const Event& e) {
  for (auto& l : listeners_) l(e);
}

void Engine::set_state(Group& g, Member& m, MemberState state, Reason reason) {
  m.state = state;
  if (state != MemberState::ok) m.inactive = false;  // FAILED/OFFLINE exclude INACTIVE
  commit(g, m, reason);
}

void Engine::set_inactive(Group& g, Member& m, bool inactive, Reason reason) {
  m.inactive = inactive;
  commit(g, m, reason);
}

void Engine::commit(Group& g, Member& m, Reason reason) {
  MemberSnapshot now{m.state, m.link, m.probe, m.flags()};
  if (now == m.published) return;
  MemberChanged ev{g.name, m.name, m.published, now, reason};
  if (now.state != m.published.state) {
    ++m.counters.state_changes;
    if (now.state == MemberState::failed) ++m.counters.failures;
    if (m.published.state == MemberState::failed && now.state == MemberState::ok) ++m.counters.repairs;
  }
  m.published = now;
  m.reason = reason;
  m.last_change = clock_.now();
  publish(ev);
}

void Engine::set_group_state(Group& g, GroupState state, Reason reason) {
  if (g.state == state && g.reason != Reason::none) return;
  GroupChanged ev{g.name, g.state, state, reason};
  bool changed = g.state != state;
  g.state = state;
  g.reason = reason;
  if (changed) publish(ev);
}

void Engine::move(Group& g, DataAddress& a, const std::string& to, Reason reason) {
  if (a.holder == to) return;
  AddressMoved ev{g.name, a.prefix, a.holder, to, reason};
  if (auto* from = g.find(a.holder)) ++from->counters.addresses_out;
  if (auto* dest = g.find(to)) ++dest->counters.addresses_in;
  a.holder = to;
  a.refused.clear();  // the kernel is asked afresh
  publish(ev);
}

// --- derivation and policy ---------------------------------------------------------

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
  bool was_usable = m.usable();
  bool was_active = m.active();
  MemberState next = derive_state(m);
  if (next == MemberState::ok && !was_usable) m.inactive = decide_inactive(g, m, t);
  set_state(g, m, next, reason);
  if (!g.anonymous()) run_policy(g, reason, was_active && !m.active());
}

void Engine::run_policy(Group& g, Reason reason, bool lost_active) {
  normalize_active(g, lost_active);
  place_addresses(g, reason);
  refresh_group_state(g, reason);
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

// --- inputs ----------------------------------------------------------------------

void Engine::release_ifindex(const LinkObservation& obs) {
  const Reason why = obs.exists ? Reason::interface_renamed : Reason::interface_removed;
  for (auto& g : groups_)
    for (auto& m : g.members) {
      if (m.ifindex != obs.ifindex || m.name == obs.name) continue;
      // Nothing of the interface stays with the name it no longer has.
      m.ifindex = 0;
      m.mac = Mac{};
      m.link = LinkState::unknown;
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
    m->link = LinkState::unknown;
    reason = Reason::interface_removed;
  } else {
    if (m->ifindex == 0 && started_) reason = renamed ? Reason::interface_renamed : Reason::interface_added;
    m->ifindex = obs.ifindex;
    mac_changed = m->mac != obs.mac;
    m->mac = obs.mac;
    m->link = obs.up ? LinkState::up : LinkState::down;
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
    if (m->probe == ProbeState::ok) m->probe = ProbeState::failed;
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
    for (auto& m : g.members) {
      MemberState s = derive_state(m);
      if (s == MemberState::ok) m.inactive = decide_inactive(g, m, Transition::initial);
      set_state(g, m, s, Reason::startup);
    }
    run_policy(g, Reason::startup, false);
  }
  for (auto& m : anonymous_.members) set_state(anonymous_, m, derive_state(m), Reason::startup);
  kernel_addresses_.clear();
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
      m.link = l.up ? LinkState::up : LinkState::down;
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

// No group has `address` as a data, shared or test address.
Result<void> Engine::check_address_free(const IpPrefix& address) const {
  for (const auto& g : groups_) {
    for (const auto& a : g.data)
      if (a.prefix.addr == address.addr)
        return fail(Errc::exists, address.addr.str() + " is already a data address of group '" + g.name + "'");
    for (const auto& s : g.config.shared_addresses)
      if (s.addr == address.addr)
        return fail(Errc::exists, address.addr.str() + " is a shared address of group '" + g.name + "'");
    for (const auto& m : g.members)
      for (const auto& t : m.test_addresses)
        if (t.addr == address.addr) return fail(Errc::exists, address.addr.str() + " is a test address of " + m.name);
  }
  return {};
}

Result<void> Engine::check_new_member(const MemberConfig& mc, const std::vector<IpPrefix>& data) const {
  if (auto problem = ifname_problem(mc.name)) return fail(Errc::invalid_argument, *problem);
  for (const auto& g : groups_) {
    if (g.find(mc.name)) return fail(Errc::exists, "'" + mc.name + "' is already a member of group '" + g.name + "'");
    if (g.ifname == mc.name) return fail(Errc::exists, "'" + mc.name + "' is the group interface of group '" + g.name + "'");
  }
  if (auto r = check_link(mc.name); !r) return r;
  for (const auto& t : mc.test_addresses) {
    if (auto problem = address_problem(t, AddressRole::test)) return fail(Errc::invalid_argument, *problem);
    if (auto r = check_address_free(t); !r) return r;
    for (const auto& d : data)
      if (t.addr == d.addr) return fail(Errc::exists, "test address " + t.str() + " is also a data address");
  }
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
  for (const auto& g : groups_) {
    if (g.name == gc.name) return fail(Errc::exists, "group '" + gc.name + "' already exists");
    if (g.ifname == gc.interface)
      return fail(Errc::exists, "group interface '" + gc.interface + "' is used by group '" + g.name + "'");
    if (g.find(gc.interface))
      return fail(Errc::exists, "group interface '" + gc.interface + "' is the name of a member of group '" + g.name + "'");
  }
  for (const auto& mc : gc.members)
    if (mc.name == gc.interface)
      return fail(Errc::exists, "group interface '" + gc.interface + "' is also listed as a member");
  for (auto [list, role] : {std::pair{&gc.data_addresses, AddressRole::data}, std::pair{&gc.shared_addresses, AddressRole::shared}})
    for (const auto& p : *list) {
      if (auto problem = address_problem(p, role)) return fail(Errc::invalid_argument, *problem);
      if (auto r = check_address_free(p); !r) return r;
    }
  for (std::size_t i = 0; i < gc.members.size(); ++i) {
    if (auto r = check_new_member(gc.members[i], gc.data_addresses); !r) return r;
    for (std::size_t j = 0; j < i; ++j)
      if (gc.members[j].name == gc.members[i].name)
        return fail(Errc::exists, "'" + gc.members[i].name + "' is listed twice");
  }
  config_.groups.push_back(gc);
  groups_.push_back(make_group(gc, config_));
  Group& g = groups_.back();
  publish(TopologyChanged{g.name, "", true});
  for (auto& m : g.members) init_member(g, m);
  if (started_) {
    check_hwaddr(g);
    for (auto& m : g.members) {
      MemberState s = derive_state(m);
      if (s == MemberState::ok) m.inactive = decide_inactive(g, m, Transition::initial);
      set_state(g, m, s, Reason::member_added);
    }
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
  std::vector<IpPrefix> data;
  for (const auto& a : g->data) data.push_back(a.prefix);
  if (auto r = check_new_member(mc, data); !r) return r;
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
  // Daemon-wide settings first: groups that do not override them follow.
  const Config old = config_;
  config_.failure_detection_time = next.failure_detection_time;
  config_.failback = next.failback;
  config_.track_interfaces_only_with_groups = next.track_interfaces_only_with_groups;
  config_.notification_count = next.notification_count;
  config_.notification_interval = next.notification_interval;
  config_.link_flap_limit = next.link_flap_limit;
  config_.link_flap_window = next.link_flap_window;
  config_.routing_table_base = next.routing_table_base;
  config_.rule_priority = next.rule_priority;
  config_.metrics_file = next.metrics_file;
  {
    Config before = old, after = config_;
    before.groups.clear();
    after.groups.clear();
    if (before != after) publish(SettingsChanged{"", "", Reason::config_reload});
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
    reconfigure_group(*it, gc);
  }
  if (!config_.track_interfaces_only_with_groups && old.track_interfaces_only_with_groups) {
    for (const auto& l : std::vector<LinkObservation>(links_))  // a copy: observe_link edits links_
      if (!member_by_name(l.name)) observe_link(l);
  } else if (config_.track_interfaces_only_with_groups && !anonymous_.members.empty()) {
    for (const auto& m : anonymous_.members) publish(TopologyChanged{"", m.name, false});
    anonymous_.members.clear();
  }
}

void Engine::reconfigure_group(Group& g, const GroupConfig& next) {
  GroupConfig want = next;
  if (want.interface.empty()) want.interface = want.name;
  if (g.config == want && g.failback == want.failback.value_or(config_.failback) &&
      g.fdt == config_.failure_detection_time_of(want))
    return;  // untouched
  // The group's own settings: everything but its members and data addresses, which
  // have events of their own.
  auto settings = [](GroupConfig c) {
    c.members.clear();
    c.data_addresses.clear();
    return c;
  };
  const bool settings_changed = settings(g.config) != settings(want) ||
                                g.failback != want.failback.value_or(config_.failback) ||
                                g.fdt != config_.failure_detection_time_of(want);
  g.ifname = want.interface;
  g.failback = want.failback.value_or(config_.failback);
  g.fdt = config_.failure_detection_time_of(want);
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
      if (standby_changed) {
        if (m->usable()) m->inactive = decide_inactive(g, *m, Transition::initial);
        commit(g, *m, Reason::config_reload);
      }
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
  // Remaining settings (routes, targets, shared addresses, probe method) are read
  // from the group's configuration.
  g.config = want;
  for (auto& gc : config_.groups)
    if (gc.name == g.name) gc = want;
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
  if (auto r = check_address_free(address); !r) return r;
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
    if (o.probe == ProbeState::ok && o.state != MemberState::offline) o.probe = ProbeState::failed;
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
  refresh_fdt(*g);
  if (!started_) {
    m->probe = v.state;
    return;
  }
  switch (v.state) {
    case ProbeState::failed:
      if (m->probe == ProbeState::failed) return;
      if (m->link != LinkState::up || m->state == MemberState::offline) {
        // Its detector was reset (no link, offline): the link or the admin is the
        // reason; the probes only have to earn the repair later.
        m->probe = ProbeState::failed;
        commit(*g, *m, m->reason);
        return;
      }
      if (g->anonymous() || another_working(*g, *m)) {
        m->probe = ProbeState::failed;
        refresh(*g, *m, Reason::probe_loss);
      } else {
        m->probe = ProbeState::failed;
        group_failure(*g);
      }
      return;
    case ProbeState::ok: {
      Reason why = m->probe == ProbeState::failed || m->restored_failed ? Reason::repaired : Reason::probing_started;
      m->probe = ProbeState::ok;
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
      m->probe = v.state;
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

// --- persistence -------------------------------------------------------------------

std::vector<PersistedGroup> Engine::export_state() const {
  std::vector<PersistedGroup> out;
  for (const auto& g : groups_) {
    PersistedGroup pg{g.name, {}, {}};
    for (const auto& m : g.members)
      pg.members.push_back({m.name, m.admin_offline, m.state == MemberState::failed || m.restored_failed});
    for (const auto& a : g.data) pg.addresses.push_back({a.prefix, a.holder, a.home});
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
        if (pm.failed && g->config.probe_method != ProbeMethod::none) m->probe = ProbeState::failed;
      }
    for (const auto& pa : pg.addresses)
      for (auto& a : g->data)
        if (a.prefix.addr == pa.prefix.addr && g->find(pa.home)) {
          a.home = pa.home;
          restored_homes_.push_back(a.prefix.addr);
        }
  }
}

// --- time ------------------------------------------------------------------------

std::optional<TimePoint> Engine::next_deadline() const {
  std::optional<TimePoint> next;
  auto scan = [&](const Group& g) {
    for (const auto& m : g.members)
      if (!m.link_trusted && (!next || m.trusted_at < *next)) next = m.trusted_at;
  };
  for (const auto& g : groups_) scan(g);
  scan(anonymous_);
  return next;
}

void Engine::on_timer() {
  const auto now = clock_.now();
  auto trust = [&](Group& g) {
    for (auto& m : g.members)
      if (!m.link_trusted && m.trusted_at <= now) {
        m.link_trusted = true;
        refresh(g, m, Reason::link_up);
      }
  };
  for (auto& g : groups_) trust(g);
  trust(anonymous_);
}

}  // namespace mpathd
