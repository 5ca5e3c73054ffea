// Validation of names that come from users (config, D-Bus, CLI).
#pragma once

#include <string_view>

namespace mpathd {

// Group names: 1..32 characters of [A-Za-z0-9_.-].
bool valid_group_name(std::string_view name);
// Linux interface names: 1..15 bytes, no '/', ':' or whitespace, not "." or "..".
bool valid_ifname(std::string_view name);

}  // namespace mpathd
