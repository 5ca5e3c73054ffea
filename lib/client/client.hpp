// mpathd::client — a small C++ client of mpathd's D-Bus API (org.ipmp.Mpathd1).
//
// Used by ipmpctl and meant for cluster agents. The contract it speaks is
// dbus/org.ipmp.Mpathd1.xml, documented in docs/dbus-api.md.
//
//   auto c = mpathd::client::Client::connect();          // system bus
//   if (!c) { std::cerr << c.error().message; ... }
//   auto snap = c->snapshot();                           // one consistent view
//   for (const auto& g : snap->groups) std::cout << g.name << ' ' << g.state << '\n';
//   if (auto r = c->offline("eth1"); !r && r.error().errc == mpathd::Errc::last_usable_member) ...
//
// Events: subscribe() installs bus matches for the callbacks that are set; run() or
// process() deliver them on the caller's thread. A Client is not thread-safe; use one
// per thread. It owns its own bus connection (DBUS_SYSTEM_BUS_ADDRESS is honoured).
//
// Errors are values: every call returns Result<T> = std::expected<T, client::Error>.
// client::Error says whether the daemon answered (failure == Failure::daemon, and then
// errc is the daemon's mpathd::Errc) or why it could not (unreachable, access denied,
// no reply, protocol mismatch). Nothing here logs.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace mpathd::client {

inline constexpr std::string_view kBusName = "org.ipmp.Mpathd1";
inline constexpr std::string_view kManagerPath = "/org/ipmp/Mpathd1";
inline constexpr std::string_view kGroupPathPrefix = "/org/ipmp/Mpathd1/group";
inline constexpr std::string_view kInterfacePathPrefix = "/org/ipmp/Mpathd1/interface";
inline constexpr std::string_view kManagerInterface = "org.ipmp.Mpathd1.Manager";
inline constexpr std::string_view kGroupInterface = "org.ipmp.Mpathd1.Group";
inline constexpr std::string_view kInterfaceInterface = "org.ipmp.Mpathd1.Interface";
inline constexpr std::string_view kErrorPrefix = kDbusErrorPrefix;
// mpathd's socket for direct connections (peer-to-peer D-Bus, root only, no signals)
// in its default runtime directory; $MPATHD_SOCKET names another.
inline constexpr std::string_view kDirectSocket = "/run/mpathd/private";

// ------------------------------------------------------------------ errors

enum class Failure : std::uint8_t {
  daemon,         // mpathd answered with an error; see Error::errc
  unreachable,    // no bus, or nobody owns org.ipmp.Mpathd1
  access_denied,  // the bus or the daemon refused the caller (changes need root)
  no_reply,       // the call timed out
  protocol,       // an unexpected reply (wrong signature, unknown method, ...)
};

struct Error {
  Failure failure = Failure::protocol;
  Errc errc = Errc::system;  // meaningful when failure == Failure::daemon
  std::string dbus_name;     // the D-Bus error name, if any
  std::string message;       // the daemon's (or the bus') message
};

template <typename T>
using Result = std::expected<T, Error>;

// The D-Bus error name for a daemon error code ("org.ipmp.Mpathd1.Error.NoSuchGroup"),
// and back. Names outside the contract map to Failure::protocol; the standard
// org.freedesktop.DBus.Error names map to unreachable/access_denied/no_reply.
std::string error_name(Errc errc);
Error error_from_dbus(std::string_view name, std::string_view message);
// An error for a negative errno from sd-bus (connection or transport failures).
Error error_from_errno(int negative_errno, std::string_view what);
// Short human text: the message if any, else a description of the failure.
std::string describe(const Error& e);

// ------------------------------------------------------------------ views
//
// Plain copies of the daemon's properties. Strings are the contract's (ipmpstat's)
// values: member state ok|failed|offline|unknown, link up|down|unknown,
// probe ok|failed|unknown|disabled, group state ok|degraded|failed.

struct DataAddress {
  std::string address;  // with prefix length, e.g. "198.18.1.10/24"
  std::string state;    // up|down
  std::string inbound;  // member holding it, "" if none
  std::string home;     // member it belongs on
  bool operator==(const DataAddress&) const = default;
};

