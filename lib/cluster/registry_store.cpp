#include "cluster/registry_store.hpp"

#include <algorithm>

#include "cluster/association_json.hpp"

namespace mpathd::cluster::detail {

Key key_of(const Association& a) {
  if (a.proto == Proto::udp) return Key{Proto::udp, 0, a.remote, 0};
  return Key{Proto::tcp, a.local_port, a.remote, a.remote_port};
}

std::set<std::uint16_t> listener_ports_for(const IpAddress& shared,
                                           const std::vector<net::DiagSocket>& listeners) {
  std::set<std::uint16_t> ports;
  for (const auto& l : listeners) {
    if (l.state != net::kTcpListen) continue;
    if (l.local == shared || (l.local.is_unspecified() && (l.local.family == shared.family || !l.local.is_v4())))
      ports.insert(l.local_port);
  }
  return ports;
}

std::map<Key, Association> associations_from_walk(const IpAddress& shared,
                                                  const std::vector<net::DiagSocket>& sockets,
                                                  const std::set<std::uint16_t>& listener_ports,
                                                  const std::map<Key, Association>& previous) {
  std::map<Key, Association> out;
  for (const auto& s : sockets) {
    if (s.local != shared || s.remote.is_unspecified()) continue;
    Association a;
    a.local = shared;
    a.remote = s.remote;
    if (s.proto == net::L4::tcp) {
      if (s.state == net::kTcpListen || s.state == net::kTcpTimeWait || s.state == net::kTcpClose ||
          s.state == 0 || s.state > net::kTcpMaxState)
        continue;
      a.proto = Proto::tcp;
      a.local_port = s.local_port;
      a.remote_port = s.remote_port;
      a.tcp_state = s.state;
      const Key k = key_of(a);
      if (auto p = previous.find(k); p != previous.end())
        a.outgoing = p->second.outgoing;
      else
        a.outgoing = !listener_ports.contains(s.local_port);
      out[k] = a;
    } else {
      a.proto = Proto::udp;
      out.try_emplace(key_of(a), a);  // one entry per client address
    }
  }
  return out;
}

std::map<std::uint64_t, BoundSocket> bound_from_walk(const IpAddress& shared,
                                                     const std::vector<net::DiagSocket>& sockets,
                                                     const std::map<std::uint64_t, BoundSocket>& previous) {
  std::map<std::uint64_t, BoundSocket> out;
  for (const auto& s : sockets) {
    if (s.local != shared || s.local_port == 0) continue;
    BoundSocket b{.proto = s.proto == net::L4::tcp ? Proto::tcp : Proto::udp,
                  .local = shared, .local_port = s.local_port, .cookie = s.cookie};
    if (auto p = previous.find(s.cookie); p != previous.end() && !s.remote.is_unspecified()) {
      // Known bound and connected since: still bound (a TIME_WAIT entry is the socket's
      // remains after its close, with the same cookie).
      if (s.proto == net::L4::udp || s.state != net::kTcpTimeWait) out[s.cookie] = b;
      continue;
    }
    if (s.proto == net::L4::tcp) {
      // Bound-only sockets come in the dump of TCP_BOUND_INACTIVE with the state they
      // have, CLOSE (6.18 measured); a closed connection keeps its peer and is not one.
      const bool bound_only = (s.state == net::kTcpClose || s.state == net::kTcpBoundInactive) &&
                              s.remote.is_unspecified();
      if (s.state != net::kTcpListen && !bound_only) continue;
      b.listening = s.state == net::kTcpListen;
    } else if (!s.remote.is_unspecified()) {
      continue;
    }
    out[s.cookie] = b;
  }
  return out;
}

std::vector<std::pair<SocketEvent, BoundSocket>> bound_diff(const std::map<std::uint64_t, BoundSocket>& before,
                                                            const std::map<std::uint64_t, BoundSocket>& now) {
  std::vector<std::pair<SocketEvent, BoundSocket>> out;
  for (const auto& [c, b] : before)
    if (!now.contains(c)) {
      if (b.listening) out.emplace_back(SocketEvent::unlisten, b);
      out.emplace_back(SocketEvent::unbind, b);
    }
  for (const auto& [c, b] : now) {
    auto p = before.find(c);
    if (p == before.end()) {
      out.emplace_back(SocketEvent::bind, b);
      if (b.listening) out.emplace_back(SocketEvent::listen, b);
    } else if (p->second.listening != b.listening) {
      out.emplace_back(b.listening ? SocketEvent::listen : SocketEvent::unlisten, b);
    }
  }
  return out;
}

Result<void> validate_import(const IpAddress& shared, const std::vector<Association>& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& a = entries[i];
    auto bad = [&](const std::string& what) {
      return fail(Errc::invalid_argument, "association " + std::to_string(i) + ": " + what);
    };
    if (a.local != shared) return bad("local " + a.local.str() + " is not the shared address " + shared.str());
    if (a.remote.family != shared.family) return bad("remote " + a.remote.str() + " is of another family");
    if (a.remote.is_unspecified()) return bad("remote address is unspecified");
    if (a.remote == shared) return bad("remote is the shared address itself");
    if (a.proto == Proto::tcp) {
      if (a.local_port == 0 || a.remote_port == 0) return bad("a TCP association needs both ports");
      if (tcp_state_name(a.tcp_state).empty() || a.tcp_state == net::kTcpListen)
        return bad("TCP state " + std::to_string(a.tcp_state) + " is not a connection state");
    } else if (a.tcp_state != 0) {
      return bad("a UDP association has no TCP state");
    }
  }
  return {};
}

