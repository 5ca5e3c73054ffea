#include "net/sock_diag.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "guard/guard.hpp"
#include "net/nl_socket.hpp"

namespace mpathd::net {
namespace {

using detail::errno_error;

constexpr std::size_t kBufSize = 1 << 16;

std::uint8_t ipproto(L4 p) { return p == L4::tcp ? IPPROTO_TCP : IPPROTO_UDP; }

// An owning NETLINK_SOCK_DIAG socket.
class DiagFd {
 public:
  static Result<DiagFd> open(int rcvbuf = 0) {
    const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
    if (fd < 0) return std::unexpected(errno_error(errno, "sock_diag socket"));
    DiagFd d(fd);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
      return std::unexpected(errno_error(errno, "sock_diag bind"));
    return d;
  }
  DiagFd(DiagFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  DiagFd& operator=(DiagFd&&) = delete;
  ~DiagFd() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  explicit DiagFd(int fd) : fd_(fd) {}
  int fd_;
};

Result<void> send_all(int fd, const std::vector<std::uint8_t>& buf, std::string_view what) {
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  for (;;) {
    const ssize_t n = sendto(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (n == static_cast<ssize_t>(buf.size())) return {};
    if (n < 0 && errno == EINTR) continue;
    return std::unexpected(errno_error(n < 0 ? errno : EIO, what));
  }
}

// Blocks (bounded by poll) until a datagram arrives; returns its size.
Result<std::size_t> recv_blocking(int fd, std::vector<std::uint8_t>& buf, std::string_view what) {
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) return std::unexpected(errno_error(ETIMEDOUT, what));
      continue;
    }
    return std::unexpected(errno_error(errno, what));
  }
}

// Walks the netlink messages of one datagram without the casting libc macros; `fn`
// gets the header and its payload and returns false to stop.
template <typename Fn>
bool for_each_msg(const std::uint8_t* buf, std::size_t len, Fn&& fn) {
  std::size_t off = 0;
  while (off + sizeof(nlmsghdr) <= len) {
    nlmsghdr nh;
    std::memcpy(&nh, buf + off, sizeof nh);
    if (nh.nlmsg_len < sizeof nh || off + nh.nlmsg_len > len) break;
    const std::span<const std::uint8_t> payload{buf + off + NLMSG_HDRLEN, nh.nlmsg_len - NLMSG_HDRLEN};
    if (!fn(nh, payload)) return false;
    off += NLMSG_ALIGN(nh.nlmsg_len);
  }
  return true;
}

int ack_error(std::span<const std::uint8_t> payload) {
  nlmsgerr e{};
  std::memcpy(&e, payload.data(), std::min(payload.size(), sizeof e));
  return -e.error;
}

void put_addr(const IpAddress& a, __be32* dst) {
  std::memcpy(dst, a.bytes.data(), a.size());
}

IpAddress get_addr(int family, const __be32* src) {
  IpAddress a;
  if (family == AF_INET) {
    a.family = Family::v4;
    std::memcpy(a.bytes.data(), src, 4);
    return a;
  }
  a.family = Family::v6;
  std::memcpy(a.bytes.data(), src, 16);
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a.bytes.data(), kMapped, 12) == 0) {
    IpAddress v4;
    v4.family = Family::v4;
    std::memcpy(v4.bytes.data(), a.bytes.data() + 12, 4);
    return v4;
  }
  return a;
}

struct Request {
  nlmsghdr nh;
  inet_diag_req_v2 req;
};

std::vector<std::uint8_t> dump_request(int family, L4 proto, std::uint32_t states,
                                       const std::vector<std::uint8_t>& bytecode) {
  std::vector<std::uint8_t> buf(NLMSG_ALIGN(sizeof(Request)));
  auto* r = reinterpret_cast<Request*>(buf.data());
  r->nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  r->nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  r->nh.nlmsg_seq = 1;
  r->req.sdiag_family = static_cast<std::uint8_t>(family);
  r->req.sdiag_protocol = ipproto(proto);
  r->req.idiag_states = states;
  if (!bytecode.empty()) {
    nlattr at{};
    at.nla_type = INET_DIAG_REQ_BYTECODE;
    at.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + bytecode.size());
    const auto* p = reinterpret_cast<const std::uint8_t*>(&at);
    buf.insert(buf.end(), p, p + sizeof at);
    buf.insert(buf.end(), bytecode.begin(), bytecode.end());
    buf.resize(NLMSG_ALIGN(buf.size()));
  }
  reinterpret_cast<nlmsghdr*>(buf.data())->nlmsg_len = static_cast<std::uint32_t>(buf.size());
  return buf;
}