// A shared (cluster-wide) address of a group on this node (SharedAddresses).
struct SharedAddress {
  std::string address;  // with prefix length
  std::string state;    // released|held|unserviceable
  std::string holder;   // member carrying it, "" when released
  std::string reason;   // of the last transition
  std::string detail;   // why it is unserviceable / was released by mpathd
  bool operator==(const SharedAddress&) const = default;
};

struct GroupView {
  std::string path;
  std::string name;
  std::string group_interface;  // ipmpstat's GROUP column, e.g. ipmp0
  std::string state;
  std::string reason;
  std::uint64_t fdt_ms = 0;  // FailureDetectionTime in force
  bool failback = true;
  std::vector<std::string> members;  // interface names, in the daemon's order
  std::vector<DataAddress> data_addresses;
  std::vector<SharedAddress> shared;  // SharedAddresses
  bool operator==(const GroupView&) const = default;
};

struct Target {
  std::string address;
  std::uint64_t rtt_avg_usec = 0;
  std::uint64_t rtt_dev_usec = 0;
  bool operator==(const Target&) const = default;
};

struct InterfaceView {
  std::string path;
  std::string name;
  std::uint32_t index = 0;
  std::string group;  // group name, "" when tracked without a group
  std::string state;
  bool active = false;
  std::vector<std::string> flags;  // subset of FAILED RUNNING STANDBY INACTIVE OFFLINE HWADDRDUP
  bool standby = false;
  std::string link;
  std::string probe;
  std::string reason;
  std::uint64_t last_change_usec = 0;  // CLOCK_REALTIME
  std::string hwaddr;
  std::vector<std::string> link_flags;  // the kernel's: UP BROADCAST MULTICAST LOWER_UP ...
  std::vector<std::string> test_addresses;
  std::string target_mode;       // routes|multicast|static|arp|disabled
  std::vector<Target> targets;   // firing order
  std::map<std::string, std::uint64_t> counters;

  bool has_flag(std::string_view f) const;
  bool has_link_flag(std::string_view f) const;
  bool operator==(const InterfaceView&) const = default;
};

struct ManagerView {
  std::string version;
  std::uint64_t fdt_ms = 0;
  bool failback = true;
  bool track_interfaces_only_with_groups = false;
  std::uint32_t notification_count = 0;
  std::uint64_t notification_interval_ms = 0;
  std::string registry_level;         // ebpf|sock-diag (RegistryLevel)
  std::string registry_level_reason;  // why not ebpf, "" when it is
  // Association replication over Corosync CPG (Replication, ReplicationReason): not in
  // GetState, nor in snapshot_from_objects() (same Snapshot); Client::read_replication().
  std::string replication;         // joined|off
  std::string replication_reason;  // why it is off, "" when joined
  bool operator==(const ManagerView&) const = default;
};

struct Snapshot {
  ManagerView manager;
  std::vector<GroupView> groups;          // in the Manager's Groups order
  std::vector<InterfaceView> interfaces;  // in the Manager's Interfaces order

  const GroupView* find_group(std::string_view name) const;
  const InterfaceView* find_interface(std::string_view name) const;
  bool operator==(const Snapshot&) const = default;
};

// ------------------------------------------------------------------ events

struct InterfaceStateChanged {
  std::string interface;
  std::string old_state, new_state;
  std::vector<std::string> old_flags, new_flags;
  std::string reason;
};

struct GroupStateChanged {
  std::string group;
  std::string old_state, new_state;
  std::string reason;
};

struct AddressMoved {
  std::string group;
  std::string address;
  std::string from_interface, to_interface;
  std::string reason;
};

// A shared address changed state or, while held, moved between members.
struct SharedAddressChanged {
  std::string group;
  std::string address;
  std::string old_state, new_state;  // released|held|unserviceable
  std::string from_interface, to_interface;
  std::string reason;
  std::string detail;
};

struct ProbeResult {
  std::string interface;
  std::uint32_t sequence = 0;
  std::string target;
  bool acked = false;
  std::uint64_t net_rtt_usec = 0, rtt_usec = 0, rtt_avg_usec = 0, rtt_dev_usec = 0;  // 0 = unknown
};

enum class ObjectKind : std::uint8_t { manager, group, interface, other };

struct ObjectChange {
  ObjectKind kind = ObjectKind::other;
  std::string name;  // group or interface name (decoded from the path)
  std::string path;
};

