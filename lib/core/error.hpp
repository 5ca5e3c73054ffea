// Expected failures are values: std::expected<T, Error>. Edges translate the code
// into an exit status or a D-Bus error name.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace mpathd {

enum class Errc : std::uint8_t {
  invalid_argument,
  no_such_group,
  no_such_interface,
  last_usable_member,  // would leave the group without a usable member
  already_offline,
  not_offline,
  hwaddr_duplicate,
  exists,
  busy,
  system,  // errno-style failure at the kernel edge
  config,
  not_in_group,
  no_such_address,
  not_usable,
};

inline constexpr std::array<std::string_view, 14> kErrcNames{
    "invalid-argument", "no-such-group",    "no-such-interface", "last-usable-member",
    "already-offline",  "not-offline",      "hwaddr-duplicate",  "exists",
    "busy",             "system",           "config",            "not-in-group",
    "no-such-address",  "not-usable",
};

inline std::string_view to_string(Errc e) { return kErrcNames[static_cast<std::size_t>(e)]; }

struct Error {
  Errc code = Errc::system;
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected(Error{code, std::move(message)});
}

}  // namespace mpathd
