#include "daemon/shared_addresses.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cluster/association_json.hpp"

namespace mpathd {

SharedAddresses::SharedAddresses(std::unique_ptr<cluster::Registry> registry, std::unique_ptr<cluster::Actions> actions)
    : registry_(std::move(registry)), actions_(std::move(actions)) {}

std::string SharedAddresses::level() const {
  return registry_->level() == cluster::RegistryLevel::ebpf ? "ebpf" : "sock-diag";
}

void SharedAddresses::on_event(const Event& e) {
  const auto* c = std::get_if<SharedAddressChanged>(&e);
  if (!c || c->before == c->after) return;  // a move inside the group is the data plane's
  const IpAddress& a = c->address.addr;
  if (c->after == SharedState::released) {
    // 1. No new connections from here on.
    if (auto r = actions_->block(a); !r) spdlog::error("release {}: cannot block new packets: {}", a.str(), r.error().message);
    // The registry's changes still waiting for the replication batch go out now, while
    // the sockets are there: the node taking over must know every client.
    if (replicator_) replicator_->releasing(a);
    // 2. The services on the address are stopped (seed 003's stop_net). A planned
    //    release waits for them, the address kept in place meanwhile; after a whole-group
    //    failure the address is useless: the stops are issued, nothing waits.
    std::erase_if(tickle_, [&](const auto& t) { return t.first == a; });
    std::erase_if(pending_, [&](const Pending& p) { return p.kept.prefix.addr == a; });
    const bool wait = c->reason != Reason::group_failure;
    const std::uint64_t token = ++next_token_;
    const bool waiting = stop_hooks && stop_hooks(c->group, a, [this, a, token, wait] {
                           auto it = std::find_if(pending_.begin(), pending_.end(),
                                                  [&](const Pending& p) { return p.token == token; });
                           if (!wait || it == pending_.end()) return;  // not waited for, or cut short
                           spdlog::info("release {}: the services on it stopped", a.str());
                           pending_.erase(it);
                           finish_release(a);
                           if (changed) changed();
                         });
    if (waiting && wait) {
      spdlog::info("release {}: new packets dropped; waiting for the services on it to stop", a.str());
      pending_.push_back({KeptAddress{c->group, c->address, c->from}, token});
      return;
    }
    finish_release(a);
  } else if (c->before == SharedState::released && c->reason != Reason::startup && c->reason != Reason::adopted) {
    // Taken over (a restart that finds it held changes nothing on the wire). One still
    // waiting for its stops is released at once first: its sockets go, the drop goes.
    if (std::erase_if(pending_, [&](const Pending& p) { return p.kept.prefix.addr == a; }) > 0) {
      spdlog::info("release {}: taken over again before the services on it stopped", a.str());
      finish_release(a);
      if (auto r = actions_->unblock(a); !r) spdlog::error("release {}: cannot lift the drop: {}", a.str(), r.error().message);
    }
    std::erase(unblock_, a);
    std::erase_if(tickle_, [&](const auto& t) { return t.first == a; });
    tickle_.emplace_back(a, c->group);
  }
}

void SharedAddresses::finish_release(const IpAddress& a) {
  // 3. Every socket on the address: peers see a reset, local sockets ECONNABORTED.
  if (auto n = actions_->destroy_sockets(a); !n)
    spdlog::error("release {}: cannot destroy its sockets: {}", a.str(), n.error().message);
  else
    spdlog::info("release {}: new packets dropped, {} socket(s) destroyed", a.str(), *n);
  // 4. The address leaves the kernel in the reconcile that follows; 5. after_reconcile().
  if (std::find(unblock_.begin(), unblock_.end(), a) == unblock_.end()) unblock_.push_back(a);
  answer_waiters();
}

void SharedAddresses::answer_waiters() {
  std::vector<std::function<void()>> ready;
  std::erase_if(when_released_, [&](auto& w) {
    if (std::any_of(pending_.begin(), pending_.end(), [&](const Pending& p) { return p.token > w.first; })) return false;
    ready.push_back(std::move(w.second));
    return true;
  });
  for (auto& f : ready) f();
}

std::vector<KeptAddress> SharedAddresses::kept() const {
  std::vector<KeptAddress> out;
  for (const auto& p : pending_) out.push_back(p.kept);
  return out;
}

bool SharedAddresses::pending(const IpAddress& address) const {
  return std::any_of(pending_.begin(), pending_.end(), [&](const Pending& p) { return p.kept.prefix.addr == address; });
}

void SharedAddresses::when_released(std::uint64_t since, std::function<void()> f) {
  when_released_.emplace_back(since, std::move(f));
  answer_waiters();
}

void SharedAddresses::after_reconcile(const Engine& engine) {
  for (const auto& a : std::exchange(unblock_, {}))
    if (auto r = actions_->unblock(a); !r)
      spdlog::error("release {}: cannot lift the drop: {}", a.str(), r.error().message);
  std::vector<IpAddress> held;
  for (const auto& g : engine.groups())
    for (const auto& s : g.shared)
      if (s.state != SharedState::released) held.push_back(s.prefix.addr);
  if (held != tracked_) {
    registry_->track(held);
    tracked_ = held;
    if (replicator_) replicator_->set_held(held);
  }
  for (const auto& [a, group] : std::exchange(tickle_, {})) {
    const auto known = registry_->associations(a);
    if (auto n = actions_->tickle(a, known); !n)
      spdlog::error("takeover {}: cannot tickle its clients: {}", a.str(), n.error().message);
    else
      spdlog::info("takeover {}: {} TCP client(s) tickled of {} known association(s)", a.str(), *n, known.size());
    // The old holder's tables have served: dropped here and, announced, on every node.
    if (replicator_) replicator_->taken_over(a);
    // The services on it start (seed 003's start_net), with the address in place.
    if (start_hooks) start_hooks(group, a);
  }
}

Result<std::string> SharedAddresses::export_json(const IpAddress& address) const {
  return cluster::associations_to_json(registry_->associations(address)).dump();
}

Result<std::size_t> SharedAddresses::import_json(const IpAddress& address, std::string_view text) {
  auto entries = cluster::associations_from_json_text(text);
  if (!entries) return std::unexpected(entries.error());
  auto n = replicator_ ? replicator_->import_manual(address, std::move(*entries))
                      : registry_->import(address, std::move(*entries));
  if (n) spdlog::info("{}: {} association(s) imported", address.str(), *n);
  return n;
}

void SharedAddresses::start_replication(sd_event* event, cluster::ReplicationOptions opts,
                                        std::unique_ptr<cluster::GroupTransport> transport, std::string off_reason,
                                        std::function<void(bool now)> status_changed) {
  cluster::Replicator::Hooks hooks;
  hooks.local = [this](const IpAddress& a) { return registry_->associations(a); };
  hooks.imported = [this](const IpAddress& a, std::vector<cluster::Association> entries) {
    if (auto r = registry_->import(a, std::move(entries)); !r)
      spdlog::warn("association replication: {}: {}", a.str(), r.error().message);
  };
  hooks.status_changed = std::move(status_changed);
  replicator_ = std::make_unique<cluster::Replicator>(event, std::move(opts), std::move(transport), std::move(hooks),
                                                      std::move(off_reason));
  replicator_->set_held(tracked_);
}

void SharedAddresses::association_changed(const IpAddress& address, const cluster::Association& a) {
  if (replicator_ && !a.imported) replicator_->local_changed(address);
}

cluster::ReplicationStatus SharedAddresses::replication_status() const {
  if (replicator_) return replicator_->status();
  cluster::ReplicationStatus s;
  s.state = "off";
  s.reason = "not started";
  return s;
}

}  // namespace mpathd
