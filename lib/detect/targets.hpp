// Target discovery helpers: routers from the routing table. Pure functions over
// lib/net's plain values (the daemon's Probing dumps the routes and our own addresses).
// Choosing among candidates is core's TargetSelector.
#pragma once

#include <span>
#include <vector>

#include "core/types.hpp"
#include "net/netlink.hpp"

namespace mpathd::detect {

// IPv4 (or global IPv6): the gateways of routes whose gateway lies in `subnet` (the
// member's test or data subnet), default routes first, each once.
std::vector<IpAddress> routers_in_subnet(const std::vector<net::Route>& routes, const IpPrefix& subnet);
// IPv6: link-local gateways of routes through one of `ifindexes` (the group's members).
std::vector<IpAddress> link_local_routers(const std::vector<net::Route>& routes, std::span<const unsigned> ifindexes);

}  // namespace mpathd::detect
