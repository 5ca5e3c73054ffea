#include "core/enums.hpp"

namespace mpathd {

namespace {

template <std::size_t N>
std::vector<std::string> names_of(std::uint32_t flags,
                                  const std::array<std::pair<std::uint32_t, std::string_view>, N>& table) {
  std::vector<std::string> out;
  for (auto [bit, name] : table)
    if (flags & bit) out.emplace_back(name);
  return out;
}

}  // namespace

std::vector<std::string> flag_strings(std::uint32_t flags) { return names_of(flags, kFlagNames); }

std::vector<std::string> link_flag_strings(std::uint32_t flags) { return names_of(flags, kLinkFlagNames); }

}  // namespace mpathd
