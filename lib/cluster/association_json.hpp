// The JSON form of association lists: `ipmpctl show associations ADDRESS -o json` and the
// D-Bus import method use it, and other cluster managers read and write it. Keys are API.
//
//   [{"proto": "tcp", "local": "198.18.0.100", "local_port": 80,
//     "remote": "198.18.0.20", "remote_port": 40001, "state": "established",
//     "direction": "incoming", "imported": false},
//    {"proto": "udp", "local": "198.18.0.100", "local_port": 0,
//     "remote": "198.18.0.21", "remote_port": 0, "direction": "incoming", "imported": false}]
//
// "state" is present for TCP only. Parsing is strict: every key above is required
// (except "state" for UDP, and "imported", which defaults to false), no other key is
// allowed, and an error names the index and the field.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster.hpp"

namespace mpathd::cluster {

// "established" for 1 ... "new-syn-recv" for 12; "" outside 1..12.
std::string_view tcp_state_name(std::uint8_t state);
std::optional<std::uint8_t> tcp_state_from_name(std::string_view name);

nlohmann::json associations_to_json(const std::vector<Association>& list);
Result<std::vector<Association>> associations_from_json(const nlohmann::json& j);
// The same from text (a parse error is reported with its byte position).
Result<std::vector<Association>> associations_from_json_text(std::string_view text);

}  // namespace mpathd::cluster
