#include "net/netlink.hpp"

#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <span>

#include "core/enums.hpp"

namespace mpathd::net {

// lib/core names the kernel's interface flags without its headers.
static_assert(link_flag::up == IFF_UP && link_flag::broadcast == IFF_BROADCAST &&
              link_flag::loopback == IFF_LOOPBACK && link_flag::pointopoint == IFF_POINTOPOINT &&
              link_flag::running == IFF_RUNNING && link_flag::noarp == IFF_NOARP &&
              link_flag::promisc == IFF_PROMISC && link_flag::allmulti == IFF_ALLMULTI &&
              link_flag::multicast == IFF_MULTICAST && link_flag::lower_up == IFF_LOWER_UP &&
              link_flag::dormant == IFF_DORMANT);

namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::size_t align4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

// The whole message as bytes, or an empty span when the header lies about its length.
Bytes message_bytes(const nlmsghdr* msg) {
  if (msg == nullptr || msg->nlmsg_len < sizeof(nlmsghdr)) return {};
  return {reinterpret_cast<const std::uint8_t*>(msg), msg->nlmsg_len};
}

// Copies the family header that follows the netlink header; false if it is short.
template <typename T>
bool read_header(Bytes msg, T& out) {
  const std::size_t at = align4(sizeof(nlmsghdr));
  if (msg.size() < at + sizeof(T)) return false;
  std::memcpy(&out, msg.data() + at, sizeof(T));
  return true;
}

template <typename T>
Bytes attributes(Bytes msg) {
  const std::size_t at = align4(sizeof(nlmsghdr)) + align4(sizeof(T));
  return at <= msg.size() ? msg.subspan(at) : Bytes{};
}

// Calls f(type, payload) for each well-formed attribute; stops at the first bad one.
template <typename F>
void for_each_attr(Bytes buf, F&& f) {
  while (buf.size() >= sizeof(nlattr)) {
    nlattr a{};
    std::memcpy(&a, buf.data(), sizeof a);
    if (a.nla_len < sizeof(nlattr) || a.nla_len > buf.size()) return;
    f(static_cast<unsigned>(a.nla_type & NLA_TYPE_MASK),
      buf.subspan(sizeof(nlattr), a.nla_len - sizeof(nlattr)));
    const std::size_t step = align4(a.nla_len);
    if (step >= buf.size()) return;
    buf = buf.subspan(step);
  }
}

std::optional<std::uint32_t> u32(Bytes p) {
  if (p.size() < sizeof(std::uint32_t)) return std::nullopt;
  std::uint32_t v = 0;
  std::memcpy(&v, p.data(), sizeof v);
  return v;
}

std::string str(Bytes p) {
  const auto* c = reinterpret_cast<const char*>(p.data());
  return std::string(c, strnlen(c, p.size()));
}

std::optional<Family> family_of(unsigned char af) {
  if (af == AF_INET) return Family::v4;
  if (af == AF_INET6) return Family::v6;
  return std::nullopt;
}

std::optional<IpAddress> address(Family f, Bytes p) {
  IpAddress a;
  a.family = f;
  if (p.size() != a.size()) return std::nullopt;
  std::memcpy(a.bytes.data(), p.data(), p.size());
  return a;
}

std::optional<IpPrefix> prefix(Family f, unsigned len, Bytes p) {
  auto a = address(f, p);
  if (!a || len > a->size() * 8) return std::nullopt;
  return IpPrefix{*a, static_cast<std::uint8_t>(len)};
}

// An all-zero prefix of the family, for "default" and "from all".
IpPrefix any(Family f) {
  IpPrefix p;
  p.addr.family = f;
  return p;
}

}  // namespace

std::optional<LinkInfo> parse_link(const nlmsghdr* msg) {
  const Bytes m = message_bytes(msg);
  ifinfomsg ifi{};
  if (m.empty() || (msg->nlmsg_type != RTM_NEWLINK && msg->nlmsg_type != RTM_DELLINK) ||
      !read_header(m, ifi) || ifi.ifi_family != AF_UNSPEC || ifi.ifi_index <= 0)
    return std::nullopt;

  LinkInfo l;
  l.ifindex = static_cast<unsigned>(ifi.ifi_index);
  l.flags = ifi.ifi_flags;
  l.admin_up = (ifi.ifi_flags & IFF_UP) != 0;
  l.lower_up = (ifi.ifi_flags & IFF_LOWER_UP) != 0;
  l.loopback = (ifi.ifi_flags & IFF_LOOPBACK) != 0 || ifi.ifi_type == ARPHRD_LOOPBACK;
  for_each_attr(attributes<ifinfomsg>(m), [&](unsigned type, Bytes p) {
    switch (type) {
      case IFLA_IFNAME:
        l.name = str(p);
        break;
      case IFLA_MTU:
        l.mtu = u32(p).value_or(0);
        break;
      case IFLA_ADDRESS:
        if (p.size() == l.mac.bytes.size()) std::memcpy(l.mac.bytes.data(), p.data(), p.size());
        break;
      case IFLA_LINKINFO:
        for_each_attr(p, [&](unsigned t, Bytes q) {
          if (t == IFLA_INFO_KIND) l.kind = str(q);
        });
        break;
      case IFLA_AF_SPEC:
        for_each_attr(p, [&](unsigned family, Bytes q) {
          if (family != AF_INET) return;
          for_each_attr(q, [&](unsigned t, Bytes conf) {
            if (t != IFLA_INET_CONF) return;
            l.ipv4_conf.assign(conf.size() / sizeof(std::int32_t), 0);
            if (!l.ipv4_conf.empty())  // (an empty vector's data() may be null)
              std::memcpy(l.ipv4_conf.data(), conf.data(), l.ipv4_conf.size() * sizeof(std::int32_t));
          });
        });
        break;
      default:
        break;
    }
  });
  if (l.name.empty()) return std::nullopt;
  return l;
}

