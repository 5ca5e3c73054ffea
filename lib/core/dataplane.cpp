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

DataPlaneState desired_dataplane(const std::vector<Group>& groups, const Config& config) {
  DataPlaneState s;
  for (const auto& g : groups) {
    for (const auto& m : g.members)  // test addresses never move
      if (m.ifindex)
        for (const auto& t : m.test_addresses) add_unique(s.addresses, PlacedAddress{m.name, m.ifindex, t});
    const Member* primary[2] = {nullptr, nullptr};  // per family: holder of the first data address
    for (const auto& a : g.data) {
      const Member* h = g.find(a.holder);
      if (!h || h->ifindex == 0) continue;
      const Family f = a.prefix.addr.family;
      auto& first = primary[f == Family::v4 ? 0 : 1];
      if (!first) first = h;
      const unsigned table = member_table(config, h->ifindex);
      add_unique(s.addresses, PlacedAddress{h->name, h->ifindex, a.prefix});
      add_unique(s.rules, PlacedRule{IpPrefix{a.prefix.addr, static_cast<std::uint8_t>(a.prefix.addr.size() * 8)},
                                     table, config.rule_priority});
      add_unique(s.routes, PlacedRoute{table, a.prefix.network(), std::nullopt, h->name, h->ifindex});
      for (const auto& r : g.config.routes)
        if (r.via.family == f) add_unique(s.routes, PlacedRoute{table, r.to, r.via, h->name, h->ifindex});
    }
    for (const auto& r : g.config.routes)
      if (const Member* h = primary[r.via.is_v4() ? 0 : 1])
        add_unique(s.routes, PlacedRoute{kMainTable, r.to, r.via, h->name, h->ifindex});
  }
  return s;
}

}  // namespace mpathd
