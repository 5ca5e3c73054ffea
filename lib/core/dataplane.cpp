#include "core/dataplane.hpp"

#include <algorithm>

namespace mpathd {

namespace {
template <typename T>
void add_unique(std::vector<T>& v, T item) {
  if (std::find(v.begin(), v.end(), item) == v.end()) v.push_back(std::move(item));
}
}  // namespace

unsigned member_table(const Config& config, unsigned ifindex) { return config.routing_table_base + ifindex; }

DataPlaneState desired_dataplane(const std::vector<Group>& groups, const Config& config,
                                 const std::vector<KeptAddress>& kept) {
  DataPlaneState s;
  for (const auto& g : groups) {
    for (const auto& m : g.members)  // test addresses never move
      if (m.ifindex)
        for (const auto& t : m.test_addresses) add_unique(s.addresses, PlacedAddress{m.name, m.ifindex, t});
    const Member* primary[2] = {nullptr, nullptr};  // per family: holder of the first data address
    // A moving address on its holder, with its rule and the holder's table.
    auto place = [&](const IpPrefix& prefix, const Member& h) {
      const unsigned table = member_table(config, h.ifindex);
      add_unique(s.addresses, PlacedAddress{h.name, h.ifindex, prefix});
      add_unique(s.rules, PlacedRule{IpPrefix{prefix.addr, static_cast<std::uint8_t>(prefix.addr.size() * 8)},
                                     table, config.rule_priority});
      add_unique(s.routes, PlacedRoute{table, prefix.network(), std::nullopt, h.name, h.ifindex});
      for (const auto& r : g.config.routes)
        if (r.via.family == prefix.addr.family) add_unique(s.routes, PlacedRoute{table, r.to, r.via, h.name, h.ifindex});
    };
    for (const auto& a : g.data) {
      const Member* h = g.find(a.holder);
      if (!h || h->ifindex == 0) continue;
      auto& first = primary[a.prefix.addr.family == Family::v4 ? 0 : 1];
      if (!first) first = h;
      place(a.prefix, *h);
    }
    // Shared addresses held here (also while unserviceable: they stay where they are,
    // like data addresses of a failed group).
    for (const auto& sa : g.shared) {
      const Member* h = g.find(sa.holder);
      if (sa.state != SharedState::released && h && h->ifindex != 0) place(sa.prefix, *h);
    }
    // Released, but kept where it was until the services on it have stopped.
    for (const auto& k : kept) {
      if (k.group != g.name) continue;
      const Member* h = g.find(k.holder);
      const bool released = std::any_of(g.shared.begin(), g.shared.end(), [&](const SharedAddress& sa) {
        return sa.prefix.addr == k.prefix.addr && sa.state == SharedState::released;
      });
      if (released && h && h->ifindex != 0) place(k.prefix, *h);
    }
    for (const auto& r : g.config.routes)
      if (const Member* h = primary[r.via.is_v4() ? 0 : 1])
        add_unique(s.routes, PlacedRoute{kMainTable, r.to, r.via, h->name, h->ifindex});
  }
  return s;
}

bool same_object(const PlacedAddress& a, const PlacedAddress& b) {
  return a.ifindex == b.ifindex && a.prefix == b.prefix;
}

bool same_object(const PlacedRoute& a, const PlacedRoute& b) {
  return a.table == b.table && a.dst == b.dst && a.gateway == b.gateway && a.ifindex == b.ifindex;
}

bool same_object(const PlacedRule& a, const PlacedRule& b) { return a == b; }

namespace {
template <typename T>
std::vector<T> missing(const std::vector<T>& applied, const std::vector<T>& present) {
  std::vector<T> out;
  for (const auto& a : applied)
    if (std::none_of(present.begin(), present.end(), [&](const T& p) { return same_object(a, p); }))
      out.push_back(a);
  return out;
}
}  // namespace

DataPlaneState vanished(const DataPlaneState& applied, const DataPlaneState& present) {
  return {missing(applied.addresses, present.addresses), missing(applied.routes, present.routes),
          missing(applied.rules, present.rules)};
}

std::string describe(const PlacedAddress& a) { return a.prefix.str() + " on " + a.ifname; }

std::string describe(const PlacedRoute& r) {
  return r.dst.str() + (r.gateway ? " via " + r.gateway->str() : std::string()) + " dev " + r.ifname + " table " +
         std::to_string(r.table);
}

std::string describe(const PlacedRule& r) {
  return "from " + r.src.str() + " lookup " + std::to_string(r.table) + " priority " + std::to_string(r.priority);
}

TimePoint RestoreBackoff::vanished(const std::string& key, TimePoint now, unsigned ifindex) {
  std::erase_if(entries_, [&](const auto& e) { return e.second.not_before + kWindow <= now; });
  auto& e = entries_[key];  // new, or restored less than a window ago
  e.ifindex = ifindex;
  ++e.strikes;
  Duration delay{};
  if (e.strikes > kFree) {
    delay = kFirstDelay;
    for (unsigned i = kFree + 1; i < e.strikes && delay < kMaxDelay; ++i) delay *= 2;
    delay = std::min(delay, kMaxDelay);
  }
  e.not_before = now + delay;
  return e.not_before;
}

void RestoreBackoff::forgive(unsigned ifindex) {
  if (ifindex != 0) std::erase_if(entries_, [&](const auto& e) { return e.second.ifindex == ifindex; });
}

unsigned RestoreBackoff::count(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? 0u : it->second.strikes;
}

bool RestoreBackoff::ready(const std::string& key, TimePoint now) const {
  auto it = entries_.find(key);
  return it == entries_.end() || it->second.not_before <= now;
}

std::optional<TimePoint> RestoreBackoff::next(TimePoint now) const {
  std::optional<TimePoint> out;
  for (const auto& [_, e] : entries_)
    if (e.not_before > now && (!out || e.not_before < *out)) out = e.not_before;
  return out;
}

}  // namespace mpathd
