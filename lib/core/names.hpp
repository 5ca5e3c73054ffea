// Validation of names that come from users (config, D-Bus, CLI).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mpathd {

// Group names: 1..32 characters of [A-Za-z0-9_.-].
bool valid_group_name(std::string_view name);
// Linux interface names: 1..15 bytes, no '/', ':' or whitespace, not "." or "..".
bool valid_ifname(std::string_view name);

}  // namespace mpathd

namespace mpathd {

// systemd unit names a unit can be started by (systemd.unit(5)): PREFIX[@INSTANCE].TYPE,
// at most 255 characters of [A-Za-z0-9:_.\-] (and one '@'), TYPE one of systemd's unit
// types; a template without instance (foo@.service) cannot be started. nullopt when
// valid, else why not.
std::optional<std::string> unit_name_problem(std::string_view name);

}  // namespace mpathd
