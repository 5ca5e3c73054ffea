// Association replication: the wire codec and the Replicator (replication.hpp).
#include "cluster/replication.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "cluster/monotonic.hpp"
#include "guard/guard.hpp"

namespace mpathd::cluster {

// ---- wire ---------------------------------------------------------------------------
namespace wire {
namespace {
constexpr std::uint8_t kMagic[3] = {'M', 'P', 'R'};
constexpr std::uint8_t kUdp = 1, kOutgoing = 2;

struct Writer {
  std::vector<std::uint8_t> out;
  void u8(std::uint8_t v) { out.push_back(v); }
  void u16(std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void addr(const IpAddress& a) { out.insert(out.end(), a.bytes.begin(), a.bytes.begin() + static_cast<long>(a.size())); }
};

struct Reader {
  std::span<const std::uint8_t> in;
  std::size_t pos = 0;
  std::string error;
  bool need(std::size_t n, const char* what) {
    if (!error.empty()) return false;
    if (in.size() - pos >= n) return true;
    error = std::string("truncated at byte ") + std::to_string(pos) + " (" + what + ")";
    return false;
  }
  std::uint8_t u8(const char* what) { return need(1, what) ? in[pos++] : 0; }
  std::uint16_t u16(const char* what) {
    if (!need(2, what)) return 0;
    const auto v = static_cast<std::uint16_t>((in[pos] << 8) | in[pos + 1]);
    pos += 2;
    return v;
  }
  std::uint32_t u32(const char* what) {
    const std::uint32_t hi = u16(what);
    return (hi << 16) | u16(what);
  }
  IpAddress addr(Family f, const char* what) {
    IpAddress a;
    a.family = f;
    if (need(a.size(), what)) {
      std::memcpy(a.bytes.data(), in.data() + pos, a.size());
      pos += a.size();
    }
    return a;
  }
};

void put_entry(Writer& w, const Association& a) {
  w.u8(static_cast<std::uint8_t>((a.proto == Proto::udp ? kUdp : 0) | (a.outgoing ? kOutgoing : 0)));
  w.u8(a.tcp_state);
  w.u16(a.local_port);
  w.addr(a.remote);
  w.u16(a.remote_port);
}

Association get_entry(Reader& r, const IpAddress& local) {
  Association a;
  a.local = local;
  const std::uint8_t bits = r.u8("entry flags");
  if ((bits & ~(kUdp | kOutgoing)) != 0 && r.error.empty())
    r.error = "unknown entry flags at byte " + std::to_string(r.pos - 1);
  a.proto = (bits & kUdp) ? Proto::udp : Proto::tcp;
  a.outgoing = (bits & kOutgoing) != 0;
  a.tcp_state = r.u8("tcp state");
  a.local_port = r.u16("local port");
  a.remote = r.addr(local.family, "remote address");
  a.remote_port = r.u16("remote port");
  return a;
}
}  // namespace

std::size_t record_overhead(const IpAddress& a) { return 1 + a.size() + 1 + 1 + 2 + 2; }
std::size_t entry_size(const IpAddress& a) { return 1 + 1 + 2 + a.size() + 2; }

std::vector<std::uint8_t> encode(const Message& m) {
  Writer w;
  w.out.insert(w.out.end(), std::begin(kMagic), std::end(kMagic));
  w.u8(kVersion);
  w.u32(m.sequence);
  w.u16(static_cast<std::uint16_t>(m.records.size()));
  w.u16(0);
  for (const auto& r : m.records) {
    w.u8(r.address.is_v4() ? 4 : 6);
    w.addr(r.address);
    w.u8(static_cast<std::uint8_t>(r.kind));
    w.u8(r.flags);
    w.u16(static_cast<std::uint16_t>(r.add.size()));
    w.u16(static_cast<std::uint16_t>(r.remove.size()));
    for (const auto& a : r.add) put_entry(w, a);
    for (const auto& a : r.remove) put_entry(w, a);
  }
  return std::move(w.out);
}

Result<Message> decode(std::span<const std::uint8_t> bytes) {
  Reader r{bytes, 0, {}};
  auto bad = [&](const std::string& e) { return fail(Errc::invalid_argument, "replication message: " + e); };
  if (bytes.size() < kHeaderSize) return bad("shorter than its header (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, 3) != 0) return bad("bad magic");
  r.pos = 3;
  if (const auto v = r.u8("version"); v != kVersion) return bad("version " + std::to_string(v) + " is not 1");
  Message m;
  m.sequence = r.u32("sequence");
  const std::uint16_t n = r.u16("record count");
  if (r.u16("reserved") != 0) return bad("reserved header bytes are not zero");
  for (std::uint16_t i = 0; i < n; ++i) {
    Record rec;
    const std::size_t at = r.pos;
    const std::uint8_t fam = r.u8("family");
    if (r.error.empty() && fam != 4 && fam != 6) return bad("record " + std::to_string(i) + " at byte " + std::to_string(at) + ": family " + std::to_string(fam));
    rec.address = r.addr(fam == 4 ? Family::v4 : Family::v6, "address");
    const std::uint8_t kind = r.u8("kind");
    if (r.error.empty() && (kind < 1 || kind > 3)) return bad("record " + std::to_string(i) + ": kind " + std::to_string(kind));
    rec.kind = static_cast<Kind>(kind);
    rec.flags = r.u8("flags");
    if (r.error.empty() && (rec.flags & ~kTakeover) != 0) return bad("record " + std::to_string(i) + ": unknown flags");
    const std::uint16_t adds = r.u16("add count");
    const std::uint16_t removes = r.u16("remove count");
    if (!r.error.empty()) return bad(r.error);
    // The counts must fit in what is left before anything is allocated.
    if ((std::size_t{adds} + removes) * entry_size(rec.address) > bytes.size() - r.pos)
      return bad("record " + std::to_string(i) + ": " + std::to_string(adds + removes) + " entries do not fit");
    rec.add.reserve(adds);
    for (std::uint16_t k = 0; k < adds; ++k) rec.add.push_back(get_entry(r, rec.address));
    for (std::uint16_t k = 0; k < removes; ++k) rec.remove.push_back(get_entry(r, rec.address));
    if (!r.error.empty()) return bad(r.error);
    m.records.push_back(std::move(rec));
  }
  if (r.pos != bytes.size()) return bad(std::to_string(bytes.size() - r.pos) + " trailing bytes");
  return m;
}
}  // namespace wire

// ---- Replicator ---------------------------------------------------------------------

Replicator::Replicator(sd_event* event, ReplicationOptions opts, std::unique_ptr<GroupTransport> transport,
                       Hooks hooks, std::string off_reason)
    : event_(sd_event_ref(event)),
      opts_(std::move(opts)),
      transport_(std::move(transport)),
      hooks_(std::move(hooks)),
      off_reason_(std::move(off_reason)) {
  opts_.max_message = std::max<std::size_t>(opts_.max_message, 1024);
  if (!opts_.enabled) {
    transport_.reset();
    if (off_reason_.empty()) off_reason_ = "disabled by configuration (replication = false)";
  }
  if (!transport_) {
    if (off_reason_.empty()) off_reason_ = "no group transport";
    spdlog::warn("association replication is off: {}", off_reason_);
    return;
  }
  connect();
}

Replicator::~Replicator() {
  sd_event_source_disable_unref(timer_);
  sd_event_source_disable_unref(reconnect_);
  if (transport_) transport_->close();
  sd_event_unref(event_);
}

void Replicator::connect() {
  GroupTransport::Handlers h;
  h.message = [this](const GroupMember& f, std::span<const std::uint8_t> b) { on_message(f, b); };
  h.membership = [this](const std::vector<GroupMember>& m, const std::vector<GroupMember>& j,
                        const std::vector<GroupMember>&) { on_membership(m, j); };
  h.lost = [this](const std::string& why) { on_lost(why); };
  auto r = transport_->open(opts_.group, std::move(h));
  if (!r) {
    const bool first = reason_.empty() && !joined_ && counters_.messages_sent == 0 && backoff_ == std::chrono::seconds(1);
    reason_ = r.error().message;
    if (first)
      spdlog::warn("association replication: cannot join process group \"{}\": {}; retrying with back-off "
                   "(associations are not replicated meanwhile)",
                   opts_.group, reason_);
    else
      spdlog::debug("association replication: join retry failed: {}", reason_);
    const auto us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(backoff_).count());
    sd_event_source_disable_unref(reconnect_);
    reconnect_ = nullptr;
    sd_event_add_time(event_, &reconnect_, CLOCK_MONOTONIC, detail::monotonic_usec() + us, 100'000, &on_reconnect, this);
    backoff_ = std::min<Duration>(backoff_ * 2, std::chrono::seconds(30));
    if (hooks_.status_changed) hooks_.status_changed(true);
    return;
  }
  self_ = *r;
  joined_ = true;
  reason_.clear();
  backoff_ = std::chrono::seconds(1);
  spdlog::info("association replication: joined process group \"{}\" as node {} (pid {})", opts_.group, self_.nodeid,
               self_.pid);
  // Everything we hold goes out whole (the members may have missed our last changes).
  full_.insert(held_.begin(), held_.end());
  schedule_flush(Duration::zero());
  if (hooks_.status_changed) hooks_.status_changed(true);
}

int Replicator::on_reconnect(sd_event_source*, std::uint64_t, void* user) {
  auto* self = static_cast<Replicator*>(user);
  return guard_void_callback("replication reconnect", [self] {
    sd_event_source_disable_unref(self->reconnect_);
    self->reconnect_ = nullptr;
    self->connect();
  });
}

void Replicator::on_lost(const std::string& reason) {
  if (!joined_) return;
  joined_ = false;
  reason_ = "connection to the group lost: " + reason;
  spdlog::warn("association replication: {}; reconnecting", reason_);
  transport_->close();
  queue_.clear();
  queued_bytes_ = 0;
  members_ = 0;
  backoff_ = std::chrono::seconds(1);
  const auto us = std::uint64_t{1'000'000};
  sd_event_source_disable_unref(reconnect_);
  reconnect_ = nullptr;
  sd_event_add_time(event_, &reconnect_, CLOCK_MONOTONIC, detail::monotonic_usec() + us, 100'000, &on_reconnect, this);
  if (hooks_.status_changed) hooks_.status_changed(true);
}

void Replicator::set_held(const std::vector<IpAddress>& held) {
  std::set<IpAddress> now(held.begin(), held.end());
  for (const auto& a : held_)
    if (!now.contains(a)) {
      // No message: the members keep our last table (a release may be a dead group,
      // and the node taking over needs exactly those clients).
      sent_.erase(a);
      dirty_.erase(a);
      full_.erase(a);
      takeover_.erase(a);
    }
  for (const auto& a : now)
    if (!held_.contains(a)) full_.insert(a);
  held_ = std::move(now);
  if (!full_.empty()) schedule_flush(opts_.batch);
}

void Replicator::local_changed(const IpAddress& address) {
  if (!transport_ || !held_.contains(address)) return;
  if (dirty_.insert(address).second) schedule_flush(opts_.batch);
}

void Replicator::releasing(const IpAddress& address) {
  if (!transport_ || !joined_ || !held_.contains(address)) return;
  if (!dirty_.contains(address) && !full_.contains(address)) return;
  std::vector<wire::Message> msgs;
  std::size_t bytes = 0;
  encode_address(address, msgs, bytes);
  dirty_.erase(address);
  full_.erase(address);
  enqueue(std::move(msgs));
  drain();
}

// A takeover has reset (tickled) every TCP connection of the old holder; its UDP
// clients are still the service's clients and stay known.
void Replicator::drop_tcp(Table& t) {
  std::erase_if(t, [](const auto& kv) { return kv.second.proto == Proto::tcp; });
}

void Replicator::taken_over(const IpAddress& address) {
  // Our own view first: the old holder's clients were just tickled.
  if (auto it = tables_.find(address); it != tables_.end()) {
    for (auto& [origin, t] : it->second)
      if (origin != kManual) drop_tcp(t);
    publish(address);
  }
  if (!transport_ || !held_.contains(address)) return;
  takeover_.insert(address);
  schedule_flush(Duration::zero());
}

Result<std::size_t> Replicator::import_manual(const IpAddress& address, std::vector<Association> entries) {
  if (auto v = detail::validate_import(address, entries); !v) return std::unexpected(v.error());
  Table t;
  for (auto& a : entries) t[detail::key_of(a)] = a;
  const std::size_t n = t.size();
  if (t.empty())
    tables_[address].erase(kManual);
  else
    tables_[address][kManual] = std::move(t);
  publish(address);
  return n;
}

void Replicator::publish(const IpAddress& a) {
  std::vector<Association> all;
  if (auto it = tables_.find(a); it != tables_.end()) {
    std::erase_if(it->second, [](const auto& kv) { return kv.second.empty(); });
    std::map<detail::Key, Association> u;
    for (const auto& [_, t] : it->second)
      for (const auto& [k, v] : t) u.try_emplace(k, v);
    for (auto& [_, v] : u) all.push_back(v);
    if (it->second.empty()) tables_.erase(it);
  }
  if (hooks_.imported) hooks_.imported(a, std::move(all));
}

Replicator::Table Replicator::capped_local(const IpAddress& a) {
  Table t;
  if (!hooks_.local) return t;
  for (auto& x : hooks_.local(a)) {
    if (x.imported) continue;
    x.imported = false;
    t[detail::key_of(x)] = x;
  }
  if (t.size() > opts_.max_associations) {
    // The established TCP connections first (the ones a tickle resets), then the rest
    // in key order, so that the selection is stable from batch to batch.
    const std::size_t total = t.size();
    Table kept;
    for (int pass = 0; pass < 2 && kept.size() < opts_.max_associations; ++pass)
      for (const auto& [k, v] : t) {
        if (kept.size() >= opts_.max_associations) break;
        const bool first = v.proto == Proto::tcp && v.tcp_state == 1;
        if ((pass == 0) == first) kept.emplace(k, v);
      }
    const std::string note = a.str() + ": " + std::to_string(kept.size()) + " of " + std::to_string(total) +
                             " associations sent (replication-max-associations)";
    if (!capped_.contains(a)) spdlog::warn("association replication: cap reached: {}", note);
    capped_[a] = note;
    return kept;
  }
  if (capped_.erase(a) > 0) spdlog::info("association replication: {} is below the cap again", a.str());
  return t;
}

void Replicator::schedule_flush(Duration after) {
  if (!transport_) return;
  const auto us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(after).count());
  const std::uint64_t when = detail::monotonic_usec() + us;
  if (timer_) {
    int enabled = SD_EVENT_OFF;
    sd_event_source_get_enabled(timer_, &enabled);
    std::uint64_t cur = 0;
    sd_event_source_get_time(timer_, &cur);
    if (enabled != SD_EVENT_OFF && cur <= when) return;  // an earlier flush is already due
    sd_event_source_set_time(timer_, when);
    sd_event_source_set_enabled(timer_, SD_EVENT_ONESHOT);
    return;
  }
  sd_event_add_time(event_, &timer_, CLOCK_MONOTONIC, when, 1000, &on_timer, this);
}

int Replicator::on_timer(sd_event_source*, std::uint64_t, void* user) {
  auto* self = static_cast<Replicator*>(user);
  return guard_void_callback("replication flush", [self] { self->flush_now(); });
}

// Splits the records of one address into messages of at most max_message bytes.
void Replicator::encode_address(const IpAddress& a, std::vector<wire::Message>& out, std::size_t& out_bytes) {
  const bool takeover = takeover_.contains(a);
  const bool full = takeover || full_.contains(a) || !sent_.contains(a);
  Table now = capped_local(a);
  std::vector<Association> adds, removes;
  const Table* before = full ? nullptr : &sent_[a];
  if (before) {
    for (const auto& [k, v] : *before)
      if (!now.contains(k)) removes.push_back(v);
    for (const auto& [k, v] : now)
      if (auto b = before->find(k); b == before->end() || b->second != v) adds.push_back(v);
    if (adds.empty() && removes.empty()) return;
  } else {
    for (const auto& [_, v] : now) adds.push_back(v);
  }
  sent_[a] = std::move(now);

  const std::size_t per = wire::entry_size(a);
  const std::size_t room_fixed = wire::record_overhead(a);
  bool first = true;
  std::size_t ai = 0, ri = 0;
  auto room_in_last = [&]() -> std::size_t {
    if (out.empty()) return 0;
    if (out_bytes + room_fixed + per > opts_.max_message) return 0;
    return (opts_.max_message - out_bytes - room_fixed) / per;
  };
  do {
    std::size_t room = room_in_last();
    if (room == 0 || out.back().records.size() >= 0xffff) {
      out.push_back(wire::Message{});
      out_bytes = wire::kHeaderSize;
      room = room_in_last();
    }
    room = std::min<std::size_t>(room, 0xffff);
    wire::Record rec;
    rec.address = a;
    rec.kind = !before ? (first ? wire::Kind::full_first : wire::Kind::full_more) : wire::Kind::delta;
    rec.flags = (first && takeover) ? wire::kTakeover : 0;
    for (; ri < removes.size() && room > 0; --room) rec.remove.push_back(removes[ri++]);
    for (; ai < adds.size() && room > 0; --room) rec.add.push_back(adds[ai++]);
    out_bytes += room_fixed + per * (rec.add.size() + rec.remove.size());
    out.back().records.push_back(std::move(rec));
    first = false;
  } while (ai < adds.size() || ri < removes.size());
}

void Replicator::flush_now() {
  if (!transport_ || !joined_) return;
  if (!dirty_.empty() || !full_.empty() || !takeover_.empty()) {
    std::set<IpAddress> due;
    due.insert(dirty_.begin(), dirty_.end());
    due.insert(full_.begin(), full_.end());
    due.insert(takeover_.begin(), takeover_.end());
    std::vector<wire::Message> msgs;
    std::size_t bytes = 0;
    for (const auto& a : due)
      if (held_.contains(a)) encode_address(a, msgs, bytes);
    dirty_.clear();
    full_.clear();
    takeover_.clear();
    enqueue(std::move(msgs));
  }
  drain();
}

void Replicator::enqueue(std::vector<wire::Message> msgs) {
  for (auto& m : msgs) {
    m.sequence = ++sequence_;
    auto b = wire::encode(m);
    queued_bytes_ += b.size();
    queue_.push_back(std::move(b));
  }
  if (queued_bytes_ > opts_.max_queued) {
    // Back-pressure: corosync has not taken our messages for a long while. Drop what
    // waits and send the whole tables again once it moves.
    spdlog::warn("association replication: {} bytes waiting for the group; dropped, full tables follow",
                 queued_bytes_);
    queue_.clear();
    queued_bytes_ = 0;
    sent_.clear();
    full_.insert(held_.begin(), held_.end());
    schedule_flush(std::chrono::seconds(1));
  }
}

void Replicator::drain() {
  while (!queue_.empty()) {
    auto r = transport_->send(queue_.front());
    if (!r) {
      on_lost(r.error().message);
      return;
    }
    if (*r == GroupTransport::Sent::try_again) {
      ++counters_.try_again;
      schedule_flush(std::chrono::milliseconds(50));  // later, never a spin
      return;
    }
    ++counters_.messages_sent;
    counters_.bytes_sent += queue_.front().size();
    queued_bytes_ -= queue_.front().size();
    queue_.pop_front();
    if (queue_.empty() && hooks_.status_changed) hooks_.status_changed(false);
  }
}

void Replicator::on_membership(const std::vector<GroupMember>& members, const std::vector<GroupMember>& joined) {
  members_ = members.size();
  // State transfer: a member joined (or we did): every holder sends its tables whole.
  // No designated sender to elect, and each table comes from the one node that knows it.
  bool others = false;
  for (const auto& m : joined) others = others || m != self_;
  const bool self_joined = std::find(joined.begin(), joined.end(), self_) != joined.end();
  if (others || self_joined) {
    full_.insert(held_.begin(), held_.end());
    schedule_flush(Duration::zero());
  }
  if (hooks_.status_changed) hooks_.status_changed(true);
}

void Replicator::on_message(const GroupMember& from, std::span<const std::uint8_t> bytes) {
  if (from.nodeid == self_.nodeid) return;  // our own, back from the group
  ++counters_.messages_received;
  counters_.bytes_received += bytes.size();
  auto m = wire::decode(bytes);
  if (!m) {
    spdlog::warn("association replication: from node {}: {}; ignored", from.nodeid, m.error().message);
    return;
  }
  std::set<IpAddress> touched;
  for (auto& rec : m->records) {
    auto& origins = tables_[rec.address];
    if (rec.kind == wire::Kind::full_first) {
      if (rec.flags & wire::kTakeover)
        for (auto& [origin, t] : origins)
          if (origin != kManual && origin != from.nodeid) drop_tcp(t);
      origins[from.nodeid].clear();
    }
    auto& t = origins[from.nodeid];
    for (const auto& a : rec.remove) t.erase(detail::key_of(a));
    // Each entry must be one an import accepts; a bad one is skipped, not the record.
    std::size_t refused = 0, over = 0;
    for (auto& a : rec.add) {
      a.imported = true;
      if (!detail::validate_import(rec.address, {a})) {
        ++refused;
        continue;
      }
      const auto k = detail::key_of(a);
      if (t.size() >= opts_.max_associations && !t.contains(k)) {
        ++over;
        continue;
      }
      t[k] = a;
    }
    if (refused > 0)
      spdlog::warn("association replication: from node {}: {} invalid association(s) of {} ignored", from.nodeid,
                   refused, rec.address.str());
    if (over > 0) {
      const std::string note = rec.address.str() + ": " + std::to_string(over) + " association(s) from node " +
                               std::to_string(from.nodeid) + " not accepted (replication-max-associations)";
      if (!capped_.contains(rec.address)) spdlog::warn("association replication: cap reached: {}", note);
      capped_[rec.address] = note;
    }
    std::erase_if(origins, [](const auto& kv) { return kv.second.empty(); });
    touched.insert(rec.address);
  }
  for (const auto& a : touched) publish(a);
  if (hooks_.status_changed) hooks_.status_changed(false);
}

ReplicationStatus Replicator::status() const {
  ReplicationStatus s = counters_;
  s.enabled = transport_ != nullptr;
  s.group = opts_.group;
  if (!transport_) {
    s.state = "off";
    s.reason = off_reason_;
  } else if (joined_) {
    s.state = "joined";
    s.node_id = self_.nodeid;
    s.members = members_;
  } else {
    s.state = "off";  // enabled, but not in the group (yet): retried with back-off
    s.reason = (reason_.empty() ? std::string("joining") : reason_) + "; retrying";
  }
  for (const auto& [_, origins] : tables_)
    for (const auto& [o, t] : origins)
      if (o != kManual) s.imported += t.size();
  for (const auto& [_, note] : capped_) s.capped.push_back(note);
  return s;
}

}  // namespace mpathd::cluster
