// journald-native logging: under systemd each line goes to the journal through
// sd_journal_sendv() with its priority and the fields of log::Fields (log.hpp).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/sinks/sink.h>

#include "daemon/log.hpp"

namespace mpathd {

// True when stderr is the stream systemd connected to the journal: $JOURNAL_STREAM holds
// "device:inode" of it (systemd.exec(5)). A redirected stderr does not match.
bool stderr_is_journal();

// syslog priority of a spdlog level (trace and debug are 7, critical 2).
int journal_priority(spdlog::level::level_enum level);

// The "KEY=value" items of one journal record; fields may be null. Empty values are
// left out.
std::vector<std::string> journal_record(std::string_view identifier, spdlog::level::level_enum level,
                                        std::string_view message, const log::Fields* fields);

// A sink that sends each line with sd_journal_sendv(); when journald's socket cannot be
// reached at start (or a send fails) the line goes to stderr as "<N>message", which
// journald's stream reader parses.
std::shared_ptr<spdlog::sinks::sink> make_journal_sink(std::string identifier);

}  // namespace mpathd
