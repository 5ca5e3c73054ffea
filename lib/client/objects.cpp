#include "client/objects.hpp"

#include <algorithm>
#include <set>

namespace mpathd::client::detail {

namespace {

template <typename T>
void take(const Properties& p, std::string_view name, T& out) {
  auto it = p.find(name);
  if (it == p.end()) return;
  if (const T* v = std::get_if<T>(&it->second)) out = *v;
}

// "ao" lists of paths to names: the Name of the object if we have it, else the
// decoded last path element.
std::string name_of(const ObjectMap& objects, std::string_view iface, const std::string& path) {
  if (auto o = objects.find(path); o != objects.end()) {
    if (auto i = o->second.find(iface); i != o->second.end()) {
      std::string name;
      take(i->second, "Name", name);
      if (!name.empty()) return name;
    }
  }
  if (auto d = decode_path(path)) return d->name;
  return path;
}

}  // namespace

void apply(ManagerView& v, const Properties& p) {
  take(p, "Version", v.version);
  take(p, "FailureDetectionTime", v.fdt_ms);
  take(p, "Failback", v.failback);
  take(p, "TrackInterfacesOnlyWithGroups", v.track_interfaces_only_with_groups);
  take(p, "NotificationCount", v.notification_count);
  take(p, "NotificationInterval", v.notification_interval_ms);
  take(p, "RegistryLevel", v.registry_level);
  take(p, "RegistryLevelReason", v.registry_level_reason);
}

void apply(GroupView& v, const Properties& p) {
  take(p, "Name", v.name);
  take(p, "GroupInterface", v.group_interface);
  take(p, "State", v.state);
  take(p, "Reason", v.reason);
  take(p, "FailureDetectionTime", v.fdt_ms);
  take(p, "Failback", v.failback);
  take(p, "Members", v.members);  // paths; build_snapshot turns them into names
  take(p, "DataAddresses", v.data_addresses);
  take(p, "SharedAddresses", v.shared);
}

void apply(InterfaceView& v, const Properties& p) {
  take(p, "Name", v.name);
  take(p, "Index", v.index);
  take(p, "Group", v.group);
  take(p, "State", v.state);
  take(p, "Active", v.active);
  take(p, "Flags", v.flags);
  take(p, "Standby", v.standby);
  take(p, "Link", v.link);
  take(p, "Probe", v.probe);
  take(p, "Reason", v.reason);
  take(p, "LastChangeUsec", v.last_change_usec);
  take(p, "HardwareAddress", v.hwaddr);
  take(p, "LinkFlags", v.link_flags);
  take(p, "TestAddresses", v.test_addresses);
  take(p, "TargetMode", v.target_mode);
  take(p, "Targets", v.targets);
  take(p, "Counters", v.counters);
}

Snapshot build_snapshot(const ObjectMap& objects, const Properties& manager) {
  Snapshot s;
  apply(s.manager, manager);
  std::vector<std::string> group_order, interface_order;
  take(manager, "Groups", group_order);
  take(manager, "Interfaces", interface_order);

  std::map<std::string, GroupView> groups;          // by path
  std::map<std::string, InterfaceView> interfaces;  // by path
  for (const auto& [path, ifaces] : objects) {
    if (auto g = ifaces.find(kGroupInterface); g != ifaces.end()) {
      GroupView v;
      v.path = path;
      apply(v, g->second);
      if (v.name.empty()) v.name = name_of(objects, kGroupInterface, path);
      std::vector<std::string> names;
      names.reserve(v.members.size());
      for (const auto& m : v.members) names.push_back(name_of(objects, kInterfaceInterface, m));
      v.members = std::move(names);
      groups.emplace(path, std::move(v));
    }
    if (auto i = ifaces.find(kInterfaceInterface); i != ifaces.end()) {
      InterfaceView v;
      v.path = path;
      apply(v, i->second);
      if (v.name.empty()) v.name = name_of(objects, kInterfaceInterface, path);
      interfaces.emplace(path, std::move(v));
    }
  }

  auto ordered = [](auto& by_path, const std::vector<std::string>& order, auto& out) {
    for (const auto& path : order) {
      if (auto it = by_path.find(path); it != by_path.end()) {
        out.push_back(std::move(it->second));
        by_path.erase(it);
      }
    }
    std::size_t first_rest = out.size();
    for (auto& [path, v] : by_path) out.push_back(std::move(v));
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(first_rest), out.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
  };
  ordered(groups, group_order, s.groups);
  ordered(interfaces, interface_order, s.interfaces);
  return s;
}

}  // namespace mpathd::client::detail
