// ipmpctl: shared pieces of the verbs (context, exit codes, messages, the verb table).
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "client/client.hpp"
#include "table.hpp"

namespace CLI {
class App;
class Validator;
}

namespace ipmpctl {

namespace client = mpathd::client;

// Exit codes (documented in ipmpctl(8) and --help).
enum Exit : int {
  kOk = 0,
  kFailure = 1,
  kUsage = 2,        // bad verb, option or argument
  kNotFound = 3,     // no such group, interface or address
  kRefused = 4,      // refused by the daemon: last usable member, already offline, ...
  kUnreachable = 5,  // mpathd (or the bus) cannot be reached
  kDenied = 6,       // permission denied (changes need root)
  kTimeout = 7,      // wait: the state was not reached in time
};

int exit_code(const client::Error& e);
// The reason part of a failure message: a fixed text for the daemon's refusals
// (after if_mpadm), else the daemon's own message.
std::string reason_text(const client::Error& e);
// "cannot <action> <object>: <reason>"
std::string failure_message(std::string_view action, std::string_view object,
                            const client::Error& e);

// Everything a verb needs. Output goes to `out`, messages to `err`.
class Context {
 public:
  Context(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}

  OutputOptions output;
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

  // The connection, made on first use: mpathd's direct socket when root (one hop,
  // works without dbus-daemon), else the system bus; `signals`: the system bus always
  // (only it carries signals, and it follows mpathd across its restarts).
  client::Result<client::Client*> client(bool signals = false);

  // "ipmpctl: <msg>" on stderr; returns `code`.
  int fail(int code, std::string_view msg);
  int usage(std::string_view msg) { return fail(kUsage, msg); }
  // Reports e as "cannot <action> <object>: ..." and returns its exit code. In JSON
  // mode also prints {"ok": false, ...} on stdout.
  int fail(std::string_view verb, std::string_view action, std::string_view object,
           const client::Error& e, std::string_view reason_override = {});
  // Prints `j` (JSON mode) as one line.
  void json(const nlohmann::json& j);

  // For verbs that only print a result: JSON mode prints {"verb":..., "ok": true, ...}.
  int done(nlohmann::json result);

  // Table verbs only: rejects -o field lists / -P for verbs without a table.
  bool no_fields(std::string_view verb);

  // The rows of the terminal the output goes to; 0 when it is not a terminal (or not
  // the process's standard output, as in tests).
  int terminal_rows() const;

 private:
  std::ostream& out_;
  std::ostream& err_;
  std::optional<client::Client> client_;
};

// A verb adds its subcommand(s) to the app; the callback it installs stores what to
// run in `*run`. One file per verb group.
using Runner = std::function<int(Context&)>;
struct Verb {
  std::string_view name;
  void (*setup)(CLI::App& app, Runner* run);
};

void setup_show(CLI::App& app, Runner* run);      // show.cpp
void setup_probes(CLI::App& app, Runner* run);    // probes.cpp
void setup_group(CLI::App& app, Runner* run);     // group.cpp
void setup_address(CLI::App& app, Runner* run);   // address.cpp
void setup_admin(CLI::App& app, Runner* run);     // admin.cpp: offline online failover move reload
void setup_wait(CLI::App& app, Runner* run);      // wait.cpp
void setup_monitor(CLI::App& app, Runner* run);   // monitor.cpp
void setup_shared(CLI::App& app, Runner* run);    // shared.cpp: shared takeover|release|import
void setup_show_associations(CLI::App& show, Runner* run);  // shared.cpp: show associations ADDRESS

// The whole command line; returns the exit code. main() is this.
int main(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// Input checks shared by the verbs (usage errors before any bus traffic) are the
// daemon's own: core/names.hpp and core/validate.hpp.
// The check of a --count option: a whole number from 1 up, with a short message.
CLI::Validator positive_count();
// Blocks SIGINT and SIGTERM and returns a signalfd that becomes readable when one
// arrives (for Client::run's wake_fd), or -1.
int stop_signal_fd();
// Adds a subcommand that passes unknown options on to its parent (global -o/-P
// anywhere on the line).
CLI::App* add_verb(CLI::App& parent, const std::string& name, const std::string& help);

}  // namespace ipmpctl
