#include "core/validate.hpp"

#include <charconv>
#include <cstdio>

#include "core/names.hpp"

namespace mpathd {

namespace {

bool in_v4(const IpAddress& a, std::uint8_t first, std::uint8_t mask) { return (a.bytes[0] & mask) == first; }

// What kind of address `a` is when mpathd must not manage it; "" when it may.
std::string_view unusable_kind(const IpAddress& a, AddressRole role) {
  if (a.is_v4()) {
    if (a.bytes[0] == 0) return "an unspecified (\"this network\") address";
    if (a.bytes[0] == 127) return "a loopback address";
    if (in_v4(a, 224, 0xf0)) return "a multicast address";
    if (a == IpAddress::v4(0xffffffff)) return "the limited broadcast address";
    return {};
  }
  if (a.is_unspecified()) return "the unspecified address";
  IpAddress loopback{Family::v6, {}};
  loopback.bytes[15] = 1;
  if (a == loopback) return "the loopback address";
  if (a.bytes[0] == 0xff) return "a multicast address";
  bool mapped = a.bytes[10] == 0xff && a.bytes[11] == 0xff;
  for (std::size_t i = 0; i < 10 && mapped; ++i) mapped = a.bytes[i] == 0;
  if (mapped) return "an IPv4-mapped address";
  if (a.is_link_local() && role != AddressRole::test)
    return "a link-local address (it belongs to one link and cannot move)";
  return {};
}

}  // namespace

std::string_view to_string(AddressRole role) {
  switch (role) {
    case AddressRole::data: return "data";
    case AddressRole::shared: return "shared";
    case AddressRole::test: return "test";
  }
  return "data";
}

std::optional<std::string> address_problem(const IpPrefix& p, AddressRole role) {
  const std::string text = p.str();
  if (auto kind = unusable_kind(p.addr, role); !kind.empty())
    return text + " is " + std::string(kind) + ", not a " + std::string(to_string(role)) + " address";
  if (p.len == 0) return text + " has prefix length 0 (every destination would be on-link)";
  if (p.addr.is_v4() && p.len < 31) {
    const IpPrefix net = p.network();
    IpPrefix bcast = net;
    for (std::size_t i = 0; i < 4; ++i) {
      int bits = static_cast<int>(p.len) - static_cast<int>(i) * 8;
      if (bits >= 8) continue;
      bcast.addr.bytes[i] = static_cast<std::uint8_t>(net.addr.bytes[i] | (bits <= 0 ? 0xff : 0xff >> bits));
    }
    if (p.addr == net.addr) return text + " is the network address of its subnet " + net.str();
    if (p.addr == bcast.addr) return text + " is the broadcast address of its subnet " + net.str();
  }
  return std::nullopt;
}

std::expected<IpPrefix, std::string> parse_managed_address(std::string_view text, AddressRole role) {
  const auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::unexpected(echo(text) + " is not an address with prefix length (e.g. 198.18.1.10/24)");
  if (slash == std::string_view::npos)
    return std::unexpected(echo(text) + " has no prefix length (write e.g. " + std::string(text) +
                           (addr->is_v4() ? "/24" : "/64") + ")");
  const auto digits = text.substr(slash + 1);
  const unsigned max = static_cast<unsigned>(addr->size() * 8);
  unsigned len = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
  if (digits.empty() || ec == std::errc::invalid_argument || end != digits.data() + digits.size())
    return std::unexpected(echo(text) + ": prefix length " + echo(digits) + " is not a number");
  if (ec != std::errc{} || len > max)
    return std::unexpected(echo(text) + ": prefix length " + std::string(digits) + " is out of range 1.." +
                           std::to_string(max));
  IpPrefix p{*addr, static_cast<std::uint8_t>(len)};
  if (auto problem = address_problem(p, role)) return std::unexpected(*problem);
  return p;
}

std::optional<IpAddress> parse_address_maybe_prefix(std::string_view text) {
  if (text.find('/') == std::string_view::npos) return IpAddress::parse(text);
  if (auto p = IpPrefix::parse(text)) return p->addr;
  return std::nullopt;
}

std::optional<std::string> group_name_problem(std::string_view name) {
  if (valid_group_name(name)) return std::nullopt;
  return echo(name) + " is not a valid group name (1 to 32 characters of A-Z a-z 0-9 _ . -)";
}

std::optional<std::string> ifname_problem(std::string_view name) {
  if (valid_ifname(name)) return std::nullopt;
  return echo(name) + " is not a valid interface name (1 to 15 characters, no '/', ':' or space)";
}

std::optional<std::string> member_link_problem(std::string_view name, const LinkFacts& link) {
  const std::string n(name);
  if (link.loopback) return n + " is the loopback interface; members must be Ethernet-like interfaces";
  if (!link.broadcast)
    return n + " cannot broadcast (a point-to-point or tunnel device); members must be Ethernet-like interfaces";
  if (!link.has_hwaddr) return n + " has no Ethernet hardware address; members must be Ethernet-like interfaces";
  return std::nullopt;
}

Claim address_claim(const IpPrefix& address, AddressRole role, std::string group, std::string member) {
  return {Claim::Kind::address, address.addr.str(), std::move(group), std::move(member), role};
}

std::optional<std::string> claim_conflict(const Claim& taken, const Claim& next) {
  using K = Claim::Kind;
  if (taken.value != next.value) return std::nullopt;
  auto is_ifname = [](K k) { return k == K::group_interface || k == K::member; };
  if (taken.kind == K::group_name || next.kind == K::group_name) {
    if (taken.kind != next.kind) return std::nullopt;  // group names are a namespace of their own
    return "duplicate group name " + next.value;
  }
  if (taken.kind == K::address || next.kind == K::address) {
    if (taken.kind != next.kind) return std::nullopt;
    std::string what = next.value + " is already a " + std::string(to_string(taken.role)) + " address of ";
    if (taken.role == AddressRole::test) what += taken.member + " in ";
    return what + "group " + taken.group;
  }
  if (!is_ifname(taken.kind) || !is_ifname(next.kind)) return std::nullopt;
  if (next.kind == K::member) {
    if (taken.kind == K::group_interface) return next.value + " is the interface name of group " + taken.group;
    if (taken.group == next.group) return next.value + " is listed twice in group " + next.group;
    return next.value + " is already a member of group " + taken.group;
  }
  if (taken.kind == K::group_interface)
    return "interface " + next.value + " is already the interface of group " + taken.group;
  return "interface " + next.value + " is already a member of group " + taken.group;
}

std::vector<Claim> claims_of(const GroupConfig& g) {
  using K = Claim::Kind;
  std::vector<Claim> out;
  out.push_back({K::group_name, g.name, g.name, {}, {}});
  out.push_back({K::group_interface, g.interface.empty() ? g.name : g.interface, g.name, {}, {}});
  for (const auto& m : g.members) out.push_back({K::member, m.name, g.name, {}, {}});
  for (const auto& a : g.data_addresses) out.push_back(address_claim(a, AddressRole::data, g.name));
  for (const auto& a : g.shared_addresses) out.push_back(address_claim(a, AddressRole::shared, g.name));
  for (const auto& m : g.members)
    for (const auto& a : m.test_addresses) out.push_back(address_claim(a, AddressRole::test, g.name, m.name));
  return out;
}

std::optional<std::string> first_conflict(const std::vector<Claim>& taken, const std::vector<Claim>& fresh) {
  for (std::size_t i = 0; i < fresh.size(); ++i) {
    for (const auto& t : taken)
      if (auto why = claim_conflict(t, fresh[i])) return why;
    for (std::size_t j = 0; j < i; ++j)
      if (auto why = claim_conflict(fresh[j], fresh[i])) return why;
  }
  return std::nullopt;
}

std::string echo(std::string_view value) {
  std::string_view shown = value;
  if (shown.size() > kEchoLimit) {
    std::size_t cut = kEchoLimit;
    while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xc0) == 0x80) --cut;  // not inside a UTF-8 sequence
    shown = value.substr(0, cut);
  }
  // Not "\"" + std::string(s): g++ 12 -O3 then warns -Wrestrict falsely (GCC bug 105329).
  std::string q(1, '"');
  for (char c : shown) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      q.push_back(c);
      continue;
    }
    char hex[5];
    std::snprintf(hex, sizeof hex, "\\x%02x", u);
    q.append(hex);
  }
  q.push_back('"');
  if (shown.size() < value.size()) q += "... (" + std::to_string(value.size()) + " bytes)";
  return q;
}

}  // namespace mpathd
