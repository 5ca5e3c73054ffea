#include "net/monitor.hpp"

#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>

#include "guard/guard.hpp"
#include "net/kernel.hpp"
#include "net/nl_socket.hpp"

namespace mpathd::net {
namespace {

constexpr int kReceiveBuffer = 4 * 1024 * 1024;
constexpr int kMaxReadsPerWakeup = 64;  // then yield to other sources; epoll is level-triggered

}  // namespace

struct Monitor::State {
  Handlers h;
  detail::NlSock sk;
  std::unique_ptr<nl_cb, decltype(&nl_cb_put)> cb{nullptr, &nl_cb_put};
  sd_event_source* source = nullptr;
  std::unique_ptr<Kernel> dumper;  // a separate socket, so dumps never mix with events
  std::uint64_t overruns = 0;
  std::uint64_t handler_failures = 0;
  bool handler_failed = false;

  ~State() { sd_event_source_disable_unref(source); }

  void dispatch(const nlmsghdr* m) {
    const bool present = m->nlmsg_type == RTM_NEWLINK || m->nlmsg_type == RTM_NEWADDR ||
                         m->nlmsg_type == RTM_NEWROUTE || m->nlmsg_type == RTM_NEWRULE;
    switch (m->nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK:
        if (auto l = parse_link(m)) {
          auto& f = present ? h.link_changed : h.link_removed;
          if (f) f(*l);
        }
        break;
      case RTM_NEWADDR:
      case RTM_DELADDR:
        if (auto a = parse_addr(m); a && h.address) h.address(*a, present);
        break;
      case RTM_NEWROUTE:
      case RTM_DELROUTE:
        if (auto r = parse_route(m); r && h.route) h.route(*r, present);
        break;
      case RTM_NEWRULE:
      case RTM_DELRULE:
        if (auto r = parse_rule(m); r && h.rule) h.rule(*r, present);
        break;
      default:
        break;
    }
  }

  static int on_message(nl_msg* msg, void* arg) {
    auto* s = static_cast<State*>(arg);
    try {
      s->dispatch(nlmsg_hdr(msg));
      return NL_OK;
    } catch (const std::exception& e) {
      note_callback_exception("rtnetlink monitor", e.what());
    } catch (...) {
      note_callback_exception("rtnetlink monitor", "unknown exception");
    }
    ++s->handler_failures;
    s->handler_failed = true;
    return NL_STOP;
  }

  void lost_events(const char* why) {
    spdlog::debug("rtnetlink monitor: {}, asking for a resync", why);
    if (h.resync) h.resync();
  }

  void receive() {
    for (int i = 0; i < kMaxReadsPerWakeup; ++i) {
      handler_failed = false;
      const int r = nl_recvmsgs_report(sk.get(), cb.get());
      if (handler_failed) {
        lost_events("a handler threw");
        return;
      }
      if (r > 0) continue;
      if (r == 0 || r == -NLE_AGAIN) return;
      if (r == -NLE_NOMEM) {  // libnl's translation of ENOBUFS: the kernel dropped events
        ++overruns;
        lost_events("receive buffer overrun");
        continue;
      }
      spdlog::debug("rtnetlink monitor: receive failed: {}", nl_geterror(r));
      return;
    }
  }

  static int on_io(sd_event_source*, int, std::uint32_t, void* arg) {
    auto* s = static_cast<State*>(arg);
    // An exception here was thrown by resync (or by dump() called from it).
    if (!guard_callback("rtnetlink monitor", false, [&] {
          s->receive();
          return true;
        }))
      ++s->handler_failures;
    return 0;
  }
};

Monitor::Monitor(std::unique_ptr<State> s) : s_(std::move(s)) {}
Monitor::~Monitor() = default;

Result<std::unique_ptr<Monitor>> Monitor::open(sd_event* event, Handlers handlers) {
  auto s = std::make_unique<State>();
  s->h = std::move(handlers);

  auto sk = detail::connect_route();
  if (!sk) return std::unexpected(sk.error());
  s->sk = std::move(*sk);
  nl_sock* raw = s->sk.get();
  nl_socket_disable_seq_check(raw);
  if (int r = nl_socket_add_memberships(raw, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
                                        RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV4_RULE,
                                        RTNLGRP_IPV6_RULE, 0);
      r < 0)
    return std::unexpected(detail::nl_error(r, "rtnetlink subscribe"));
  if (int r = nl_socket_set_nonblocking(raw); r < 0)
    return std::unexpected(detail::nl_error(r, "rtnetlink non-blocking"));
  const int fd = nl_socket_get_fd(raw);
  // SO_RCVBUFFORCE goes past rmem_max when we have CAP_NET_ADMIN.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kReceiveBuffer, sizeof kReceiveBuffer) < 0)
    nl_socket_set_buffer_size(raw, kReceiveBuffer, 0);

  s->cb.reset(nl_cb_alloc(NL_CB_DEFAULT));
  if (!s->cb) return std::unexpected(detail::errno_error(ENOMEM, "rtnetlink callbacks"));
  nl_cb_set(s->cb.get(), NL_CB_VALID, NL_CB_CUSTOM, &State::on_message, s.get());

  auto kernel = Kernel::open();
  if (!kernel) return std::unexpected(kernel.error());
  s->dumper = std::make_unique<Kernel>(std::move(*kernel));

  if (int r = sd_event_add_io(event, &s->source, fd, EPOLLIN, &State::on_io, s.get()); r < 0)
    return std::unexpected(detail::errno_error(-r, "rtnetlink event source"));
  sd_event_source_set_priority(s->source, SD_EVENT_PRIORITY_IMPORTANT);
  sd_event_source_set_description(s->source, "rtnetlink-monitor");
  return std::unique_ptr<Monitor>(new Monitor(std::move(s)));
}

Result<void> Monitor::dump() {
  auto links = s_->dumper->dump_links();
  if (!links) return std::unexpected(links.error());
  if (s_->h.link_changed)
    for (const auto& l : *links) s_->h.link_changed(l);
  auto addrs = s_->dumper->dump_addresses();
  if (!addrs) return std::unexpected(addrs.error());
  if (s_->h.address)
    for (const auto& a : *addrs) s_->h.address(a, true);
  return {};
}

std::uint64_t Monitor::overruns() const { return s_->overruns; }
std::uint64_t Monitor::handler_failures() const { return s_->handler_failures; }

}  // namespace mpathd::net
