// Target discovery helpers: routers from the routing table, our own addresses from an
// address dump. Pure functions over lib/net's plain values, plus one convenience that
// reads the kernel. Choosing among candidates is core's TargetSelector.
#pragma once

#include <span>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"
#include "net/kernel.hpp"
#include "net/netlink.hpp"

namespace mpathd::detect {

// IPv4 (or global IPv6): the gateways of routes whose gateway lies in `subnet` (the
// member's test or data subnet), default routes first, each once.
std::vector<IpAddress> routers_in_subnet(const std::vector<net::Route>& routes, const IpPrefix& subnet);
// IPv6: link-local gateways of routes through one of `ifindexes` (the group's members).
std::vector<IpAddress> link_local_routers(const std::vector<net::Route>& routes, std::span<const unsigned> ifindexes);
// Every address configured on the host (to exclude from targets).
std::vector<IpAddress> local_addresses(const std::vector<net::AddrInfo>& addresses);

// Reads the main table: routers_in_subnet for IPv4 subnets, link_local_routers for
// IPv6 ones.
Result<std::vector<IpAddress>> find_routers(net::Kernel& kernel, const IpPrefix& subnet,
                                            std::span<const unsigned> ifindexes);

}  // namespace mpathd::detect
