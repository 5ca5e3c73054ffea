// Carries out the Engine's shared-address decisions on the kernel (DESIGN.md §5),
// through the lib/cluster seam (Registry, Actions):
//   release:  Actions::block → stop hooks (the systemd hook's StopUnit jobs; while they
//             run the release is pending: the address stays in the kernel, new packets
//             dropped, the loop goes on) → Actions::destroy_sockets → the address is
//             removed (the data plane's reconcile) → Actions::unblock
//   takeover: the address is added on its holder and announced (the data plane's
//             reconcile, IPv6 without DAD, GARP / unsolicited NA like data addresses) →
//             Registry::track → Actions::tickle(Registry::associations(address)) →
//             start hooks (StartUnit/RestartUnit jobs; nothing waits for them)
// A release caused by a whole-group failure (release-shared-on-failure) issues the
// stops but does not wait for them: no member can carry the address any more
// (docs/design-decisions.md).
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
#include "core/dataplane.hpp"
#include "core/engine.hpp"

namespace mpathd {

class SharedAddresses {
 public:
  // Both must be non-null; they are the real lib/cluster objects in the daemon and
  // recording fakes in the unit tests.
  SharedAddresses(std::unique_ptr<cluster::Registry> registry, std::unique_ptr<cluster::Actions> actions);

  // The systemd hook (issue 11) plugs in here. stop_hooks: called after block on every
  // release; returns true when it calls `done` later (from the loop) once the services
  // on the address stopped, and the release waits for it; false: nothing to wait for.
  // start_hooks: called once a taken-over address is in place. changed: a pending
  // release went on (the daemon reconciles: the address leaves the kernel).
  std::function<bool(const std::string& group, const IpAddress& address, std::function<void()> done)> stop_hooks;
  std::function<void(const std::string& group, const IpAddress& address)> start_hooks;
  std::function<void()> changed;

  // Released addresses still in the kernel while their stop hooks run.
  std::vector<KeptAddress> kept() const;
  bool pending(const IpAddress& address) const;
  // How many releases have begun so far; f() once no release begun after the first
  // `since` of them is pending (now, if none is): a D-Bus release answers when done,
  // other commands are not held up by releases they did not start.
  std::uint64_t releases_begun() const { return next_token_; }
  void when_released(std::uint64_t since, std::function<void()> f);

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
  // Sends what is due now instead of at the batch timer (tests).
  void replicator_flush() {
    if (replicator_) replicator_->flush_now();
  }

  // "ebpf" or "sock-diag", and why eBPF is not in force ("" when it is).
  std::string level() const;
  std::string level_reason() const { return registry_->level_reason(); }

 private:
  std::unique_ptr<cluster::Registry> registry_;
  std::unique_ptr<cluster::Actions> actions_;
  // The rest of a release: sockets destroyed, the address left to the next reconcile.
  void finish_release(const IpAddress& a);
  struct Pending {
    KeptAddress kept;
    std::uint64_t token = 0;  // a `done` of an earlier, cut short, release does nothing
  };
  std::vector<Pending> pending_;
  std::uint64_t next_token_ = 0;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> when_released_;
  void answer_waiters();
  std::vector<IpAddress> unblock_;  // released: the drop is lifted once the address is gone
  std::vector<std::pair<IpAddress, std::string>> tickle_;  // taken over (with its group): tickled once in place
  std::vector<IpAddress> tracked_;
  std::unique_ptr<cluster::Replicator> replicator_;  // after registry_: destroyed first
};

}  // namespace mpathd
