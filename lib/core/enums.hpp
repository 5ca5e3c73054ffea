// Every externally visible enum and its one string table. The strings are API
// (D-Bus, JSON, hooks, logs): add new values at the end, never rename.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpathd {

enum class MemberState : std::uint8_t { unknown, ok, failed, offline };
enum class LinkState : std::uint8_t { unknown, up, down };
enum class ProbeState : std::uint8_t { disabled, unknown, ok, failed };
enum class GroupState : std::uint8_t { ok, degraded, failed };
// Where a member's probe targets come from (TargetSelector::mode). `arp` is part of
// the API (DESIGN.md §4) but not produced: a member probed by ARP takes its targets
// from routes or static config like any other and shows that source, which is what
// an administrator needs to check them; its probe kind is not a target source.
enum class TargetMode : std::uint8_t { disabled, routes, multicast, static_, arp };
enum class ProbeMethod : std::uint8_t { auto_, none, icmp, arp };
// A shared (cluster-wide) address on this node (DESIGN.md §5): not hosted here, held on
// an active member, or held but unserviceable (the group has no active member and
// release-shared-on-failure is off: it stays where it was until the group repairs).
enum class SharedState : std::uint8_t { released, held, unserviceable };

// Why something changed. Carried by every state transition and address move.
enum class Reason : std::uint8_t {
  none,
  startup,
  link_down,
  link_up,
  repaired,
  probe_loss,
  admin_offline,
  admin_online,
  group_failure,
  hwaddr_duplicate,
  hwaddr_unique,
  link_flapping,
  interface_added,
  interface_removed,
  member_added,
  member_removed,
  failover,
  failback,
  rebalance,
  admin_move,
  standby_needed,
  standby_released,
  config_reload,
  adopted,  // a shared address found in the kernel at start-up is held as it is
  address_added,
  address_removed,
  probing_started,
  probing_stopped,
  interface_renamed,
  admin_takeover,  // ipmpctl shared takeover / D-Bus TakeoverShared
  admin_release,   // ipmpctl shared release / D-Bus ReleaseShared
};

template <typename E>
struct EnumNames;  // specialised below: static constexpr std::array names

template <>
struct EnumNames<MemberState> {
  static constexpr std::array<std::string_view, 4> names{"unknown", "ok", "failed", "offline"};
};
template <>
struct EnumNames<LinkState> {
  static constexpr std::array<std::string_view, 3> names{"unknown", "up", "down"};
};
template <>
struct EnumNames<ProbeState> {
  static constexpr std::array<std::string_view, 4> names{"disabled", "unknown", "ok", "failed"};
};
template <>
struct EnumNames<GroupState> {
  static constexpr std::array<std::string_view, 3> names{"ok", "degraded", "failed"};
};
template <>
struct EnumNames<TargetMode> {
  static constexpr std::array<std::string_view, 5> names{"disabled", "routes", "multicast",
                                                          "static", "arp"};
};
template <>
struct EnumNames<ProbeMethod> {
  static constexpr std::array<std::string_view, 4> names{"auto", "none", "icmp", "arp"};
};
template <>
struct EnumNames<SharedState> {
  static constexpr std::array<std::string_view, 3> names{"released", "held", "unserviceable"};
};
template <>
struct EnumNames<Reason> {
  static constexpr std::array<std::string_view, 31> names{
      "none",           "startup",           "link-down",         "link-up",
      "repaired",       "probe-loss",        "admin-offline",     "admin-online",
      "group-failure",  "hwaddr-duplicate",  "hwaddr-unique",     "link-flapping",
      "interface-added", "interface-removed", "member-added",     "member-removed",
      "failover",       "failback",          "rebalance",         "admin-move",
      "standby-needed", "standby-released",  "config-reload",     "adopted",
      "address-added",  "address-removed",   "probing-started",   "probing-stopped",
      "interface-renamed", "admin-takeover",  "admin-release",
  };
};

template <typename E>
constexpr std::string_view to_string(E e) {
  const auto& names = EnumNames<E>::names;
  auto i = static_cast<std::size_t>(e);
  return i < names.size() ? names[i] : std::string_view{"invalid"};
}

// A name that ends where its literal does (a NUL follows): as .data(), a C string.
constexpr bool ends_in_nul(std::string_view s) { return s.data()[s.size()] == '\0'; }

