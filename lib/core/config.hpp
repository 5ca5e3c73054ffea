// The configuration model: what mpathd.conf says, as plain values. Parsing lives in
// lib/daemon (config_file.*); lib/core only consumes these structs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/enums.hpp"
#include "core/types.hpp"

namespace mpathd {

struct MemberConfig {
  std::string name;                    // kernel interface name
  bool standby = false;
  std::vector<IpPrefix> test_addresses;  // never move; probe sources (issue 3)
  bool operator==(const MemberConfig&) const = default;
};

// A route the group owns: installed via the member that holds the group's data
// addresses of that family, and into each holder's policy table.
struct RouteConfig {
  IpPrefix to;      // 0.0.0.0/0 for "default"
  IpAddress via;
  bool operator==(const RouteConfig&) const = default;
};

// A group's own settings: everything of a group but its identity (name), its members
// and its data addresses, which have events of their own. One value: a reload compares
// and applies it whole (Engine::reconfigure), so a setting added here reloads, and
// announces SettingsChanged, without further code.
struct GroupSettings {
  std::string interface;  // group interface name, e.g. ipmp0 (defaults to name)
  std::vector<IpPrefix> shared_addresses;
  std::vector<RouteConfig> routes;
  ProbeMethod probe_method = ProbeMethod::auto_;
  std::vector<IpAddress> targets;              // static probe targets
  std::optional<Duration> failure_detection_time;  // overrides the daemon value
  std::optional<bool> failback;                    // overrides the daemon value
  // When the whole group fails, its held shared addresses are released (so that no
  // address lingers on a node that cannot serve it); false keeps them, unserviceable.
  bool release_shared_on_failure = true;
  bool operator==(const GroupSettings&) const = default;
};

struct GroupConfig : GroupSettings {
  std::string name;
  std::vector<MemberConfig> members;
  std::vector<IpPrefix> data_addresses;

  GroupSettings& settings() { return *this; }
  const GroupSettings& settings() const { return *this; }
  bool operator==(const GroupConfig&) const = default;
};

// A [[hook]] (mpathd-hooks(7)): a plugin or a command run for chosen events, in a
// process of its own (mpathd-hookhost); or the built-in systemd hook, the data-service
// restarter (seed 003's stop_net/start_net), which asks systemd from mpathd's loop.
struct HookConfig {
  std::string name;
  std::string type;                  // "plugin", "exec", "systemd" or "node-attributes"
  std::string path;                  // plugin: the shared object
  std::vector<std::string> args;     // plugin: handed to its init
  std::vector<std::string> command;  // exec: argv
  std::uint32_t events = 0;          // bit 1 << type of mpathd/hook.h; 0 = all the plugin wants
  Duration timeout = seconds(5);     // per call (exec: per command; systemd: the wait for the stops)
  // systemd: for the shared address `address`, or every shared address of `group`:
  // units stopped before a release (the release waits for them, within `timeout`),
  // units started and units restarted once a takeover put the address in place.
  std::optional<IpAddress> address;
  std::string group;
  std::vector<std::string> stop_units, start_units, restart_units;
  bool operator==(const HookConfig&) const = default;
};

// The daemon-wide settings: everything in mpathd.conf outside the groups. One value,
// like GroupSettings: a reload compares and applies it whole (Engine::reconfigure).
struct DaemonSettings {
  // The FDT's one default and one minimum (DESIGN.md §2); probing clamps to the same.
  static constexpr Duration kDefaultFailureDetectionTime = seconds(10);
  static constexpr Duration kMinFailureDetectionTime = milliseconds(100);

  Duration failure_detection_time = kDefaultFailureDetectionTime;
  bool failback = true;
  bool track_interfaces_only_with_groups = true;
  unsigned notification_count = 3;          // gratuitous ARP / unsolicited NA repeats
  Duration notification_interval = seconds(1);
  unsigned link_flap_limit = 2;             // more link-ups than this within the window
  Duration link_flap_window = seconds(60);  // ... and the link is not trusted yet
  // After a member's probing starts (the interface appeared, the daemon started),
  // lost probes fail it only once this has passed or a first answer came (in.mpathd:
  // 40 s, for spanning tree); 0 = off.
  Duration probe_quiet_period{};
  // The event loop's thread runs SCHED_RR at this priority (1..99; 0 = normal
  // scheduling), so that a failover never waits for a CPU behind other work; its
  // children and later threads get normal scheduling (SCHED_RESET_ON_FORK).
  unsigned realtime_priority = 40;
  unsigned routing_table_base = 40000;      // policy table = base + member ifindex
  unsigned rule_priority = 1000;            // priority of "from <data address>" rules
  std::string metrics_file;                 // Prometheus text file; "" = no metrics
  std::vector<HookConfig> hooks;  // a reload restarts the hosts whose [[hook]] changed
  // Group health as Pacemaker node attributes (mpathd-<group> = usable members, set
  // with attrd_updater); off by default. The built-in hook [[hook]] type =
  // "node-attributes" switches it on too (this key is its older spelling).
  bool node_attributes = false;
  bool node_attributes_on() const {
    for (const auto& h : hooks)
      if (h.type == "node-attributes") return true;
    return node_attributes;
  }

  // The FDT a group asks for: its own, else the daemon's. The one place this rule is
  // written; what is in force may be more (Group::fdt, raised when RTTs need it).
  Duration failure_detection_time_of(const GroupSettings& g) const {
    return g.failure_detection_time.value_or(failure_detection_time);
  }
  // The failback a group asks for: its own, else the daemon's.
  bool failback_of(const GroupSettings& g) const { return g.failback.value_or(failback); }

  bool operator==(const DaemonSettings&) const = default;
};

struct Config : DaemonSettings {
  // The association registry of shared addresses (lib/cluster): the cgroup2 directory
  // its eBPF programs attach to ("" = none: the sock_diag fallback), and a switch.
  // Read at start only, so not DaemonSettings (which a reload applies whole).
  std::string association_cgroup;
  bool association_ebpf = true;
  // Association replication over Corosync CPG (lib/cluster/replication.hpp): on, the
  // process group's name, and the cap of associations per shared address. Start only.
  bool replication = true;
  std::string replication_group = "mpathd";
  unsigned replication_max_associations = 65536;
  std::vector<GroupConfig> groups;

  DaemonSettings& settings() { return *this; }
  const DaemonSettings& settings() const { return *this; }

  bool operator==(const Config&) const = default;
};

}  // namespace mpathd
