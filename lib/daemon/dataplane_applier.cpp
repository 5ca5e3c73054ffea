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

std::string route_str(const PlacedRoute& r) {
  return r.dst.str() + (r.gateway ? " via " + r.gateway->str() : std::string()) + " dev " + r.ifname +
         " table " + std::to_string(r.table);
}

log::Fields address_fields(const PlacedAddress& a) { return log::address_fields(a.ifname, a.prefix.addr.str()); }
}  // namespace

DataPlaneApplier::DataPlaneApplier(net::Kernel& kernel, net::PacketSender& packets, sd_event* event,
                                   const Config& config)
    : kernel_(kernel), config_(config), notifier_(std::make_unique<Notifier>(packets, event, config)) {}

DataPlaneApplier::~DataPlaneApplier() = default;

bool DataPlaneApplier::is_data_address(const IpAddress& a) const {
  for (const auto& g : config_.groups) {
    for (const auto& p : g.data_addresses)
      if (p.addr == a) return true;
    for (const auto& m : g.members)
      for (const auto& t : m.test_addresses)
        if (t.addr == a) return true;
  }
  return false;
}

void DataPlaneApplier::observe_address(unsigned ifindex, const IpPrefix& prefix, bool present) {
  if (!is_data_address(prefix.addr)) return;
  auto same = [&](const PlacedAddress& a) { return a.ifindex == ifindex && a.prefix == prefix; };
  auto it = std::find_if(applied_.addresses.begin(), applied_.addresses.end(), same);
  if (present && it == applied_.addresses.end()) {
    applied_.addresses.push_back({net::ifname_or_index(ifindex), ifindex, prefix});
  } else if (!present && it != applied_.addresses.end()) {
    log::write(spdlog::level::warn, address_fields(*it), "data address {} disappeared from {}; it will be restored",
               prefix.str(), it->ifname);
    applied_.addresses.erase(it);
  }
}

bool DataPlaneApplier::forget_route(const net::Route& route) {
  auto same = [&](const PlacedRoute& r) {
    return r.table == route.table && r.dst == route.dst && r.gateway == route.gateway && r.ifindex == route.ifindex;
  };
  return std::erase_if(applied_.routes, same) > 0;
}

void DataPlaneApplier::start(const Engine& engine) {
  // Rules at our priority pointing into our table range, and routes we installed
  // (our protocol) in the main table and the members' tables, are ours.
  std::vector<unsigned> tables{kMainTable};
  for (const auto& g : engine.groups())
    for (const auto& m : g.members)
      if (m.ifindex) tables.push_back(member_table(config_, m.ifindex));
  for (Family f : {Family::v4, Family::v6}) {
    if (auto rules = kernel_.dump_rules(f)) {
      for (const auto& r : *rules)
        if (r.priority == config_.rule_priority && r.table >= config_.routing_table_base)
          applied_.rules.push_back({r.src, r.table, r.priority});
    } else {
      spdlog::warn("{}", rules.error().message);
    }
    for (unsigned t : tables) {
      auto routes = kernel_.dump_routes(f, t);
      if (!routes) {
        spdlog::warn("{}", routes.error().message);
        continue;
      }
      for (const auto& r : *routes)
        if (r.protocol == kRouteProtocol)
          applied_.routes.push_back({r.table, r.dst, r.gateway, net::ifname_or_index(r.ifindex), r.ifindex});
    }
  }
}

std::size_t DataPlaneApplier::reconcile(const Engine& engine) {
  const DataPlaneState want = desired_dataplane(engine.groups(), config_);
  std::size_t changes = 0;
  std::vector<PlacedAddress> moved;

  // Addresses: exactly one instance, on the holder. Delete elsewhere first, then add.
  for (const auto& d : want.addresses) {
    if (contains(applied_.addresses, d)) continue;
    for (auto it = applied_.addresses.begin(); it != applied_.addresses.end();) {
      if (it->prefix.addr != d.prefix.addr) {
        ++it;
        continue;
      }
      if (auto r = kernel_.del_address(it->ifindex, it->prefix); !r)
        log::write(spdlog::level::err, address_fields(*it), "{}", r.error().message);
      ++changes;
      it = applied_.addresses.erase(it);
    }
    auto r = kernel_.add_address(d.ifindex, d.prefix, true);
    if (!r && r.error().code != Errc::exists) {
      log::write(spdlog::level::err, address_fields(d), "{}", r.error().message);
      continue;
    }
    ++changes;
    applied_.addresses.push_back(d);
    moved.push_back(d);
  }
  for (auto it = applied_.addresses.begin(); it != applied_.addresses.end();) {
    if (contains(want.addresses, *it)) {
      ++it;
      continue;
    }
    if (auto r = kernel_.del_address(it->ifindex, it->prefix); !r)
      log::write(spdlog::level::err, address_fields(*it), "{}", r.error().message);
    notifier_->cancel(it->prefix.addr);  // it is no longer ours to announce
    ++changes;
    it = applied_.addresses.erase(it);
  }

  // Neighbours first: the first notification goes out right after the address moved.
  for (const auto& d : moved)
    if (const Member* m = engine.find_member(d.ifname)) notifier_->announce(d.ifindex, m->mac, d.prefix.addr);

  // Rules and routes: add what is missing, then remove what is stale (a replaced
  // route with the same key is already gone; deleting it again is harmless). Only
  // what succeeded counts as applied: a failed add is tried again next time.
  std::vector<PlacedRule> rules;
  for (const auto& r : want.rules) {
    if (!contains(applied_.rules, r)) {
      ++changes;
      if (auto res = kernel_.add_rule(to_net(r)); !res) {
        spdlog::error("{}", res.error().message);
        continue;
      }
    }
    rules.push_back(r);
  }
  std::vector<PlacedRoute> routes;
  for (const auto& r : want.routes) {
    if (!contains(applied_.routes, r)) {
      ++changes;
      if (auto res = kernel_.replace_route(to_net(r)); !res) {
        spdlog::error("route {}: {}", route_str(r), res.error().message);
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

}  // namespace mpathd
