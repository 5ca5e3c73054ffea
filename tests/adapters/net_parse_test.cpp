// parse_link / parse_addr / parse_route / parse_rule on netlink messages built in
// memory with libnl's message builders; no socket involved.
#include <gtest/gtest.h>
#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>

#include "net/netlink.hpp"

namespace mpathd::net {
namespace {

struct MsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using Msg = std::unique_ptr<nl_msg, MsgDeleter>;

template <typename Hdr>
Msg message(int type, Hdr hdr) {
  Msg m(nlmsg_alloc_simple(type, 0));
  EXPECT_EQ(nlmsg_append(m.get(), &hdr, sizeof hdr, NLMSG_ALIGNTO), 0);
  return m;
}

void put_addr(nl_msg* m, int type, const char* text) {
  auto a = IpAddress::parse(text);
  ASSERT_TRUE(a);
  ASSERT_EQ(nla_put(m, type, static_cast<int>(a->size()), a->bytes.data()), 0);
}

IpPrefix pfx(const char* text) { return *IpPrefix::parse(text); }
IpAddress ip(const char* text) { return *IpAddress::parse(text); }

Msg veth_link(int type, unsigned char family = AF_UNSPEC) {
  ifinfomsg ifi{};
  ifi.ifi_family = family;
  ifi.ifi_type = ARPHRD_ETHER;
  ifi.ifi_index = 7;
  ifi.ifi_flags = IFF_UP | IFF_RUNNING | IFF_LOWER_UP | IFF_BROADCAST;
  Msg m = message(type, ifi);
  nla_put_string(m.get(), IFLA_IFNAME, "m1.100");
  nla_put_u32(m.get(), IFLA_MTU, 9000);
  const std::uint8_t mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
  nla_put(m.get(), IFLA_ADDRESS, sizeof mac, mac);
  nlattr* info = nla_nest_start(m.get(), IFLA_LINKINFO);
  nla_put_string(m.get(), IFLA_INFO_KIND, "veth");
  nla_nest_end(m.get(), info);
  return m;
}

TEST(ParseLink, NewLinkBecomesPlainValues) {
  Msg m = veth_link(RTM_NEWLINK);
  auto l = parse_link(nlmsg_hdr(m.get()));
  ASSERT_TRUE(l);
  EXPECT_EQ(l->ifindex, 7u);
  EXPECT_EQ(l->name, "m1.100");
  EXPECT_TRUE(l->admin_up);
  EXPECT_TRUE(l->lower_up);
  EXPECT_FALSE(l->loopback);
  EXPECT_EQ(l->flags, unsigned{IFF_UP | IFF_RUNNING | IFF_LOWER_UP | IFF_BROADCAST});
  EXPECT_EQ(l->mtu, 9000u);
  EXPECT_EQ(l->mac.str(), Mac::parse("02:00:5e:10:00:01")->str());
  EXPECT_EQ(l->kind, "veth");
  EXPECT_TRUE(l->ipv4_conf.empty());  // no IFLA_AF_SPEC
}

// IFLA_AF_SPEC: the AF_INET devconf array (what start-up compares the member sysctls
// with); other families' blocks are skipped.
TEST(ParseLink, Ipv4ConfFromAfSpec) {
  Msg m = veth_link(RTM_NEWLINK);
  nlattr* spec = nla_nest_start(m.get(), IFLA_AF_SPEC);
  nlattr* inet6 = nla_nest_start(m.get(), AF_INET6);
  const std::int32_t other[3] = {9, 9, 9};
  nla_put(m.get(), 1, sizeof other, other);
  nla_nest_end(m.get(), inet6);
  nlattr* inet = nla_nest_start(m.get(), AF_INET);
  std::int32_t conf[IPV4_DEVCONF_MAX] = {};
  conf[IPV4_DEVCONF_ARP_IGNORE - 1] = 1;
  conf[IPV4_DEVCONF_RP_FILTER - 1] = 2;
  nla_put(m.get(), IFLA_INET_CONF, sizeof conf, conf);
  nla_nest_end(m.get(), inet);
  nla_nest_end(m.get(), spec);
  auto l = parse_link(nlmsg_hdr(m.get()));
  ASSERT_TRUE(l);
  ASSERT_EQ(l->ipv4_conf.size(), std::size_t{IPV4_DEVCONF_MAX});
  EXPECT_EQ(l->ipv4_conf[IPV4_DEVCONF_ARP_IGNORE - 1], 1);
  EXPECT_EQ(l->ipv4_conf[IPV4_DEVCONF_RP_FILTER - 1], 2);
  EXPECT_EQ(l->ipv4_conf[IPV4_DEVCONF_ARP_ANNOUNCE - 1], 0);
  EXPECT_EQ(l->name, "m1.100");  // the attributes after it still read
}

TEST(ParseLink, CarrierDownAndDelLink) {
  ifinfomsg ifi{};
  ifi.ifi_index = 3;
  ifi.ifi_flags = IFF_UP;
  Msg m = message(RTM_DELLINK, ifi);
  nla_put_string(m.get(), IFLA_IFNAME, "m2");
  auto l = parse_link(nlmsg_hdr(m.get()));
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->admin_up);
  EXPECT_FALSE(l->lower_up);
  EXPECT_TRUE(l->mac.is_zero());
  EXPECT_TRUE(l->kind.empty());
}

TEST(ParseLink, Loopback) {
  ifinfomsg ifi{};
  ifi.ifi_type = ARPHRD_LOOPBACK;
  ifi.ifi_index = 1;
  ifi.ifi_flags = IFF_UP | IFF_LOOPBACK | IFF_LOWER_UP;
  Msg m = message(RTM_NEWLINK, ifi);
  nla_put_string(m.get(), IFLA_IFNAME, "lo");
  auto l = parse_link(nlmsg_hdr(m.get()));
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->loopback);
}

