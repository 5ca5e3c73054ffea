#include "daemon/config_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "core/names.hpp"
#include "core/validate.hpp"
#include "daemon/hook_events.hpp"

namespace mpathd {
namespace {

// Limits that config.hpp does not carry; documented in mpathd.conf(5).
constexpr Duration kMaxFailureDetectionTime = seconds(3600);
constexpr Duration kMinNotificationInterval = milliseconds(1);
constexpr Duration kMaxNotificationInterval = seconds(60);
constexpr Duration kMinLinkFlapWindow = seconds(1);
constexpr Duration kMaxLinkFlapWindow = seconds(3600);
constexpr Duration kMaxProbeQuietPeriod = seconds(600);
constexpr std::uint64_t kMinRoutingTableBase = 255;  // base + ifindex (>= 1) skips 253..255
constexpr std::uint64_t kMaxRoutingTableBase = 4000000000;
// Durations are read as milliseconds no larger than this, so that they fit a Duration.
constexpr std::int64_t kDurationLimitMs = std::int64_t{1} << 40;

using Pos = toml::source_position;

std::string pos_str(Pos p) { return std::to_string(p.line) + ":" + std::to_string(p.column); }

std::string quote(std::string_view s) { return echo(s); }

std::string_view type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string key_path(std::string_view parent, std::string_view key) {
  std::string k = is_bare_key(key) && key.size() <= kEchoLimit ? std::string(key) : quote(key);
  return parent.empty() ? k : std::string(parent) + "." + k;
}

std::string index_path(std::string_view parent, std::size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

// "100ms", "10s", "1.5s" -> whole milliseconds, or an explanation.
std::expected<std::int64_t, std::string> parse_duration_ms(std::string_view text) {
  const auto bad = [&] {
    return std::unexpected(quote(text) + " is not a duration (write e.g. \"1.5s\" or \"100ms\")");
  };
  std::size_t unit_at = text.find_first_not_of("0123456789.");
  if (unit_at == std::string_view::npos || unit_at == 0) return bad();
  std::string_view number = text.substr(0, unit_at);
  std::string_view unit = text.substr(unit_at);
  std::int64_t scale;  // milliseconds per unit
  if (unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else
    return bad();

  std::string_view whole = number.substr(0, number.find('.'));
  std::string_view frac;
  if (whole.size() != number.size()) {
    frac = number.substr(whole.size() + 1);
    if (frac.empty() || frac.find('.') != std::string_view::npos) return bad();
  }
  std::int64_t w = 0;
  auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), w);
  if (whole.empty() || ec != std::errc{} || end != whole.data() + whole.size()) return bad();
  if (w > kDurationLimitMs / scale) return std::unexpected(quote(text) + " is far too large");

  // The fraction must come out to whole milliseconds.
  std::int64_t frac_ms = 0;
  std::int64_t place = scale;
  for (char c : frac) {
    std::int64_t digit = c - '0';
    if (place % 10 != 0) {
      if (digit != 0) return std::unexpected(quote(text) + " is finer than the resolution of 1ms");
      continue;
    }
    place /= 10;
    frac_ms += digit * place;
  }
  return w * scale + frac_ms;
}

// Like format_duration(), for values that may not fit a Duration.
std::string format_ms(std::int64_t ms) {
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// Where a name or address was claimed (core/validate.hpp, the rules between groups),
// checked once everything is read (toml++ iterates a table's keys in sorted order, not
// in source order).
struct Occurrence {
  Claim claim;
  std::string path;
  Pos pos{};
  std::size_t file = 0;  // index into the files read (main file, then drop-ins)
};

bool earlier(Pos a, Pos b) { return a.line != b.line ? a.line < b.line : a.column < b.column; }

struct Diagnostic {
  Pos pos{};
  std::string text;  // without the "FILE:LINE:COLUMN: " prefix
  std::size_t file = 0;
};

// Files in the order they are read, then positions within a file.
template <typename T>
bool read_before(const T& a, const T& b) {
  return a.file != b.file ? a.file < b.file : earlier(a.pos, b.pos);
}

class ConfigReader {
 public:
  // Starts the next file: what follows is reported as FILE:LINE:COLUMN of it.
  void begin_file(std::string_view source) {
    file_ = sources_.size();
    sources_.emplace_back(source);
  }
  // Reads one file's keys into cfg: a top-level key replaces what an earlier file set,
  // [[group]] tables are added (mpathd.conf(5), DROP-INS).
  void read(const toml::table& root, Config& cfg);
  void add_syntax_error(const toml::parse_error& e) {
    errors_.push_back({e.source().begin, std::string(e.description()), file_});
  }
  Result<Config> finish(Config cfg);

 private:
  // Reads one node found at path (a dotted key such as group[0].member[1].name).
  using NodeReader = std::function<void(const toml::node&, const std::string& path)>;
  struct Field {
    std::string_view key;
    NodeReader read;
  };

  // In the file being read, unless another is named (duplicates are found at the end).
  void error(Pos pos, std::string_view path, std::string what,
             std::optional<std::size_t> file = {}) {
    errors_.push_back({pos, std::string(path) + ": " + std::move(what), file.value_or(file_)});
  }
  // "PATH at LINE:COLUMN", with the file's name when it is not the one of `from`.
  std::string where(const Occurrence& o, const Occurrence& from) const {
    return o.path + " at " + (o.file == from.file ? "" : sources_[o.file] + ":") + pos_str(o.pos);
  }
  void error(const toml::node& n, std::string_view path, std::string what) {
    error(n.source().begin, path, std::move(what));
  }
  void wrong_type(const toml::node& n, std::string_view path, std::string_view expected) {
    error(n, path,
          "expected " + std::string(expected) + ", got " + std::string(type_name(n.type())));
  }

  // Dispatches every key of t to its field reader; a key without one is an error.
  void read_table(const toml::table& t, std::string_view path, std::initializer_list<Field> fields);
  // Calls each(element, element_path) for every element of an array.
  void read_array(const toml::node& n, std::string_view path, std::string_view expected,
                  const NodeReader& each);
  const toml::table* as_table(const toml::node& n, std::string_view path);

  std::optional<bool> read_bool(const toml::node& n, std::string_view path);
  std::optional<std::string> read_string(const toml::node& n, std::string_view path);
  std::optional<unsigned> read_uint(const toml::node& n, std::string_view path, std::uint64_t lo,
                                    std::uint64_t hi, std::string_view why = {});
  std::optional<Duration> read_duration(const toml::node& n, std::string_view path, Duration min,
                                        Duration max);
  std::optional<IpAddress> read_address(const toml::node& n, std::string_view path);
  std::optional<std::string> read_group_name(const toml::node& n, std::string_view path);
  std::optional<std::string> read_ifname(const toml::node& n, std::string_view path);
  template <typename E>
  std::optional<E> read_enum(const toml::node& n, std::string_view path);

  // data, shared and test addresses: "address/length", each registered for duplicates.
  std::vector<IpPrefix> read_address_list(const toml::node& n, std::string_view path,
                                          AddressRole role, const std::string& group);
  std::vector<IpAddress> read_targets(const toml::node& n, std::string_view path);
  std::vector<RouteConfig> read_routes(const toml::node& n, std::string_view path);
  std::optional<RouteConfig> read_route(const toml::node& n, const std::string& path);
  void read_group(const toml::node& n, const std::string& path, Config& cfg);
  void read_member(const toml::node& n, const std::string& path, GroupConfig& g);
  void read_hook(const toml::node& n, const std::string& path, Config& cfg);
  std::vector<std::string> read_strings(const toml::node& n, std::string_view path);

  void claim(Claim c, std::string path, Pos pos) {
    claims_.push_back({std::move(c), std::move(path), pos, file_});
  }
  void check_claims();
  void check_hook_names();

  std::vector<std::string> sources_;  // FILE of each file read
  std::size_t file_ = 0;              // the one being read
  std::vector<Diagnostic> errors_;
  std::vector<Occurrence> claims_;  // group names, interface names, addresses
  struct HookName {
    std::string name, path;
    Pos pos{};
    std::size_t file = 0;
  };
  std::vector<HookName> hook_names_;
  // The shared address or group a systemd hook names, checked once every file is read.
  struct HookTarget {
    std::string value, path;
    bool group = false;
    Pos pos{};
    std::size_t file = 0;
  };
  std::vector<HookTarget> hook_targets_;
  void check_hook_targets(const Config& cfg);
  std::vector<std::string> read_units(const toml::node& n, const std::string& path);
};

void ConfigReader::read_table(const toml::table& t, std::string_view path,
                              std::initializer_list<Field> fields) {
  for (auto&& [key, node] : t) {
    std::string child = key_path(path, key.str());
    auto field = std::find_if(fields.begin(), fields.end(),
                              [&](const Field& f) { return f.key == key.str(); });
    if (field == fields.end())
      error(key.source().begin, child, "unknown key");
    else
      field->read(node, child);
  }
}

void ConfigReader::read_array(const toml::node& n, std::string_view path, std::string_view expected,
                              const NodeReader& each) {
  const auto* array = n.as_array();
  if (!array) return wrong_type(n, path, expected);
  for (std::size_t i = 0; i < array->size(); ++i) each((*array)[i], index_path(path, i));
}

const toml::table* ConfigReader::as_table(const toml::node& n, std::string_view path) {
  const auto* t = n.as_table();
  if (!t) wrong_type(n, path, "a table");
  return t;
}

std::optional<bool> ConfigReader::read_bool(const toml::node& n, std::string_view path) {
  if (const auto* v = n.as_boolean()) return v->get();
  wrong_type(n, path, "a boolean (true or false)");
  return std::nullopt;
}

std::optional<std::string> ConfigReader::read_string(const toml::node& n, std::string_view path) {
  if (const auto* v = n.as_string()) return v->get();
  wrong_type(n, path, "a string");
  return std::nullopt;
}

std::optional<unsigned> ConfigReader::read_uint(const toml::node& n, std::string_view path,
                                                std::uint64_t lo, std::uint64_t hi,
                                                std::string_view why) {
  const auto* v = n.as_integer();
  if (!v) {
    wrong_type(n, path, "an integer");
    return std::nullopt;
  }
  std::int64_t x = v->get();
  if (x < 0 || static_cast<std::uint64_t>(x) < lo || static_cast<std::uint64_t>(x) > hi) {
    std::string what =
        std::to_string(x) + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi);
    if (!why.empty()) what += " (" + std::string(why) + ")";
    error(n, path, std::move(what));
    return std::nullopt;
  }
  return static_cast<unsigned>(x);
}

std::optional<Duration> ConfigReader::read_duration(const toml::node& n, std::string_view path,
                                                    Duration min, Duration max) {
  std::int64_t ms = 0;
  if (const auto* i = n.as_integer()) {
    ms = i->get();
  } else if (const auto* s = n.as_string()) {
    auto parsed = parse_duration_ms(s->get());
    if (!parsed) {
      error(n, path, parsed.error());
      return std::nullopt;
    }
    ms = *parsed;
  } else {
    wrong_type(n, path, "a duration (integer milliseconds or a string like \"1.5s\")");
    return std::nullopt;
  }
  const auto min_ms = std::chrono::duration_cast<milliseconds>(min).count();
  const auto max_ms = std::chrono::duration_cast<milliseconds>(max).count();
  if (ms < min_ms) {
    error(n, path, format_ms(ms) + " is below the minimum of " + format_ms(min_ms));
    return std::nullopt;
  }
  if (ms > max_ms) {
    error(n, path, format_ms(ms) + " is above the maximum of " + format_ms(max_ms));
    return std::nullopt;
  }
  return milliseconds(ms);
}

std::optional<IpAddress> ConfigReader::read_address(const toml::node& n, std::string_view path) {
  auto text = read_string(n, path);
  if (!text) return std::nullopt;
  auto a = IpAddress::parse(*text);
  if (!a) error(n, path, quote(*text) + " is not an IPv4 or IPv6 address");
  return a;
}

std::optional<std::string> ConfigReader::read_group_name(const toml::node& n,
                                                         std::string_view path) {
  auto s = read_string(n, path);
  if (!s) return s;
  if (auto problem = group_name_problem(*s)) {
    error(n, path, std::move(*problem));
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> ConfigReader::read_ifname(const toml::node& n, std::string_view path) {
  auto s = read_string(n, path);
  if (!s) return s;
  if (auto problem = ifname_problem(*s)) {
    error(n, path, std::move(*problem));
    return std::nullopt;
  }
  return s;
}

template <typename E>
std::optional<E> ConfigReader::read_enum(const toml::node& n, std::string_view path) {
  auto s = read_string(n, path);
  if (!s) return std::nullopt;
  if (auto e = enum_from_string<E>(*s)) return e;
  std::string choices;
  for (auto name : EnumNames<E>::names)
    choices += (choices.empty() ? "" : ", ") + std::string(name);
  error(n, path, quote(*s) + " is not one of " + choices);
  return std::nullopt;
}

std::vector<IpPrefix> ConfigReader::read_address_list(const toml::node& n, std::string_view path,
                                                      AddressRole role, const std::string& group) {
  std::vector<IpPrefix> out;
  read_array(n, path, "an array of addresses", [&](const toml::node& e, const std::string& p) {
    auto text = read_string(e, p);
    if (!text) return;
    auto prefix = parse_managed_address(*text, role);
    if (!prefix) return error(e, p, std::move(prefix.error()));
    claim(address_claim(*prefix, role, group), p, e.source().begin);
    out.push_back(*prefix);
  });
  return out;
}

std::vector<IpAddress> ConfigReader::read_targets(const toml::node& n, std::string_view path) {
  std::vector<IpAddress> out;
  read_array(n, path, "an array of addresses", [&](const toml::node& e, const std::string& p) {
    if (auto a = read_address(e, p)) out.push_back(*a);
  });
  return out;
}

std::optional<RouteConfig> ConfigReader::read_route(const toml::node& n, const std::string& path) {
  const auto* t = as_table(n, path);
  if (!t) return std::nullopt;
  const toml::node* to_node = nullptr;
  const toml::node* via_node = nullptr;
  std::optional<IpPrefix> to;
  std::optional<IpAddress> via;
  bool is_default = false;
  bool to_bad = false;
  read_table(
      *t, path,
      {{"to",
        [&](const toml::node& e, const std::string& p) {
          to_node = &e;
          auto text = read_string(e, p);
          if (!text) return void(to_bad = true);
          if (*text == "default") return void(is_default = true);
          to = IpPrefix::parse(*text);
          to_bad = !to;
          if (!to) return error(e, p, quote(*text) + " is not \"default\" or a destination prefix");
          if (to->network() != *to) {
            to_bad = true;
            error(e, p,
                  quote(*text) + " has host bits set (the network is " + to->network().str() + ")");
          }
        }},
       {"via", [&](const toml::node& e, const std::string& p) {
          via_node = &e;
          via = read_address(e, p);
        }}});
  if (!to_node) error(*t, key_path(path, "to"), "missing (a destination prefix or \"default\")");
  if (!via_node) error(*t, key_path(path, "via"), "missing (the gateway address)");
  if (!via || to_bad || (!to && !is_default)) return std::nullopt;
  if (is_default) to = IpPrefix{IpAddress{via->family, {}}, 0};
  if (to->addr.family != via->family) {
    error(*via_node, key_path(path, "via"),
          std::string("gateway ") + (via->is_v4() ? "IPv4 " : "IPv6 ") + via->str() +
              " does not match the " + (to->addr.is_v4() ? "IPv4" : "IPv6") + " destination " +
              to->str());
    return std::nullopt;
  }
  return RouteConfig{*to, *via};
}

std::vector<RouteConfig> ConfigReader::read_routes(const toml::node& n, std::string_view path) {
  std::vector<RouteConfig> out;
  read_array(n, path, "an array of tables ({ to = ..., via = ... })",
             [&](const toml::node& e, const std::string& p) {
               if (auto r = read_route(e, p)) out.push_back(*r);
             });
  return out;
}

void ConfigReader::read_member(const toml::node& n, const std::string& path, GroupConfig& g) {
  const auto* t = as_table(n, path);
  if (!t) return;
  MemberConfig m;
  bool has_name = false;
  const std::size_t first_claim = claims_.size();
  read_table(*t, path,
             {{"name",
               [&](const toml::node& e, const std::string& p) {
                 has_name = true;
                 if (auto s = read_ifname(e, p)) {
                   m.name = *s;
                   claim({Claim::Kind::member, *s, g.name, {}, {}}, p, e.source().begin);
                 }
               }},
              {"standby",
               [&](const toml::node& e, const std::string& p) {
                 if (auto b = read_bool(e, p)) m.standby = *b;
               }},
              {"test-addresses", [&](const toml::node& e, const std::string& p) {
                 m.test_addresses = read_address_list(e, p, AddressRole::test, g.name);
               }}});
  for (std::size_t i = first_claim; i < claims_.size(); ++i)
    if (claims_[i].claim.kind == Claim::Kind::address) claims_[i].claim.member = m.name;
  if (!has_name) error(*t, key_path(path, "name"), "missing (the member's interface name)");
  g.members.push_back(std::move(m));
}

void ConfigReader::read_group(const toml::node& n, const std::string& path, Config& cfg) {
  const auto* t = as_table(n, path);
  if (!t) return;
  GroupConfig g;
  const toml::node* name_node = nullptr;
  const toml::node* interface_node = nullptr;
  const toml::node* member_node = nullptr;
  // The name first: member occurrences record the group they belong to.
  if (const auto* name = t->get("name")) {
    name_node = name;
    if (auto s = read_group_name(*name, key_path(path, "name"))) g.name = *s;
  }
  read_table(
      *t, path,
      {{"name", [](const toml::node&, const std::string&) {}},
       {"interface",
        [&](const toml::node& e, const std::string& p) {
          interface_node = &e;
          if (auto s = read_ifname(e, p)) g.interface = *s;
        }},
       {"data-addresses",
        [&](const toml::node& e, const std::string& p) {
          g.data_addresses = read_address_list(e, p, AddressRole::data, g.name);
        }},
       {"shared-addresses",
        [&](const toml::node& e, const std::string& p) {
          g.shared_addresses = read_address_list(e, p, AddressRole::shared, g.name);
        }},
       {"routes", [&](const toml::node& e, const std::string& p) { g.routes = read_routes(e, p); }},
       {"probe-method",
        [&](const toml::node& e, const std::string& p) {
          if (auto m = read_enum<ProbeMethod>(e, p)) g.probe_method = *m;
        }},
       {"targets",
        [&](const toml::node& e, const std::string& p) { g.targets = read_targets(e, p); }},
       {"failure-detection-time",
        [&](const toml::node& e, const std::string& p) {
          g.failure_detection_time =
              read_duration(e, p, Config::kMinFailureDetectionTime, kMaxFailureDetectionTime);
        }},
       {"failback",
        [&](const toml::node& e, const std::string& p) { g.failback = read_bool(e, p); }},
       {"release-shared-on-failure",
        [&](const toml::node& e, const std::string& p) {
          if (auto v = read_bool(e, p)) g.release_shared_on_failure = *v;
        }},
       {"member", [&](const toml::node& e, const std::string& p) {
          member_node = &e;
          read_array(e, p, "an array of tables ([[group.member]])",
                     [&](const toml::node& m, const std::string& mp) { read_member(m, mp, g); });
        }}});

  if (!name_node) error(*t, key_path(path, "name"), "missing (every [[group]] needs a name)");
  if (!g.name.empty())
    claim({Claim::Kind::group_name, g.name, g.name, {}, {}}, key_path(path, "name"), name_node->source().begin);
  if (interface_node) {
    if (!g.interface.empty())
      claim({Claim::Kind::group_interface, g.interface, g.name, {}, {}}, key_path(path, "interface"),
            interface_node->source().begin);
  } else if (!g.name.empty()) {
    if (valid_ifname(g.name)) {
      g.interface = g.name;
      claim({Claim::Kind::group_interface, g.interface, g.name, {}, {}}, key_path(path, "name"),
            name_node->source().begin);
    } else {
      error(*name_node, key_path(path, "name"),
            quote(g.name) +
                " cannot be the group interface name (at most 15 characters); set interface");
    }
  }
  if (!member_node)
    error(*t, path,
          "group " + (g.name.empty() ? std::string("without a name") : g.name) + " has no members");
  cfg.groups.push_back(std::move(g));
}

std::vector<std::string> ConfigReader::read_strings(const toml::node& n, std::string_view path) {
  std::vector<std::string> out;
  read_array(n, path, "an array of strings", [&](const toml::node& e, const std::string& p) {
    if (auto s = read_string(e, p)) out.push_back(*s);
  });
  return out;
}

// systemd unit names (stop, start, restart of a systemd hook): each checked as systemd
// would, so that a typo is a configuration error and not a failed job at a takeover.
std::vector<std::string> ConfigReader::read_units(const toml::node& n, const std::string& path) {
  std::vector<std::string> out;
  read_array(n, path, "an array of unit names", [&](const toml::node& e, const std::string& p) {
    auto s = read_string(e, p);
    if (!s) return;
    if (auto why = unit_name_problem(*s)) return error(e, p, quote(*s) + " is not a unit name: it " + *why);
    out.push_back(*s);
  });
  return out;
}

// [[hook]] (mpathd-hooks(7)): name, type = "plugin" (path, args), "exec" (command) or
// "systemd" (address or group; stop, start, restart), events, timeout.
void ConfigReader::read_hook(const toml::node& n, const std::string& path, Config& cfg) {
  const auto* t = as_table(n, path);
  if (!t) return;
  HookConfig h;
  const toml::node* name_node = nullptr;
  const toml::node* type_node = nullptr;
  const toml::node* path_node = nullptr;
  const toml::node* command_node = nullptr;
  const toml::node* args_node = nullptr;
  const toml::node* events_node = nullptr;
  const toml::node* timeout_node = nullptr;
  const toml::node* target_node = nullptr;  // systemd: address or group
  std::vector<std::pair<std::string, const toml::node*>> systemd_nodes;  // only for type = "systemd"
  auto units = [&](std::vector<std::string>& dst) {
    return [&](const toml::node& e, const std::string& p) {
      systemd_nodes.emplace_back(p, &e);
      dst = read_units(e, p);
    };
  };
  auto target = [&](bool group) {
    return [&, group](const toml::node& e, const std::string& p) {
      systemd_nodes.emplace_back(p, &e);
      if (target_node) return error(e, p, "address and group exclude each other (one of them per systemd hook)");
      target_node = &e;
      auto s = read_string(e, p);
      if (!s) return;
      if (group) {
        if (!valid_group_name(*s)) return error(e, p, quote(*s) + " is not a group name");
        h.group = *s;
      } else {
        auto a = IpAddress::parse(*s);
        if (!a) return error(e, p, quote(*s) + " is not an IPv4 or IPv6 address");
        h.address = *a;
      }
      hook_targets_.push_back({*s, p, group, e.source().begin, file_});
    };
  };
  read_table(
      *t, path,
      {{"name",
        [&](const toml::node& e, const std::string& p) {
          name_node = &e;
          auto s = read_string(e, p);
          if (!s) return;
          if (s->empty() || s->size() > 64 ||
              s->find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                  std::string::npos)
            return error(e, p, quote(*s) + " is not a hook name (1 to 64 letters, digits, '_', '.', '-')");
          h.name = *s;
          hook_names_.push_back({*s, p, e.source().begin, file_});
        }},
       {"type",
        [&](const toml::node& e, const std::string& p) {
          type_node = &e;
          auto s = read_string(e, p);
          if (s && *s != "plugin" && *s != "exec" && *s != "systemd" && *s != "node-attributes")
            return error(e, p, quote(*s) + " is not one of plugin, exec, systemd, node-attributes");
          if (s) h.type = *s;
        }},
       {"path",
        [&](const toml::node& e, const std::string& p) {
          path_node = &e;
          auto s = read_string(e, p);
          if (s && (s->empty() || s->front() != '/')) return error(e, p, quote(*s) + " is not an absolute path");
          if (s) h.path = *s;
        }},
       {"args",
        [&](const toml::node& e, const std::string& p) {
          args_node = &e;
          h.args = read_strings(e, p);
        }},
       {"command",
        [&](const toml::node& e, const std::string& p) {
          command_node = &e;
          h.command = read_strings(e, p);
          if (e.is_array() && h.command.empty()) error(e, p, "empty (the program and its arguments)");
          else if (!h.command.empty() && h.command.front().front() != '/')
            error(e, p, quote(h.command.front()) + " is not an absolute path");
        }},
       {"address", target(false)},
       {"group", target(true)},
       {"stop", units(h.stop_units)},
       {"start", units(h.start_units)},
       {"restart", units(h.restart_units)},
       {"events",
        [&](const toml::node& e, const std::string& p) {
          events_node = &e;
          read_array(e, p, "an array of event names", [&](const toml::node& v, const std::string& vp) {
            auto s = read_string(v, vp);
            if (!s) return;
            auto type = hook_event_type(*s);
            if (!type) {
              std::string choices;
              for (std::size_t i = 1; i < kHookEventNames.size(); ++i)
                choices += (i == 1 ? "" : ", ") + std::string(kHookEventNames[i]);
              return error(v, vp, quote(*s) + " is not one of " + choices);
            }
            h.events |= 1u << *type;
          });
        }},
       {"timeout", [&](const toml::node& e, const std::string& p) {
          timeout_node = &e;
          if (auto d = read_duration(e, p, milliseconds(10), seconds(600))) h.timeout = *d;
        }}});
  if (!name_node) error(*t, key_path(path, "name"), "missing (every [[hook]] needs a name)");
  if (!type_node) error(*t, key_path(path, "type"), "missing (plugin, exec, systemd or node-attributes)");
  if (h.type != "systemd")
    for (const auto& [p, e] : systemd_nodes) error(*e, p, "only for type = \"systemd\"");
  if (h.type == "plugin") {
    if (!path_node) error(*t, key_path(path, "path"), "missing (the plugin's shared object)");
    if (command_node) error(*command_node, key_path(path, "command"), "only for type = \"exec\"");
  } else if (h.type == "exec") {
    if (!command_node) error(*t, key_path(path, "command"), "missing (the program and its arguments)");
    if (path_node) error(*path_node, key_path(path, "path"), "only for type = \"plugin\" (use command)");
    if (args_node) error(*args_node, key_path(path, "args"), "only for type = \"plugin\" (use command)");
  } else if (h.type == "systemd") {
    if (!target_node)
      error(*t, key_path(path, "address"), "missing (a systemd hook is for one shared address, or group = the shared addresses of a group)");
    if (h.stop_units.empty() && h.start_units.empty() && h.restart_units.empty() &&
        std::none_of(systemd_nodes.begin(), systemd_nodes.end(), [](const auto& sn) { return sn.second->is_array(); }))
      error(*t, key_path(path, "stop"), "missing (a systemd hook needs units to stop, start or restart)");
    for (auto [node, key] : {std::pair{path_node, "path"}, {command_node, "command"}, {args_node, "args"},
                             {events_node, "events"}})
      if (node) error(*node, key_path(path, key), "not for type = \"systemd\" (it acts on release and takeover)");
  } else if (h.type == "node-attributes") {
    for (auto [node, key] : {std::pair{path_node, "path"}, {command_node, "command"}, {args_node, "args"},
                             {events_node, "events"}, {timeout_node, "timeout"}})
      if (node)
        error(*node, key_path(path, key),
              "not for type = \"node-attributes\" (it sets mpathd-<group> on every change of a group)");
  }
  cfg.hooks.push_back(std::move(h));
}

// A hook name used twice (in one file or across drop-ins) is reported at the later one.
// A systemd hook's address is a shared address of a group, its group one that exists.
void ConfigReader::check_hook_targets(const Config& cfg) {
  for (const auto& t : hook_targets_) {
    bool found = false;
    for (const auto& g : cfg.groups) {
      if (t.group) found = found || g.name == t.value;
      else
        for (const auto& a : g.shared_addresses) found = found || a.addr == IpAddress::parse(t.value);
    }
    if (!found)
      error(t.pos, t.path,
            t.group ? "no [[group]] is named " + quote(t.value) : t.value + " is not a shared address of any [[group]]",
            t.file);
  }
}

void ConfigReader::check_hook_names() {
  std::stable_sort(hook_names_.begin(), hook_names_.end(), read_before<HookName>);
  std::map<std::string, const HookName*> first;
  for (const auto& h : hook_names_) {
    auto [it, fresh] = first.emplace(h.name, &h);
    if (fresh) continue;
    const HookName& f = *it->second;
    error(h.pos, h.path,
          "duplicate hook name " + h.name + " (see " + f.path + " at " +
              (f.file == h.file ? "" : sources_[f.file] + ":") + pos_str(f.pos) + ")",
          h.file);
  }
}

// Each claim against the ones read before it, by the one set of rules the Engine's
// runtime changes apply too; reported at the later claim, with where the earlier was.
void ConfigReader::check_claims() {
  using K = Claim::Kind;
  std::stable_sort(claims_.begin(), claims_.end(), read_before<Occurrence>);
  // A group interface defaulted from the group's name: two of them collide exactly when
  // the names do, which is reported as such.
  auto defaulted = [](const Occurrence& o) { return o.claim.kind == K::group_interface && o.path.ends_with(".name"); };
  std::map<std::string, std::vector<const Occurrence*>> seen;  // by value, in reading order
  for (const auto& o : claims_) {
    auto& before = seen[o.claim.value];
    for (const Occurrence* p : before) {
      auto why = claim_conflict(p->claim, o.claim);
      if (!why) continue;
      if (defaulted(*p) && defaulted(o)) break;
      if (p->claim.kind == K::member && o.claim.kind == K::group_interface)
        // A member is blamed for carrying a group interface's name, wherever it comes.
        error(p->pos, p->path, *claim_conflict(o.claim, p->claim) + " (see " + where(o, *p) + ")", p->file);
      else
        error(o.pos, o.path, *why + " (see " + where(*p, o) + ")", o.file);
      break;
    }
    before.push_back(&o);
  }
}

void ConfigReader::read(const toml::table& root, Config& cfg) {
  auto set_uint = [&](unsigned& dst, std::uint64_t lo, std::uint64_t hi,
                      std::string_view why = {}) {
    return [&dst, lo, hi, why, this](const toml::node& e, const std::string& p) {
      if (auto v = read_uint(e, p, lo, hi, why)) dst = *v;
    };
  };
  auto set_duration = [&](Duration& dst, Duration min, Duration max) {
    return [&dst, min, max, this](const toml::node& e, const std::string& p) {
      if (auto v = read_duration(e, p, min, max)) dst = *v;
    };
  };
  auto set_bool = [&](bool& dst) {
    return [&dst, this](const toml::node& e, const std::string& p) {
      if (auto v = read_bool(e, p)) dst = *v;
    };
  };
  read_table(
      root, "",
      {{"failure-detection-time",
        set_duration(cfg.failure_detection_time, Config::kMinFailureDetectionTime,
                     kMaxFailureDetectionTime)},
       {"failback", set_bool(cfg.failback)},
       {"track-interfaces-only-with-groups", set_bool(cfg.track_interfaces_only_with_groups)},
       {"notification-count", set_uint(cfg.notification_count, 1, 100)},
       {"notification-interval", set_duration(cfg.notification_interval, kMinNotificationInterval,
                                              kMaxNotificationInterval)},
       {"link-flap-limit", set_uint(cfg.link_flap_limit, 1, 100)},
       {"link-flap-window",
        set_duration(cfg.link_flap_window, kMinLinkFlapWindow, kMaxLinkFlapWindow)},
       {"probe-quiet-period", set_duration(cfg.probe_quiet_period, Duration::zero(), kMaxProbeQuietPeriod)},
       {"realtime-priority", set_uint(cfg.realtime_priority, 0, 99)},
       {"routing-table-base",
        set_uint(cfg.routing_table_base, kMinRoutingTableBase, kMaxRoutingTableBase,
                 "tables base + ifindex must avoid the kernel's 253..255 and fit in 32 bits")},
       {"rule-priority", set_uint(cfg.rule_priority, 1, 32765)},
       {"metrics-file",
        [&](const toml::node& e, const std::string& p) {
          auto v = read_string(e, p);
          if (v && (v->empty() || v->front() != '/'))
            error(e, p, "\"" + *v + "\" is not an absolute path");
          else if (v)
            cfg.metrics_file = *v;
        }},
       {"association-cgroup",
        [&](const toml::node& e, const std::string& p) {
          auto v = read_string(e, p);
          if (v && !v->empty() && v->front() != '/')
            error(e, p, "\"" + *v + "\" is not an absolute path (a cgroup2 directory, or \"\" for none)");
          else if (v)
            cfg.association_cgroup = *v;
        }},
       {"association-ebpf", set_bool(cfg.association_ebpf)},
       {"replication", set_bool(cfg.replication)},
       {"replication-group",
        [&](const toml::node& e, const std::string& p) {
          auto v = read_string(e, p);
          if (v && (v->empty() || v->size() > 127))
            error(e, p, "\"" + *v + "\" is not a process group name (1 to 127 bytes)");
          else if (v)
            cfg.replication_group = *v;
        }},
       {"replication-max-associations", set_uint(cfg.replication_max_associations, 1, 1000000)},
       {"node-attributes", set_bool(cfg.node_attributes)},
       {"group",
        [&](const toml::node& e, const std::string& p) {
          read_array(e, p, "an array of tables ([[group]])",
                     [&](const toml::node& g, const std::string& gp) { read_group(g, gp, cfg); });
        }},
       {"hook", [&](const toml::node& e, const std::string& p) {
          read_array(e, p, "an array of tables ([[hook]])",
                     [&](const toml::node& h, const std::string& hp) { read_hook(h, hp, cfg); });
        }}});
}

Result<Config> ConfigReader::finish(Config cfg) {
  check_claims();
  check_hook_names();
  check_hook_targets(cfg);
  if (errors_.empty()) return cfg;
  std::stable_sort(errors_.begin(), errors_.end(), read_before<Diagnostic>);
  // The first kMaxReportedErrors in reading order: a file with a million bad lines
  // gets a readable answer, not a million lines.
  std::string message;
  const std::size_t shown = std::min(errors_.size(), kMaxReportedErrors);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& d = errors_[i];
    message += (message.empty() ? "" : "\n") + sources_[d.file] + ":" + pos_str(d.pos) + ": " + d.text;
  }
  if (errors_.size() > shown)
    message += "\n" + sources_.front() + ": " + std::to_string(errors_.size() - shown) + " more error" +
               (errors_.size() - shown == 1 ? "" : "s") + " not shown";
  return fail(Errc::config, std::move(message));
}

}  // namespace

Result<Config> parse_config(std::span<const ConfigText> files) {
  ConfigReader reader;
  Config cfg;
  for (const auto& f : files) {
    reader.begin_file(f.name);
    // The Debian/Ubuntu libtomlplusplus is a compiled shared library built with
    // TOML_EXCEPTIONS=1 (its symbols live in toml::v3::ex); defining TOML_EXCEPTIONS=0
    // here would not link. So toml::parse throws toml::parse_error and parse_config
    // catches it: no exception leaves this file. A file with a syntax error is reported
    // and skipped; the others are still checked.
    try {
      reader.read(toml::parse(f.text, f.name), cfg);
    } catch (const toml::parse_error& e) {
      reader.add_syntax_error(e);
    }
  }
  return reader.finish(std::move(cfg));
}

Result<Config> parse_config(std::string_view text, std::string_view source_name) {
  const ConfigText file{std::string(source_name), std::string(text)};
  return parse_config(std::span(&file, 1));
}

std::string drop_in_dir(const std::string& path) { return path + ".d"; }

namespace {

Result<std::string> read_text(const std::string& path) {
  const auto sys_error = [&](std::string_view what) {
    return fail(Errc::config, path + ": " + std::string(what) + ": " +
                                  std::error_code(errno, std::generic_category()).message());
  };
  if (path.empty()) return fail(Errc::config, "the configuration file name is empty");
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return sys_error("cannot open");
  struct stat st {};
  if (::fstat(fd, &st) < 0) {
    auto err = sys_error("cannot read");
    ::close(fd);
    return err;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(Errc::config, path + ": not a regular file");
  }
  const auto too_large = [&] {
    return fail(Errc::config, path + ": larger than the limit of " + std::to_string(kMaxConfigBytes) + " bytes");
  };
  if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes) {
    ::close(fd);
    return too_large();
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto err = sys_error("cannot read");
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxConfigBytes) {  // it grew while being read
      ::close(fd);
      return too_large();
    }
  }
  ::close(fd);
  return text;
}

// PATH.d/*.conf in lexical (byte) order; hidden files are ignored, as a shell's *.conf
// would. No directory is no drop-ins.
Result<std::vector<std::string>> drop_in_files(const std::string& path) {
  const std::string dir = drop_in_dir(path);
  std::error_code ec;
  auto it = std::filesystem::directory_iterator(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return std::vector<std::string>{};
  if (ec) return fail(Errc::config, dir + ": cannot read directory: " + ec.message());
  std::vector<std::string> names;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.starts_with('.') || !name.ends_with(".conf")) continue;
    names.push_back(std::move(name));
  }
  if (ec) return fail(Errc::config, dir + ": cannot read directory: " + ec.message());
  std::sort(names.begin(), names.end());
  for (auto& n : names) n = dir + "/" + n;
  return names;
}

}  // namespace

Result<std::vector<ConfigText>> read_config_files(const std::string& path) {
  std::vector<ConfigText> files;
  auto main_text = read_text(path);
  if (!main_text) return std::unexpected(main_text.error());
  files.push_back({path, std::move(*main_text)});
  auto drop_ins = drop_in_files(path);
  if (!drop_ins) return std::unexpected(drop_ins.error());
  for (auto& name : *drop_ins) {
    auto text = read_text(name);
    if (!text) return std::unexpected(text.error());
    files.push_back({std::move(name), std::move(*text)});
  }
  return files;
}

Result<Config> load_config_file(const std::string& path) {
  auto files = read_config_files(path);
  if (!files) return std::unexpected(files.error());
  return parse_config(*files);
}

}  // namespace mpathd
