// mpathd: IP multipathing daemon. Parses the command line, loads the configuration and
// runs the daemon; exit codes follow sysexits (64 usage, 75 another mpathd runs in this
// network namespace, 78 configuration).
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "core/version.hpp"
#include "daemon/config_file.hpp"
#include "daemon/daemon.hpp"
#include "daemon/instance_lock.hpp"
#include "daemon/journal.hpp"

namespace {
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 64;
constexpr int kExitRunning = 75;  // EX_TEMPFAIL: another mpathd holds this namespace
constexpr int kExitConfig = 78;

// Under systemd (stderr is the journal's stream) lines go to the journal natively, with
// their priority and fields; elsewhere to stderr with the time in the line.
void setup_logging(const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (mpathd::stderr_is_journal()) {
    logger = std::make_shared<spdlog::logger>("mpathd", mpathd::make_journal_sink("mpathd"));
  } else {
    logger = spdlog::stderr_logger_st("mpathd");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l: %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mpathd - IP multipathing daemon: detects failed interfaces and moves data addresses"};
  mpathd::DaemonOptions opts;
  std::string check;
  std::string level = "info";
  bool version = false;
  app.add_option("-c,--config", opts.config_path, "configuration file")->capture_default_str();
  app.add_option("--state-dir", opts.state_dir, "directory for state that survives restarts")->capture_default_str();
  app.add_option("--runtime-dir", opts.runtime_dir, "directory for status.json")->capture_default_str();
  app.add_option("--lock-dir", opts.lock_dir,
                 "directory of the per-network-namespace lock that keeps a second mpathd from starting")
      ->capture_default_str();
  app.add_option("--bus-name", opts.bus_name, "D-Bus name to own on the system bus")->capture_default_str();
  app.add_option("--hook-host", opts.hook_host, "the mpathd-hookhost program that runs [[hook]]s")
      ->capture_default_str();
  app.add_option("--log-level", level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--check-config", check, "validate FILE and its drop-ins FILE.d/*.conf, and exit (0 valid, 78 invalid)");
  app.add_flag("--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int r = app.exit(e);
    return r == 0 ? 0 : kExitUsage;
  }
  if (version) {
    std::printf("mpathd %s\n", mpathd::kVersion);
    return 0;
  }
  if (app.count("--check-config") > 0) {  // also --check-config "": refused, not the default file
    auto files = mpathd::read_config_files(check);
    auto cfg = files ? mpathd::parse_config(*files) : mpathd::Result<mpathd::Config>(std::unexpected(files.error()));
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
      return kExitConfig;
    }
    const std::size_t drop_ins = files->size() - 1;
    std::printf("%s: valid (%zu group%s, %zu drop-in%s)\n", check.c_str(), cfg->groups.size(),
                cfg->groups.size() == 1 ? "" : "s", drop_ins, drop_ins == 1 ? "" : "s");
    return 0;
  }
  setup_logging(level);
  auto cfg = mpathd::load_config_file(opts.config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return kExitConfig;
  }
  // One daemon per network namespace, whatever its directories: held until exit.
  auto lock = mpathd::InstanceLock::acquire(opts.lock_dir);
  if (!lock) {
    spdlog::critical("{}", lock.error().message);
    return lock.error().code == mpathd::Errc::busy ? kExitRunning : kExitRuntime;
  }
  auto daemon = mpathd::Daemon::create(opts, std::move(*cfg));
  if (!daemon) {
    spdlog::critical("cannot start: {}", daemon.error().message);
    return daemon.error().code == mpathd::Errc::config ? kExitConfig : kExitRuntime;
  }
  return (*daemon)->run();
}
