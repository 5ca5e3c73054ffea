// mpathd.conf: TOML text -> Config (lib/core/config.hpp), with every problem reported.
//
// Errors are values. On failure the Error has code Errc::config and a message of one
// line per problem, in source order, each of the form
//     FILE:LINE:COLUMN: KEY: what is wrong
// where KEY is a dotted path such as `group[1].member[0].name`. A TOML syntax error
// stops parsing and is reported as `FILE:LINE:COLUMN: description` (toml++'s text).
// The format is described for users in man/mpathd.conf.5.
//
// Drop-ins: the main file PATH is read first, then every PATH.d/*.conf in lexical order.
// A top-level key set again by a later file replaces the earlier value; [[group]] tables
// of all files are added together, and a group name (or member, address) used in two
// files is an error like a duplicate within one file. Errors name the file they are in.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"

namespace mpathd {

// Parses and validates configuration text. source_name is used as FILE in messages.
// An empty text is a valid configuration with all defaults and no groups.
Result<Config> parse_config(std::string_view text, std::string_view source_name);

// One file of a configuration: its name (FILE in messages) and its text.
struct ConfigText {
  std::string name;
  std::string text;
};

// Parses several files as one configuration: files[0] is the main file, the rest are its
// drop-ins in the order they apply. Every file is checked even if an earlier one has errors.
Result<Config> parse_config(std::span<const ConfigText> files);

// The drop-in directory of the configuration file at path: "PATH.d".
std::string drop_in_dir(const std::string& path);

// Reads path, then PATH.d/*.conf in lexical order (no directory: no drop-ins; hidden
// files and other names are ignored). A file that cannot be opened or read is an
// Errc::config error "PATH: cannot open: <errno text>" (or "cannot read"); a drop-in
// directory that cannot be listed is "DIR: cannot read directory: <text>". So is an empty
// path, a path that is not a regular file (a FIFO, /dev/zero) and a file larger than
// kMaxConfigBytes (core/validate.hpp).
Result<std::vector<ConfigText>> read_config_files(const std::string& path);

// read_config_files(path), then parse_config() of what was read. At most
// kMaxReportedErrors problems are listed, then a count of the rest.
Result<Config> load_config_file(const std::string& path);

}  // namespace mpathd
