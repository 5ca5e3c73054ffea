// Engine events -> D-Bus signals, in the order the Engine publishes them. Emitting
// never throws into the Engine: failures are logged and dropped.
#include <spdlog/spdlog.h>

#include <cstring>
#include <variant>

#include "core/enums.hpp"
#include "dbus/bus.hpp"

namespace mpathd::dbus {

namespace {

void log_failure(const char* what, const std::string& path, int r) {
  spdlog::debug("D-Bus: cannot emit {} on {}: {}", what, path, std::strerror(-r));
}

std::string str(auto e) { return std::string(to_string(e)); }

bool active(const MemberSnapshot& s) { return s.state == MemberState::ok && !(s.flags & flag::inactive); }

// A signal whose arguments are strings ('s') and string arrays ('a' = as), in order.
struct Arg {
  const std::string* s = nullptr;
  const std::vector<std::string>* v = nullptr;
};

int emit(sd_bus* bus, const std::string& path, const char* iface, const char* member, std::initializer_list<Arg> args) {
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_signal(bus, &m, path.c_str(), iface, member);
  for (const auto& a : args)
    if (r >= 0) r = a.s ? sd_bus_message_append_basic(m, 's', a.s->c_str()) : append_strings(m, 's', *a.v);
  if (r >= 0) r = sd_bus_send(bus, m, nullptr);
  sd_bus_message_unref(m);
  return r;
}

}  // namespace

void Service::Impl::emit_changed(const std::string& path, const char* iface, std::vector<const char*> names) noexcept {
  if (!bus) return;  // disconnected: the state is announced after the reconnect
  try {
    names.push_back(nullptr);
    int r = sd_bus_emit_properties_changed_strv(bus, path.c_str(), iface, const_cast<char**>(names.data()));
    if (r < 0) log_failure("PropertiesChanged", path, r);
  } catch (const std::exception& e) {
    spdlog::warn("D-Bus: PropertiesChanged on {}: {}", path, e.what());
  }
}

void Service::Impl::changed(ServiceHooks::Reply reply) noexcept {
  try {
    if (!reply) reply = [](Result<void>) {};
    if (!hooks.after_change) return reply({});
    hooks.after_change(std::move(reply));
  } catch (const std::exception& e) {
    spdlog::warn("D-Bus: after a change: {}", e.what());
  } catch (...) {
    spdlog::warn("D-Bus: after a change: unknown exception");
  }
}

void Service::Impl::on_event(const Event& event) noexcept {
  if (std::holds_alternative<TopologyChanged>(event)) positions.clear();  // see member()
  try {
    std::visit(
        [&](const auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, MemberChanged>) {
            const auto path = interface_path(e.member);
            const auto old_state = str(e.before.state), new_state = str(e.after.state), reason = str(e.reason);
            const auto old_flags = flag_strings(e.before.flags), new_flags = flag_strings(e.after.flags);
            if (int r = emit(bus, path, kInterfaceIface, "StateChanged",
                             {{&old_state}, {&new_state}, {nullptr, &old_flags}, {nullptr, &new_flags}, {&reason}});
                r < 0)
              log_failure("Interface.StateChanged", path, r);
            std::vector<const char*> names{"Reason", "LastChangeUsec", "Counters"};
            if (e.before.state != e.after.state) names.push_back("State");
            if (e.before.flags != e.after.flags) names.push_back("Flags");
            if (active(e.before) != active(e.after)) names.push_back("Active");
            if (e.before.link != e.after.link) names.push_back("Link");
            if (e.before.probe != e.after.probe) names.push_back("Probe");
            // The kernel's index and MAC change without an event of their own.
            if (e.reason == Reason::interface_added || e.reason == Reason::interface_removed ||
                e.reason == Reason::interface_renamed ||
                e.reason == Reason::hwaddr_duplicate || e.reason == Reason::hwaddr_unique) {
              names.push_back("Index");
              names.push_back("HardwareAddress");
            }
            emit_changed(path, kInterfaceIface, std::move(names));
          } else if constexpr (std::is_same_v<T, GroupChanged>) {
            const auto path = group_path(e.group);
            const auto old_state = str(e.before), new_state = str(e.after), reason = str(e.reason);
            if (int r = emit(bus, path, kGroupIface, "StateChanged", {{&old_state}, {&new_state}, {&reason}}); r < 0)
              log_failure("Group.StateChanged", path, r);
            emit_changed(path, kGroupIface, {"State", "Reason"});
          } else if constexpr (std::is_same_v<T, AddressMoved>) {
            // The address with its prefix length, as in DataAddresses.
            const auto path = group_path(e.group);
            const auto address = e.address.str(), reason = str(e.reason);
            if (int r = emit(bus, path, kGroupIface, "AddressMoved", {{&address}, {&e.from}, {&e.to}, {&reason}});
                r < 0)
              log_failure("Group.AddressMoved", path, r);
            if (engine.find_group(e.group)) emit_changed(path, kGroupIface, {"DataAddresses"});
            for (const auto* member : {&e.from, &e.to})
              if (!member->empty() && engine.find_member(*member))
                emit_changed(interface_path(*member), kInterfaceIface, {"Counters"});
          } else if constexpr (std::is_same_v<T, ProbeCompleted>) {
            auto usec = [](Duration d) {
              return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
            };
            const auto path = interface_path(e.member);
            const auto target = e.target.str();
            int r = sd_bus_emit_signal(bus, path.c_str(), kInterfaceIface, "ProbeResult", "usbtttt", e.sequence,
                                       target.c_str(), static_cast<int>(e.acked), usec(e.net_rtt), usec(e.rtt),
                                       usec(e.rtt_avg), usec(e.rtt_dev));
            if (r < 0) log_failure("Interface.ProbeResult", path, r);
          } else if constexpr (std::is_same_v<T, LinkFlagsChanged>) {
            if (engine.find_member(e.member)) emit_changed(interface_path(e.member), kInterfaceIface, {"LinkFlags"});
          } else if constexpr (std::is_same_v<T, TargetsChanged>) {
            if (engine.find_member(e.member)) emit_changed(interface_path(e.member), kInterfaceIface, {"TargetMode", "Targets"});
          } else if constexpr (std::is_same_v<T, DataAddressesChanged>) {
            if (engine.find_group(e.group)) emit_changed(group_path(e.group), kGroupIface, {"DataAddresses"});
          } else if constexpr (std::is_same_v<T, SettingsChanged>) {
            if (e.group.empty())
              emit_changed(kRootPath, kManagerIface,
                           {"FailureDetectionTime", "Failback", "TrackInterfacesOnlyWithGroups", "NotificationCount",
                            "NotificationInterval"});
            else if (e.member.empty() && engine.find_group(e.group))
              emit_changed(group_path(e.group), kGroupIface,
                           {"GroupInterface", "FailureDetectionTime", "Failback", "SharedAddresses"});
            else if (!e.member.empty() && engine.find_member(e.member))
              emit_changed(interface_path(e.member), kInterfaceIface, {"Standby", "TestAddresses"});
          } else if constexpr (std::is_same_v<T, SharedAddressChanged>) {
            const auto path = group_path(e.group);
            const auto address = e.address.str(), before = str(e.before), after = str(e.after), reason = str(e.reason);
            if (int r = emit(bus, path, kGroupIface, "SharedAddressChanged",
                             {{&address}, {&before}, {&after}, {&e.from}, {&e.to}, {&reason}, {&e.detail}});
                r < 0)
              log_failure("Group.SharedAddressChanged", path, r);
            if (engine.find_group(e.group)) emit_changed(path, kGroupIface, {"SharedAddresses"});
          } else if constexpr (std::is_same_v<T, FdtChanged>) {
            if (engine.find_group(e.group)) emit_changed(group_path(e.group), kGroupIface, {"FailureDetectionTime"});
          } else if constexpr (std::is_same_v<T, TopologyChanged>) {
            const bool whole_group = e.member.empty();
            const auto path = whole_group ? group_path(e.group) : interface_path(e.member);
            bool still_there = !whole_group && engine.find_member(e.member);  // e.g. ungrouped again
            int r = 0;
            if (e.added) {
              r = sd_bus_emit_object_added(bus, path.c_str());
            } else if (still_there) {
              emit_changed(path, kInterfaceIface, {"Group", "State", "Active", "Flags", "Standby", "Reason"});
            } else {
              removing = path;
              r = sd_bus_emit_object_removed(bus, path.c_str());
              removing.clear();
            }
            if (r < 0) log_failure(e.added ? "InterfacesAdded" : "InterfacesRemoved", path, r);
            emit_changed(kRootPath, kManagerIface, {whole_group ? "Groups" : "Interfaces"});
            if (!whole_group && !e.group.empty() && engine.find_group(e.group))
              emit_changed(group_path(e.group), kGroupIface, {"Members"});
          }
        },
        event);
  } catch (const std::exception& e) {
    removing.clear();
    spdlog::warn("D-Bus: cannot announce '{}': {}", describe(event), e.what());
  } catch (...) {
    removing.clear();
    spdlog::warn("D-Bus: cannot announce '{}'", describe(event));
  }
}

}  // namespace mpathd::dbus