// to_string() as a C string (for sd-bus, which takes char* and measures it itself):
// every name above is a whole literal, which the compiler checks here.
template <typename E>
constexpr const char* to_cstring(E e) {
  static_assert([] {
    for (std::string_view n : EnumNames<E>::names)
      if (!ends_in_nul(n)) return false;
    return true;
  }());
  return to_string(e).data();
}

template <typename E>
constexpr std::optional<E> enum_from_string(std::string_view s) {
  const auto& names = EnumNames<E>::names;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return static_cast<E>(i);
  return std::nullopt;
}

template <typename E>
constexpr std::size_t enum_count() {
  return EnumNames<E>::names.size();
}

// Member flags as the seed names them; RUNNING is the kernel's link state.
namespace flag {
inline constexpr std::uint32_t failed = 1u << 0;
inline constexpr std::uint32_t running = 1u << 1;
inline constexpr std::uint32_t standby = 1u << 2;
inline constexpr std::uint32_t inactive = 1u << 3;
inline constexpr std::uint32_t offline = 1u << 4;
inline constexpr std::uint32_t hwaddr_dup = 1u << 5;
}  // namespace flag

// The one table of flag names, in bit order; the strings are API (D-Bus Flags, JSON).
inline constexpr std::array<std::pair<std::uint32_t, std::string_view>, 6> kFlagNames{{
    {flag::failed, "FAILED"},
    {flag::running, "RUNNING"},
    {flag::standby, "STANDBY"},
    {flag::inactive, "INACTIVE"},
    {flag::offline, "OFFLINE"},
    {flag::hwaddr_dup, "HWADDRDUP"},
}};

// Flag names are handed to sd-bus as .data() (D-Bus Flags, LinkFlags below too).
template <std::size_t N>
constexpr bool names_end_in_nul(const std::array<std::pair<std::uint32_t, std::string_view>, N>& table) {
  for (const auto& entry : table)
    if (!ends_in_nul(entry.second)) return false;
  return true;
}
static_assert(names_end_in_nul(kFlagNames));

// The names of the bits set in `flags`, in table order; unknown bits are ignored.
std::vector<std::string> flag_strings(std::uint32_t flags);

// The kernel's interface flags (IFF_* of <linux/if.h>; lib/net checks the values), as
// the kernel reports them for a member. mpathd does not interpret them; they are shown
// (D-Bus LinkFlags, ipmpstat's m b M d FLAGS positions).
namespace link_flag {
inline constexpr std::uint32_t up = 1u << 0;
inline constexpr std::uint32_t broadcast = 1u << 1;
inline constexpr std::uint32_t loopback = 1u << 3;
inline constexpr std::uint32_t pointopoint = 1u << 4;
inline constexpr std::uint32_t running = 1u << 6;
inline constexpr std::uint32_t noarp = 1u << 7;
inline constexpr std::uint32_t promisc = 1u << 8;
inline constexpr std::uint32_t allmulti = 1u << 9;
inline constexpr std::uint32_t multicast = 1u << 12;
inline constexpr std::uint32_t lower_up = 1u << 16;
inline constexpr std::uint32_t dormant = 1u << 17;
}  // namespace link_flag

// Their names as `ip link` prints them, in bit order; the strings are API (D-Bus
// LinkFlags, JSON link_flags). Other bits are not reported.
inline constexpr std::array<std::pair<std::uint32_t, std::string_view>, 11> kLinkFlagNames{{
    {link_flag::up, "UP"},
    {link_flag::broadcast, "BROADCAST"},
    {link_flag::loopback, "LOOPBACK"},
    {link_flag::pointopoint, "POINTOPOINT"},
    {link_flag::running, "RUNNING"},
    {link_flag::noarp, "NOARP"},
    {link_flag::promisc, "PROMISC"},
    {link_flag::allmulti, "ALLMULTI"},
    {link_flag::multicast, "MULTICAST"},
    {link_flag::lower_up, "LOWER_UP"},
    {link_flag::dormant, "DORMANT"},
}};

static_assert(names_end_in_nul(kLinkFlagNames));

// The names of the link flags set in `flags`, in table order; other bits are ignored.
std::vector<std::string> link_flag_strings(std::uint32_t flags);

}  // namespace mpathd