TEST(ParseLink, IgnoresBridgePortNotifications) {
  // A port leaving a bridge sends RTM_DELLINK of family AF_BRIDGE to RTNLGRP_LINK; it
  // must not look like the link disappearing.
  Msg m = veth_link(RTM_DELLINK, AF_BRIDGE);
  EXPECT_FALSE(parse_link(nlmsg_hdr(m.get())));
}

TEST(ParseLink, RejectsOtherTypesAndShortOrBrokenMessages) {
  Msg m = veth_link(RTM_NEWLINK);
  nlmsghdr* h = nlmsg_hdr(m.get());
  EXPECT_FALSE(parse_addr(h));
  EXPECT_FALSE(parse_route(h));
  EXPECT_FALSE(parse_link(nullptr));

  // A header claiming less than the family header.
  std::vector<std::uint8_t> copy(reinterpret_cast<std::uint8_t*>(h),
                                 reinterpret_cast<std::uint8_t*>(h) + h->nlmsg_len);
  auto* c = reinterpret_cast<nlmsghdr*>(copy.data());
  c->nlmsg_len = NLMSG_HDRLEN + 4;
  EXPECT_FALSE(parse_link(c));

  // The first attribute (IFLA_IFNAME) claims to run past the end: nothing after it
  // is trusted, and without a name the link is rejected.
  c->nlmsg_len = h->nlmsg_len;
  const std::size_t first_attr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(ifinfomsg));
  const std::uint16_t huge = 0xfff0;
  std::memcpy(copy.data() + first_attr, &huge, sizeof huge);
  EXPECT_FALSE(parse_link(c));
}

TEST(ParseAddr, Ipv4PrefersLocalOverPeer) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = 24;
  ifa.ifa_flags = IFA_F_PERMANENT;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = 4;
  Msg m = message(RTM_NEWADDR, ifa);
  put_addr(m.get(), IFA_ADDRESS, "198.18.1.1");
  put_addr(m.get(), IFA_LOCAL, "198.18.1.10");
  auto a = parse_addr(nlmsg_hdr(m.get()));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ifindex, 4u);
  EXPECT_EQ(a->prefix, pfx("198.18.1.10/24"));
  EXPECT_EQ(a->flags, unsigned{IFA_F_PERMANENT});
  EXPECT_EQ(a->scope, RT_SCOPE_UNIVERSE);
}

TEST(ParseAddr, Ipv6WithExtendedFlags) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET6;
  ifa.ifa_prefixlen = 64;
  ifa.ifa_flags = IFA_F_NODAD;
  ifa.ifa_scope = RT_SCOPE_LINK;
  ifa.ifa_index = 9;
  Msg m = message(RTM_DELADDR, ifa);
  put_addr(m.get(), IFA_ADDRESS, "2001:db8:1::10");
  nla_put_u32(m.get(), IFA_FLAGS, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  auto a = parse_addr(nlmsg_hdr(m.get()));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->prefix, pfx("2001:db8:1::10/64"));
  EXPECT_EQ(a->flags, unsigned{IFA_F_NODAD | IFA_F_NOPREFIXROUTE});
  EXPECT_EQ(a->scope, RT_SCOPE_LINK);
}

TEST(ParseAddr, RejectsWrongLengthAddressAndPrefix) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = 24;
  Msg m = message(RTM_NEWADDR, ifa);
  put_addr(m.get(), IFA_ADDRESS, "2001:db8::1");  // 16 bytes in an AF_INET message
  EXPECT_FALSE(parse_addr(nlmsg_hdr(m.get())));

  ifa.ifa_prefixlen = 33;
  Msg n = message(RTM_NEWADDR, ifa);
  put_addr(n.get(), IFA_ADDRESS, "198.18.1.10");
  EXPECT_FALSE(parse_addr(nlmsg_hdr(n.get())));
}

