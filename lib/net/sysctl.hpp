// Reading and writing kernel parameters by path under /proc/sys ("net/ipv4/...").
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mpathd::net {

class Sysctl {
 public:
  // `root` is "/proc/sys" except in tests.
  explicit Sysctl(std::string root = "/proc/sys") : root_(std::move(root)) {}

  // Keys are relative paths such as "net/ipv4/conf/m1/arp_ignore"; absolute paths and
  // ".." components are refused. The value is returned without its trailing newline.
  Result<std::string> read(std::string_view key) const;
  // Writes the value in a single write(2), as /proc/sys requires.
  Result<void> write(std::string_view key, std::string_view value) const;

  // Paths keep interface names as they are: "eth0.100" stays one path component (only
  // sysctl(8)'s dotted notation would need '.' and '/' swapped).
  static std::string ipv4_conf_key(std::string_view ifname, std::string_view key);
  static std::string ipv6_conf_key(std::string_view ifname, std::string_view key);

 private:
  Result<std::string> path(std::string_view key) const;
  std::string root_;
};

}  // namespace mpathd::net
