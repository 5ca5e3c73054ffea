// Carries out the Engine's shared-address decisions on the kernel (DESIGN.md §5),
// through the lib/cluster seam (Registry, Actions):
//   release:  Actions::block → [stop hooks] → Actions::destroy_sockets → the address is
//             removed (the data plane's reconcile) → Actions::unblock
//   takeover: the address is added on its holder and announced (the data plane's
//             reconcile, IPv6 without DAD, GARP / unsolicited NA like data addresses) →
//             Registry::track → Actions::tickle(Registry::associations(address))
// The daemon calls on_event() from its Engine listener (the Engine publishes inside the
// command, before the daemon reconciles) and after_reconcile() once the kernel is in
// line: so the steps before the removal run before it and the rest after it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster.hpp"
#include "cluster/replication.hpp"
#include "core/engine.hpp"

namespace mpathd {

class SharedAddresses {
 public:
  // Both must be non-null; they are the real lib/cluster objects in the daemon and
  // recording fakes in the unit tests.
  SharedAddresses(std::unique_ptr<cluster::Registry> registry, std::unique_ptr<cluster::Actions> actions);

  // The hook layer's stop hooks (issue 11) plug in here: called between block and
  // destroy_sockets of every release. Empty = none.
  std::function<void(const std::string& group, const IpPrefix& address)> stop_hooks;

  // The first steps of a release (block, stop hooks, destroy) happen here; a takeover
  // is noted for after_reconcile(). Other events are ignored.
  void on_event(const Event& e);
  // After the data plane was reconciled: lifts the drop of released addresses, keeps
  // the registry's tracked list equal to the held addresses, and tickles the clients of
  // addresses just taken over.
  void after_reconcile(const Engine& engine);

  // The hand-over API (D-Bus ExportAssociations / ImportAssociations): JSON text.
  Result<std::string> export_json(const IpAddress& address) const;
  Result<std::size_t> import_json(const IpAddress& address, std::string_view text);

  // Association replication (cluster/replication.hpp): the registry's local entries of
  // held addresses go to the group, received tables come back as imported entries.
  // transport == nullptr: off, with `off_reason`. Without this call: off as well.
  void start_replication(sd_event* event, cluster::ReplicationOptions opts,
                         std::unique_ptr<cluster::GroupTransport> transport, std::string off_reason,
                         std::function<void(bool now)> status_changed);
  // The registry's change callback passes every change here (only local ones matter).
  void association_changed(const IpAddress& address, const cluster::Association& a);
  cluster::ReplicationStatus replication_status() const;

  // "ebpf" or "sock-diag", and why eBPF is not in force ("" when it is).
  std::string level() const;
  std::string level_reason() const { return registry_->level_reason(); }

 private:
  std::unique_ptr<cluster::Registry> registry_;
  std::unique_ptr<cluster::Actions> actions_;
  std::vector<IpAddress> unblock_;  // released: the drop is lifted once the address is gone
  std::vector<IpAddress> tickle_;   // taken over: clients are tickled once it is in place
  std::vector<IpAddress> tracked_;
  std::unique_ptr<cluster::Replicator> replicator_;  // after registry_: destroyed first
};

}  // namespace mpathd
