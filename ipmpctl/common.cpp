// Context, exit codes and messages shared by the verbs.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <iostream>
#include <ostream>

#include "core/persisted.hpp"
#include "core/validate.hpp"
#include "ipmpctl.hpp"

namespace ipmpctl {

using mpathd::Errc;

int Context::terminal_rows() const {
  return &out_ == &std::cout ? ipmpctl::terminal_rows(STDOUT_FILENO) : 0;
}

int exit_code(const client::Error& e) {
  switch (e.failure) {
    case client::Failure::unreachable:
    case client::Failure::no_reply:
      return kUnreachable;
    case client::Failure::access_denied:
      return kDenied;
    case client::Failure::protocol:
      return kFailure;
    case client::Failure::daemon:
      break;
  }
  switch (e.errc) {
    case Errc::invalid_argument:
      return kUsage;
    case Errc::no_such_group:
    case Errc::no_such_interface:
    case Errc::no_such_address:
    case Errc::not_in_group:
    case Errc::not_shared:
      return kNotFound;
    case Errc::last_usable_member:
    case Errc::already_offline:
    case Errc::not_offline:
    case Errc::hwaddr_duplicate:
    case Errc::exists:
    case Errc::not_usable:
    case Errc::busy:
    case Errc::already_held:
    case Errc::not_held:
      return kRefused;
    case Errc::system:
    case Errc::config:
      return kFailure;
  }
  return kFailure;
}

std::string reason_text(const client::Error& e) {
  switch (e.failure) {
    case client::Failure::unreachable:
      // The detail says which way failed (the system bus, or the bus had no mpathd).
      return "cannot contact mpathd -- is it running?" + (e.message.empty() ? "" : " (" + e.message + ")");
    case client::Failure::access_denied:
      return "permission denied (changes need root)";
    case client::Failure::no_reply:
      return "mpathd did not answer";
    case client::Failure::protocol:
      return client::describe(e);
    case client::Failure::daemon:
      break;
  }
  switch (e.errc) {
    case Errc::last_usable_member: return "no other functioning interface is in its group";
    case Errc::already_offline: return "interface is already offline";
    case Errc::not_offline: return "interface is not offline";
    case Errc::hwaddr_duplicate: return "interface has a duplicate hardware address";
    case Errc::no_such_group: return "no such group";
    case Errc::no_such_interface: return "no such interface";
    case Errc::no_such_address: return "no such address";
    case Errc::not_in_group: return "interface is not in a group";
    case Errc::not_usable: return "interface is not usable";
    case Errc::exists: return "already exists";
    case Errc::not_shared: return "not a shared address of any group";
    case Errc::already_held: return e.message;
    case Errc::not_held: return "not held here (released)";
    case Errc::busy: return e.message.empty() ? "busy" : e.message;
    default: break;
  }
  return client::describe(e);
}

std::string failure_message(std::string_view action, std::string_view object,
                            const client::Error& e) {
  std::string what = std::string(action);
  if (!object.empty()) what += " " + std::string(object);
  // Done, but not saved (a read-only or full state directory): say both.
  if (e.failure == client::Failure::daemon && e.errc == Errc::system &&
      e.message.starts_with(mpathd::kStateNotSaved))
    return what + ": done, but " + e.message;
  return "cannot " + what + ": " + reason_text(e);
}

client::Result<client::Client*> Context::client(bool signals) {
  if (!client_) {
    auto c = signals ? client::Client::connect() : client::Client::connect_nearest();
    if (!c) return std::unexpected(c.error());
    client_.emplace(std::move(*c));
  }
  return &*client_;
}

int Context::fail(int code, std::string_view msg) {
  err_ << "ipmpctl: " << msg << '\n';
  return code;
}

int Context::fail(std::string_view verb, std::string_view action, std::string_view object,
                  const client::Error& e, std::string_view reason_override) {
  std::string msg = reason_override.empty()
                        ? failure_message(action, object, e)
                        : "cannot " + std::string(action) + " " + std::string(object) + ": " +
                              std::string(reason_override);
  int code = exit_code(e);
  if (output.mode == OutputMode::json) {
    json({{"verb", verb},
          {"ok", false},
          {"exit_code", code},
          {"error", e.failure == client::Failure::daemon
                        ? std::string(mpathd::to_string(e.errc))
                        : std::string(e.failure == client::Failure::unreachable  ? "unreachable"
                                      : e.failure == client::Failure::access_denied ? "access-denied"
                                      : e.failure == client::Failure::no_reply    ? "no-reply"
                                                                                  : "protocol")},
          {"dbus_error", e.dbus_name},
          {"message", msg}});
  }
  return fail(code, msg);
}

void Context::json(const nlohmann::json& j) { out_ << j.dump() << '\n'; }

int Context::done(nlohmann::json result) {
  if (output.mode == OutputMode::json) {
    result["ok"] = true;
    json(result);
  }
  return kOk;
}

bool Context::no_fields(std::string_view verb) {
  if (output.mode == OutputMode::json) return true;
  if (output.mode == OutputMode::parsable || output.all || !output.fields.empty()) {
    usage("'" + std::string(verb) + "' has no fields: -o takes only 'json' here");
    return false;
  }
  return true;
}

CLI::Validator positive_count() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        long n = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || p != text.data() + text.size() || n < 1)
            return "must be a whole number of at least 1, not " + mpathd::echo(text);
        return {};
      },
      "N>=1");
}

int stop_signal_fd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) < 0) return -1;
  return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

CLI::App* add_verb(CLI::App& parent, const std::string& name, const std::string& help) {
  CLI::App* sub = parent.add_subcommand(name, help);
  sub->fallthrough();
  return sub;
}

}  // namespace ipmpctl
