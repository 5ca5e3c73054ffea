// D-Bus error names <-> client::Error. The names are the contract's
// (dbus/org.ipmp.Mpathd1.xml): org.ipmp.Mpathd1.Error.<Name>.
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "client/client.hpp"

namespace mpathd::client {

namespace {

struct NameEntry {
  std::string_view name;
  Errc errc;
};

// Every name of the contract. Errc values without a name of their own (busy, config)
// travel as Failed; Failed comes back as Errc::system.
constexpr std::array<NameEntry, 12> kNames{{
    {"InvalidArgument", Errc::invalid_argument},
    {"NoSuchGroup", Errc::no_such_group},
    {"NoSuchInterface", Errc::no_such_interface},
    {"LastUsableMember", Errc::last_usable_member},
    {"AlreadyOffline", Errc::already_offline},
    {"NotOffline", Errc::not_offline},
    {"HwAddrDuplicate", Errc::hwaddr_duplicate},
    {"Exists", Errc::exists},
    {"NotInGroup", Errc::not_in_group},
    {"NoSuchAddress", Errc::no_such_address},
    {"NotUsable", Errc::not_usable},
    {"Failed", Errc::system},
}};

bool one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  for (auto n : names)
    if (name == n) return true;
  return false;
}

}  // namespace

std::string error_name(Errc errc) {
  for (const auto& e : kNames)
    if (e.errc == errc) return std::string(kErrorPrefix) + std::string(e.name);
  return std::string(kErrorPrefix) + "Failed";
}

Error error_from_dbus(std::string_view name, std::string_view message) {
  Error e;
  e.dbus_name = std::string(name);
  e.message = std::string(message);
  if (name.starts_with(kErrorPrefix)) {
    auto rest = name.substr(kErrorPrefix.size());
    for (const auto& n : kNames) {
      if (n.name == rest) {
        e.failure = Failure::daemon;
        e.errc = n.errc;
        return e;
      }
    }
    e.failure = Failure::daemon;  // a newer daemon's error: a plain failure
    e.errc = Errc::system;
    return e;
  }
  if (one_of(name, {"org.freedesktop.DBus.Error.AccessDenied",
                    "org.freedesktop.DBus.Error.AuthFailed",
                    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"})) {
    e.failure = Failure::access_denied;
  } else if (one_of(name, {"org.freedesktop.DBus.Error.ServiceUnknown",
                           "org.freedesktop.DBus.Error.NameHasNoOwner",
                           "org.freedesktop.DBus.Error.NoServer",
                           "org.freedesktop.DBus.Error.NoNetwork",
                           "org.freedesktop.DBus.Error.Disconnected",
                           "org.freedesktop.DBus.Error.FileNotFound",
                           "org.freedesktop.DBus.Error.AddressInUse",
                           "org.freedesktop.DBus.Error.BadAddress",
                           "org.freedesktop.DBus.Error.Spawn.ServiceNotFound"})) {
    e.failure = Failure::unreachable;
  } else if (one_of(name, {"org.freedesktop.DBus.Error.NoReply",
                           "org.freedesktop.DBus.Error.Timeout",
                           "org.freedesktop.DBus.Error.TimedOut"})) {
    e.failure = Failure::no_reply;
  } else if (name == "org.freedesktop.DBus.Error.InvalidArgs") {
    e.failure = Failure::daemon;
    e.errc = Errc::invalid_argument;
  } else {
    e.failure = Failure::protocol;
  }
  return e;
}

Error error_from_errno(int negative_errno, std::string_view what) {
  int err = -negative_errno;
  Error e;
  e.message = std::string(what) + ": " + std::strerror(err);
  switch (err) {
    case EACCES:
    case EPERM:
      e.failure = Failure::access_denied;
      break;
    case ETIMEDOUT:
      e.failure = Failure::no_reply;
      break;
    case ENOENT:
    case ECONNREFUSED:
    case ECONNRESET:
    case ENOTCONN:
    case ENXIO:
    case EPIPE:
    case EHOSTDOWN:
    case ESHUTDOWN:
      e.failure = Failure::unreachable;
      break;
    default:
      e.failure = Failure::protocol;
      break;
  }
  return e;
}

std::string describe(const Error& e) {
  if (!e.message.empty()) return e.message;
  switch (e.failure) {
    case Failure::daemon: return std::string(to_string(e.errc));
    case Failure::unreachable: return "cannot contact mpathd -- is it running?";
    case Failure::access_denied: return "permission denied";
    case Failure::no_reply: return "mpathd did not answer in time";
    case Failure::protocol: return e.dbus_name.empty() ? "unexpected reply from mpathd" : e.dbus_name;
  }
  return "unknown error";
}

}  // namespace mpathd::client