Result<void> dump_family(int family, L4 proto, std::uint32_t states,
                         const std::vector<std::uint8_t>& bytecode, std::vector<DiagSocket>& out) {
  auto fd = DiagFd::open();
  if (!fd) return std::unexpected(fd.error());
  if (auto s = send_all(fd->fd(), dump_request(family, proto, states, bytecode), "sock_diag dump"); !s)
    return s;
  std::vector<std::uint8_t> buf(kBufSize);
  for (;;) {
    auto n = recv_blocking(fd->fd(), buf, "sock_diag dump");
    if (!n) return std::unexpected(n.error());
    bool done = false;
    int err = 0;
    for_each_msg(buf.data(), *n, [&](const nlmsghdr& nh, std::span<const std::uint8_t> payload) {
      if (nh.nlmsg_type == NLMSG_DONE) {
        done = true;
        return false;
      }
      if (nh.nlmsg_type == NLMSG_ERROR) {
        err = ack_error(payload);
        return err == 0;
      }
      if (nh.nlmsg_type == SOCK_DIAG_BY_FAMILY)
        if (auto s = parse_inet_diag_msg(proto, payload)) out.push_back(*s);
      return true;
    });
    if (err != 0) return std::unexpected(errno_error(err, "sock_diag dump"));
    if (done) return {};
  }
}

}  // namespace

std::optional<DiagSocket> parse_inet_diag_msg(L4 proto, std::span<const std::uint8_t> payload) {
  if (payload.size() < sizeof(inet_diag_msg)) return std::nullopt;
  inet_diag_msg m;
  std::memcpy(&m, payload.data(), sizeof m);
  if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6) return std::nullopt;
  DiagSocket s;
  s.proto = proto;
  s.local = get_addr(m.idiag_family, m.id.idiag_src);
  s.remote = get_addr(m.idiag_family, m.id.idiag_dst);
  s.local_port = ntohs(m.id.idiag_sport);
  s.remote_port = ntohs(m.id.idiag_dport);
  s.state = m.idiag_state;
  s.ifindex = m.id.idiag_if;
  std::uint64_t cookie = m.id.idiag_cookie[0] | (static_cast<std::uint64_t>(m.id.idiag_cookie[1]) << 32);
  s.cookie = cookie;
  return s;
}

std::vector<std::uint8_t> local_address_filter(const IpAddress& addr) {
  const std::size_t alen = addr.size();
  const std::size_t total = sizeof(inet_diag_bc_op) + sizeof(inet_diag_hostcond) + alen;
  std::vector<std::uint8_t> bc(total);
  inet_diag_bc_op op{};
  op.code = INET_DIAG_BC_S_COND;
  op.yes = static_cast<unsigned char>(total);  // jump to the end: accept
  op.no = static_cast<unsigned short>(total + 4);  // jump beyond the end: reject
  inet_diag_hostcond hc{};
  hc.family = addr.is_v4() ? AF_INET : AF_INET6;
  hc.prefix_len = static_cast<std::uint8_t>(alen * 8);
  hc.port = -1;
  std::memcpy(bc.data(), &op, sizeof op);
  std::memcpy(bc.data() + sizeof op, &hc, sizeof hc);
  std::memcpy(bc.data() + sizeof op + sizeof hc, addr.bytes.data(), alen);
  return bc;
}

Result<std::vector<DiagSocket>> diag_dump(L4 proto, const std::optional<IpAddress>& local,
                                          std::uint32_t states) {
  std::vector<DiagSocket> out;
  const auto bc = local ? local_address_filter(*local) : std::vector<std::uint8_t>{};
  if (!local || local->is_v4())
    if (auto r = dump_family(AF_INET, proto, states, bc, out); !r) return std::unexpected(r.error());
  if (auto r = dump_family(AF_INET6, proto, states, bc, out); !r) return std::unexpected(r.error());
  return out;
}

