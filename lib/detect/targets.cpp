#include "detect/targets.hpp"

#include <algorithm>

namespace mpathd::detect {

namespace {
void add_once(std::vector<IpAddress>& v, const IpAddress& a) {
  if (std::find(v.begin(), v.end(), a) == v.end()) v.push_back(a);
}

// Default routes first, then the rest in table order.
std::vector<const net::Route*> ordered(const std::vector<net::Route>& routes) {
  std::vector<const net::Route*> out;
  for (const auto& r : routes) out.push_back(&r);
  std::stable_sort(out.begin(), out.end(), [](const net::Route* a, const net::Route* b) {
    return (a->dst.len == 0) > (b->dst.len == 0);
  });
  return out;
}
}  // namespace

std::vector<IpAddress> routers_in_subnet(const std::vector<net::Route>& routes, const IpPrefix& subnet) {
  std::vector<IpAddress> out;
  for (const net::Route* r : ordered(routes))
    if (r->gateway && r->gateway->family == subnet.addr.family && subnet.contains(*r->gateway) &&
        !r->gateway->is_unspecified())
      add_once(out, *r->gateway);
  return out;
}

std::vector<IpAddress> link_local_routers(const std::vector<net::Route>& routes, std::span<const unsigned> ifindexes) {
  std::vector<IpAddress> out;
  for (const net::Route* r : ordered(routes))
    if (r->gateway && !r->gateway->is_v4() && r->gateway->is_link_local() &&
        std::find(ifindexes.begin(), ifindexes.end(), r->ifindex) != ifindexes.end())
      add_once(out, *r->gateway);
  return out;
}

}  // namespace mpathd::detect