std::vector<IpAddress> Store::tracked() const {
  std::vector<IpAddress> out;
  for (const auto& [a, _] : local_) out.push_back(a);
  return out;
}

void Store::report(const IpAddress& shared, const Association& a, bool present) {
  if (changed_) changed_(shared, a, present);
}

void Store::add(const IpAddress& a) { local_.try_emplace(a); }

void Store::remove(const IpAddress& a) {
  auto it = local_.find(a);
  if (it == local_.end()) return;
  auto gone = std::move(it->second);
  local_.erase(it);
  for (const auto& [_, v] : gone) report(a, v, false);
}

void Store::replace_local(const IpAddress& shared, std::map<Key, Association> now) {
  auto it = local_.find(shared);
  if (it == local_.end()) return;
  auto& cur = it->second;
  std::vector<Association> gone;
  for (const auto& [k, v] : cur)
    if (!now.contains(k)) gone.push_back(v);
  std::vector<Association> changed;
  for (const auto& [k, v] : now) {
    auto c = cur.find(k);
    if (c == cur.end() || c->second != v) changed.push_back(v);
  }
  cur = std::move(now);
  for (const auto& a : gone) report(shared, a, false);
  for (const auto& a : changed) report(shared, a, true);
}

void Store::set_local(const IpAddress& shared, const Association& a) {
  auto it = local_.find(shared);
  if (it == local_.end()) return;
  auto [pos, inserted] = it->second.try_emplace(key_of(a), a);
  if (!inserted) {
    if (pos->second == a) return;
    pos->second = a;
  }
  report(shared, a, true);
}

void Store::erase_local(const IpAddress& shared, const Key& k) {
  auto it = local_.find(shared);
  if (it == local_.end()) return;
  auto e = it->second.find(k);
  if (e == it->second.end()) return;
  const Association gone = e->second;
  it->second.erase(e);
  report(shared, gone, false);
}

const std::map<Key, Association>* Store::local(const IpAddress& shared) const {
  auto it = local_.find(shared);
  return it == local_.end() ? nullptr : &it->second;
}

std::size_t Store::import(const IpAddress& shared, std::vector<Association> entries) {
  std::map<Key, Association> now;
  for (auto& a : entries) {
    a.imported = true;
    now[key_of(a)] = a;
  }
  auto& cur = imported_[shared];
  std::vector<std::pair<Association, bool>> reports;
  for (const auto& [k, v] : cur)
    if (!now.contains(k)) reports.emplace_back(v, false);
  for (const auto& [k, v] : now)
    if (auto c = cur.find(k); c == cur.end() || c->second != v) reports.emplace_back(v, true);
  cur = std::move(now);
  const std::size_t n = cur.size();
  if (cur.empty()) imported_.erase(shared);
  for (const auto& [a, present] : reports) report(shared, a, present);
  return n;
}

std::vector<Association> Store::associations(const IpAddress& shared) const {
  std::vector<Association> out;
  const auto* loc = local(shared);
  if (loc)
    for (const auto& [_, v] : *loc) out.push_back(v);
  if (auto it = imported_.find(shared); it != imported_.end())
    for (const auto& [k, v] : it->second)
      if (!loc || !loc->contains(k)) out.push_back(v);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mpathd::cluster::detail
