#include "net/kernel.hpp"

#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <algorithm>
#include <type_traits>
#include <type_traits>
#include <cerrno>
#include <cstring>
#include <functional>

#include "net/nl_socket.hpp"

namespace mpathd::net {

using detail::errno_error;
using detail::nl_error;

namespace {

constexpr std::uint32_t kForever = 0xFFFFFFFFu;  // INFINITY_LIFE_TIME

struct MsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};

// One request being built; a failed append is remembered and reported on send.
class Request {
 public:
  template <typename Hdr>
  Request(int type, int flags, Hdr hdr) : msg_(nlmsg_alloc_simple(type, flags)) {
    ok_ = msg_ && nlmsg_append(msg_.get(), &hdr, sizeof hdr, NLMSG_ALIGNTO) == 0;
  }
  void put(int type, const IpAddress& a) {
    ok_ = ok_ && nla_put(msg_.get(), type, static_cast<int>(a.size()), a.bytes.data()) == 0;
  }
  void put_u32(int type, std::uint32_t v) { ok_ = ok_ && nla_put_u32(msg_.get(), type, v) == 0; }
  template <typename T>
  void put_struct(int type, const T& v) {
    ok_ = ok_ && nla_put(msg_.get(), type, static_cast<int>(sizeof v), &v) == 0;
  }
  bool ok() const { return ok_; }
  nl_msg* get() const { return msg_.get(); }

 private:
  std::unique_ptr<nl_msg, MsgDeleter> msg_;
  bool ok_ = false;
};

// The state of one request/reply exchange, shared with the libnl callbacks.
struct Exchange {
  std::uint32_t seq = 0;
  const std::function<void(const nlmsghdr*)>* on_msg = nullptr;
  int error = 0;
  bool done = false;
};

int on_valid(nl_msg* m, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  const nlmsghdr* h = nlmsg_hdr(m);
  if (h->nlmsg_seq != x->seq) return NL_SKIP;
  if (x->on_msg != nullptr) {
    try {
      (*x->on_msg)(h);
    } catch (...) {  // only allocation can fail here; never let it cross into libnl
      x->error = ENOMEM;
      x->done = true;
      return NL_STOP;
    }
  }
  return NL_OK;
}

int on_any_seq(nl_msg*, void*) { return NL_OK; }

int on_done(nl_msg* m, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  if (nlmsg_hdr(m)->nlmsg_seq != x->seq) return NL_SKIP;
  x->done = true;
  return NL_STOP;
}

int on_error(sockaddr_nl*, nlmsgerr* e, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  if (e->msg.nlmsg_seq != x->seq) return NL_SKIP;
  x->error = -e->error;
  x->done = true;
  return NL_STOP;
}

unsigned char af(Family f) { return f == Family::v4 ? AF_INET : AF_INET6; }

// The table number for the 8-bit header field; larger ids travel in a 32-bit attribute.
unsigned char table8(unsigned table) {
  return static_cast<unsigned char>(table < 256 ? table : RT_TABLE_UNSPEC);
}

IpAddress ipv4_broadcast(const IpPrefix& p) {
  IpAddress b = p.addr;
  for (unsigned bit = p.len; bit < 32; ++bit)
    b.bytes[bit / 8] = static_cast<std::uint8_t>(b.bytes[bit / 8] | (0x80u >> (bit % 8)));
  return b;
}

std::string route_name(const Route& r) {
  std::string s = r.dst.len == 0 ? std::string("default") : r.dst.network().str();
  if (r.gateway) s += " via " + r.gateway->str();
  if (r.ifindex != 0) s += " dev " + ifname_or_index(r.ifindex);
  return s + " table " + std::to_string(r.table);
}

std::string rule_name(const Rule& r) {
  return "rule from " + (r.src.len == 0 ? std::string("all") : r.src.network().str()) + " lookup " +
         std::to_string(r.table) + " pref " + std::to_string(r.priority);
}

}  // namespace

struct Kernel::State {
  detail::NlSock sk;

