#include "core/types.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

namespace mpathd {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = Family::v4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = Family::v6;
    return a;
  }
  return std::nullopt;
}

IpAddress IpAddress::v4(std::uint32_t h) {
  IpAddress a;
  a.family = Family::v4;
  a.bytes[0] = static_cast<std::uint8_t>(h >> 24);
  a.bytes[1] = static_cast<std::uint8_t>(h >> 16);
  a.bytes[2] = static_cast<std::uint8_t>(h >> 8);
  a.bytes[3] = static_cast<std::uint8_t>(h);
  return a;
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

bool IpAddress::is_link_local() const {
  if (is_v4()) return bytes[0] == 169 && bytes[1] == 254;
  return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80;
}

bool IpAddress::is_unspecified() const {
  for (std::size_t i = 0; i < size(); ++i)
    if (bytes[i] != 0) return false;
  return true;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  IpPrefix p{*addr, static_cast<std::uint8_t>(addr->size() * 8)};
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    unsigned len = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (ec != std::errc{} || ptr != digits.data() + digits.size() || digits.empty() ||
        len > addr->size() * 8)
      return std::nullopt;
    p.len = static_cast<std::uint8_t>(len);
  }
  return p;
}

std::string IpPrefix::str() const { return addr.str() + "/" + std::to_string(len); }

IpPrefix IpPrefix::network() const {
  IpPrefix n = *this;
  for (std::size_t i = 0; i < addr.size(); ++i) {
    int bits = static_cast<int>(len) - static_cast<int>(i) * 8;
    if (bits >= 8) continue;
    n.addr.bytes[i] = static_cast<std::uint8_t>(bits <= 0 ? 0 : addr.bytes[i] & (0xff << (8 - bits)));
  }
  return n;
}

bool IpPrefix::contains(const IpAddress& a) const {
  if (a.family != addr.family) return false;
  IpPrefix other{a, len};
  return other.network().addr == network().addr;
}

std::optional<Mac> Mac::parse(std::string_view text) {
  Mac m;
  unsigned v[6];
  std::string s(text);
  char tail = 0;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &tail) != 6)
    return std::nullopt;
  for (int i = 0; i < 6; ++i) m.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v[i]);
  return m;
}

std::string Mac::str() const {
  // By hand, not snprintf's format parsing: every GetState reply formats one per
  // interface (256 at 64 x 4).
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(3 * bytes.size() - 1, ':');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s[3 * i] = kHex[bytes[i] >> 4];
    s[3 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return s;
}

bool Mac::is_zero() const {
  for (auto b : bytes)
    if (b) return false;
  return true;
}

std::string format_seconds(Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fs", std::chrono::duration<double>(d).count());
  return buf;
}

std::string format_duration(Duration d) {
  auto ms = std::chrono::duration_cast<milliseconds>(d).count();
  if (ms % 1000 == 0 && ms != 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace mpathd
