// Plain value types shared by every layer: addresses, prefixes, MACs, time.
#pragma once

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mpathd {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::nanoseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

enum class Family : std::uint8_t { v4 = 4, v6 = 6 };

// An IPv4 or IPv6 address in network byte order.
struct IpAddress {
  Family family = Family::v4;
  std::array<std::uint8_t, 16> bytes{};

  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress v4(std::uint32_t host_order);
  std::string str() const;
  std::size_t size() const { return family == Family::v4 ? 4 : 16; }
  bool is_v4() const { return family == Family::v4; }
  bool is_link_local() const;
  bool is_unspecified() const;
  auto operator<=>(const IpAddress&) const = default;
};

// An address with its prefix length, e.g. 198.18.1.10/24.
struct IpPrefix {
  IpAddress addr;
  std::uint8_t len = 0;

  // Accepts "a.b.c.d/n", "x::y/n"; a bare address gets the full length.
  static std::optional<IpPrefix> parse(std::string_view text);
  std::string str() const;
  IpPrefix network() const;  // host bits cleared
  bool contains(const IpAddress& a) const;
  auto operator<=>(const IpPrefix&) const = default;
};

struct Mac {
  std::array<std::uint8_t, 6> bytes{};
  static std::optional<Mac> parse(std::string_view text);
  std::string str() const;
  bool is_zero() const;
  auto operator<=>(const Mac&) const = default;
};

// The seam through which lib/core reads time; tests inject a fake.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual TimePoint now() const = 0;
};

class SteadyTimeSource final : public TimeSource {
 public:
  TimePoint now() const override { return Clock::now(); }
};

// "10.00s" as ipmpstat prints an FDT; "1500ms" style for logs.
std::string format_seconds(Duration d);
std::string format_duration(Duration d);

}  // namespace mpathd
