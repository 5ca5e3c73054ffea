#include "core/names.hpp"

#include <algorithm>
#include <cctype>

namespace mpathd {

bool valid_group_name(std::string_view name) {
  return !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

bool valid_ifname(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) || !std::isprint(static_cast<unsigned char>(c));
  });
}

}  // namespace mpathd

namespace mpathd {

std::optional<std::string> unit_name_problem(std::string_view name) {
  static constexpr std::string_view kTypes[] = {"service", "socket", "target", "device",  "mount", "automount",
                                                "swap",    "timer",  "path",   "slice",   "scope"};
  if (name.empty()) return "empty";
  if (name.size() > 255) return "longer than 255 characters";
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0)
    return "has no unit type suffix (.service, .socket, .target, ...)";
  const auto type = name.substr(dot + 1);
  if (std::find(std::begin(kTypes), std::end(kTypes), type) == std::end(kTypes))
    return "'." + std::string(type) + "' is not a unit type (service, socket, target, mount, ...)";
  const auto stem = name.substr(0, dot);
  for (char c : stem)
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view(":-_.\\@").find(c) == std::string_view::npos)
      return std::string("contains '") + c + "' (allowed: letters, digits, ':', '-', '_', '.', '\\', one '@')";
  const auto at = stem.find('@');
  if (at != std::string_view::npos) {
    if (stem.find('@', at + 1) != std::string_view::npos) return "contains more than one '@'";
    if (at == 0) return "has nothing before '@'";
    if (at + 1 == stem.size()) return "is a template without an instance (name@INSTANCE.type)";
  }
  return std::nullopt;
}

}  // namespace mpathd