  // Sends one request and reads replies until its ACK, error or NLMSG_DONE. Returns 0,
  // the positive errno the kernel answered, or a negative libnl code.
  int exchange(Request& req, const std::function<void(const nlmsghdr*)>* on_msg = nullptr) {
    if (!req.ok()) return -NLE_MSGSIZE;
    std::unique_ptr<nl_cb, decltype(&nl_cb_put)> cb(nl_cb_alloc(NL_CB_DEFAULT), &nl_cb_put);
    if (!cb) return -NLE_NOMEM;
    if (int r = nl_send_auto(sk.get(), req.get()); r < 0) return r;
    Exchange x;
    x.seq = nlmsg_hdr(req.get())->nlmsg_seq;
    x.on_msg = on_msg;
    // Replies are matched on our own sequence number; stale ones are skipped.
    nl_cb_set(cb.get(), NL_CB_SEQ_CHECK, NL_CB_CUSTOM, on_any_seq, nullptr);
    nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &x);
    nl_cb_set(cb.get(), NL_CB_ACK, NL_CB_CUSTOM, on_done, &x);
    nl_cb_set(cb.get(), NL_CB_FINISH, NL_CB_CUSTOM, on_done, &x);
    nl_cb_err(cb.get(), NL_CB_CUSTOM, on_error, &x);
    while (!x.done) {
      const int r = nl_recvmsgs(sk.get(), cb.get());
      if (r < 0 && !x.done) return r;
    }
    return x.error;
  }

  static Error to_error(int r, std::string_view what) {
    return r > 0 ? errno_error(r, what) : nl_error(r, what);
  }

  // A request that must be acknowledged; errnos in `ok` count as success. `what` names
  // it in an error: a string, or a function making one, called only on an error (names
  // of interfaces cost a socket and an ioctl each: not on every address change).
  template <typename What>
  Result<void> command(Request& req, const What& what, std::initializer_list<int> ok = {}) {
    const int r = exchange(req);
    if (r == 0 || std::find(ok.begin(), ok.end(), r) != ok.end()) return {};
    if constexpr (std::is_invocable_v<const What&>)
      return std::unexpected(to_error(r, what()));
    else
      return std::unexpected(to_error(r, what));
  }

  // A dump, restarted (a few times) when the kernel reports it was interrupted.
  template <typename T, typename Hdr>
  Result<std::vector<T>> dump(int type, Hdr hdr, std::string_view what,
                              const std::function<std::optional<T>(const nlmsghdr*)>& parse,
                              const std::function<void(Request&)>& extra = {}) {
    std::vector<T> out;
    const std::function<void(const nlmsghdr*)> collect = [&](const nlmsghdr* h) {
      if (auto v = parse(h)) out.push_back(std::move(*v));
    };
    for (int attempt = 0;; ++attempt) {
      out.clear();
      Request req(type, NLM_F_DUMP, hdr);
      if (extra) extra(req);
      const int r = exchange(req, &collect);
      if (r == 0) return out;
      if (r == -NLE_DUMP_INTR && attempt < 3) continue;
      return std::unexpected(to_error(r, what));
    }
  }
};

Kernel::Kernel(std::unique_ptr<State> s) : s_(std::move(s)) {}
Kernel::Kernel(Kernel&&) noexcept = default;
Kernel& Kernel::operator=(Kernel&&) noexcept = default;
Kernel::~Kernel() = default;

Result<Kernel> Kernel::open() {
  auto sk = detail::connect_route();
  if (!sk) return std::unexpected(sk.error());
  auto s = std::make_unique<State>();
  s->sk = std::move(*sk);
  return Kernel(std::move(s));
}

Result<void> Kernel::add_address(unsigned ifindex, const IpPrefix& p, bool nodad) {
  const bool v6 = !p.addr.is_v4();
  ifaddrmsg ifa{};
  ifa.ifa_family = af(p.addr.family);
  ifa.ifa_prefixlen = p.len;
  ifa.ifa_scope = p.addr.is_link_local() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  ifa.ifa_index = ifindex;
  const std::uint32_t flags = v6 && nodad ? IFA_F_NODAD : 0u;
  ifa.ifa_flags = static_cast<unsigned char>(flags);

  Request req(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifa);
  req.put(IFA_LOCAL, p.addr);
  req.put(IFA_ADDRESS, p.addr);
  if (!v6 && p.len < 31) req.put(IFA_BROADCAST, ipv4_broadcast(p));
  ifa_cacheinfo ci{};
  ci.ifa_prefered = kForever;
  ci.ifa_valid = kForever;
  req.put_struct(IFA_CACHEINFO, ci);
  req.put_u32(IFA_FLAGS, flags);
  return s_->command(req, [&] { return "add " + p.str() + " on " + ifname_or_index(ifindex); });
}

Result<void> Kernel::del_address(unsigned ifindex, const IpPrefix& p) {
  ifaddrmsg ifa{};
  ifa.ifa_family = af(p.addr.family);
  ifa.ifa_prefixlen = p.len;
  ifa.ifa_index = ifindex;
  Request req(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, ifa);
  req.put(IFA_LOCAL, p.addr);
  return s_->command(req, [&] { return "delete " + p.str() + " on " + ifname_or_index(ifindex); },
                     {ENOENT, EADDRNOTAVAIL, ENODEV});
}

