// Internal to lib/cluster: the registry implementations.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "cluster/cluster.hpp"
#include "cluster/registry_store.hpp"
#include "net/sock_diag.hpp"

namespace mpathd::cluster::detail {

class DiagRegistry : public Registry {
 public:
  DiagRegistry(sd_event* event, RegistryOptions opts, Registry::Changed changed, std::string reason,
               Registry::SocketsChanged sockets = nullptr);
  ~DiagRegistry() override;

  RegistryLevel level() const override { return RegistryLevel::sock_diag; }
  std::string level_reason() const override { return reason_; }
  void track(const std::vector<IpAddress>& held) override;
  std::vector<Association> associations(const IpAddress& shared) const override {
    return store_.associations(shared);
  }
  Result<std::size_t> import(const IpAddress& shared, std::vector<Association> entries) override;

  // The last kernel error of a walk or of the destroy monitor ("" if none), for logs.
  const std::string& last_error() const { return last_error_; }
  void walk(const IpAddress& shared);
  void walk_all();

 protected:
  // Hooks for the eBPF level.
  virtual bool periodic_walks() const { return true; }
  // The eBPF level learns UDP clients a walk cannot see (unconnected sockets): a walk
  // then adds to them instead of replacing them.
  virtual bool walk_keeps_udp() const { return false; }
  virtual void tracked(const IpAddress&) {}
  virtual void untracked(const IpAddress&) {}
  // A bound socket was learned (present) or forgotten: the eBPF level keeps its cookie
  // in the kernel so that the socket's last close is reported.
  virtual void bound_changed(const BoundSocket&, bool /*present*/) {}
  sd_event* event() const { return event_; }
  Store& store() { return store_; }
  // The bound sockets (by cookie) and the events that change them; report_bound()
  // keeps `bound_` and reports, in order.
  const std::map<std::uint64_t, BoundSocket>& bound() const { return bound_; }
  void report_bound(SocketEvent ev, const BoundSocket& b);
  // Every bound socket of `shared` replaced by `now` (a walk), or forgotten (now empty).
  void replace_bound(const IpAddress& shared, const std::map<std::uint64_t, BoundSocket>& now);

 private:
  static int on_timer(sd_event_source* s, std::uint64_t usec, void* user);
  void on_destroyed(const net::DiagSocket& s);

  sd_event* event_;
  RegistryOptions opts_;
  Store store_;
  std::string reason_;
  std::string last_error_;
  Registry::SocketsChanged sockets_;
  std::map<std::uint64_t, BoundSocket> bound_;
  std::unique_ptr<net::DestroyMonitor> destroy_monitor_;
  sd_event_source* timer_ = nullptr;
};

// The eBPF level, or nullptr with `reason` set to why it cannot be used.
std::unique_ptr<Registry> create_ebpf_registry(sd_event* event, const RegistryOptions& opts,
                                               const Registry::Changed& changed,
                                               const Registry::SocketsChanged& sockets, std::string& reason);

}  // namespace mpathd::cluster::detail
