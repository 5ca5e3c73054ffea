// The association registry at the sock_diag level: a walk of every tracked shared
// address (filtered in the kernel by local address) at track() and every walk_interval,
// diffed against the previous walk, and the kernel's socket-destroy notifications in
// between (a closed TCP connection leaves at once). The same walks give the sockets bound
// and listening on the address (bind/listen/unlisten/unbind by diff, keyed by the socket
// cookie; a close is reported at once from the destroy notification). The eBPF level
// (registry_ebpf.cpp) builds on it.
#include "cluster/registry_impl.hpp"

#include "cluster/monotonic.hpp"
#include "guard/guard.hpp"

namespace mpathd::cluster::detail {

DiagRegistry::DiagRegistry(sd_event* event, RegistryOptions opts, Registry::Changed changed,
                           std::string reason, Registry::SocketsChanged sockets)
    : event_(sd_event_ref(event)),
      opts_(std::move(opts)),
      store_(std::move(changed)),
      reason_(std::move(reason)),
      sockets_(std::move(sockets)) {
  if (opts_.walk_interval <= Duration::zero()) opts_.walk_interval = std::chrono::seconds(1);
  auto mon = net::DestroyMonitor::open(
      event_, {.destroyed = [this](const net::DiagSocket& s) { on_destroyed(s); },
               .overrun = [this] { walk_all(); }});
  if (mon)
    destroy_monitor_ = std::move(*mon);
  else
    last_error_ = mon.error().message;
  const std::uint64_t usec = static_cast<std::uint64_t>(opts_.walk_interval.count() / 1000);
  sd_event_add_time(event_, &timer_, CLOCK_MONOTONIC, monotonic_usec() + usec, usec / 10 + 1, &on_timer, this);
}

DiagRegistry::~DiagRegistry() {
  sd_event_source_disable_unref(timer_);
  destroy_monitor_.reset();
  sd_event_unref(event_);
}

int DiagRegistry::on_timer(sd_event_source* s, std::uint64_t, void* user) {
  auto* self = static_cast<DiagRegistry*>(user);
  return guard_void_callback("association registry walk", [self, s] {
    if (self->periodic_walks()) self->walk_all();
    sd_event_source_set_time(s, monotonic_usec() + static_cast<std::uint64_t>(self->opts_.walk_interval.count() / 1000));
    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
  });
}

void DiagRegistry::track(const std::vector<IpAddress>& held) {
  std::set<IpAddress> want(held.begin(), held.end());
  for (const auto& a : store_.tracked())
    if (!want.contains(a)) {
      store_.remove(a);
      replace_bound(a, {});
      untracked(a);
    }
  for (const auto& a : want)
    if (!store_.is_tracked(a)) {
      store_.add(a);
      tracked(a);
      walk(a);
    }
}

void DiagRegistry::walk_all() {
  for (const auto& a : store_.tracked()) walk(a);
}

void DiagRegistry::walk(const IpAddress& shared) {
  auto tcp = net::diag_dump(net::L4::tcp, shared);
  auto udp = net::diag_dump(net::L4::udp, shared);
  auto listeners = net::diag_dump(net::L4::tcp, std::nullopt, 1U << net::kTcpListen);
  if (!tcp || !udp || !listeners) {
    last_error_ = (!tcp ? tcp.error() : !udp ? udp.error() : listeners.error()).message;
    return;  // keep what we had; the next walk tries again
  }
  std::vector<net::DiagSocket> all = std::move(*tcp);
  all.insert(all.end(), udp->begin(), udp->end());
  const auto* prev = store_.local(shared);
  static const std::map<Key, Association> kNone;
  auto now = associations_from_walk(shared, all, listener_ports_for(shared, *listeners), prev ? *prev : kNone);
  if (prev && walk_keeps_udp())
    for (const auto& [k, v] : *prev)
      if (k.proto == Proto::udp) now.try_emplace(k, v);
  store_.replace_local(shared, std::move(now));
  std::map<std::uint64_t, BoundSocket> known;
  for (const auto& [c, b] : bound_)
    if (b.local == shared) known.emplace(c, b);
  replace_bound(shared, bound_from_walk(shared, all, known));
}

void DiagRegistry::replace_bound(const IpAddress& shared, const std::map<std::uint64_t, BoundSocket>& now) {
  std::map<std::uint64_t, BoundSocket> before;
  for (const auto& [c, b] : bound_)
    if (b.local == shared) before.emplace(c, b);
  for (const auto& [ev, b] : bound_diff(before, now)) report_bound(ev, b);
}

void DiagRegistry::report_bound(SocketEvent ev, const BoundSocket& b) {
  BoundSocket r = b;  // as reported: listening only from its listen to its unlisten
  r.listening = ev == SocketEvent::listen;
  switch (ev) {
    case SocketEvent::bind:
      bound_[r.cookie] = r;
      bound_changed(r, true);
      break;
    case SocketEvent::unbind:
      bound_.erase(r.cookie);
      bound_changed(r, false);
      break;
    case SocketEvent::listen:
    case SocketEvent::unlisten:
      bound_[r.cookie].listening = r.listening;
      break;
  }
  if (sockets_) sockets_(ev, r);
}

void DiagRegistry::on_destroyed(const net::DiagSocket& s) {
  if (auto b = bound_.find(s.cookie); b != bound_.end()) {  // a bound socket closed
    const BoundSocket gone = b->second;
    if (gone.listening) report_bound(SocketEvent::unlisten, gone);
    report_bound(SocketEvent::unbind, gone);
    return;
  }
  if (!store_.is_tracked(s.local)) return;
  if (s.proto == net::L4::tcp && s.remote_port != 0 && !s.remote.is_unspecified()) {
    store_.erase_local(s.local, Key{Proto::tcp, s.local_port, s.remote, s.remote_port});
  } else if ((s.proto == net::L4::udp && !walk_keeps_udp()) || (s.proto == net::L4::tcp && s.local_port != 0)) {
    // UDP: the client may still have other sockets. TCP without a remote port: a socket
    // closed with SO_LINGER 0 went through disconnect(), which clears the port before
    // the notification is built. Either way, ask the kernel (a filtered walk).
    walk(s.local);
  }
}

Result<std::size_t> DiagRegistry::import(const IpAddress& shared, std::vector<Association> entries) {
  if (auto v = validate_import(shared, entries); !v) return std::unexpected(v.error());
  return store_.import(shared, std::move(entries));
}

}  // namespace mpathd::cluster::detail

namespace mpathd::cluster {

std::unique_ptr<Registry> Registry::create(sd_event* event, RegistryOptions opts, Changed changed) {
  return create(event, std::move(opts), std::move(changed), nullptr);
}

std::unique_ptr<Registry> Registry::create(sd_event* event, RegistryOptions opts, Changed changed,
                                           SocketsChanged sockets) {
  std::string reason;
  if (!opts.ebpf)
    reason = "eBPF disabled by configuration";
  else if (opts.cgroup.empty())
    reason = "no cgroup configured for the eBPF programs";
  else if (auto r = detail::create_ebpf_registry(event, opts, changed, sockets, reason); r)
    return r;
  return std::make_unique<detail::DiagRegistry>(event, std::move(opts), std::move(changed), std::move(reason),
                                                std::move(sockets));
}

}  // namespace mpathd::cluster