Result<std::size_t> diag_destroy(const std::vector<DiagSocket>& sockets) {
  auto fd = DiagFd::open(4 << 20);
  if (!fd) return std::unexpected(fd.error());
  constexpr std::size_t kBatch = 256;
  std::size_t destroyed = 0;
  std::vector<std::uint8_t> rbuf(kBufSize);
  std::vector<std::uint8_t> batch;
  std::size_t i = 0;
  std::uint32_t seq = 0;
  while (i < sockets.size()) {
    batch.clear();
    std::size_t pending = 0;
    for (; i < sockets.size() && pending < kBatch; ++i) {
      const DiagSocket& s = sockets[i];
      if (s.proto == L4::tcp && s.state == kTcpTimeWait) continue;
      Request r{};
      r.nh.nlmsg_len = sizeof r;
      r.nh.nlmsg_type = SOCK_DESTROY;
      r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
      r.nh.nlmsg_seq = ++seq;
      // An IPv4 address may belong to an AF_INET6 socket (mapped); both are tried by
      // the caller's dump, and the kernel looks the socket up by this family.
      const bool v4 = s.local.is_v4() && (s.remote.is_v4() || s.remote.is_unspecified());
      r.req.sdiag_family = v4 ? AF_INET : AF_INET6;
      r.req.sdiag_protocol = ipproto(s.proto);
      r.req.idiag_states = kAllStates;
      r.req.id.idiag_sport = htons(s.local_port);
      r.req.id.idiag_dport = htons(s.remote_port);
      r.req.id.idiag_if = s.ifindex;
      r.req.id.idiag_cookie[0] = static_cast<std::uint32_t>(s.cookie);
      r.req.id.idiag_cookie[1] = static_cast<std::uint32_t>(s.cookie >> 32);
      if (v4) {
        put_addr(s.local, r.req.id.idiag_src);
        if (!s.remote.is_unspecified()) put_addr(s.remote, r.req.id.idiag_dst);
      } else {
        auto mapped = [](const IpAddress& a, __be32* dst) {
          if (a.is_v4()) {
            if (a.is_unspecified()) return;  // :: for an unconnected socket
            dst[2] = htonl(0xffff);
            std::memcpy(&dst[3], a.bytes.data(), 4);
          } else {
            put_addr(a, dst);
          }
        };
        mapped(s.local, r.req.id.idiag_src);
        mapped(s.remote, r.req.id.idiag_dst);
      }
      const auto* p = reinterpret_cast<const std::uint8_t*>(&r);
      batch.insert(batch.end(), p, p + sizeof r);
      ++pending;
    }
    if (pending == 0) break;
    if (auto s = send_all(fd->fd(), batch, "SOCK_DESTROY"); !s) return std::unexpected(s.error());
    while (pending > 0) {
      auto n = recv_blocking(fd->fd(), rbuf, "SOCK_DESTROY");
      if (!n) return std::unexpected(n.error());
      int fatal = 0;
      for_each_msg(rbuf.data(), *n, [&](const nlmsghdr& nh, std::span<const std::uint8_t> payload) {
        if (nh.nlmsg_type != NLMSG_ERROR) return true;
        --pending;
        const int err = ack_error(payload);
        // Other errors (ENOENT: gone meanwhile; ESTALE: the cookie names another socket
        // now) leave that socket alone; no privilege or no kernel support stops all.
        if (err == 0) ++destroyed;
        if (err == EPERM || err == EOPNOTSUPP) fatal = err;
        return true;
      });
      if (fatal != 0) return std::unexpected(errno_error(fatal, "SOCK_DESTROY"));
    }
  }
  return destroyed;
}

struct DestroyMonitor::State {
  int fd = -1;
  sd_event_source* source = nullptr;
  Handlers handlers;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(kBufSize);

  ~State() {
    sd_event_source_disable_unref(source);
    if (fd >= 0) close(fd);
  }

  static int on_io(sd_event_source*, int, std::uint32_t, void* user) {
    auto* s = static_cast<State*>(user);
    return guard_void_callback("sock_diag destroy monitor", [s] { s->drain(); });
  }

  void drain() {
    for (;;) {
      const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          if (handlers.overrun) handlers.overrun();
          continue;
        }
        return;  // EAGAIN: drained
      }
      for_each_msg(buf.data(), static_cast<std::size_t>(n), [&](const nlmsghdr& nh,
                                                                std::span<const std::uint8_t> payload) {
        if (nh.nlmsg_type != SOCK_DIAG_BY_FAMILY) return true;
        // inet_diag_msg carries no protocol (every notification has state 7): the
        // kernel adds it as the INET_DIAG_PROTOCOL attribute.
        L4 proto = L4::tcp;
        const std::size_t off = NLMSG_ALIGN(sizeof(inet_diag_msg));
        for (std::size_t a = off; a + NLA_HDRLEN <= payload.size();) {
          nlattr at;
          std::memcpy(&at, payload.data() + a, sizeof at);
          if (at.nla_len < NLA_HDRLEN) break;
          if (at.nla_type == INET_DIAG_PROTOCOL && at.nla_len >= NLA_HDRLEN + 1)
            proto = payload[a + NLA_HDRLEN] == IPPROTO_UDP ? L4::udp : L4::tcp;
          a += NLA_ALIGN(at.nla_len);
        }
        if (auto s = parse_inet_diag_msg(proto, payload); s && handlers.destroyed) handlers.destroyed(*s);
        return true;
      });
    }
  }
};

DestroyMonitor::DestroyMonitor(std::unique_ptr<State> s) : s_(std::move(s)) {}
DestroyMonitor::~DestroyMonitor() = default;

Result<std::unique_ptr<DestroyMonitor>> DestroyMonitor::open(sd_event* event, Handlers handlers) {
  auto fd = DiagFd::open(8 << 20);
  if (!fd) return std::unexpected(fd.error());
  for (int g : {SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET_UDP_DESTROY, SKNLGRP_INET6_TCP_DESTROY,
                SKNLGRP_INET6_UDP_DESTROY})
    if (setsockopt(fd->fd(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0)
      return std::unexpected(errno_error(errno, "sock_diag destroy group"));
  auto s = std::make_unique<State>();
  s->fd = fd->release();
  s->handlers = std::move(handlers);
  if (int r = sd_event_add_io(event, &s->source, s->fd, EPOLLIN, &State::on_io, s.get()); r < 0)
    return std::unexpected(errno_error(-r, "sock_diag destroy monitor io source"));
  return std::unique_ptr<DestroyMonitor>(new DestroyMonitor(std::move(s)));
}

}  // namespace mpathd::net
