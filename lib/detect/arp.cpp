#include "detect/arp.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace mpathd::detect {

namespace {
constexpr std::size_t kEthHeader = 14;
constexpr std::size_t kArpFrame = kEthHeader + 28;

// The kernel passes the socket ARP replies only. Every member's socket would otherwise
// get a copy of every ARP request on its LAN, our own and all other members' probes
// among them (broadcasts): at 256 members probing at FDT 1 s, ~20,000 recvmsg() per
// second and a third of a core of system time spent reading and dropping them.
// Replies of every kind (answers, gratuitous and unsolicited "is-at") still arrive.
Result<void> only_arp_replies(int fd) {
  static sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                           // ethertype
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 0, 3),
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, kEthHeader + 6),               // ARP operation
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 2 /* reply */, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),                                // accept
      BPF_STMT(BPF_RET | BPF_K, 0),                                     // drop
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
  return sock::set(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog, "SO_ATTACH_FILTER");
}
}  // namespace

std::vector<std::uint8_t> build_arp_probe(const Mac& mac, const IpAddress& target) {
  std::vector<std::uint8_t> f(kArpFrame, 0);
  if (!target.is_v4()) return {};
  std::fill(f.begin(), f.begin() + 6, 0xff);
  std::copy(mac.bytes.begin(), mac.bytes.end(), f.begin() + 6);
  f[12] = 0x08, f[13] = 0x06;          // ethertype ARP
  std::uint8_t* a = f.data() + kEthHeader;
  a[0] = 0x00, a[1] = 0x01;            // hardware: Ethernet
  a[2] = 0x08, a[3] = 0x00;            // protocol: IPv4
  a[4] = 6, a[5] = 4;
  a[6] = 0x00, a[7] = 0x01;            // request
  std::copy(mac.bytes.begin(), mac.bytes.end(), a + 8);  // sha; spa stays 0.0.0.0
  std::copy(target.bytes.begin(), target.bytes.begin() + 4, a + 24);  // tpa; tha stays 0
  return f;
}

std::optional<ArpReply> parse_arp_reply(const std::uint8_t* f, std::size_t len) {
  if (len < kArpFrame || f[12] != 0x08 || f[13] != 0x06) return std::nullopt;
  const std::uint8_t* a = f + kEthHeader;
  if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4) return std::nullopt;
  if (a[6] != 0 || a[7] != 2) return std::nullopt;
  ArpReply r;
  std::copy(f, f + 6, r.eth_dst.bytes.begin());
  std::copy(a + 8, a + 14, r.sender_mac.bytes.begin());
  r.sender_ip.family = Family::v4;
  std::copy(a + 14, a + 18, r.sender_ip.bytes.begin());
  std::copy(a + 18, a + 24, r.target_mac.bytes.begin());
  r.target_ip.family = Family::v4;
  std::copy(a + 24, a + 28, r.target_ip.bytes.begin());
  return r;
}

Result<std::unique_ptr<ArpProber>> ArpProber::open(sd_event* event, unsigned ifindex, const Mac& mac) {
  if (mac.is_zero()) return fail(Errc::invalid_argument, "arp probing needs the member's MAC address");
  // Protocol 0 here and ETH_P_ARP in bind(): a packet socket opened for a protocol is
  // hooked to every interface at once, and binding it to one then unhooks it, which
  // waits for an RCU grace period (synchronize_net(): ~15 ms each, 4 s for 256 members).
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return sock::errno_error("arp probe socket");
  std::unique_ptr<ArpProber> p(new ArpProber(ifindex, mac));
  if (auto r = p->attach(event, fd); !r) {
    close(fd);
    return std::unexpected(r.error());
  }
  if (auto r = only_arp_replies(fd); !r) return std::unexpected(r.error());
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ARP);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) return sock::errno_error("bind arp probe socket");
  if (auto r = sock::set_int(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS"); !r) return std::unexpected(r.error());
  return p;
}

Result<void> ArpProber::send(ProbeSeq seq, const IpAddress& target, std::uint64_t nonce) {
  const auto frame = build_arp_probe(mac_, target);
  if (frame.empty()) return fail(Errc::invalid_argument, "arp target must be IPv4");
  const TimePoint now = Clock::now();
  auto& reqs = requests_[target];
  reqs.push_back(Request{.nonce = nonce, .sent = now, .seq = seq});
  while (reqs.size() > probe::kHistorySize || now - reqs.front().sent > reply_window_) reqs.pop_front();
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = static_cast<int>(ifindex_);
  to.sll_halen = 6;
  std::fill(to.sll_addr, to.sll_addr + 6, 0xff);
  const ssize_t n = sendto(fd(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    ++counters_.send_errors;
    return sock::errno_error(("arp probe " + target.str()).c_str());
  }
  ++counters_.sent;
  return {};
}

void ArpProber::readable() {
  std::array<std::uint8_t, 256> buf{};
  // A socket error (ENETDOWN when the link goes down) is reported once by recvmsg(),
  // with answers possibly still queued behind it: read on, a few errors at most.
  unsigned errors = 0;
  for (;;) {
    sockaddr_ll from{};
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) std::array<char, 128> control{};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = recvmsg(fd(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || ++errors > 8) return;
      continue;
    }
    if (from.sll_pkttype == PACKET_OUTGOING) continue;  // our own requests
    auto rep = parse_arp_reply(buf.data(), static_cast<std::size_t>(n));
    if (!rep) {
      ++counters_.foreign;  // malformed: requests are dropped by the socket's filter
      continue;
    }
    const TimePoint when = sock::rx_time(msg);
    auto it = requests_.find(rep->sender_ip);
    // Addressed as an answer to our ARP probe, from a target we probe?
    if (rep->eth_dst != mac_ || rep->target_mac != mac_ || !rep->target_ip.is_unspecified() || it == requests_.end()) {
      ++counters_.unmatched;  // gratuitous, someone else's, or not a target of ours
      continue;
    }
    // The newest request it can answer that has no answer yet.
    auto& reqs = it->second;
    auto waiting = std::find_if(reqs.rbegin(), reqs.rend(), [&](const Request& r) {
      return !r.answered && r.sent <= when + milliseconds(1) && when - r.sent <= reply_window_;
    });
    if (waiting == reqs.rend()) {
      // Nothing of ours was waiting for it: an unsolicited "target is-at".
      ++counters_.unsolicited;
      distrust_until_[rep->sender_ip] = when + kDistrustIntervals * interval_;
      continue;
    }
    Request& req = *waiting;
    req.answered = true;  // one answer per request
    if (auto d = distrust_until_.find(rep->sender_ip); d != distrust_until_.end()) {
      if (when < d->second) {
        ++counters_.unsolicited;  // it may be the forger's: it does not count
        continue;
      }
      distrust_until_.erase(d);
    }
    ++counters_.replies;
    if (reply_) reply_(ProbeReply{req.seq, rep->sender_ip, req.nonce, req.sent, when});
  }
}

}  // namespace mpathd::detect
