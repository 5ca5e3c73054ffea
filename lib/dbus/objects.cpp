// Group and Interface objects: lookup by path, enumeration and property getters. Every
// get reads the Engine afresh by name: its vectors change as groups and members come
// and go, so no pointer is kept between calls.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/enums.hpp"
#include "dbus/bus.hpp"

namespace mpathd::dbus {

namespace {

// sd_bus_path_encode(prefix, name) in one allocation (sd-bus' takes three with our
// copy, and a GetState reply encodes every member's path twice): "_" for "", else every
// byte but [A-Za-z] (and [0-9] after the first) as _xx. A test compares the two.
std::string encode(std::string_view prefix, std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(prefix.size() + 1 + 3 * std::max<std::size_t>(name.size(), 1));
  s.append(prefix).push_back('/');
  if (name.empty()) s.push_back('_');
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alpha || (i > 0 && c >= '0' && c <= '9')) {
      s.push_back(static_cast<char>(c));
    } else {
      s.push_back('_');
      s.push_back(kHex[c >> 4]);
      s.push_back(kHex[c & 0xf]);
    }
  }
  return s;
}

std::uint64_t to_ms(Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms < 0 ? 0 : static_cast<std::uint64_t>(ms);
}

}  // namespace

// The two clocks are read at the first value. The offset between them is kept while it
// moves by less than a millisecond: read afresh for each reply, the two clock reads'
// jitter made one time point's value differ by a microsecond from one call to the next
// (one object read twice must say the same); a step or slew of the wall clock beyond
// that is still followed.
std::uint64_t WallClock::usec(TimePoint t) const {
  if (t == TimePoint{}) return 0;
  if (now_ == TimePoint{}) {
    now_ = Clock::now();
    const Duration offset = std::chrono::system_clock::now().time_since_epoch() - now_.time_since_epoch();
    static thread_local Duration kept = offset;
    if (offset - kept > std::chrono::milliseconds(1) || kept - offset > std::chrono::milliseconds(1)) kept = offset;
    offset_ = kept;
  }
  const auto real = (t < now_ ? t : now_).time_since_epoch() + offset_;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(real).count();
  return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}

namespace {

// The names of the bits set in `flags`, as an "as", straight from the table.
template <std::size_t N>
int append_flag_names(sd_bus_message* m, std::uint32_t flags,
                      const std::array<std::pair<std::uint32_t, std::string_view>, N>& table) {
  int r = sd_bus_message_open_container(m, 'a', "s");
  for (const auto& [bit, name] : table)
    if (r >= 0 && (flags & bit)) r = sd_bus_message_append_basic(m, 's', name.data());  // literals
  return r < 0 ? r : sd_bus_message_close_container(m);
}

char** to_strv(const std::vector<std::string>& items) {
  auto** v = static_cast<char**>(std::calloc(items.size() + 1, sizeof(char*)));
  if (!v) return nullptr;
  for (std::size_t i = 0; i < items.size(); ++i) {
    v[i] = strdup(items[i].c_str());
    if (!v[i]) {
      for (std::size_t j = 0; j < i; ++j) std::free(v[j]);
      std::free(static_cast<void*>(v));
      return nullptr;
    }
  }
  return v;
}

Service::Impl& impl_of(void* userdata) { return *static_cast<Service::Impl*>(userdata); }

}  // namespace

// --- Group ---------------------------------------------------------------------------

