// Logging with structured fields. Call sites that log about a group, an interface or an
// address pass those as Fields; under systemd the journal sink (journal.hpp) sends them
// as MPATHD_GROUP=, INTERFACE=, MPATHD_ADDRESS=, MPATHD_REASON= (and MESSAGE_ID= for the
// lines the man page lists), on stderr they are left out and the line is as before.
// Lines without fields keep using spdlog directly.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/events.hpp"

namespace mpathd::log {

// The stable MESSAGE_IDs of mpathd(8). API: never change one.
namespace message_id {
inline constexpr std::string_view member_changed = "fb79ea4b8c134896821d1ef7561ecabd";  // member state/flags/probe
inline constexpr std::string_view group_changed = "d62823d4a2e34e74bb7fa77fb4865400";   // group state
inline constexpr std::string_view address_moved = "8c0780ab5a7240bcb048abcd3287634d";   // failover, failback, ...
inline constexpr std::string_view shared_changed = "6d581b6699754785992db1c87bb62256";  // shared address state/holder
}  // namespace message_id

struct Fields {
  std::string group;      // MPATHD_GROUP=
  std::string interface;  // INTERFACE=
  std::string address;    // MPATHD_ADDRESS= (without prefix length)
  std::string reason;     // MPATHD_REASON=
  std::string_view message_id;                              // MESSAGE_ID=, one of the above
  std::vector<std::pair<std::string, std::string>> extra;  // more KEY=value pairs
};

// Fields of a line about a member (group may be "") and about an address on an interface.
inline Fields member_fields(std::string group, std::string interface) {
  Fields f;
  f.group = std::move(group);
  f.interface = std::move(interface);
  return f;
}
inline Fields address_fields(std::string interface, std::string address) {
  Fields f;
  f.interface = std::move(interface);
  f.address = std::move(address);
  return f;
}

// The fields of the line being logged right now, for sinks; null for a plain line. The
// daemon is single-threaded; thread_local keeps it correct anyway.
inline thread_local const Fields* current = nullptr;

template <typename... Args>
void write(spdlog::level::level_enum level, const Fields& fields, spdlog::format_string_t<Args...> fmt,
           Args&&... args) {
  if (!spdlog::should_log(level)) return;
  const Fields* outer = std::exchange(current, &fields);
  spdlog::log(level, fmt, std::forward<Args>(args)...);
  current = outer;
}

// An Engine event as a log line: its level, its fields and its MESSAGE_ID.
spdlog::level::level_enum level_of(const Event& e);
Fields fields_of(const Event& e);
void event(const Event& e);

}  // namespace mpathd::log
