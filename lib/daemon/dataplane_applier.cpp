#include "daemon/dataplane_applier.hpp"

#include <spdlog/spdlog.h>

#include "daemon/log.hpp"

#include <algorithm>

#include "daemon/notifier.hpp"

namespace mpathd {

namespace {

net::Route to_net(const PlacedRoute& r) {
  net::Route n;
  n.dst = r.dst;
  n.gateway = r.gateway;
  n.ifindex = r.ifindex;
  n.table = r.table;
  n.protocol = kRouteProtocol;
  n.onlink = r.gateway.has_value();
  return n;
}

net::Rule to_net(const PlacedRule& r) { return {r.src.addr.family, r.src, r.table, r.priority}; }

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The back-off's key: the object as the kernel knows it (by interface index).
template <typename T>
std::string key(T object) {
  if constexpr (requires { object.ifname; }) object.ifname = "#" + std::to_string(object.ifindex);
  return describe(object);
}

template <typename T>
unsigned ifindex_of(const T& object) {
  if constexpr (requires { object.ifindex; })
    return object.ifindex;
  else
    return 0;
}

// Kernel objects as placed ones, without interface names (a dump can be long: only
// what is kept gets named()).
PlacedRoute placed(const net::Route& r) { return {r.table, r.dst, r.gateway, "", r.ifindex}; }
PlacedRule placed(const net::Rule& r) { return {r.src, r.table, r.priority}; }
PlacedAddress placed(const net::AddrInfo& a) { return {"", a.ifindex, a.prefix}; }

template <typename T>
T named(T object) {
  object.ifname = net::ifname_or_index(object.ifindex);
  return object;
}

// Appends the objects of a kernel dump; false (and a warning) if the dump failed.
template <typename T, typename Dump>
bool collect(std::vector<T>& out, const Dump& dump) {
  if (!dump) {
    spdlog::warn("{}", dump.error().message);
    return false;
  }
  for (const auto& x : *dump) out.push_back(placed(x));
  return true;
}

log::Fields address_fields(const PlacedAddress& a) { return log::address_fields(a.ifname, a.prefix.addr.str()); }
}  // namespace

DataPlaneApplier::DataPlaneApplier(net::Kernel& kernel, net::PacketSender& packets, sd_event* event,
                                   const Config& config, const TimeSource& clock)
    : kernel_(kernel),
      packets_(packets),
      config_(config),
      clock_(clock),
      notifier_(std::make_unique<Notifier>(packets, event, config)) {}

DataPlaneApplier::~DataPlaneApplier() = default;

bool DataPlaneApplier::is_data_address(const IpAddress& a) const {
  for (const auto& g : config_.groups) {
    for (const auto& p : g.data_addresses)
      if (p.addr == a) return true;
    for (const auto& p : g.shared_addresses)  // held ones are placed like data addresses
      if (p.addr == a) return true;
    for (const auto& m : g.members)
      for (const auto& t : m.test_addresses)
        if (t.addr == a) return true;
  }
  return false;
}

void DataPlaneApplier::observe_address(unsigned ifindex, const IpPrefix& prefix, bool present) {
  if (!is_data_address(prefix.addr)) return;
  // The kernel reports an IPv6 address (and installs its local route) from its DAD
  // work, after the add returned: an answer to a solicitation sent before is dropped.
  // The moved address is local now: solicit its gateways again (solicit_gateways).
  if (auto it = std::find_if(solicit_.begin(), solicit_.end(),
                             [&](const Solicit& p) { return p.ifindex == ifindex && p.source == prefix.addr; });
      it != solicit_.end()) {
    if (present) send_solicitations(*it);
    solicit_.erase(it);
  }
  const PlacedAddress seen = placed(net::AddrInfo{ifindex, prefix});
  if (!present)
    forget(applied_.addresses, seen);
  else if (std::none_of(applied_.addresses.begin(), applied_.addresses.end(),
                        [&](const PlacedAddress& a) { return same_object(a, seen); }))
    applied_.addresses.push_back(named(seen));
}

template <typename T>
void DataPlaneApplier::lost(const T& object) {
  const auto now = clock_.now();
  const auto when = backoff_.vanished(key(object), now, ifindex_of(object));
  if (when <= now)
    spdlog::warn("{} disappeared; restoring it", describe(object));
  else
    spdlog::warn("{} disappeared again ({} times in a row); restoring it in {}", describe(object),
                 backoff_.count(key(object)), format_duration(when - now));
}

template <typename T>
void DataPlaneApplier::hold_back(const T& object) {
  backoff_.vanished(key(object), clock_.now(), ifindex_of(object));
}

template <typename T>
bool DataPlaneApplier::may_restore(const T& object) const {
  return backoff_.ready(key(object), clock_.now());
}

std::optional<TimePoint> DataPlaneApplier::next_retry() const { return backoff_.next(clock_.now()); }

template <typename T>
bool DataPlaneApplier::forget(std::vector<T>& applied, const T& gone) {
  auto it = std::find_if(applied.begin(), applied.end(), [&](const T& a) { return same_object(a, gone); });
  if (it == applied.end()) return false;
  lost(*it);
  applied.erase(it);
  return true;
}

bool DataPlaneApplier::forget_route(const net::Route& route) { return forget(applied_.routes, placed(route)); }

bool DataPlaneApplier::forget_rule(const net::Rule& rule) { return forget(applied_.rules, placed(rule)); }

std::size_t DataPlaneApplier::audit() {
  DataPlaneState kernel;
  bool addresses_ok = collect(kernel.addresses, kernel_.dump_addresses());
  bool rules_ok = true, routes_ok = true;
  for (Family f : {Family::v4, Family::v6}) {
    rules_ok = collect(kernel.rules, kernel_.dump_rules(f)) && rules_ok;
    routes_ok = collect(kernel.routes, kernel_.dump_routes(f)) && routes_ok;
  }
  // A kind whose dump failed counts as all there.
  if (!addresses_ok) kernel.addresses = applied_.addresses;
  if (!rules_ok) kernel.rules = applied_.rules;
  if (!routes_ok) kernel.routes = applied_.routes;

  const DataPlaneState gone = vanished(applied_, kernel);
  for (const auto& a : gone.addresses) forget(applied_.addresses, a);
  for (const auto& r : gone.routes) forget(applied_.routes, r);
  for (const auto& r : gone.rules) forget(applied_.rules, r);
  return gone.addresses.size() + gone.routes.size() + gone.rules.size();
}

void DataPlaneApplier::start(const Engine& engine) {
  // Rules at our priority pointing into our table range, and routes we installed
  // (our protocol) in the main table and the members' tables, are ours.
  std::vector<unsigned> tables{kMainTable};
  for (const auto& g : engine.groups())
    for (const auto& m : g.members)
      if (m.ifindex) tables.push_back(member_table(config_, m.ifindex));
  std::sort(tables.begin(), tables.end());
  for (Family f : {Family::v4, Family::v6}) {
    if (auto rules = kernel_.dump_rules(f)) {
      for (const auto& r : *rules)
        if (r.priority == config_.rule_priority && r.table >= config_.routing_table_base)
          applied_.rules.push_back(placed(r));
    } else {
      spdlog::warn("{}", rules.error().message);
    }
    // One dump of every table (not one per member table: at 256 members that was
    // 514 dumps of the whole table set and most of the start-up time).
    auto routes = kernel_.dump_routes(f);
    if (!routes) {
      spdlog::warn("{}", routes.error().message);
      continue;
    }
    for (const auto& r : *routes)
      if (r.protocol == kRouteProtocol && std::binary_search(tables.begin(), tables.end(), r.table))
        applied_.routes.push_back(named(placed(r)));
  }
}

std::size_t DataPlaneApplier::reconcile(const Engine& engine, const std::vector<KeptAddress>& kept) {
  const DataPlaneState want = desired_dataplane(engine.groups(), config_, kept);
  std::size_t changes = 0;

  // Addresses: exactly one instance, on the holder. The new instance first and its
  // first notification right after it; the old one (on the failed member, mostly) is
  // deleted after that, with the instances no longer wanted at all: one netlink round
  // trip (and one hold of the kernel's RTNL lock) less before the GARP. The kernel
  // takes one address on two interfaces, and both instances exist only between two
  // requests of this loop (a restart in between deletes the stale one the same way).
  for (const auto& d : want.addresses) {
    if (contains(applied_.addresses, d)) continue;
    if (!may_restore(d)) continue;  // it keeps disappearing: wait (next_retry())
    auto r = kernel_.add_address(d.ifindex, d.prefix, true);
    if (!r && r.error().code != Errc::exists) {
      hold_back(d);
      const auto& why = r.error().message;  // "add ADDRESS on MEMBER: reason"
      auto [it, fresh] = refused_.try_emplace(d.prefix.addr, why);
      if (fresh || it->second != why) {
        it->second = why;
        log::write(spdlog::level::err, address_fields(d), "the kernel refused an address: {}; it is down until placed again",
                   why);
      }
      continue;
    }
    ++changes;
    applied_.addresses.push_back(d);
    if (const Member* m = engine.find_member(d.ifname)) {
      notifier_->announce(d.ifindex, m->mac, d.prefix.addr);
      if (!d.prefix.addr.is_v4()) solicit_gateways(*m, d, want);
    }
    if (refused_.erase(d.prefix.addr) > 0) spdlog::info("{} is now on {}", d.prefix.str(), d.ifname);
  }
  std::erase_if(refused_, [&](const auto& e) {  // no longer wanted anywhere
    return std::none_of(want.addresses.begin(), want.addresses.end(),
                        [&](const PlacedAddress& d) { return d.prefix.addr == e.first; });
  });
  for (auto it = applied_.addresses.begin(); it != applied_.addresses.end();) {
    if (contains(want.addresses, *it)) {
      ++it;
      continue;
    }
    if (auto r = kernel_.del_address(it->ifindex, it->prefix); !r)
      log::write(spdlog::level::err, address_fields(*it), "{}", r.error().message);
    // No longer ours to announce, unless it moved (its notifications are the new ones).
    const IpAddress addr = it->prefix.addr;
    if (std::none_of(want.addresses.begin(), want.addresses.end(),
                     [&](const PlacedAddress& d) { return d.prefix.addr == addr; }))
      notifier_->cancel(addr);
    ++changes;
    it = applied_.addresses.erase(it);
  }

  // Rules and routes: add what is missing, then remove what is stale (a replaced
  // route with the same key is already gone; deleting it again is harmless). Only
  // what succeeded counts as applied: a failed add is tried again next time, or
  // after the back-off once it keeps failing.
  std::vector<PlacedRule> rules;
  for (const auto& r : want.rules) {
    if (!contains(applied_.rules, r)) {
      if (!may_restore(r)) continue;
      ++changes;
      if (auto res = kernel_.add_rule(to_net(r)); !res) {
        spdlog::error("{}", res.error().message);
        hold_back(r);
        continue;
      }
    }
    rules.push_back(r);
  }
  std::vector<PlacedRoute> routes;
  for (const auto& r : want.routes) {
    if (!contains(applied_.routes, r)) {
      if (!may_restore(r)) continue;
      ++changes;
      if (auto res = kernel_.replace_route(to_net(r)); !res) {
        spdlog::error("route {}: {}", describe(r), res.error().message);
        hold_back(r);
        continue;
      }
    }
    routes.push_back(r);
  }
  for (const auto& r : applied_.rules)
    if (!contains(want.rules, r)) {
      if (auto res = kernel_.del_rule(to_net(r)); !res) spdlog::error("{}", res.error().message);
      ++changes;
    }
  for (const auto& r : applied_.routes)
    if (!contains(want.routes, r)) {
      if (auto res = kernel_.del_route(to_net(r)); !res) spdlog::error("{}", res.error().message);
      ++changes;
    }
  applied_.rules = std::move(rules);
  applied_.routes = std::move(routes);
  return changes;
}

// The kernel's neighbour entry for an IPv6 gateway on a member can sit INCOMPLETE with
// no solicitation sent: it was created while the member's link-local address was still
// in DAD (ndisc_send_ns() then sends nothing), and the next try is the retransmit timer,
// up to 1 s later. Traffic of a data address moved there waited for it (270-410 ms
// outages, bench/failover.py). A solicitation of our own from the moved address draws
// the gateway's answer, which completes such an entry at once; without one waiting, the
// answer is ignored and the kernel resolves as usual. Sent right after the address's
// NA, before the rest of the reconcile (rules, routes, the old instance's delete), so
// that the replies of a moved IPv6 address wait as little as IPv4's do for ARP. See
// docs/design-decisions.md.
void DataPlaneApplier::solicit_gateways(const Member& m, const PlacedAddress& d, const DataPlaneState& want) {
  Solicit p{d.ifindex, m.mac, d.prefix.addr, {}};
  for (const auto& r : want.routes)
    if (r.ifindex == d.ifindex && r.gateway && !r.gateway->is_v4() &&
        std::find(p.gateways.begin(), p.gateways.end(), *r.gateway) == p.gateways.end())
      p.gateways.push_back(*r.gateway);
  if (p.gateways.empty()) return;
  send_solicitations(p);  // now, and once more when the kernel reports the address
  std::erase_if(solicit_, [&](const Solicit& o) { return o.source == p.source; });
  solicit_.push_back(std::move(p));
}

void DataPlaneApplier::send_solicitations(const Solicit& p) {
  for (const auto& gw : p.gateways)
    if (auto r = packets_.send_neighbor_solicitation(p.ifindex, p.mac, p.source, gw); !r)
      spdlog::warn("{}", r.error().message);
}

}  // namespace mpathd

namespace mpathd {
std::optional<Notifier::FirstSent> DataPlaneApplier::take_first_announcement() { return notifier_->take_first_sent(); }
}  // namespace mpathd
