// The seam between the daemon and the kernel mechanisms behind shared addresses
// (DESIGN §5): the association registry and the release/takeover actions.
//
// The daemon (lib/daemon) decides *when* (from the Engine's shared-address events);
// lib/cluster does *how*, on the kernel of the daemon's network namespace:
//   release:  block() → [stop hooks] → destroy_sockets() → address removed → unblock()
//   takeover: address added and announced → tickle(registry.associations(addr))
// Both are interfaces so that daemon-level unit tests can use a recording fake; the real
// implementations are created by the factories below and tested at the adapter tier
// with real sockets in namespaces.
//
// Status: interface agreed between the shared-address engine work and the kernel work
// (issue 10); the implementation may refine signatures, and says so in its commit.
// Implementation: actions.cpp, registry*.cpp (levels), association_json.hpp (the JSON
// form of association lists for ipmpctl and the D-Bus import).
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"

namespace mpathd::cluster {

enum class Proto : std::uint8_t { tcp, udp };

// One association on a shared address, as seed 000 sees it: a TCP connection (4-tuple,
// kernel TCP state, incoming or outgoing) or a UDP client (remote only; registered the
// first time that client is seen). The registry reports a UDP client as
// {udp, shared, 0, client, 0}: one entry per client address.
struct Association {
  Proto proto = Proto::tcp;
  IpAddress local;  // the shared address
  std::uint16_t local_port = 0;
  IpAddress remote;
  std::uint16_t remote_port = 0;  // 0 for a UDP client entry when the port is unknown
  std::uint8_t tcp_state = 0;     // linux TCP_* numbering (1 = ESTABLISHED); 0 for UDP
  bool outgoing = false;          // connect() from here (seed 000's is_outgoing)
  bool imported = false;          // learned from another node, not seen on this kernel
  auto operator<=>(const Association&) const = default;
};

// A socket bound (and maybe listening) on a shared address: seed 000's bind/unbind and
// listen/unlisten hooks. Only sockets whose local address is a tracked shared address
// count; wildcard-bound sockets (0.0.0.0, ::) do not (seed 000 calls cl_inet_bind for
// cluster addresses; a connection a wildcard listener accepts on a shared address is an
// Association like any other). A listener is reported bind then listen, and on close
// unlisten then unbind; an address no longer tracked reports its sockets the same way.
enum class SocketEvent : std::uint8_t { bind, unbind, listen, unlisten };

struct BoundSocket {
  Proto proto = Proto::tcp;
  IpAddress local;  // the shared address
  std::uint16_t local_port = 0;
  bool listening = false;
  std::uint64_t cookie = 0;  // the kernel's socket cookie (SO_COOKIE): the socket's identity
  auto operator<=>(const BoundSocket&) const = default;
};

// How associations are learned; the level in force is reported (log, D-Bus, ipmpctl).
enum class RegistryLevel : std::uint8_t {
  ebpf,       // cgroup hooks + sockops, event-driven, filtered in the kernel; UDP clients
              // from connect() and every sendto/sendmsg from the address (a server's reply
              // registers its client), deduplicated in the kernel
  sock_diag,  // fallback: filtered sock_diag walk every ≤ 1 s + destroy notifications;
              // UDP clients only of connected UDP sockets (the kernel keeps no peer for
              // an unconnected one), gone when the last such socket closes
};

struct RegistryOptions {
  std::string cgroup;         // cgroup2 directory the eBPF programs attach to ("" = none → fallback)
  bool ebpf = true;           // false forces the fallback level
  Duration walk_interval = std::chrono::seconds(1);
};

class Registry {
 public:
  // (shared address, association, true = appeared or changed (a TCP state change reports
  // the new state) / false = gone)
  using Changed = std::function<void(const IpAddress&, const Association&, bool)>;
  // Bound and listening sockets on tracked addresses: at the eBPF level from post_bind,
  // sockops LISTEN_CB / STATE_CB and sock_release as they happen; at the sock_diag level
  // from the walks (TCP listeners and bound-only sockets, unconnected UDP sockets) and
  // the destroy notifications. Each socket's events in the order of its life.
  using SocketsChanged = std::function<void(SocketEvent, const BoundSocket&)>;
  static std::unique_ptr<Registry> create(sd_event* event, RegistryOptions opts, Changed changed);
  static std::unique_ptr<Registry> create(sd_event* event, RegistryOptions opts, Changed changed,
                                          SocketsChanged sockets);
  virtual ~Registry() = default;

  virtual RegistryLevel level() const = 0;
  virtual std::string level_reason() const = 0;  // why eBPF is not in force ("" when it is)
  // The shared addresses held here; newly added ones are walked at once. Addresses no
  // longer in the list are forgotten (their local entries reported gone).
  virtual void track(const std::vector<IpAddress>& held) = 0;
  virtual std::vector<Association> associations(const IpAddress& shared) const = 0;
  // Entries learned elsewhere (the hand-over API, CPG replication); invalid input is
  // refused as a whole (Errc::invalid_argument naming the entry). An import replaces the
  // previous import for that address (an empty list clears it) and returns how many
  // entries it holds now; the address need not be tracked (import before takeover).
  // associations() lists local entries and the imported ones (imported = true) that the
  // kernel does not show itself.
  virtual Result<std::size_t> import(const IpAddress& shared, std::vector<Association> entries) = 0;
};

class Actions {
 public:
  static std::unique_ptr<Actions> create(sd_event* event);
  virtual ~Actions() = default;

  // Drop new inbound packets to the address (mpathd's own nftables table).
  virtual Result<void> block(const IpAddress& shared) = 0;
  virtual Result<void> unblock(const IpAddress& shared) = 0;
  // SOCK_DESTROY every TCP and UDP socket bound to the address, listeners included.
  virtual Result<std::size_t> destroy_sockets(const IpAddress& shared) = 0;
  // A tickle ACK (seq 0, ack 0, from the shared address) to every TCP association, sent
  // now and repeated `repeats` times with `spacing` (≥ 0.5 s) on the event loop. The
  // default keeps a margin above the client's tcp_invalid_ratelimit (500 ms, counted in
  // jiffies from when its answer to the previous tickle left): a repeat at exactly
  // 500 ms can be swallowed.
  virtual Result<std::size_t> tickle(const IpAddress& shared, const std::vector<Association>& to,
                                     int repeats = 3,
                                     Duration spacing = std::chrono::milliseconds(600)) = 0;
};

}  // namespace mpathd::cluster
