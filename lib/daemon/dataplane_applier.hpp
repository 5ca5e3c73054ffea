// Keeps the kernel in line with the Engine's placement: diffs the desired data plane
// (core/dataplane.hpp) against what it last applied and performs only the difference,
// then announces moved addresses to the neighbours.
#pragma once

#include <systemd/sd-event.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dataplane.hpp"
#include "core/engine.hpp"
#include "net/kernel.hpp"
#include "net/packet.hpp"

namespace mpathd {

class Notifier;

class DataPlaneApplier {
 public:
  DataPlaneApplier(net::Kernel& kernel, net::PacketSender& packets, sd_event* event, const Config& config);
  ~DataPlaneApplier();

  // A kernel address event. Before start() this seeds what is already applied (so
  // addresses in place are adopted, not re-added); afterwards an applied data address
  // that someone else removed is noticed and restored by the next reconcile().
  void observe_address(unsigned ifindex, const IpPrefix& prefix, bool present);
  // A route of ours that the kernel deleted (it flushes routes through an interface
  // that goes down): forgotten, so that the next reconcile() puts it back. True if it
  // was one we had applied.
  bool forget_route(const net::Route& route);
  // Learns the rules and routes a previous run left, so stale ones get removed.
  void start(const Engine& engine);
  // Applies the difference; returns the number of kernel changes made.
  std::size_t reconcile(const Engine& engine);

  const DataPlaneState& applied() const { return applied_; }
  // Addresses the kernel refused to add on the member they were placed on, with the
  // kernel's error ("add 2001:db8::10/64 on m0: Permission denied"). Each reconcile() tries
  // them again; the error is logged once, when it first happens or changes.
  const std::map<IpAddress, std::string>& refused() const { return refused_; }

 private:
  bool is_data_address(const IpAddress& a) const;

  net::Kernel& kernel_;
  const Config& config_;
  DataPlaneState applied_;
  std::map<IpAddress, std::string> refused_;
  std::unique_ptr<Notifier> notifier_;
};

}  // namespace mpathd
