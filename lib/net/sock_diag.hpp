// sock_diag (NETLINK_SOCK_DIAG) for shared addresses: a walk of the TCP and UDP sockets
// bound to one local address (filtered in the kernel by inet_diag bytecode), SOCK_DESTROY
// of those sockets, and the SKNLGRP_INET*_DESTROY notifications. Everything is per
// network namespace: the sockets are opened in the caller's namespace and stay there.
// Raw netlink (libnl has no sock_diag support); nothing netlink-typed leaves this file.
#pragma once

#include <systemd/sd-event.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"

namespace mpathd::net {

enum class L4 : std::uint8_t { tcp, udp };

// One kernel socket as inet_diag reports it. IPv4-mapped IPv6 addresses (a v4 peer of
// an AF_INET6 socket) are reported as IPv4.
struct DiagSocket {
  L4 proto = L4::tcp;
  IpAddress local;
  std::uint16_t local_port = 0;
  IpAddress remote;  // unspecified for a listener or an unconnected UDP socket
  std::uint16_t remote_port = 0;
  std::uint8_t state = 0;  // linux TCP_* numbering; UDP: 7 (CLOSE) unconnected, 1 connected
  std::uint64_t cookie = 0;
  std::uint32_t ifindex = 0;  // SO_BINDTODEVICE, 0 if none
  bool operator==(const DiagSocket&) const = default;
};

inline constexpr std::uint8_t kTcpEstablished = 1;
inline constexpr std::uint8_t kTcpTimeWait = 6;
inline constexpr std::uint8_t kTcpClose = 7;
inline constexpr std::uint8_t kTcpListen = 10;
inline constexpr std::uint8_t kTcpMaxState = 12;  // TCP_NEW_SYN_RECV
// The state bit a dump request sets to get TCP sockets bound but neither listening nor
// connected (Linux 6.5+); they are reported in state CLOSE.
inline constexpr std::uint8_t kTcpBoundInactive = 13;

// The bitmask of every TCP state, for `states` below.
inline constexpr std::uint32_t kAllStates = 0xffffffffU;

// Pure: one inet_diag_msg payload (after the nlmsghdr) → DiagSocket; nullopt if the
// buffer is too short or the family is not AF_INET/AF_INET6.
std::optional<DiagSocket> parse_inet_diag_msg(L4 proto, std::span<const std::uint8_t> payload);

// Pure: the inet_diag bytecode "source address == addr, any port" (one S_COND); for an
// IPv4 address it also matches IPv4-mapped addresses of AF_INET6 sockets (kernel rule).
std::vector<std::uint8_t> local_address_filter(const IpAddress& addr);

// The sockets of `proto` in the states of the `states` bitmask (1 << TCP_*) whose local
// address is `local` (nullopt: any local address). For an IPv4 address both AF_INET and
// AF_INET6 (mapped) sockets are walked. No privilege needed.
Result<std::vector<DiagSocket>> diag_dump(L4 proto, const std::optional<IpAddress>& local,
                                          std::uint32_t states = kAllStates);

// SOCK_DESTROY (CAP_NET_ADMIN) of each of `sockets` (exact id + cookie): their owners'
// calls fail with ECONNABORTED, a TCP peer gets an RST. TIME_WAIT sockets are skipped;
// a socket that vanished meanwhile is not an error. Requests go in batches. Returns how
// many the kernel destroyed.
Result<std::size_t> diag_destroy(const std::vector<DiagSocket>& sockets);

// SKNLGRP_INET_{TCP,UDP}_DESTROY and the INET6 variants: the kernel tells when a socket
// is freed (no privilege). Delivered on the event loop; `overrun` is called when the
// kernel dropped notifications (the owner should walk again).
class DestroyMonitor {
 public:
  struct Handlers {
    std::function<void(const DiagSocket&)> destroyed;
    std::function<void()> overrun;
  };
  static Result<std::unique_ptr<DestroyMonitor>> open(sd_event* event, Handlers handlers);
  ~DestroyMonitor();
  DestroyMonitor(const DestroyMonitor&) = delete;
  DestroyMonitor& operator=(const DestroyMonitor&) = delete;

 private:
  struct State;
  explicit DestroyMonitor(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace mpathd::net
