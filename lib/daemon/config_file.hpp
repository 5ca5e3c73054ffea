// mpathd.conf: TOML text -> Config (lib/core/config.hpp), with every problem reported.
//
// Errors are values. On failure the Error has code Errc::config and a message of one
// line per problem, in source order, each of the form
//     FILE:LINE:COLUMN: KEY: what is wrong
// where KEY is a dotted path such as `group[1].member[0].name`. A TOML syntax error
// stops parsing and is reported as `FILE:LINE:COLUMN: description` (toml++'s text).
// The format is described for users in man/mpathd.conf.5.
#pragma once

#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/error.hpp"

namespace mpathd {

// Parses and validates configuration text. source_name is used as FILE in messages.
// An empty text is a valid configuration with all defaults and no groups.
Result<Config> parse_config(std::string_view text, std::string_view source_name);

// Reads path and parses it. A file that cannot be opened or read is an Errc::config
// error "PATH: cannot open: <errno text>" (or "cannot read"); so is an empty path, a
// path that is not a regular file (a FIFO, /dev/zero) and a file larger than
// kMaxConfigBytes (core/validate.hpp). At most kMaxReportedErrors problems are listed,
// then a count of the rest.
Result<Config> load_config_file(const std::string& path);

}  // namespace mpathd
