// mpathd: IP multipathing daemon. Parses the command line, loads the configuration and
// runs the daemon; exit codes follow sysexits (64 usage, 78 configuration).
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "core/version.hpp"
#include "daemon/config_file.hpp"
#include "daemon/daemon.hpp"

namespace {
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 64;
constexpr int kExitConfig = 78;

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_logger_st("mpathd");
  // Under systemd the journal adds time and pid; elsewhere put the time in the line.
  logger->set_pattern(std::getenv("JOURNAL_STREAM") ? "<%l> %v" : "%Y-%m-%d %H:%M:%S.%e %l: %v");
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
  app.add_option("--bus-name", opts.bus_name, "D-Bus name to own on the system bus")->capture_default_str();
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
  if (!check.empty()) {
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
  auto daemon = mpathd::Daemon::create(opts, std::move(*cfg));
  if (!daemon) {
    spdlog::critical("cannot start: {}", daemon.error().message);
    return kExitRuntime;
  }
  return (*daemon)->run();
}
