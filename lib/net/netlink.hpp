// Plain values for rtnetlink objects and the pure functions that make them from raw
// netlink messages. Nothing here touches a socket; tests feed byte buffers.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace mpathd::net {

struct LinkInfo {
  unsigned ifindex = 0;
  std::string name;
  unsigned flags = 0;     // IFF_* as the kernel reports them
  bool admin_up = false;  // IFF_UP
  bool lower_up = false;  // IFF_LOWER_UP (carrier)
  Mac mac;                // zero unless the link has a 6-byte hardware address
  unsigned mtu = 0;
  std::string kind;  // IFLA_INFO_KIND ("veth", "bridge", ...); empty for physical NICs
  bool loopback = false;
  // The interface's IPv4 settings (/proc/sys/net/ipv4/conf/NAME/*) as the dump carries
  // them (IFLA_AF_SPEC, AF_INET, IFLA_INET_CONF): index IPV4_DEVCONF_* - 1; empty if
  // absent (no IPv4 on the interface).
  std::vector<std::int32_t> ipv4_conf;
  bool operator==(const LinkInfo&) const = default;
};

struct AddrInfo {
  unsigned ifindex = 0;
  IpPrefix prefix;          // the local address with its prefix length
  unsigned flags = 0;       // IFA_F_* (the 32-bit IFA_FLAGS when present)
  unsigned char scope = 0;  // RT_SCOPE_*
  bool operator==(const AddrInfo&) const = default;
};

// A unicast route with a single next hop.
struct Route {
  IpPrefix dst;
  std::optional<IpAddress> gateway;
  unsigned ifindex = 0;
  unsigned table = 254;        // RT_TABLE_MAIN
  unsigned char protocol = 4;  // RTPROT_STATIC
  bool onlink = false;         // RTNH_F_ONLINK
  unsigned priority = 0;       // the metric
  auto operator<=>(const Route&) const = default;
};

// A policy-routing rule "from <src> lookup <table>" at a given preference.
struct Rule {
  Family family = Family::v4;
  IpPrefix src;  // length 0 means "from all"
  unsigned table = 0;
  unsigned priority = 0;
  auto operator<=>(const Rule&) const = default;
};

// RTM_NEWLINK / RTM_DELLINK of family AF_UNSPEC; anything else (including the
// AF_BRIDGE port notifications sent to the same group) gives nullopt.
std::optional<LinkInfo> parse_link(const nlmsghdr* msg);
// RTM_NEWADDR / RTM_DELADDR for IPv4 and IPv6.
std::optional<AddrInfo> parse_addr(const nlmsghdr* msg);
// RTM_NEWROUTE / RTM_DELROUTE of type unicast with one next hop; multipath, cloned
// and other route types give nullopt.
std::optional<Route> parse_route(const nlmsghdr* msg);
// RTM_NEWRULE / RTM_DELRULE whose action is "lookup a table".
std::optional<Rule> parse_rule(const nlmsghdr* msg);

}  // namespace mpathd::net