std::optional<AddrInfo> parse_addr(const nlmsghdr* msg) {
  const Bytes m = message_bytes(msg);
  ifaddrmsg ifa{};
  if (m.empty() || (msg->nlmsg_type != RTM_NEWADDR && msg->nlmsg_type != RTM_DELADDR) ||
      !read_header(m, ifa))
    return std::nullopt;
  const auto fam = family_of(ifa.ifa_family);
  if (!fam) return std::nullopt;

  AddrInfo a;
  a.ifindex = ifa.ifa_index;
  a.flags = ifa.ifa_flags;
  a.scope = ifa.ifa_scope;
  Bytes local, addr;
  for_each_attr(attributes<ifaddrmsg>(m), [&](unsigned type, Bytes p) {
    switch (type) {
      case IFA_LOCAL:
        local = p;
        break;
      case IFA_ADDRESS:
        addr = p;
        break;
      case IFA_FLAGS:
        a.flags = u32(p).value_or(a.flags);
        break;
      default:
        break;
    }
  });
  // IFA_LOCAL is our side of a point-to-point address; otherwise IFA_ADDRESS is.
  auto p = prefix(*fam, ifa.ifa_prefixlen, local.empty() ? addr : local);
  if (!p) return std::nullopt;
  a.prefix = *p;
  return a;
}

std::optional<Route> parse_route(const nlmsghdr* msg) {
  const Bytes m = message_bytes(msg);
  rtmsg rtm{};
  if (m.empty() || (msg->nlmsg_type != RTM_NEWROUTE && msg->nlmsg_type != RTM_DELROUTE) ||
      !read_header(m, rtm) || rtm.rtm_type != RTN_UNICAST || (rtm.rtm_flags & RTM_F_CLONED))
    return std::nullopt;
  const auto fam = family_of(rtm.rtm_family);
  if (!fam) return std::nullopt;

  Route r;
  r.dst = any(*fam);
  r.dst.len = rtm.rtm_dst_len;
  r.table = rtm.rtm_table;
  r.protocol = rtm.rtm_protocol;
  r.onlink = (rtm.rtm_flags & RTNH_F_ONLINK) != 0;
  bool ok = true, multipath = false;
  for_each_attr(attributes<rtmsg>(m), [&](unsigned type, Bytes p) {
    switch (type) {
      case RTA_DST:
        if (auto d = prefix(*fam, rtm.rtm_dst_len, p))
          r.dst = *d;
        else
          ok = false;
        break;
      case RTA_GATEWAY:
        if (auto g = address(*fam, p))
          r.gateway = *g;
        else
          ok = false;
        break;
      case RTA_OIF:
        r.ifindex = u32(p).value_or(0);
        break;
      case RTA_TABLE:
        r.table = u32(p).value_or(r.table);
        break;
      case RTA_PRIORITY:
        r.priority = u32(p).value_or(0);
        break;
      case RTA_MULTIPATH:
        multipath = true;
        break;
      default:
        break;
    }
  });
  if (!ok || multipath) return std::nullopt;
  return r;
}

std::optional<Rule> parse_rule(const nlmsghdr* msg) {
  const Bytes m = message_bytes(msg);
  fib_rule_hdr frh{};
  if (m.empty() || (msg->nlmsg_type != RTM_NEWRULE && msg->nlmsg_type != RTM_DELRULE) ||
      !read_header(m, frh) || frh.action != FR_ACT_TO_TBL)
    return std::nullopt;
  const auto fam = family_of(frh.family);
  if (!fam) return std::nullopt;

  Rule r;
  r.family = *fam;
  r.src = any(*fam);
  r.table = frh.table;
  bool ok = true;
  for_each_attr(attributes<fib_rule_hdr>(m), [&](unsigned type, Bytes p) {
    switch (type) {
      case FRA_SRC:
        if (auto s = prefix(*fam, frh.src_len, p))
          r.src = *s;
        else
          ok = false;
        break;
      case FRA_TABLE:
        r.table = u32(p).value_or(r.table);
        break;
      case FRA_PRIORITY:
        r.priority = u32(p).value_or(0);
        break;
      default:
        break;
    }
  });
  if (!ok) return std::nullopt;
  return r;
}

}  // namespace mpathd::net
