// What the kernel should hold for the current placement, as plain values. The daemon
// diffs this against what it last applied and performs only the difference.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"

namespace mpathd {

inline constexpr unsigned kMainTable = 254;
inline constexpr unsigned char kRouteProtocol = 77;  // routes installed by mpathd

struct PlacedAddress {
  std::string ifname;
  unsigned ifindex = 0;
  IpPrefix prefix;
  bool operator==(const PlacedAddress&) const = default;
};

struct PlacedRoute {
  unsigned table = kMainTable;
  IpPrefix dst;
  std::optional<IpAddress> gateway;
  std::string ifname;
  unsigned ifindex = 0;
  bool operator==(const PlacedRoute&) const = default;
};

struct PlacedRule {
  IpPrefix src;  // one data address, full length
  unsigned table = 0;
  unsigned priority = 0;
  bool operator==(const PlacedRule&) const = default;
};

struct DataPlaneState {
  std::vector<PlacedAddress> addresses;
  std::vector<PlacedRoute> routes;
  std::vector<PlacedRule> rules;
  bool operator==(const DataPlaneState&) const = default;
};

// A released shared address kept in the kernel while the services on it stop (the
// systemd hook: the release waits for them): on `holder`, where it was, as if held.
struct KeptAddress {
  std::string group;
  IpPrefix prefix;
  std::string holder;
  bool operator==(const KeptAddress&) const = default;
};

// For every group: each member's test addresses on it; each data address and each held
// shared address on its holder; a "from <address>" rule into the
// holder's table (routing_table_base + ifindex) so outbound traffic sourced from a
// data address leaves through the member that holds it; in that table the address's
// subnet and the group's routes via the holder; and the group's routes in the main
// table via the holder of the group's first data address of the route's family.
// `kept` addresses are placed too, while the Engine has them released.
DataPlaneState desired_dataplane(const std::vector<Group>& groups, const Config& config,
                                 const std::vector<KeptAddress>& kept = {});

unsigned member_table(const Config& config, unsigned ifindex);

// The same kernel object: an address by interface and prefix, a route by table,
// destination, gateway and interface, a rule by all its fields (interface names do not
// count: the kernel knows interfaces by index).
bool same_object(const PlacedAddress& a, const PlacedAddress& b);
bool same_object(const PlacedRoute& a, const PlacedRoute& b);
bool same_object(const PlacedRule& a, const PlacedRule& b);

// What of `applied` is no longer in `present` (what a kernel dump found): objects
// removed behind mpathd's back, for instance routes the kernel flushed without a
// notification when an interface lost its last IPv4 address.
DataPlaneState vanished(const DataPlaneState& applied, const DataPlaneState& present);

// For logs and for RestoreBackoff keys: "198.18.1.10/24 on m1",
// "0.0.0.0/0 via 198.18.1.1 dev m1 table 254", "from 198.18.1.10/32 lookup 40003".
std::string describe(const PlacedAddress& a);
std::string describe(const PlacedRoute& r);
std::string describe(const PlacedRule& r);

// Bounds how often an object that keeps disappearing, or that the kernel refuses, is
// put back, so that mpathd neither fights another program that removes it nor retries
// a refused one on every event. The first kFree strikes are retried at once; after
// that each waits twice as long as the one before (kFirstDelay, doubled, at most
// kMaxDelay). An object that stays in place for kWindow after it may be restored again
// starts afresh; so do the objects of an interface that came up (forgive()).
class RestoreBackoff {
 public:
  static constexpr unsigned kFree = 3;
  static constexpr Duration kWindow = std::chrono::seconds(60);
  static constexpr Duration kFirstDelay = std::chrono::seconds(1);
  static constexpr Duration kMaxDelay = std::chrono::seconds(60);

  // `key` disappeared (or could not be restored) at `now`; returns when it may be
  // restored (now, or later). `ifindex` is the interface it belongs to, 0 for none.
  TimePoint vanished(const std::string& key, TimePoint now, unsigned ifindex = 0);
  // Forgets the strikes of every object of interface `ifindex` (not 0).
  void forgive(unsigned ifindex);
  // How many times in a row `key` disappeared (0 when unknown or forgiven).
  unsigned count(const std::string& key) const;
  // True when `key` may be restored at `now`.
  bool ready(const std::string& key, TimePoint now) const;
  // The earliest time after `now` at which a held object may be restored.
  std::optional<TimePoint> next(TimePoint now) const;

 private:
  struct Entry {
    unsigned strikes = 0;  // disappearances, each less than kWindow after the last restore
    TimePoint not_before{};
    unsigned ifindex = 0;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace mpathd
