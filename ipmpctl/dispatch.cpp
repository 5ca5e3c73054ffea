// The verb table and the command line.
#include <CLI/CLI.hpp>
#include <array>
#include <ostream>

#include "core/version.hpp"
#include "ipmpctl.hpp"

namespace ipmpctl {

namespace {

constexpr std::array<Verb, 8> kVerbs{{
    {"show", setup_show},
    {"probes", setup_probes},
    {"group", setup_group},
    {"address", setup_address},
    {"offline|online|failover|move|reload", setup_admin},
    {"wait", setup_wait},
    {"monitor", setup_monitor},
    {"shared", setup_shared},
}};

constexpr const char* kFooter = R"(Output:
  -o json           JSON on every verb (keys: the D-Bus property names in snake_case)
  -o FIELD,...      ipmpstat-style fields of a show/probes view (case-insensitive; 'all')
  -P -o FIELD,...   parsable: ':'-separated, no header (':' and '\' escaped if >1 field)

Exit status:
  0 ok, 1 failure (also "done, but state not saved": the change is lost when mpathd
  or the machine restarts), 2 bad usage, 3 not found (group, interface, address; not
  a shared address), 4 refused (last usable member, already offline, not offline, not usable,
  exists, duplicate hardware address, shared address already held or not held),
  5 mpathd unreachable, 6 permission denied, 7 timeout.

Connection: the system bus ($DBUS_SYSTEM_BUS_ADDRESS); as root, mpathd's own socket
  ($MPATHD_SOCKET, default /run/mpathd/private) when it answers, also without a bus.
  wait, monitor and probes follow signals: always the bus.

See ipmpctl(8).)";

}  // namespace

int main(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"ipmpctl - observe and administer IP multipathing (mpathd)", "ipmpctl"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();

  std::string output;
  bool parsable = false;
  app.add_option("-o,--output", output, "json, or a comma-separated field list (ipmpstat -o)");
  app.add_flag("-P,--parsable", parsable, "parsable output (needs -o FIELD,...)");
  app.add_flag_callback(
      "--version",
      [&out] {
        out << "ipmpctl " << mpathd::kVersion << '\n';
        throw CLI::Success();
      },
      "print the version");

  Runner run;
  for (const auto& v : kVerbs) v.setup(app, &run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return kOk;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return kOk;
  } catch (const CLI::Success&) {
    return kOk;
  } catch (const CLI::ParseError& e) {
    // Name an unknown verb rather than "a subcommand is required".
    for (int k = 1; k < argc; ++k) {
      std::string_view a = argv[k];
      if (a == "-o" || a == "--output") {
        ++k;
        continue;
      }
      if (a.starts_with("-")) continue;
      bool known = false;
      for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; }))
        known = known || sub->get_name() == a;
      if (!known) {
        err << "ipmpctl: unknown verb '" << a << "'\n(see ipmpctl --help)\n";
        return kUsage;
      }
      break;
    }
    err << "ipmpctl: " << e.what() << "\n(see ipmpctl --help)\n";
    return kUsage;
  }

  Context ctx(out, err);
  auto opts = parse_output_options(output, parsable);
  if (!opts) return ctx.usage(opts.error());
  ctx.output = *opts;
  if (!run) return ctx.usage("no verb given (see ipmpctl --help)");
  return run(ctx);
}

}  // namespace ipmpctl
