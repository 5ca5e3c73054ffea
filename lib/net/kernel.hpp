// Synchronous rtnetlink operations: one request, one checked reply, errors as values
// naming the object ("add 198.18.1.10/24 on m1: File exists").
#pragma once

#include <memory>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"
#include "net/netlink.hpp"

namespace mpathd::net {

class Kernel {
 public:
  static Result<Kernel> open();
  Kernel(Kernel&&) noexcept;
  Kernel& operator=(Kernel&&) noexcept;
  ~Kernel();

  // Adds with NLM_F_EXCL (an existing address is Errc::exists). Lifetimes are forever;
  // nodad sets IFA_F_NODAD on IPv6.
  Result<void> add_address(unsigned ifindex, const IpPrefix& prefix, bool nodad);
  // An address (or link) that is already gone counts as success.
  Result<void> del_address(unsigned ifindex, const IpPrefix& prefix);

  // NLM_F_CREATE|NLM_F_REPLACE; scope link without a gateway, universe with one.
  Result<void> replace_route(const Route& route);
  // A route that is not there counts as success.
  Result<void> del_route(const Route& route);
  Result<std::vector<Route>> dump_routes(Family family, unsigned table);
  // Every table's.
  Result<std::vector<Route>> dump_routes(Family family);

  // An identical rule that already exists counts as success.
  Result<void> add_rule(const Rule& rule);
  // A rule that is not there counts as success.
  Result<void> del_rule(const Rule& rule);
  Result<std::vector<Rule>> dump_rules(Family family);

  Result<std::vector<LinkInfo>> dump_links();
  Result<std::vector<AddrInfo>> dump_addresses();

 private:
  struct State;
  explicit Kernel(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// The interface's name for messages, or "ifindex N" when it has none (any more).
std::string ifname_or_index(unsigned ifindex);

}  // namespace mpathd::net
