// Expected failures are values: std::expected<T, Error>. Edges translate the code
// into an exit status or a D-Bus error name.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "core/enums.hpp"

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
  not_shared,    // the address is not a configured shared address
  already_held,  // takeover of a shared address held here already
  not_held,      // release of a shared address that is released
};

template <>
struct EnumNames<Errc> {
  static constexpr std::array<std::string_view, 17> names{
      "invalid-argument", "no-such-group",    "no-such-interface", "last-usable-member",
      "already-offline",  "not-offline",      "hwaddr-duplicate",  "exists",
      "busy",             "system",           "config",            "not-in-group",
      "no-such-address",  "not-usable",       "not-shared",        "already-held",
      "not-held",
  };
};

// The D-Bus error names of the contract (dbus/org.ipmp.Mpathd1.xml), the one table used
// by the daemon (lib/dbus) and the client (lib/client): org.ipmp.Mpathd1.Error.<name>.
// Codes without a name of their own (busy, system, config) travel as "Failed", which
// comes back as Errc::system.
inline constexpr std::string_view kDbusErrorPrefix = "org.ipmp.Mpathd1.Error.";
inline constexpr std::string_view kDbusErrorFailed = "Failed";
inline constexpr std::array<std::string_view, 17> kErrcDbusNames{
    "InvalidArgument", "NoSuchGroup", "NoSuchInterface", "LastUsableMember",
    "AlreadyOffline",  "NotOffline",  "HwAddrDuplicate", "Exists",
    kDbusErrorFailed,  kDbusErrorFailed, kDbusErrorFailed, "NotInGroup",
    "NoSuchAddress",   "NotUsable",   "NotShared",       "AlreadyHeld",
    "NotHeld",
};
static_assert(kErrcDbusNames.size() == EnumNames<Errc>::names.size());

// "org.ipmp.Mpathd1.Error.NoSuchGroup" for Errc::no_such_group.
inline std::string dbus_error_name(Errc e) {
  return std::string(kDbusErrorPrefix) + std::string(kErrcDbusNames[static_cast<std::size_t>(e)]);
}

// The code of a contract error name ("NoSuchGroup" or the full name); "Failed" is
// Errc::system; nullopt for a name outside the contract.
inline std::optional<Errc> errc_from_dbus_name(std::string_view name) {
  if (name.starts_with(kDbusErrorPrefix)) name.remove_prefix(kDbusErrorPrefix.size());
  if (name == kDbusErrorFailed) return Errc::system;
  for (std::size_t i = 0; i < kErrcDbusNames.size(); ++i)
    if (kErrcDbusNames[i] == name) return static_cast<Errc>(i);
  return std::nullopt;
}

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