// Set the callbacks you want; subscribe() only asks the bus for those signals.
struct Callbacks {
  std::function<void(const InterfaceStateChanged&)> interface_state_changed;
  std::function<void(const GroupStateChanged&)> group_state_changed;
  std::function<void(const AddressMoved&)> address_moved;
  std::function<void(const SharedAddressChanged&)> shared_address_changed;
  std::function<void(const ProbeResult&)> probe_result;
  std::function<void(const ObjectChange&)> object_added;
  std::function<void(const ObjectChange&)> object_removed;
  // The daemon left (false) or (re)appeared (true) on the bus.
  std::function<void(bool present)> daemon_presence;
};

// Why run() returned.
enum class Wake : std::uint8_t { stopped, timeout, fd_ready };

// The object path of a group or interface (sd_bus_path_encode), and back.
std::string group_path(std::string_view name);
std::string interface_path(std::string_view name);
std::optional<ObjectChange> decode_path(std::string_view path);

// ------------------------------------------------------------------ the client

class Client {
 public:
  // The system bus (or $DBUS_SYSTEM_BUS_ADDRESS). Does not check that mpathd runs.
  static Result<Client> connect();
  // Any bus address, e.g. "unix:path=/run/test/bus" (for tests and agents).
  static Result<Client> connect_address(const std::string& address);
  // mpathd itself over its direct socket `path`, without a bus (root only). Calls and
  // properties work as on the bus; subscribe() fails (no signals there).
  static Result<Client> connect_direct(const std::string& path);
  // For one-shot calls: connect_direct() when the caller is root and the socket
  // answers, else connect(). The socket is $MPATHD_SOCKET, else kDirectSocket unless
  // $DBUS_SYSTEM_BUS_ADDRESS is set (a caller that names a bus means that bus).
  static Result<Client> connect_nearest();
  // Whether this client talks to mpathd directly (no bus, no signals).
  bool direct() const;

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Timeout of method calls (default 25 s, sd-bus' default).
  void set_call_timeout(std::chrono::milliseconds t);

  // Everything at once: one Manager.GetState call (a daemon without it, or with
  // another GetState signature, is read with snapshot_from_objects()).
  Result<Snapshot> snapshot();
  // The same from the standard interfaces: one GetManagedObjects call (plus a
  // Properties.GetAll of the Manager if the object manager does not list it). Slower
  // (about 10x at 64 groups x 4, bench/dbus.py); the same Snapshot.
  Result<Snapshot> snapshot_from_objects();
  // The Manager's Replication and ReplicationReason properties into v (two Gets; a
  // daemon without them leaves v as it was).
  Result<void> read_replication(ManagerView& v);

  // Admin actions; each is one Manager method (needs root, uid 0).
  Result<void> offline(const std::string& ifname);
  Result<void> online(const std::string& ifname);
  Result<void> move_address(const std::string& address, const std::string& ifname);
  Result<std::string> create_group(const std::string& name, const std::string& group_interface);
  Result<void> destroy_group(const std::string& name);
  Result<std::string> add_member(const std::string& group, const std::string& ifname,
                                 bool standby);
  Result<void> remove_member(const std::string& ifname);
  Result<void> add_data_address(const std::string& group, const std::string& address);
  Result<void> remove_data_address(const std::string& group, const std::string& address);
  Result<void> reload();
  // Shared addresses (address with or without its prefix length).
  Result<void> takeover_shared(const std::string& address);
  Result<void> release_shared(const std::string& address);
  // The association registry of a shared address as JSON text, and an import of one
  // (returns the entries held for it).
  Result<std::string> export_associations(const std::string& address);
  Result<std::uint32_t> import_associations(const std::string& address, const std::string& json);

  // Installs bus matches for the callbacks set in `cb` (replacing earlier ones). The
  // matches are in place when this returns, so a snapshot() taken afterwards cannot
  // miss a change: subscribe first, then read the state, then run().
  Result<void> subscribe(Callbacks cb);

  // Dispatches queued messages without blocking.
  Result<void> process();
  // Dispatches messages for up to `timeout` (negative: no limit) or until a callback
  // calls stop(), or until `wake_fd` (if >= 0) becomes readable.
  Result<Wake> run(std::chrono::milliseconds timeout, int wake_fd = -1);
  void stop();

  // For integration into another event loop: poll fd() for events() and call process().
  int fd() const;
  short events() const;

 struct Impl;  // opaque (sd-bus lives in client.cpp)

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpathd::client
