#include "net/tickle.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "net/nl_socket.hpp"

namespace mpathd::net {
namespace {

using detail::errno_error;

constexpr std::size_t kTcpLen = 20;
constexpr std::uint16_t kWindow = 1234;  // as CTDB sends it

// One's-complement sum of `len` bytes, folded later.
std::uint32_t sum16(const std::uint8_t* p, std::size_t len, std::uint32_t acc = 0) {
  for (std::size_t i = 0; i + 1 < len; i += 2) acc += (p[i] << 8) | p[i + 1];
  if (len & 1) acc += p[len - 1] << 8;
  return acc;
}

std::uint16_t fold(std::uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(~acc & 0xffff);
}

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// The TCP header of the tickle with a zero checksum.
void tcp_ack(std::uint8_t* t, std::uint16_t sport, std::uint16_t dport) {
  std::memset(t, 0, kTcpLen);
  put16(t, sport);
  put16(t + 2, dport);
  // seq 0 (t+4..7), ack 0 (t+8..11)
  t[12] = 5 << 4;  // data offset: 5 words
  t[13] = 0x10;    // ACK
  put16(t + 14, kWindow);
}

}  // namespace

std::vector<std::uint8_t> build_tickle_v4(const IpAddress& src, std::uint16_t sport,
                                          const IpAddress& dst, std::uint16_t dport) {
  if (!src.is_v4() || !dst.is_v4()) return {};
  std::vector<std::uint8_t> f(20 + kTcpLen, 0);
  std::uint8_t* ip = f.data();
  ip[0] = 0x45;
  put16(ip + 2, static_cast<std::uint16_t>(f.size()));
  ip[8] = 64;  // TTL
  ip[9] = IPPROTO_TCP;
  std::memcpy(ip + 12, src.bytes.data(), 4);
  std::memcpy(ip + 16, dst.bytes.data(), 4);
  put16(ip + 10, fold(sum16(ip, 20)));
  std::uint8_t* t = ip + 20;
  tcp_ack(t, sport, dport);
  std::uint32_t acc = sum16(src.bytes.data(), 4);
  acc = sum16(dst.bytes.data(), 4, acc);
  acc += IPPROTO_TCP + kTcpLen;
  put16(t + 16, fold(sum16(t, kTcpLen, acc)));
  return f;
}

std::vector<std::uint8_t> build_tickle_tcp6(const IpAddress& src, std::uint16_t sport,
                                            const IpAddress& dst, std::uint16_t dport) {
  if (src.is_v4() || dst.is_v4()) return {};
  std::vector<std::uint8_t> t(kTcpLen);
  tcp_ack(t.data(), sport, dport);
  std::uint32_t acc = sum16(src.bytes.data(), 16);
  acc = sum16(dst.bytes.data(), 16, acc);
  acc += kTcpLen + IPPROTO_TCP;
  put16(t.data() + 16, fold(sum16(t.data(), kTcpLen, acc)));
  return t;
}

Result<TickleSender> TickleSender::open() {
  const int fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd4 < 0) return std::unexpected(errno_error(errno, "raw IPv4 socket for tickles"));
  const int fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd6 < 0) {
    const int e = errno;
    close(fd4);
    return std::unexpected(errno_error(e, "raw IPv6 socket for tickles"));
  }
  // An IPv6 raw TCP socket receives a copy of every TCP segment: drop them all in the
  // kernel (classic BPF "ret #0") so that nothing queues up on a send-only socket.
  sock_filter drop_all{BPF_RET | BPF_K, 0, 0, 0};
  sock_fprog prog{1, &drop_all};
  setsockopt(fd6, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  return TickleSender(fd4, fd6);
}

TickleSender::TickleSender(TickleSender&& o) noexcept
    : fd4_(std::exchange(o.fd4_, -1)), fd6_(std::exchange(o.fd6_, -1)) {}

TickleSender& TickleSender::operator=(TickleSender&& o) noexcept {
  if (this != &o) {
    if (fd4_ >= 0) close(fd4_);
    if (fd6_ >= 0) close(fd6_);
    fd4_ = std::exchange(o.fd4_, -1);
    fd6_ = std::exchange(o.fd6_, -1);
  }
  return *this;
}

TickleSender::~TickleSender() {
  if (fd4_ >= 0) close(fd4_);
  if (fd6_ >= 0) close(fd6_);
}

namespace {

// Sends one header-included frame with its source in a PKTINFO control message: the
// header's source is not used for the route lookup of such a send, the PKTINFO address
// is, so that "from <shared>" policy rules apply and the tickle leaves the way the
// kernel's own packets from that address do.
template <typename SockAddr, typename PktInfo>
int send_from(int fd, const SockAddr& to, const std::vector<std::uint8_t>& frame, int level, int type,
              const PktInfo& info) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(PktInfo))] = {};
  iovec iov{const_cast<std::uint8_t*>(frame.data()), frame.size()};
  msghdr msg{};
  msg.msg_name = const_cast<SockAddr*>(&to);
  msg.msg_namelen = sizeof to;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof(PktInfo));
  std::memcpy(CMSG_DATA(c), &info, sizeof info);
  return static_cast<int>(sendmsg(fd, &msg, 0));
}

}  // namespace

Result<void> TickleSender::send(const IpAddress& src, std::uint16_t sport, const IpAddress& dst,
                                std::uint16_t dport) {
  if (src.family != dst.family) return fail(Errc::invalid_argument, "tickle: address families differ");
  int r = 0;
  if (src.is_v4()) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    std::memcpy(&sa.sin_addr, dst.bytes.data(), 4);
    in_pktinfo pi{};
    std::memcpy(&pi.ipi_spec_dst, src.bytes.data(), 4);
    r = send_from(fd4_, sa, build_tickle_v4(src, sport, dst, dport), IPPROTO_IP, IP_PKTINFO, pi);
  } else {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    std::memcpy(&sa.sin6_addr, dst.bytes.data(), 16);
    in6_pktinfo pi{};
    std::memcpy(&pi.ipi6_addr, src.bytes.data(), 16);
    r = send_from(fd6_, sa, build_tickle_tcp6(src, sport, dst, dport), IPPROTO_IPV6, IPV6_PKTINFO, pi);
  }
  if (r < 0) return std::unexpected(errno_error(errno, "tickle to " + dst.str()));
  return {};
}

}  // namespace mpathd::net
