// Internal to lib/cluster: the association store shared by both registry levels. It holds,
// per tracked shared address, what this kernel shows (walks and events) and, per shared
// address, what was imported; it reports every change through Registry::Changed.
#pragma once

#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "cluster/cluster.hpp"
#include "net/sock_diag.hpp"

namespace mpathd::cluster::detail {

// TCP: (tcp, local port, remote, remote port). UDP: (udp, 0, client, 0): one entry per
// client address, as seed 000 registers UDP clients.
struct Key {
  Proto proto;
  std::uint16_t local_port;
  IpAddress remote;
  std::uint16_t remote_port;
  auto operator<=>(const Key&) const = default;
};

Key key_of(const Association& a);

// The walk of one shared address turned into associations (pure, for tests):
// - TCP sockets other than listeners, TIME_WAIT and CLOSE; outgoing when the local port
//   is not a port some listener on this address or on the wildcard listens on (the walk
//   cannot see who called connect(); a connection accepted on a listener always has the
//   listener's port, an outgoing one an ephemeral or explicitly bound port). `previous`
//   keeps the direction of a connection once classified, so a listener opened later on
//   the same port does not flip it.
// - connected UDP sockets, one entry per client address (unconnected ones have no client).
std::map<Key, Association> associations_from_walk(const IpAddress& shared,
                                                  const std::vector<net::DiagSocket>& sockets,
                                                  const std::set<std::uint16_t>& listener_ports,
                                                  const std::map<Key, Association>& previous);

// The ports of TCP listeners that accept connections to `shared`: bound to it, or to the
// wildcard of its family (an IPv6 wildcard also serves IPv4 unless v6only; counted too).
std::set<std::uint16_t> listener_ports_for(const IpAddress& shared,
                                           const std::vector<net::DiagSocket>& listeners);

// The sockets bound to `shared` in a walk, by cookie (pure, for tests): TCP listeners
// and bound-only sockets, UDP sockets without a peer (a connected one is an association
// when first seen). A socket of `previous` (known bound) that connected since stays
// bound, not listening, until it is gone (TIME_WAIT counts as gone): its bind holds.
std::map<std::uint64_t, BoundSocket> bound_from_walk(const IpAddress& shared,
                                                     const std::vector<net::DiagSocket>& sockets,
                                                     const std::map<std::uint64_t, BoundSocket>& previous = {});

// The socket events that turn `before` into `now` (pure), each socket in the order of its
// life: a socket gone reports unlisten (if it listened) then unbind; a new one bind then
// listen (if it listens); one still there listen or unlisten when that changed.
std::vector<std::pair<SocketEvent, BoundSocket>> bound_diff(const std::map<std::uint64_t, BoundSocket>& before,
                                                            const std::map<std::uint64_t, BoundSocket>& now);

// Validation of imported entries (whole batch): local must be `shared`, the remote of
// the same family and specified, TCP ports non-zero and a state in 1..12.
Result<void> validate_import(const IpAddress& shared, const std::vector<Association>& entries);

class Store {
 public:
  explicit Store(Registry::Changed changed) : changed_(std::move(changed)) {}

  std::vector<IpAddress> tracked() const;
  bool is_tracked(const IpAddress& a) const { return local_.contains(a); }
  // Start/stop tracking; stopping forgets (and reports gone) the local entries.
  void add(const IpAddress& a);
  void remove(const IpAddress& a);
  // Replaces the local entries of `shared` by `now`, reporting the difference.
  void replace_local(const IpAddress& shared, std::map<Key, Association> now);
  void set_local(const IpAddress& shared, const Association& a);
  void erase_local(const IpAddress& shared, const Key& k);
  const std::map<Key, Association>* local(const IpAddress& shared) const;
  std::size_t import(const IpAddress& shared, std::vector<Association> entries);
  std::vector<Association> associations(const IpAddress& shared) const;

 private:
  void report(const IpAddress& shared, const Association& a, bool present);
  Registry::Changed changed_;
  std::map<IpAddress, std::map<Key, Association>> local_;
  std::map<IpAddress, std::map<Key, Association>> imported_;
};

}  // namespace mpathd::cluster::detail
