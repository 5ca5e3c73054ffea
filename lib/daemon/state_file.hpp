// The state directory's state.json: PersistedState in a versioned JSON format.
#pragma once

#include <string>

#include "core/error.hpp"
#include "core/persisted.hpp"

namespace mpathd {

std::string serialize_state(const PersistedState& state);
// The same in two parts, for the writer before every move: the groups' JSON (the value
// of "groups", as serialize_state writes it) changes rarely and is kept by the caller.
std::string serialize_groups(const std::vector<GroupConfig>& groups);
std::string serialize_state(std::string_view config_digest, std::string_view groups_json,
                            const std::vector<PersistedGroup>& state);
// Errc::config with a message naming the file and what is wrong (not JSON, unknown
// version, a field of the wrong type); the caller sets the file aside.
Result<PersistedState> parse_state(std::string_view text, std::string_view source);
// A missing file is an empty state, not an error.
Result<PersistedState> load_state_file(const std::string& path);
// Renames a bad state file to PATH.corrupt-<unix time> so it can be inspected.
std::string set_aside(const std::string& path);
// A stable digest of the configuration file's bytes (FNV-1a 64, hex).
std::string config_digest(std::string_view text);

}  // namespace mpathd
