#include "views.hpp"

#include <cstdio>
#include <set>

namespace ipmpctl {

namespace {

using client::GroupView;
using client::InterfaceView;
using client::Snapshot;
using nlohmann::json;

std::string join(const std::vector<std::string>& v, std::string_view sep = " ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

bool is_v6(const std::string& addr) { return addr.find(':') != std::string::npos; }

std::string object_kind(client::ObjectKind k) {
  switch (k) {
    case client::ObjectKind::manager: return "manager";
    case client::ObjectKind::group: return "group";
    case client::ObjectKind::interface: return "interface";
    case client::ObjectKind::other: break;
  }
  return "object";
}

}  // namespace

std::string format_seconds_ms(std::uint64_t ms) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string format_seconds(double s) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2fs", s);
  return buf;
}

std::string format_usec_ms(std::uint64_t usec) {
  if (usec == 0) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2fms", static_cast<double>(usec) / 1000.0);
  return buf;
}

std::string strip_prefix(const std::string& addr) { return addr.substr(0, addr.find('/')); }

bool usable(const InterfaceView& i) { return i.state != "failed" && i.state != "offline"; }

std::string flags_string(const InterfaceView& i) {
  std::string f = "-------";
  if (i.has_flag("INACTIVE")) f[0] = 'i';
  if (i.standby || i.has_flag("STANDBY")) f[1] = 's';
  // m b M d from the kernel's interface flags (LinkFlags). Linux has no per-group
  // multicast/broadcast nomination and one IFF_MULTICAST for both families, so m and M
  // are set together; d is an interface that is administratively down (no IFF_UP).
  // Nothing is known while the kernel has no such interface: all four stay '-'.
  if (!i.link_flags.empty()) {
    if (i.has_link_flag("MULTICAST")) f[2] = 'm';
    if (i.has_link_flag("BROADCAST")) f[3] = 'b';
    if (i.has_link_flag("MULTICAST")) f[4] = 'M';
    if (!i.has_link_flag("UP")) f[5] = 'd';
  }
  if (i.has_flag("HWADDRDUP")) f[6] = 'h';
  return f;
}

std::string interfaces_column(const GroupView& g, const Snapshot& s) {
  std::vector<std::string> active, inactive, unusable;
  for (const auto& name : g.members) {
    const InterfaceView* i = s.find_interface(name);
    if (!i) {
      unusable.push_back(name);  // listed by the group but not (yet) exported
    } else if (!usable(*i)) {
      unusable.push_back(name);
    } else if (i->active) {
      active.push_back(name);
    } else {
      inactive.push_back(name);
    }
  }
  std::string out = join(active);
  auto add = [&out](const std::vector<std::string>& v, char open, char close) {
    if (v.empty()) return;
    if (!out.empty()) out += ' ';
    out += open + join(v) + close;
  };
  add(inactive, '(', ')');
  add(unusable, '[', ']');
  return out;
}

std::string fdt_column(const GroupView& g, const Snapshot& s) {
  bool probing = false;
  for (const auto& name : g.members) {
    const InterfaceView* i = s.find_interface(name);
    if (i && !i->probe.empty() && i->probe != "disabled") probing = true;
  }
  return probing ? format_seconds_ms(g.fdt_ms) : "";
}

std::vector<const InterfaceView*> ordered_interfaces(const Snapshot& s) {
  std::vector<const InterfaceView*> out;
  std::set<const InterfaceView*> seen;
  for (const auto& g : s.groups) {
    for (const auto& m : g.members) {
      const InterfaceView* i = s.find_interface(m);
      if (i && seen.insert(i).second) out.push_back(i);
    }
  }
  for (const auto& i : s.interfaces)
    if (seen.insert(&i).second) out.push_back(&i);
  return out;
}

std::vector<Row> group_rows(const Snapshot& s) {
  std::vector<Row> rows;
  for (const auto& g : s.groups)
    rows.push_back({g.group_interface, g.name, g.state, fdt_column(g, s), interfaces_column(g, s)});
  return rows;
}

std::vector<Row> interface_rows(const Snapshot& s) {
  std::vector<Row> rows;
  for (const InterfaceView* i : ordered_interfaces(s)) {
    const GroupView* g = i->group.empty() ? nullptr : s.find_group(i->group);
    rows.push_back({i->name, i->active ? "yes" : "no", g ? g->group_interface : "",
                    flags_string(*i), i->link, i->probe, i->state});
  }
  return rows;
}

std::vector<Row> address_rows(const Snapshot& s) {
  std::vector<Row> rows;
  for (const auto& g : s.groups) {
    // Outbound traffic from a data address leaves through the member that holds it
    // (docs/design-decisions.md), so OUTBOUND is the holder, not every active member.
    for (const auto& a : g.data_addresses) {
      bool up = a.state == "up";
      std::string inbound = up ? a.inbound : "";
      rows.push_back({strip_prefix(a.address), a.state, g.group_interface, inbound, inbound});
    }
  }
  return rows;
}

std::vector<Row> target_rows(const Snapshot& s) {
  std::vector<Row> rows;
  for (const InterfaceView* i : ordered_interfaces(s)) {
    // One row per address family with probing; a single "disabled" row otherwise.
    bool any = false;
    if (i->target_mode != "disabled" && !i->target_mode.empty()) {
      for (bool v6 : {false, true}) {
        std::vector<std::string> tests, targets;
        for (const auto& t : i->test_addresses)
          if (is_v6(t) == v6) tests.push_back(strip_prefix(t));
        for (const auto& t : i->targets)
          if (is_v6(t.address) == v6) targets.push_back(strip_prefix(t.address));
        if (tests.empty() && targets.empty()) continue;
        any = true;
        rows.push_back({i->name, i->target_mode, join(tests), join(targets)});
      }
    }
    if (!any) rows.push_back({i->name, i->target_mode.empty() ? "disabled" : i->target_mode, "", ""});
  }
  return rows;
}

std::vector<Row> shared_rows(const Snapshot& s) {
  std::vector<Row> rows;
  for (const auto& g : s.groups)
    for (const auto& a : g.shared) rows.push_back({strip_prefix(a.address), a.state, g.group_interface, a.holder, a.reason, a.detail});
  return rows;
}

std::vector<Row> registry_rows(const Snapshot& s) {
  const auto& m = s.manager;
  return {{m.registry_level, m.registry_level_reason, m.replication, m.replication_reason}};
}

std::vector<Row> association_rows(const json& list) {
  std::vector<Row> rows;
  auto endpoint = [](const json& e, const char* addr, const char* port) {
    const std::string a = e.value(addr, "");
    const unsigned p = e.value(port, 0u);
    const std::string host = is_v6(a) ? "[" + a + "]" : a;
    return p == 0 ? a : host + ":" + std::to_string(p);
  };
  for (const auto& e : list)
    rows.push_back({e.value("proto", ""), endpoint(e, "local", "local_port"), endpoint(e, "remote", "remote_port"),
                    e.value("state", ""), e.value("direction", ""), e.value("imported", false) ? "imported" : "local",
                    e.value("local", "")});
  return rows;
}

Row probe_row(const client::ProbeResult& p, double t) {
  auto d = [&p](std::uint64_t v) { return p.acked ? format_usec_ms(v) : std::string(); };
  return {format_seconds(t),    p.interface,        std::to_string(p.sequence),
          d(p.net_rtt_usec),    d(p.rtt_usec),      d(p.rtt_avg_usec),
          p.target,             d(p.rtt_dev_usec)};
}

// ------------------------------------------------------------------ JSON

namespace {
json shared_array(const GroupView& g) {
  json a = json::array();
  for (const auto& x : g.shared)
    a.push_back({{"address", x.address}, {"state", x.state}, {"holder", x.holder}, {"reason", x.reason},
                 {"detail", x.detail}});
  return a;
}
}  // namespace

json shared_json(const Snapshot& s) {
  json a = json::array();
  for (const auto& g : s.groups)
    for (auto x : shared_array(g)) {
      x["group"] = g.name;
      a.push_back(std::move(x));
    }
  return a;
}

json registry_json(const Snapshot& s) {
  const auto& m = s.manager;
  return {{"registry_level", m.registry_level},
          {"registry_level_reason", m.registry_level_reason},
          {"replication", m.replication},
          {"replication_reason", m.replication_reason}};
}

json group_json(const GroupView& g) {
  json addrs = json::array();
  for (const auto& a : g.data_addresses)
    addrs.push_back({{"address", a.address}, {"state", a.state}, {"inbound", a.inbound},
                     {"home", a.home}});
  return {{"name", g.name},
          {"group_interface", g.group_interface},
          {"state", g.state},
          {"reason", g.reason},
          {"failure_detection_time", g.fdt_ms},
          {"failback", g.failback},
          {"members", g.members},
          {"data_addresses", addrs},
          {"shared_addresses", shared_array(g)}};
}

namespace {
json targets_array(const InterfaceView& i) {
  json t = json::array();
  for (const auto& x : i.targets)
    t.push_back({{"address", x.address}, {"rtt_avg_usec", x.rtt_avg_usec},
                 {"rtt_dev_usec", x.rtt_dev_usec}});
  return t;
}
}  // namespace

json interface_json(const InterfaceView& i) {
  return {{"name", i.name},
          {"index", i.index},
          {"group", i.group},
          {"state", i.state},
          {"active", i.active},
          {"flags", i.flags},
          {"standby", i.standby},
          {"link", i.link},
          {"probe", i.probe},
          {"reason", i.reason},
          {"last_change_usec", i.last_change_usec},
          {"hardware_address", i.hwaddr},
          {"link_flags", i.link_flags},
          {"test_addresses", i.test_addresses},
          {"target_mode", i.target_mode},
          {"targets", targets_array(i)},
          {"counters", i.counters}};
}

json manager_json(const client::ManagerView& m) {
  return {{"version", m.version},
          {"failure_detection_time", m.fdt_ms},
          {"failback", m.failback},
          {"track_interfaces_only_with_groups", m.track_interfaces_only_with_groups},
          {"notification_count", m.notification_count},
          {"notification_interval", m.notification_interval_ms},
          {"registry_level", m.registry_level},
          {"registry_level_reason", m.registry_level_reason}};
}

json groups_json(const Snapshot& s) {
  json a = json::array();
  for (const auto& g : s.groups) a.push_back(group_json(g));
  return a;
}

json interfaces_json(const Snapshot& s) {
  json a = json::array();
  for (const InterfaceView* i : ordered_interfaces(s)) a.push_back(interface_json(*i));
  return a;
}

json addresses_json(const Snapshot& s) {
  json a = json::array();
  for (const auto& g : s.groups) {
    for (const auto& d : g.data_addresses) {
      bool placed = d.state == "up" && !d.inbound.empty();
      std::vector<std::string> outbound;
      if (placed) outbound.push_back(d.inbound);
      a.push_back({{"address", d.address},
                   {"state", d.state},
                   {"group", g.name},
                   {"group_interface", g.group_interface},
                   {"inbound", d.inbound},
                   {"home", d.home},
                   {"outbound", outbound}});
    }
  }
  return a;
}

json targets_json(const Snapshot& s) {
  json a = json::array();
  for (const InterfaceView* i : ordered_interfaces(s))
    a.push_back({{"name", i->name},
                 {"target_mode", i->target_mode},
                 {"test_addresses", i->test_addresses},
                 {"targets", targets_array(*i)}});
  return a;
}

json probe_json(const client::ProbeResult& p, double t) {
  return {{"time", t},
          {"interface", p.interface},
          {"sequence", p.sequence},
          {"target", p.target},
          {"acked", p.acked},
          {"net_rtt_usec", p.net_rtt_usec},
          {"rtt_usec", p.rtt_usec},
          {"rtt_avg_usec", p.rtt_avg_usec},
          {"rtt_dev_usec", p.rtt_dev_usec}};
}

// ------------------------------------------------------------------ events

std::string event_line(const client::InterfaceStateChanged& e) {
  return "interface " + e.interface + " " + e.old_state + " -> " + e.new_state + " (" +
         (e.reason.empty() ? "none" : e.reason) + ") flags [" + join(e.old_flags) + "] -> [" +
         join(e.new_flags) + "]";
}

std::string event_line(const client::GroupStateChanged& e) {
  return "group " + e.group + " " + e.old_state + " -> " + e.new_state + " (" +
         (e.reason.empty() ? "none" : e.reason) + ")";
}

std::string event_line(const client::AddressMoved& e) {
  auto or_none = [](const std::string& s) { return s.empty() ? std::string("--") : s; };
  return "address " + e.address + " moved " + or_none(e.from_interface) + " -> " +
         or_none(e.to_interface) + " in group " + e.group + " (" +
         (e.reason.empty() ? "none" : e.reason) + ")";
}

std::string event_line(const client::SharedAddressChanged& e) {
  auto or_none = [](const std::string& s) { return s.empty() ? std::string("--") : s; };
  std::string s = "shared address " + e.address + " " + e.old_state + " -> " + e.new_state + " [" +
                  or_none(e.from_interface) + " -> " + or_none(e.to_interface) + "] in group " + e.group + " (" +
                  (e.reason.empty() ? "none" : e.reason) + ")";
  return e.detail.empty() ? s : s + ": " + e.detail;
}

std::string event_line(const client::ProbeResult& e) {
  std::string s = "probe " + e.interface + " #" + std::to_string(e.sequence) + " " + e.target +
                  (e.acked ? " acked" : " lost");
  if (e.acked && e.rtt_usec) s += " rtt " + format_usec_ms(e.rtt_usec);
  return s;
}

std::string event_line(const client::ObjectChange& e, bool added) {
  return object_kind(e.kind) + " " + e.name + (added ? " added" : " removed");
}

json event_json(const client::InterfaceStateChanged& e) {
  return {{"event", "interface_state_changed"}, {"interface", e.interface},
          {"old_state", e.old_state},           {"new_state", e.new_state},
          {"old_flags", e.old_flags},           {"new_flags", e.new_flags},
          {"reason", e.reason}};
}

json event_json(const client::GroupStateChanged& e) {
  return {{"event", "group_state_changed"}, {"group", e.group},
          {"old_state", e.old_state},       {"new_state", e.new_state},
          {"reason", e.reason}};
}

json event_json(const client::AddressMoved& e) {
  return {{"event", "address_moved"},
          {"group", e.group},
          {"address", e.address},
          {"from_interface", e.from_interface},
          {"to_interface", e.to_interface},
          {"reason", e.reason}};
}

json event_json(const client::SharedAddressChanged& e) {
  return {{"event", "shared_address_changed"},
          {"group", e.group},
          {"address", e.address},
          {"old_state", e.old_state},
          {"new_state", e.new_state},
          {"from_interface", e.from_interface},
          {"to_interface", e.to_interface},
          {"reason", e.reason},
          {"detail", e.detail}};
}

json event_json(const client::ProbeResult& e) {
  json j = probe_json(e, 0);
  j.erase("time");
  j["event"] = "probe_result";
  return j;
}

json event_json(const client::ObjectChange& e, bool added) {
  return {{"event", added ? "object_added" : "object_removed"},
          {"kind", object_kind(e.kind)},
          {"name", e.name},
          {"path", e.path}};
}

}  // namespace ipmpctl
