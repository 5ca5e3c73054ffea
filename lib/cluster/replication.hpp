// Association replication between the mpathd of a cluster (DESIGN §5, issue 12 item 3):
// every mpathd joins one process group (Corosync CPG); the holder of a shared address
// multicasts the changes of that address's association table (batched, bounded
// messages), every member keeps the tables it receives per origin node as imported
// associations of the address, and a node that joins receives the full tables (every
// holder re-sends its tables when the membership changes). When an origin leaves, its
// tables are KEPT: they are what the node taking over must tickle. A node that takes an
// address over announces it, and every member then drops the other origins' TCP entries
// of that address (those connections have just been reset by the tickle); their UDP
// clients stay known.
//
// The seam: GroupTransport (the group messaging), so that unit tests use a fake; the
// real one (cpg_transport.cpp) is a thin adapter over libcpg on the daemon's sd-event
// loop. Wire format and its reasons: docs/design-decisions.md ("Association
// replication").
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "cluster/cluster.hpp"
#include "cluster/registry_store.hpp"

namespace mpathd::cluster {

struct GroupMember {
  std::uint32_t nodeid = 0;
  std::uint32_t pid = 0;
  auto operator<=>(const GroupMember&) const = default;
};

class GroupTransport {
 public:
  struct Handlers {
    // A message multicast by a member (the sender's own messages come back too).
    std::function<void(const GroupMember& from, std::span<const std::uint8_t> message)> message;
    // The membership changed (also the first view after the join).
    std::function<void(const std::vector<GroupMember>& members, const std::vector<GroupMember>& joined,
                       const std::vector<GroupMember>& left)>
        membership;
    // The connection is gone (corosync stopped or restarted); open() again later.
    std::function<void(const std::string& reason)> lost;
  };
  enum class Sent : std::uint8_t { sent, try_again };

  virtual ~GroupTransport() = default;
  // Connects and joins `group`; returns this member's identity. Never blocks for long
  // (a local IPC round trip).
  virtual Result<GroupMember> open(const std::string& group, Handlers handlers) = 0;
  virtual void close() = 0;
  // Multicast in agreed order. try_again: flow control, nothing was sent, retry later.
  virtual Result<Sent> send(std::span<const std::uint8_t> message) = 0;