namespace {

Request route_request(const Route& r, int type, int flags) {
  rtmsg rtm{};
  rtm.rtm_family = af(r.dst.addr.family);
  rtm.rtm_dst_len = r.dst.len;
  rtm.rtm_table = table8(r.table);
  rtm.rtm_protocol = r.protocol;
  rtm.rtm_type = RTN_UNICAST;
  if (type == RTM_DELROUTE)
    rtm.rtm_scope = RT_SCOPE_NOWHERE;  // match whatever scope it was made with
  else
    rtm.rtm_scope = r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  if (r.onlink) rtm.rtm_flags = RTNH_F_ONLINK;
  Request req(type, flags, rtm);
  req.put_u32(RTA_TABLE, r.table);
  if (r.dst.len > 0) req.put(RTA_DST, r.dst.network().addr);
  if (r.gateway) req.put(RTA_GATEWAY, *r.gateway);
  if (r.ifindex != 0) req.put_u32(RTA_OIF, r.ifindex);
  if (r.priority != 0) req.put_u32(RTA_PRIORITY, r.priority);
  return req;
}

Request rule_request(const Rule& r, int type, int flags) {
  fib_rule_hdr frh{};
  frh.family = af(r.family);
  frh.src_len = r.src.len;
  frh.table = table8(r.table);
  frh.action = FR_ACT_TO_TBL;
  Request req(type, flags, frh);
  if (r.src.len > 0) req.put(FRA_SRC, r.src.network().addr);
  req.put_u32(FRA_TABLE, r.table);
  if (r.priority != 0) req.put_u32(FRA_PRIORITY, r.priority);
  return req;
}

}  // namespace

Result<void> Kernel::replace_route(const Route& r) {
  auto req =
      route_request(r, RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
  return s_->command(req, [&] { return "replace route " + route_name(r); });
}

Result<void> Kernel::del_route(const Route& r) {
  auto req = route_request(r, RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK);
  return s_->command(req, [&] { return "delete route " + route_name(r); }, {ESRCH});
}

Result<std::vector<Route>> Kernel::dump_routes(Family family, unsigned table) {
  rtmsg rtm{};
  rtm.rtm_family = af(family);
  return s_->dump<Route>(RTM_GETROUTE, rtm, "dump routes",
                         [table](const nlmsghdr* h) -> std::optional<Route> {
                           auto r = parse_route(h);
                           if (r && r->table == table) return r;
                           return std::nullopt;
                         });
}

Result<std::vector<Route>> Kernel::dump_routes(Family family) {
  rtmsg rtm{};
  rtm.rtm_family = af(family);
  return s_->dump<Route>(RTM_GETROUTE, rtm, "dump routes", parse_route);
}

Result<void> Kernel::add_rule(const Rule& r) {
  auto req = rule_request(r, RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  return s_->command(req, "add " + rule_name(r), {EEXIST});
}

Result<void> Kernel::del_rule(const Rule& r) {
  auto req = rule_request(r, RTM_DELRULE, NLM_F_REQUEST | NLM_F_ACK);
  return s_->command(req, "delete " + rule_name(r), {ENOENT});
}

Result<std::vector<Rule>> Kernel::dump_rules(Family family) {
  fib_rule_hdr frh{};
  frh.family = af(family);
  return s_->dump<Rule>(RTM_GETRULE, frh, "dump rules", parse_rule);
}

Result<std::vector<LinkInfo>> Kernel::dump_links() {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  return s_->dump<LinkInfo>(RTM_GETLINK, ifi, "dump links", parse_link, [](Request& req) {
    req.put_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  });
}

Result<std::vector<AddrInfo>> Kernel::dump_addresses() {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  return s_->dump<AddrInfo>(RTM_GETADDR, ifa, "dump addresses", parse_addr);
}

std::string ifname_or_index(unsigned ifindex) {
  // One ioctl on a socket kept open, where if_indextoname(3) opens and closes a socket
  // each time: this names the objects of every kernel command and notification, also
  // on the failover path. (The daemon never changes network namespace.)
  static const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  ifr.ifr_ifindex = static_cast<int>(ifindex);
  if (fd >= 0 && ::ioctl(fd, SIOCGIFNAME, &ifr) == 0) return std::string(ifr.ifr_name, ::strnlen(ifr.ifr_name, IF_NAMESIZE));
  char buf[IF_NAMESIZE] = {};
  if (fd < 0 && if_indextoname(ifindex, buf) != nullptr) return buf;
  return "ifindex " + std::to_string(ifindex);
}

}  // namespace mpathd::net
