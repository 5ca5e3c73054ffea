// Kernel, Monitor and PacketSender against the real kernel, in a network namespace of
// our own: a forked child unshares CLONE_NEWNET, so nothing here can touch the
// machine's namespace, and everything made disappears with the child. The child
// reports through its exit status; details go to stderr.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_addr.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "namespace_child.hpp"
#include "net/kernel.hpp"
#include "net/monitor.hpp"
#include "net/packet.hpp"
#include "net/sysctl.hpp"

namespace mpathd::net {
namespace {

using test::kSkip;

#define CHECK(...)                                                                         \
  do {                                                                                     \
    if (!(__VA_ARGS__)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #__VA_ARGS__); \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

#define CHECK_OK(expr)                                                          \
  do {                                                                          \
    const auto& r_ = (expr);                                                    \
    if (!r_) {                                                                  \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, \
                   r_.error().message.c_str());                                 \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

IpPrefix pfx(const char* t) { return *IpPrefix::parse(t); }
IpAddress ip(const char* t) { return *IpAddress::parse(t); }

template <typename T>
bool contains(const std::vector<T>& v, const std::function<bool(const T&)>& pred) {
  return std::any_of(v.begin(), v.end(), pred);
}

// Runs the loop until `done()` or the deadline; never a bare sleep.
bool run_until(sd_event* e, const std::function<bool()>& done,
               std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (sd_event_run(e, 100'000) < 0) return false;
  }
  return true;
}

// Receives frames on `fd` until one equals `want`, with a bounded wait.
bool receive_frame(int fd, const std::vector<std::uint8_t>& want) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  std::vector<std::uint8_t> buf(2048);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n > 0 && std::equal(want.begin(), want.end(), buf.begin(), buf.begin() + n))
      return static_cast<std::size_t>(n) == want.size();
  }
  return false;
}

int kernel_checks(Kernel& k, const LinkInfo& m1) {
  const unsigned idx = m1.ifindex;
  // Addresses.
  CHECK_OK(k.add_address(idx, pfx("198.18.1.10/24"), false));
  auto again = k.add_address(idx, pfx("198.18.1.10/24"), false);
  CHECK(!again && again.error().code == Errc::exists);
  std::fprintf(stderr, "second add says: %s\n", again.error().message.c_str());
  CHECK(again.error().message == "add 198.18.1.10/24 on m1: File exists");
  CHECK_OK(k.add_address(idx, pfx("2001:db8:1::10/64"), true));
  auto addrs = k.dump_addresses();
  CHECK_OK(addrs);
  CHECK(contains<AddrInfo>(*addrs, [&](const AddrInfo& a) {
    return a.ifindex == idx && a.prefix == pfx("198.18.1.10/24");
  }));
  CHECK(contains<AddrInfo>(*addrs, [&](const AddrInfo& a) {
    return a.ifindex == idx && a.prefix == pfx("2001:db8:1::10/64") && (a.flags & IFA_F_NODAD) &&
           !(a.flags & IFA_F_TENTATIVE);
  }));

  // Routes in a table whose number does not fit the 8-bit header field.
  Route via{pfx("198.18.2.0/24"), ip("198.18.1.1"), idx, 300, 4, false, 10};
  Route direct{pfx("198.18.3.0/24"), std::nullopt, idx, 300, 4, false, 0};
  Route v6{pfx("2001:db8:2::/64"), ip("2001:db8:1::1"), idx, 300, 4, false, 1024};
  for (const Route* r : {&via, &direct, &v6}) {
    CHECK_OK(k.replace_route(*r));
    CHECK_OK(k.replace_route(*r));  // replace is idempotent
  }
  auto routes = k.dump_routes(Family::v4, 300);
  CHECK_OK(routes);
  CHECK(std::find(routes->begin(), routes->end(), via) != routes->end());
  CHECK(std::find(routes->begin(), routes->end(), direct) != routes->end());
  auto routes6 = k.dump_routes(Family::v6, 300);
  CHECK_OK(routes6);
  CHECK(std::find(routes6->begin(), routes6->end(), v6) != routes6->end());
  auto main_routes = k.dump_routes(Family::v4, 254);
  CHECK_OK(main_routes);
  CHECK(std::find(main_routes->begin(), main_routes->end(), via) == main_routes->end());
  for (const Route* r : {&via, &direct, &v6}) {
    CHECK_OK(k.del_route(*r));
    CHECK_OK(k.del_route(*r));  // already gone counts as done
  }
  routes = k.dump_routes(Family::v4, 300);
  CHECK_OK(routes);
  CHECK(routes->empty());

  // Rules.
  Rule rule{Family::v4, pfx("198.18.1.10/32"), 300, 1000};
  Rule rule6{Family::v6, pfx("2001:db8:1::10/128"), 300, 1000};
  for (const Rule* r : {&rule, &rule6}) {
    CHECK_OK(k.add_rule(*r));
    CHECK_OK(k.add_rule(*r));  // an identical rule already there is fine
  }
  auto rules = k.dump_rules(Family::v4);
  CHECK_OK(rules);
  CHECK(std::count(rules->begin(), rules->end(), rule) == 1);
  auto rules6 = k.dump_rules(Family::v6);
  CHECK_OK(rules6);
  CHECK(std::count(rules6->begin(), rules6->end(), rule6) == 1);
  for (const Rule* r : {&rule, &rule6}) {
    CHECK_OK(k.del_rule(*r));
    CHECK_OK(k.del_rule(*r));
  }
  rules = k.dump_rules(Family::v4);
  CHECK_OK(rules);
  CHECK(std::count(rules->begin(), rules->end(), rule) == 0);
  return 0;
}

int packet_checks(const LinkInfo& m1, unsigned peer) {
  const int cap = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  CHECK(cap >= 0);
  sockaddr_ll at{};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_ALL);
  at.sll_ifindex = static_cast<int>(peer);
  CHECK(bind(cap, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);

  auto sender = PacketSender::open();
  CHECK_OK(sender);
  const IpAddress v4 = ip("198.18.1.10"), v6 = ip("2001:db8:1::10");
  CHECK_OK(sender->send_arp_announcement(m1.ifindex, m1.mac, v4));
  CHECK_OK(sender->send_unsolicited_na(m1.ifindex, m1.mac, v6));
  CHECK(receive_frame(cap, build_gratuitous_arp(m1.mac, v4, false)));
  CHECK(receive_frame(cap, build_gratuitous_arp(m1.mac, v4, true)));
  CHECK(receive_frame(cap, build_unsolicited_na(m1.mac, v6)));
  close(cap);
  return 0;
}

int monitor_checks(Kernel& k, const LinkInfo& m1) {
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  std::vector<LinkInfo> links;
  std::vector<std::pair<AddrInfo, bool>> addrs;
  Monitor::Handlers h;
  h.link_changed = [&](const LinkInfo& l) { links.push_back(l); };
  h.address = [&](const AddrInfo& a, bool present) { addrs.emplace_back(a, present); };
  int rc = 0;
  {
    auto mon = Monitor::open(e, std::move(h));
    CHECK_OK(mon);
    CHECK_OK((*mon)->dump());
    rc = [&]() -> int {
      CHECK(contains<LinkInfo>(links, [&](const LinkInfo& l) {
        return l.ifindex == m1.ifindex && l.admin_up && l.name == "m1";
      }));
      CHECK(contains<std::pair<AddrInfo, bool>>(addrs, [&](const auto& a) {
        return a.first.prefix == pfx("198.18.1.10/24") && a.second;
      }));
      links.clear();
      CHECK(sh("ip link set m1 down"));
      CHECK(run_until(e, [&] {
        return contains<LinkInfo>(links, [&](const LinkInfo& l) {
          return l.ifindex == m1.ifindex && !l.admin_up && !l.lower_up;
        });
      }));
      CHECK_OK(k.del_address(m1.ifindex, pfx("198.18.1.10/24")));
      CHECK_OK(k.del_address(m1.ifindex, pfx("198.18.1.10/24")));  // already gone
      CHECK(run_until(e, [&] {
        return contains<std::pair<AddrInfo, bool>>(addrs, [&](const auto& a) {
          return a.first.prefix == pfx("198.18.1.10/24") && !a.second;
        });
      }));
      return 0;
    }();
  }
  sd_event_unref(e);
  return rc;
}

// Floods the monitor's socket while the loop is not running; the kernel drops events,
// and the monitor must say so through resync (after which a dump works).
int overrun_checks(Kernel& k, const LinkInfo& m1) {
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  int resyncs = 0;
  Monitor::Handlers h;
  h.resync = [&] { ++resyncs; };
  int rc = 0;
  {
    auto mon = Monitor::open(e, std::move(h));
    CHECK_OK(mon);
    rc = [&]() -> int {
      for (std::uint32_t i = 0; i < 8000 && resyncs == 0; ++i) {
        IpPrefix p{IpAddress::v4((198u << 24 | 18u << 16 | 64u << 8) + i), 32};
        CHECK_OK(k.add_address(m1.ifindex, p, false));
      }
      CHECK(run_until(e, [&] { return resyncs > 0; }));
      CHECK((*mon)->overruns() > 0);
      CHECK_OK((*mon)->dump());
      return 0;
    }();
  }
  sd_event_unref(e);
  return rc;
}

// A handler that throws: caught inside the libnl callback, counted, and reported as
// a resync; the loop keeps running.
int throwing_handler_checks() {
  sd_event* e = nullptr;
  CHECK(sd_event_new(&e) >= 0);
  int resyncs = 0;
  Monitor::Handlers h;
  h.link_changed = [](const LinkInfo&) { throw std::runtime_error("handler bug"); };
  h.resync = [&] { ++resyncs; };
  int rc = 0;
  {
    auto mon = Monitor::open(e, std::move(h));
    CHECK_OK(mon);
    rc = [&]() -> int {
      CHECK(sh("ip link set m1 up"));
      CHECK(run_until(e, [&] { return resyncs > 0; }));
      CHECK((*mon)->handler_failures() >= 1);
      return 0;
    }();
  }
  sd_event_unref(e);
  return rc;
}

// Per-namespace sysctls through real /proc/sys paths, with a '.' in the interface name.
int sysctl_checks() {
  CHECK(sh("ip link add v.1 type veth peer name v.1p"));
  Sysctl sys;
  const std::string key = Sysctl::ipv4_conf_key("v.1", "arp_ignore");
  CHECK(sys.read(key).value_or("?") == "0");
  CHECK_OK(sys.write(key, "1"));
  CHECK(sys.read(key).value_or("?") == "1");
  // The link dump carries the same values (IFLA_INET_CONF): what start-up compares.
  CHECK_OK(sys.write(Sysctl::ipv4_conf_key("v.1", "rp_filter"), "2"));
  auto k = Kernel::open();
  CHECK_OK(k);
  auto links = k->dump_links();
  CHECK_OK(links);
  auto v1 = std::find_if(links->begin(), links->end(), [](const LinkInfo& l) { return l.name == "v.1"; });
  CHECK(v1 != links->end() && v1->ipv4_conf.size() >= IPV4_DEVCONF_PROMOTE_SECONDARIES);
  CHECK(v1->ipv4_conf[IPV4_DEVCONF_ARP_IGNORE - 1] == 1 && v1->ipv4_conf[IPV4_DEVCONF_RP_FILTER - 1] == 2);
  CHECK(std::to_string(v1->ipv4_conf[IPV4_DEVCONF_ARP_ANNOUNCE - 1]) ==
        sys.read(Sysctl::ipv4_conf_key("v.1", "arp_announce")).value_or("?"));
  CHECK(sh("ip link del v.1"));
  return 0;
}

int in_private_namespace() {
  if (unshare(CLONE_NEWNET) != 0) return kSkip;
  // From here on every change lands in the new namespace only.
  CHECK(sh("ip link set lo up"));
  CHECK(sh("ip link add m1 type veth peer name m1p"));
  CHECK(sh("ip link set m1 up && ip link set m1p up"));

  auto k = Kernel::open();
  CHECK_OK(k);
  auto links = k->dump_links();
  CHECK_OK(links);
  const auto find = [&](const char* name) {
    return std::find_if(links->begin(), links->end(),
                        [&](const LinkInfo& l) { return l.name == name; });
  };
  CHECK(find("lo") != links->end() && find("lo")->loopback);
  CHECK(find("m1") != links->end() && find("m1p") != links->end());
  const LinkInfo m1 = *find("m1");
  CHECK(m1.kind == "veth" && m1.admin_up && !m1.mac.is_zero() && m1.mtu == 1500);

  if (int rc = kernel_checks(*k, m1)) return rc;
  if (int rc = packet_checks(m1, find("m1p")->ifindex)) return rc;
  if (int rc = monitor_checks(*k, m1)) return rc;
  if (int rc = throwing_handler_checks()) return rc;
  if (int rc = sysctl_checks()) return rc;
  return overrun_checks(*k, m1);
}

TEST(NetNamespace, KernelMonitorAndPacketsInPrivateNamespace) { test::run_in_child(in_private_namespace); }

}  // namespace
}  // namespace mpathd::net