int group_property(sd_bus_message* reply, const Group& g, std::string_view p) {
  // Typed appends, not sd_bus_message_append's format string (see interface_property).
  auto s = [&](const char* v) { return sd_bus_message_append_basic(reply, 's', v); };
  auto str = [&](auto e) { return s(to_cstring(e)); };
  if (p == "Name") return s(g.name.c_str());
  if (p == "GroupInterface") return s(g.ifname.c_str());
  if (p == "State") return str(g.state);
  if (p == "Reason") return str(g.reason);
  if (p == "FailureDetectionTime") {
    const std::uint64_t ms = to_ms(g.fdt);
    return sd_bus_message_append_basic(reply, 't', &ms);
  }
  if (p == "Failback") {
    const int b = g.failback ? 1 : 0;
    return sd_bus_message_append_basic(reply, 'b', &b);
  }
  if (p == "Members") {
    int r = sd_bus_message_open_container(reply, 'a', "o");
    for (const auto& m : g.members)
      if (r >= 0) r = sd_bus_message_append_basic(reply, 'o', interface_path(m.name).c_str());
    return r < 0 ? r : sd_bus_message_close_container(reply);
  }
  if (p == "DataAddresses") {
    int r = sd_bus_message_open_container(reply, 'a', "(ssss)");
    for (const auto& a : g.data) {
      const bool up = g.up(a);
      if (r >= 0) r = sd_bus_message_open_container(reply, 'r', "ssss");
      if (r >= 0) r = s(a.prefix.str().c_str());
      if (r >= 0) r = s(up ? "up" : "down");
      if (r >= 0) r = s(up ? a.holder.c_str() : "");
      if (r >= 0) r = s(a.home.c_str());
      if (r >= 0) r = sd_bus_message_close_container(reply);
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
  }
  if (p == "SharedAddresses") {
    // (address/length, state, holder, reason, detail) per configured shared address.
    int r = sd_bus_message_open_container(reply, 'a', "(sssss)");
    for (const auto& a : g.shared) {
      if (r >= 0) r = sd_bus_message_open_container(reply, 'r', "sssss");
      if (r >= 0) r = s(a.prefix.str().c_str());
      if (r >= 0) r = str(a.state);
      if (r >= 0) r = s(a.holder.c_str());
      if (r >= 0) r = str(a.reason);
      if (r >= 0) r = s(a.detail.c_str());
      if (r >= 0) r = sd_bus_message_close_container(reply);
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
  }
  return -ENOENT;
}

namespace {

int get_group(sd_bus*, const char* path, const char*, const char* property, sd_bus_message* reply, void* userdata,
              sd_bus_error* error) {
  return guarded(error, [&]() -> int {
    auto name = path_name(path, kGroupPrefix);
    const Group* g = name ? impl_of(userdata).engine.find_group(*name) : nullptr;
    if (!g) return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "no group at %s", path);
    return group_property(reply, *g, property);
  });
}

}  // namespace

// --- Interface -----------------------------------------------------------------------

std::array<std::pair<const char*, std::uint64_t>, 7> counter_items(const Member& m) {
  const auto& c = m.counters;
  return {{{"state_changes", c.state_changes},
           {"failures", c.failures},
           {"repairs", c.repairs},
           {"link_ups", c.link_ups},
           {"link_downs", c.link_downs},
           {"addresses_in", c.addresses_in},
           {"addresses_out", c.addresses_out}}};
}

int interface_property(sd_bus_message* reply, const Group& g, const Member& m, std::string_view p,
                       const WallClock& clock) {
  // Typed appends (sd_bus_message_append_basic), not sd_bus_message_append's format
  // string: this runs for every property of every interface of a GetState reply.
  auto s = [&](const char* v) { return sd_bus_message_append_basic(reply, 's', v); };
  auto b = [&](bool v) {
    const int i = v ? 1 : 0;
    return sd_bus_message_append_basic(reply, 'b', &i);
  };
  auto t = [&](std::uint64_t v) { return sd_bus_message_append_basic(reply, 't', &v); };
  auto str = [&](auto e) { return s(to_cstring(e)); };
  if (p == "Name") return s(m.name.c_str());
  if (p == "Index") {
    const auto index = static_cast<std::uint32_t>(m.ifindex);
    return sd_bus_message_append_basic(reply, 'u', &index);
  }
  if (p == "Group") return s(g.name.c_str());
  if (p == "State") return str(m.state);
  if (p == "Active") return b(m.active());
  if (p == "Flags") return append_flag_names(reply, m.flags(), kFlagNames);
  if (p == "Standby") return b(m.standby);
  if (p == "Link") return str(m.link);
  if (p == "Probe") return str(m.probe);
  if (p == "Reason") return str(m.reason);
  if (p == "LastChangeUsec") return t(clock.usec(m.last_change));
  // "" while the kernel has not reported an address.
  if (p == "HardwareAddress") return s(m.mac.is_zero() ? "" : m.mac.str().c_str());
  if (p == "LinkFlags") return append_flag_names(reply, m.link_flags, kLinkFlagNames);
  if (p == "TestAddresses") {
    int r = sd_bus_message_open_container(reply, 'a', "s");
    for (const auto& a : m.test_addresses)
      if (r >= 0) r = s(a.str().c_str());
    return r < 0 ? r : sd_bus_message_close_container(reply);
  }
  if (p == "TargetMode") return str(m.target_mode);
  if (p == "Targets") {
    auto usec = [](Duration d) {
      return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    };
    int r = sd_bus_message_open_container(reply, 'a', "(stt)");
    for (const auto& target : m.targets) {
      if (r >= 0) r = sd_bus_message_open_container(reply, 'r', "stt");
      if (r >= 0) r = s(target.address.str().c_str());
      if (r >= 0) r = t(usec(target.rtt_avg));
      if (r >= 0) r = t(usec(target.rtt_dev));
      if (r >= 0) r = sd_bus_message_close_container(reply);
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
  }
  if (p == "Counters") {
    int r = sd_bus_message_open_container(reply, 'a', "{st}");
    for (auto [key, value] : counter_items(m)) {
      if (r >= 0) r = sd_bus_message_open_container(reply, 'e', "st");
      if (r >= 0) r = s(key);
      if (r >= 0) r = t(value);
      if (r >= 0) r = sd_bus_message_close_container(reply);
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
  }
  return -ENOENT;
}

namespace {

int get_interface(sd_bus*, const char* path, const char*, const char* property, sd_bus_message* reply,
                  void* userdata, sd_bus_error* error) {
  return guarded(error, [&]() -> int {
    auto name = path_name(path, kInterfacePrefix);
    const Group* g = nullptr;
    const Member* m = name ? impl_of(userdata).member(*name, &g) : nullptr;
    if (!m) return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "no interface at %s", path);
    return interface_property(reply, *g, *m, property, WallClock());
  });
}

constexpr auto kChange = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;
constexpr auto kConst = SD_BUS_VTABLE_PROPERTY_CONST;

}  // namespace

// --- shared helpers --------------------------------------------------------------------

const Member* Service::Impl::member(std::string_view name, const Group** group) {
  const auto& groups = engine.groups();
  auto group_at = [&](std::size_t i) -> const Group& { return i < groups.size() ? groups[i] : engine.anonymous(); };
  if (auto it = positions.find(std::string(name)); it != positions.end()) {
    const auto [gi, mi] = it->second;
    if (gi <= groups.size() && mi < group_at(gi).members.size() && group_at(gi).members[mi].name == name) {
      *group = &group_at(gi);
      return &group_at(gi).members[mi];
    }
    positions.erase(it);
  }
  const Group* g = engine.group_of(name);
  const Member* m = g ? g->find(name) : nullptr;
  if (!m) return nullptr;
  const std::size_t gi = g == &engine.anonymous() ? groups.size() : static_cast<std::size_t>(g - groups.data());
  positions[std::string(name)] = {gi, static_cast<std::size_t>(m - g->members.data())};
  *group = g;
  return m;
}

std::string group_path(std::string_view name) { return encode(kGroupPrefix, name); }
std::string interface_path(std::string_view ifname) { return encode(kInterfacePrefix, ifname); }

std::optional<std::string> path_name(const char* path, const char* prefix) {
  char* name = nullptr;
  int r = sd_bus_path_decode(path, prefix, &name);
  if (r <= 0 || !name) return std::nullopt;
  std::string s(name);
  std::free(name);
  if (s.empty() || s.find('/') != std::string::npos) return std::nullopt;
  return s;
}

int append_strings(sd_bus_message* m, char type, const std::vector<std::string>& items) {
  const char contents[] = {type, '\0'};
  int r = sd_bus_message_open_container(m, 'a', contents);
  for (const auto& s : items)
    if (r >= 0) r = sd_bus_message_append_basic(m, type, s.c_str());
  return r < 0 ? r : sd_bus_message_close_container(m);
}

std::vector<std::string> all_group_paths(const Engine& engine) {
  std::vector<std::string> out;
  for (const auto& g : engine.groups()) out.push_back(group_path(g.name));
  return out;
}

std::vector<std::string> all_interface_paths(const Engine& engine) {
  std::vector<std::string> out;
  auto add = [&](const Group& g) {
    for (const auto& m : g.members) {
      auto p = interface_path(m.name);
      // A name is one object even if it were listed twice (group member and ungrouped).
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(std::move(p));
    }
  };
  for (const auto& g : engine.groups()) add(g);
  add(engine.anonymous());
  return out;
}

int find_group(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error* error) {
  return guarded(error, [&]() -> int {
    auto& s = impl_of(userdata);
    auto name = path_name(path, kGroupPrefix);
    if (!name || (!s.engine.find_group(*name) && s.removing != path)) return 0;
    *found = userdata;
    return 1;
  });
}

int find_interface(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error* error) {
  return guarded(error, [&]() -> int {
    auto& s = impl_of(userdata);
    auto name = path_name(path, kInterfacePrefix);
    if (!name || (!s.engine.find_member(*name) && s.removing != path)) return 0;
    *found = userdata;
    return 1;
  });
}

int enumerate_groups(sd_bus*, const char*, void* userdata, char*** nodes, sd_bus_error* error) {
  return guarded(error, [&]() -> int {
    *nodes = to_strv(all_group_paths(impl_of(userdata).engine));
    return *nodes ? 0 : -ENOMEM;
  });
}

int enumerate_interfaces(sd_bus*, const char*, void* userdata, char*** nodes, sd_bus_error* error) {
  return guarded(error, [&]() -> int {
    *nodes = to_strv(all_interface_paths(impl_of(userdata).engine));
    return *nodes ? 0 : -ENOMEM;
  });
}

// clang-format off
const sd_bus_vtable kGroupVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Name", "s", get_group, 0, kConst),
    SD_BUS_PROPERTY("GroupInterface", "s", get_group, 0, kChange),
    SD_BUS_PROPERTY("State", "s", get_group, 0, kChange),
    SD_BUS_PROPERTY("Reason", "s", get_group, 0, kChange),
    SD_BUS_PROPERTY("FailureDetectionTime", "t", get_group, 0, kChange),
    SD_BUS_PROPERTY("Failback", "b", get_group, 0, kChange),
    SD_BUS_PROPERTY("Members", "ao", get_group, 0, kChange),
    SD_BUS_PROPERTY("DataAddresses", "a(ssss)", get_group, 0, kChange),
    SD_BUS_PROPERTY("SharedAddresses", "a(sssss)", get_group, 0, kChange),
    SD_BUS_SIGNAL_WITH_NAMES("StateChanged", "sss",
                             SD_BUS_PARAM(old_state) SD_BUS_PARAM(new_state) SD_BUS_PARAM(reason), 0),
    SD_BUS_SIGNAL_WITH_NAMES("AddressMoved", "ssss",
                             SD_BUS_PARAM(address) SD_BUS_PARAM(from_interface) SD_BUS_PARAM(to_interface)
                             SD_BUS_PARAM(reason), 0),
    SD_BUS_SIGNAL_WITH_NAMES("SharedAddressChanged", "sssssss",
                             SD_BUS_PARAM(address) SD_BUS_PARAM(old_state) SD_BUS_PARAM(new_state)
                             SD_BUS_PARAM(from_interface) SD_BUS_PARAM(to_interface) SD_BUS_PARAM(reason)
                             SD_BUS_PARAM(detail), 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable kInterfaceVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Name", "s", get_interface, 0, kConst),
    SD_BUS_PROPERTY("Index", "u", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Group", "s", get_interface, 0, kChange),
    SD_BUS_PROPERTY("State", "s", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Active", "b", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Flags", "as", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Standby", "b", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Link", "s", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Probe", "s", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Reason", "s", get_interface, 0, kChange),
    SD_BUS_PROPERTY("LastChangeUsec", "t", get_interface, 0, kChange),
    SD_BUS_PROPERTY("HardwareAddress", "s", get_interface, 0, kChange),
    SD_BUS_PROPERTY("LinkFlags", "as", get_interface, 0, kChange),
    SD_BUS_PROPERTY("TestAddresses", "as", get_interface, 0, kChange),
    SD_BUS_PROPERTY("TargetMode", "s", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Targets", "a(stt)", get_interface, 0, kChange),
    SD_BUS_PROPERTY("Counters", "a{st}", get_interface, 0, kChange),
    SD_BUS_SIGNAL_WITH_NAMES("StateChanged", "ssasass",
                             SD_BUS_PARAM(old_state) SD_BUS_PARAM(new_state) SD_BUS_PARAM(old_flags)
                             SD_BUS_PARAM(new_flags) SD_BUS_PARAM(reason), 0),
    // Emitted once probing exists (ipmpstat -p).
    SD_BUS_SIGNAL_WITH_NAMES("ProbeResult", "usbtttt",
                             SD_BUS_PARAM(sequence) SD_BUS_PARAM(target) SD_BUS_PARAM(acked)
                             SD_BUS_PARAM(net_rtt_usec) SD_BUS_PARAM(rtt_usec) SD_BUS_PARAM(rtt_avg_usec)
                             SD_BUS_PARAM(rtt_dev_usec), 0),
    SD_BUS_VTABLE_END,
};
// clang-format on

}  // namespace mpathd::dbus
