#include "net/sysctl.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mpathd::net {
namespace {

Error io_error(int err, std::string_view op, const std::string& path) {
  std::string msg(op);
  msg += " ";
  msg += path;
  msg += ": ";
  msg += std::strerror(err);
  return Error{Errc::system, std::move(msg)};
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<std::string> Sysctl::path(std::string_view key) const {
  bool bad = key.empty() || key.front() == '/' || key.find('\0') != std::string_view::npos;
  for (std::size_t at = 0; !bad && at <= key.size();) {
    const std::size_t end = std::min(key.find('/', at), key.size());
    const std::string_view part = key.substr(at, end - at);
    bad = part.empty() || part == "." || part == "..";
    at = end + 1;
  }
  if (bad) return fail(Errc::invalid_argument, "bad sysctl key \"" + std::string(key) + "\"");
  return root_ + "/" + std::string(key);
}

Result<std::string> Sysctl::read(std::string_view key) const {
  auto p = path(key);
  if (!p) return std::unexpected(p.error());
  Fd f{::open(p->c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return std::unexpected(io_error(errno, "open", *p));
  std::string out;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(io_error(errno, "read", *p));
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Result<void> Sysctl::write(std::string_view key, std::string_view value) const {
  auto p = path(key);
  if (!p) return std::unexpected(p.error());
  Fd f{::open(p->c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC)};
  if (f.fd < 0) return std::unexpected(io_error(errno, "open", *p));
  ssize_t n;
  do {
    n = ::write(f.fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return std::unexpected(io_error(errno, "write", *p));
  if (static_cast<std::size_t>(n) != value.size())
    return std::unexpected(io_error(EIO, "short write to", *p));
  return {};
}

std::string Sysctl::ipv4_conf_key(std::string_view ifname, std::string_view key) {
  return "net/ipv4/conf/" + std::string(ifname) + "/" + std::string(key);
}

std::string Sysctl::ipv6_conf_key(std::string_view ifname, std::string_view key) {
  return "net/ipv6/conf/" + std::string(ifname) + "/" + std::string(key);
}

}  // namespace mpathd::net