  // Corosync CPG on the loop (fd on sd-event, cpg_dispatch(CS_DISPATCH_ALL)).
  static std::unique_ptr<GroupTransport> create_cpg(sd_event* event);
};

// ---- wire format (version 1; network byte order) -----------------------------------
namespace wire {
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kHeaderSize = 12;  // "MPR" version(1) sequence(4) records(2) reserved(2)
enum class Kind : std::uint8_t {
  full_first = 1,  // the origin's table of the address is replaced by this record's entries
  full_more = 2,   // continues a full table (added)
  delta = 3,       // removes, then adds
};
constexpr std::uint8_t kTakeover = 1;  // flag of full_first: the origin took the address over

struct Record {
  IpAddress address;
  Kind kind = Kind::delta;
  std::uint8_t flags = 0;
  std::vector<Association> add;
  std::vector<Association> remove;  // only the key fields matter
};
struct Message {
  std::uint32_t sequence = 0;
  std::vector<Record> records;
};
// Bytes of one record's fixed part and of one entry, for the splitting arithmetic.
std::size_t record_overhead(const IpAddress& a);
std::size_t entry_size(const IpAddress& a);
std::vector<std::uint8_t> encode(const Message& m);
// Strict: bounds, magic, version, kinds, families and counts; the error names the offset.
Result<Message> decode(std::span<const std::uint8_t> bytes);
}  // namespace wire

struct ReplicationOptions {
  bool enabled = true;
  std::string group = "mpathd";
  // Per shared address: at most this many associations are sent, and accepted per origin.
  std::size_t max_associations = 65536;
  Duration batch = std::chrono::milliseconds(200);  // changes are gathered this long
  std::size_t max_message = 32 * 1024;              // bytes per multicast (≥ 1 KiB)
  std::size_t max_queued = 8 * 1024 * 1024;         // bytes waiting for flow control; then resync
};

struct ReplicationStatus {
  bool enabled = false;
  std::string state;   // joined | off (enabled = true: corosync not reached yet, retried)
  std::string reason;  // why off or not joined ("" when joined)
  std::string group;
  std::uint32_t node_id = 0;
  std::size_t members = 0;
  std::uint64_t messages_sent = 0, bytes_sent = 0, messages_received = 0, bytes_received = 0;
  std::uint64_t try_again = 0;      // sends deferred by flow control
  std::size_t imported = 0;         // associations held from other nodes (all addresses)
  std::vector<std::string> capped;  // "ADDRESS: N of M sent|accepted" over the cap
};

class Replicator {
 public:
  struct Hooks {
    // This kernel's entries of a held address (not the imported ones).
    std::function<std::vector<Association>(const IpAddress&)> local;
    // The union of every origin's table of an address, to import into the registry.
    std::function<void(const IpAddress&, std::vector<Association>)> imported;
    // The status changed: the state (now = true: publish it now), or only counters.
    std::function<void(bool now)> status_changed;
  };
  // transport == nullptr or !opts.enabled: replication is off (`off_reason` says why).
  Replicator(sd_event* event, ReplicationOptions opts, std::unique_ptr<GroupTransport> transport, Hooks hooks,
             std::string off_reason = {});
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  bool active() const { return transport_ != nullptr; }
  // The shared addresses held here: added ones are sent whole, dropped ones are no
  // longer sent (the members keep the last table: a release may be a dead group).
  void set_held(const std::vector<IpAddress>& held);
  // A local entry of a held address appeared, changed or went (sent with the next batch).
  void local_changed(const IpAddress& address);
  // The address is about to be released, its sockets still there: the changes waiting
  // for the batch are sent now, so a client that connected just before a group failure
  // is known to the node taking over.
  void releasing(const IpAddress& address);
  // The address was taken over here and its clients tickled: the other origins' TCP
  // entries of it are dropped here and, by the announcement, on every member (their
  // UDP clients stay).
  void taken_over(const IpAddress& address);
  // The hand-over API's import, kept as one more origin ("manual") of the union.
  Result<std::size_t> import_manual(const IpAddress& address, std::vector<Association> entries);
  // Sends what is due now (the batch timer does this; tests call it).
  void flush_now();
  ReplicationStatus status() const;

 private:
  using Table = std::map<detail::Key, Association>;
  static constexpr std::uint32_t kManual = 0;  // origin of import_manual (node ids are ≥ 1)

  void connect();
  void on_lost(const std::string& reason);
  void on_message(const GroupMember& from, std::span<const std::uint8_t> bytes);
  void on_membership(const std::vector<GroupMember>& members, const std::vector<GroupMember>& joined);
  void schedule_flush(Duration after);
  void encode_address(const IpAddress& a, std::vector<wire::Message>& out, std::size_t& out_bytes);
  void enqueue(std::vector<wire::Message> msgs);
  void drain();
  void publish(const IpAddress& a);
  static void drop_tcp(Table& t);
  Table capped_local(const IpAddress& a);
  static int on_timer(sd_event_source*, std::uint64_t, void* user);
  static int on_reconnect(sd_event_source*, std::uint64_t, void* user);

  sd_event* event_;
  ReplicationOptions opts_;
  std::unique_ptr<GroupTransport> transport_;
  Hooks hooks_;
  std::string off_reason_;
  bool joined_ = false;
  std::string reason_;  // why not joined
  GroupMember self_{};
  std::size_t members_ = 0;
  Duration backoff_ = std::chrono::seconds(1);
  std::uint32_t sequence_ = 0;

  std::set<IpAddress> held_;
  std::set<IpAddress> dirty_;     // deltas due
  std::set<IpAddress> full_;      // whole tables due
  std::set<IpAddress> takeover_;  // whole tables due, announced as a takeover
  std::map<IpAddress, Table> sent_;  // what the members have from us
  std::deque<std::vector<std::uint8_t>> queue_;
  std::size_t queued_bytes_ = 0;

  std::map<IpAddress, std::map<std::uint32_t, Table>> tables_;  // received, per origin
  std::map<IpAddress, std::string> capped_;

  ReplicationStatus counters_;
  sd_event_source* timer_ = nullptr;
  sd_event_source* reconnect_ = nullptr;
};

}  // namespace mpathd::cluster
