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

std::vector<IpAddress> local_addresses(const std::vector<net::AddrInfo>& addresses) {
  std::vector<IpAddress> out;
  for (const auto& a : addresses) add_once(out, a.prefix.addr);
  return out;
}

Result<std::vector<IpAddress>> find_routers(net::Kernel& kernel, const IpPrefix& subnet,
                                            std::span<const unsigned> ifindexes) {
  auto routes = kernel.dump_routes(subnet.addr.family, 254);
  if (!routes) return std::unexpected(routes.error());
  if (!subnet.addr.is_v4() && subnet.addr.is_link_local()) return link_local_routers(*routes, ifindexes);
  return routers_in_subnet(*routes, subnet);
}

}  // namespace mpathd::detect
