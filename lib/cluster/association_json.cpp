#include "cluster/association_json.hpp"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

namespace mpathd::cluster {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 13> kTcpStates{
    "",          "established", "syn-sent", "syn-recv", "fin-wait1", "fin-wait2",   "time-wait",
    "close",     "close-wait",  "last-ack", "listen",   "closing",   "new-syn-recv",
};

constexpr std::array<std::string_view, 8> kKeys{"proto",       "local", "local_port", "remote",
                                                "remote_port", "state", "direction",  "imported"};

Error bad(std::size_t i, std::string_view field, const std::string& what) {
  return Error{Errc::invalid_argument,
               "association " + std::to_string(i) + ": \"" + std::string(field) + "\" " + what};
}

Result<IpAddress> address(const json& o, std::size_t i, std::string_view key) {
  const auto it = o.find(key);
  if (it == o.end()) return std::unexpected(bad(i, key, "is missing"));
  if (!it->is_string()) return std::unexpected(bad(i, key, "must be a string"));
  auto a = IpAddress::parse(it->get<std::string>());
  if (!a) return std::unexpected(bad(i, key, "is not an IP address: " + it->get<std::string>()));
  return *a;
}

Result<std::uint16_t> port(const json& o, std::size_t i, std::string_view key) {
  const auto it = o.find(key);
  if (it == o.end()) return std::unexpected(bad(i, key, "is missing"));
  if (!it->is_number_integer()) return std::unexpected(bad(i, key, "must be an integer"));
  const auto v = it->get<std::int64_t>();
  if (v < 0 || v > 65535) return std::unexpected(bad(i, key, "must be 0..65535, not " + std::to_string(v)));
  return static_cast<std::uint16_t>(v);
}

Result<std::string> text(const json& o, std::size_t i, std::string_view key) {
  const auto it = o.find(key);
  if (it == o.end()) return std::unexpected(bad(i, key, "is missing"));
  if (!it->is_string()) return std::unexpected(bad(i, key, "must be a string"));
  return it->get<std::string>();
}

Result<Association> one(const json& o, std::size_t i) {
  if (!o.is_object())
    return fail(Errc::invalid_argument, "association " + std::to_string(i) + ": must be an object");
  for (const auto& [k, v] : o.items())
    if (std::find(kKeys.begin(), kKeys.end(), k) == kKeys.end())
      return std::unexpected(bad(i, k, "is not a known key"));
  Association a;
  auto proto = text(o, i, "proto");
  if (!proto) return std::unexpected(proto.error());
  if (*proto == "tcp")
    a.proto = Proto::tcp;
  else if (*proto == "udp")
    a.proto = Proto::udp;
  else
    return std::unexpected(bad(i, "proto", "must be \"tcp\" or \"udp\", not \"" + *proto + "\""));
  auto local = address(o, i, "local");
  if (!local) return std::unexpected(local.error());
  auto remote = address(o, i, "remote");
  if (!remote) return std::unexpected(remote.error());
  auto lport = port(o, i, "local_port");
  if (!lport) return std::unexpected(lport.error());
  auto rport = port(o, i, "remote_port");
  if (!rport) return std::unexpected(rport.error());
  a.local = *local;
  a.remote = *remote;
  a.local_port = *lport;
  a.remote_port = *rport;
  if (a.proto == Proto::tcp) {
    auto st = text(o, i, "state");
    if (!st) return std::unexpected(st.error());
    auto n = tcp_state_from_name(*st);
    if (!n) return std::unexpected(bad(i, "state", "is not a TCP state: \"" + *st + "\""));
    a.tcp_state = *n;
  } else if (o.contains("state")) {
    return std::unexpected(bad(i, "state", "is only for TCP"));
  }
  auto dir = text(o, i, "direction");
  if (!dir) return std::unexpected(dir.error());
  if (*dir == "outgoing")
    a.outgoing = true;
  else if (*dir != "incoming")
    return std::unexpected(bad(i, "direction", "must be \"incoming\" or \"outgoing\", not \"" + *dir + "\""));
  if (const auto it = o.find("imported"); it != o.end()) {
    if (!it->is_boolean()) return std::unexpected(bad(i, "imported", "must be true or false"));
    a.imported = it->get<bool>();
  }
  return a;
}

}  // namespace

std::string_view tcp_state_name(std::uint8_t state) {
  return state < kTcpStates.size() ? kTcpStates[state] : std::string_view{};
}

std::optional<std::uint8_t> tcp_state_from_name(std::string_view name) {
  for (std::size_t i = 1; i < kTcpStates.size(); ++i)
    if (kTcpStates[i] == name) return static_cast<std::uint8_t>(i);
  return std::nullopt;
}

nlohmann::json associations_to_json(const std::vector<Association>& list) {
  json out = json::array();
  for (const auto& a : list) {
    json o{{"proto", a.proto == Proto::tcp ? "tcp" : "udp"},
           {"local", a.local.str()},
           {"local_port", a.local_port},
           {"remote", a.remote.str()},
           {"remote_port", a.remote_port},
           {"direction", a.outgoing ? "outgoing" : "incoming"},
           {"imported", a.imported}};
    if (a.proto == Proto::tcp) o["state"] = std::string(tcp_state_name(a.tcp_state));
    out.push_back(std::move(o));
  }
  return out;
}

Result<std::vector<Association>> associations_from_json(const nlohmann::json& j) {
  if (!j.is_array()) return fail(Errc::invalid_argument, "associations: expected a JSON array");
  std::vector<Association> out;
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    auto a = one(j[i], i);
    if (!a) return std::unexpected(a.error());
    out.push_back(*a);
  }
  return out;
}

Result<std::vector<Association>> associations_from_json_text(std::string_view text) {
  try {
    return associations_from_json(json::parse(text));
  } catch (const json::parse_error& e) {
    return fail(Errc::invalid_argument, std::string("associations: not JSON: ") + e.what());
  }
}

}  // namespace mpathd::cluster
