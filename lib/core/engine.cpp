// The Engine: the model's accessors, lookups, the one set of writers (every change is
// published from here) and time. Policy, inputs, topology, probing and persistence
// are in the engine_*.cpp files beside this one.
#include "core/engine.hpp"

#include <algorithm>

#include "core/engine_internal.hpp"

namespace mpathd {

using namespace engine_detail;

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

const SharedAddress* Group::find_shared(const IpAddress& address) const {
  for (const auto& s : shared)
    if (s.prefix.addr == address) return &s;
  return nullptr;
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

const Group* Engine::group_of_shared(const IpAddress& address) const {
  for (const auto& g : groups_)
    if (g.find_shared(address)) return &g;
  return nullptr;
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

void Engine::apply_state(Group& g, Member& m, Reason reason, Transition t) {
  const MemberState next = derive_state(m);
  if (next == MemberState::ok && !m.usable()) m.inactive = decide_inactive(g, m, t);
  set_state(g, m, next, reason);
}

// Inputs: written here, published by the commit that follows (refresh, set_state).
void Engine::set_link(Member& m, LinkState link) { m.link = link; }
void Engine::set_probe(Member& m, ProbeState probe) { m.probe = probe; }

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

void Engine::set_shared(Group& g, SharedAddress& s, SharedState state, const std::string& holder, Reason reason,
                        std::string detail) {
  if (s.state == state && s.holder == holder && s.detail == detail) return;
  SharedAddressChanged ev{g.name, s.prefix, s.state, state, s.holder, holder, reason, detail};
  s.state = state;
  s.holder = holder;
  s.reason = reason;
  s.detail = std::move(detail);
  publish(ev);
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