rtmsg unicast(unsigned char family, unsigned char dst_len) {
  rtmsg r{};
  r.rtm_family = family;
  r.rtm_dst_len = dst_len;
  r.rtm_table = RT_TABLE_UNSPEC;
  r.rtm_protocol = RTPROT_STATIC;
  r.rtm_scope = RT_SCOPE_UNIVERSE;
  r.rtm_type = RTN_UNICAST;
  return r;
}

TEST(ParseRoute, GatewayRouteInLargeTable) {
  Msg m = message(RTM_NEWROUTE, unicast(AF_INET, 24));
  nla_put_u32(m.get(), RTA_TABLE, 1000);
  put_addr(m.get(), RTA_DST, "198.18.2.0");
  put_addr(m.get(), RTA_GATEWAY, "198.18.1.1");
  nla_put_u32(m.get(), RTA_OIF, 5);
  nla_put_u32(m.get(), RTA_PRIORITY, 20);
  auto r = parse_route(nlmsg_hdr(m.get()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dst, pfx("198.18.2.0/24"));
  EXPECT_EQ(r->gateway, ip("198.18.1.1"));
  EXPECT_EQ(r->ifindex, 5u);
  EXPECT_EQ(r->table, 1000u);
  EXPECT_EQ(r->protocol, RTPROT_STATIC);
  EXPECT_EQ(r->priority, 20u);
  EXPECT_FALSE(r->onlink);
}

TEST(ParseRoute, DefaultOnlinkIpv6) {
  rtmsg h = unicast(AF_INET6, 0);
  h.rtm_table = RT_TABLE_MAIN;
  h.rtm_flags = RTNH_F_ONLINK;
  Msg m = message(RTM_DELROUTE, h);
  put_addr(m.get(), RTA_GATEWAY, "2001:db8:1::1");
  auto r = parse_route(nlmsg_hdr(m.get()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dst, pfx("::/0"));
  EXPECT_EQ(r->table, unsigned{RT_TABLE_MAIN});
  EXPECT_TRUE(r->onlink);
  EXPECT_EQ(r->ifindex, 0u);
}

TEST(ParseRoute, SkipsMultipathAndNonUnicast) {
  Msg m = message(RTM_NEWROUTE, unicast(AF_INET, 24));
  put_addr(m.get(), RTA_DST, "198.18.2.0");
  rtnexthop hops[2] = {};  // RTA_MULTIPATH is an array of rtnexthop
  hops[0].rtnh_len = hops[1].rtnh_len = sizeof(rtnexthop);
  hops[0].rtnh_ifindex = 5;
  hops[1].rtnh_ifindex = 6;
  nla_put(m.get(), RTA_MULTIPATH, sizeof hops, hops);
  EXPECT_FALSE(parse_route(nlmsg_hdr(m.get())));

  rtmsg local = unicast(AF_INET, 32);
  local.rtm_type = RTN_LOCAL;
  Msg n = message(RTM_NEWROUTE, local);
  put_addr(n.get(), RTA_DST, "198.18.1.10");
  EXPECT_FALSE(parse_route(nlmsg_hdr(n.get())));
}

TEST(ParseRule, FromPrefixLookupTable) {
  fib_rule_hdr frh{};
  frh.family = AF_INET;
  frh.src_len = 32;
  frh.action = FR_ACT_TO_TBL;
  Msg m = message(RTM_NEWRULE, frh);
  put_addr(m.get(), FRA_SRC, "198.18.1.10");
  nla_put_u32(m.get(), FRA_TABLE, 300);
  nla_put_u32(m.get(), FRA_PRIORITY, 1000);
  auto r = parse_rule(nlmsg_hdr(m.get()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->family, Family::v4);
  EXPECT_EQ(r->src, pfx("198.18.1.10/32"));
  EXPECT_EQ(r->table, 300u);
  EXPECT_EQ(r->priority, 1000u);
}

TEST(ParseRule, FromAllAndNonLookupActions) {
  fib_rule_hdr frh{};
  frh.family = AF_INET6;
  frh.table = RT_TABLE_MAIN;
  frh.action = FR_ACT_TO_TBL;
  Msg m = message(RTM_NEWRULE, frh);
  nla_put_u32(m.get(), FRA_PRIORITY, 32766);
  auto r = parse_rule(nlmsg_hdr(m.get()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->src, pfx("::/0"));
  EXPECT_EQ(r->table, unsigned{RT_TABLE_MAIN});

  frh.action = FR_ACT_UNREACHABLE;
  Msg n = message(RTM_NEWRULE, frh);
  EXPECT_FALSE(parse_rule(nlmsg_hdr(n.get())));
}

}  // namespace
}  // namespace mpathd::net
