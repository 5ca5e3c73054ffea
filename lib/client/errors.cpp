// D-Bus error names <-> client::Error. The contract's names (org.ipmp.Mpathd1.Error.<Name>)
// come from the one table in core/error.hpp, shared with the daemon.
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "client/client.hpp"

namespace mpathd::client {

namespace {

bool one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  for (auto n : names)
    if (name == n) return true;
  return false;
}

}  // namespace

std::string error_name(Errc errc) { return dbus_error_name(errc); }

Error error_from_dbus(std::string_view name, std::string_view message) {
  Error e;
  e.dbus_name = std::string(name);
  e.message = std::string(message);
  if (name.starts_with(kErrorPrefix)) {
    e.failure = Failure::daemon;
    // A name this client does not know is a newer daemon's error: a plain failure.
    e.errc = errc_from_dbus_name(name).value_or(Errc::system);
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
