// The names of the hook events (mpathd.conf's `events`, MPATHD_EVENT of exec hooks),
// apart from the hook hosts so that the config parser needs nothing else of them.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace mpathd {

// Indexed by the type numbers of mpathd/hook.h (0 unused).
inline constexpr std::array<std::string_view, 15> kHookEventNames = {
    "",          "member-changed", "group-changed", "address-moved", "takeover-before",
    "takeover-after", "release-before", "release-after", "bind", "unbind",
    "listen",    "unlisten",       "connect",       "disconnect",    "udp-association"};

inline std::optional<unsigned> hook_event_type(std::string_view name) {
  for (unsigned i = 1; i < kHookEventNames.size(); ++i)
    if (kHookEventNames[i] == name) return i;
  return std::nullopt;
}

}  // namespace mpathd
