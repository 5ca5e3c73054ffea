#include "core/enums.hpp"

namespace mpathd {

std::vector<std::string> flag_strings(std::uint32_t flags) {
  std::vector<std::string> out;
  for (auto [bit, name] : kFlagNames)
    if (flags & bit) out.emplace_back(name);
  return out;
}

}  // namespace mpathd
