// Direct connections: the D-Bus protocol peer to peer on a unix socket under the
// runtime directory (<runtime-dir>/private, mode 0600), as systemd serves systemctl on
// /run/systemd/private. The same objects as on the system bus, for root only (the
// file's mode, and the peer's uid is checked on accept). No signals and no name: this
// is for method calls and properties, so that ipmpctl's one-shot verbs work while
// dbus-daemon is down, hung or being restarted, and a reply is one hop instead of two
// (dbus-daemon reads, validates and forwards every byte of a 100 KB GetState reply).
// Nothing here can block the loop: the socket and every connection are non-blocking and
// a connection that misbehaves is only closed.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dbus/bus.hpp"

namespace mpathd::dbus {

namespace {

constexpr std::size_t kMaxPeers = 64;  // root's tools; more at once is a runaway script

bool fill_address(sockaddr_un& sa, const std::string& path) {
  sa = {};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return false;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return true;
}

// Whether a process serves `path` now (a second mpathd on the same runtime directory).
// Non-blocking: a full backlog (EAGAIN) is a listener too, and never a wait.
bool served(const sockaddr_un& sa) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0 || errno == EAGAIN;
  close(fd);
  return ok;
}

int on_peer_message(sd_bus_message* m, void* self, sd_bus_error*) {
  if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected") > 0) {
    // Not closed from inside its own callback: the reaper runs next in the loop.
    auto* impl = static_cast<Service::Impl*>(self);
    if (impl->direct_reap) sd_event_source_set_enabled(impl->direct_reap, SD_EVENT_ONESHOT);
  }
  return 0;
}

}  // namespace

Result<void> Service::Impl::listen_direct(const std::string& path) {
  sockaddr_un sa;
  if (!fill_address(sa, path)) return fail(Errc::invalid_argument, "socket path too long: " + path);
  if (access(path.c_str(), F_OK) == 0) {
    if (served(sa)) return fail(Errc::exists, path + " is served by another process (is another mpathd running?)");
    unlink(path.c_str());  // left by a daemon that is gone
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return sd_fail("socket", -errno);
  // Not umask(): it is the process', and the state writer's thread creates files too.
  // Until the chmod the file has the umask's mode (0755 under systemd's 0022: connect()
  // needs write permission), and the uid is checked on accept in any case.
  if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0) {
    const int e = errno;
    close(fd);
    return sd_fail("bind " + path, -e);
  }
  if (chmod(path.c_str(), 0600) < 0 || listen(fd, 16) < 0) {
    const int e = errno;
    close(fd);
    unlink(path.c_str());
    return sd_fail("chmod/listen " + path, -e);
  }
  direct_fd = fd;
  direct_path = path;
  int r = sd_event_add_io(loop, &direct_io, fd, EPOLLIN, &Impl::on_direct_accept, this);
  if (r >= 0) r = sd_event_add_defer(loop, &direct_reap, &Impl::on_direct_reap, this);
  if (r >= 0) r = sd_event_source_set_enabled(direct_reap, SD_EVENT_OFF);
  if (r < 0) {
    close_direct();
    return sd_fail("sd_event for " + path, r);
  }
  return {};
}

int Service::Impl::on_direct_accept(sd_event_source*, int fd, uint32_t, void* userdata) {
  auto* s = static_cast<Impl*>(userdata);
  int conn = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (conn < 0) return 0;  // EAGAIN, or the peer gave up already
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || (cred.uid != 0 && cred.uid != geteuid())) {
    spdlog::debug("D-Bus direct: refused a connection from uid {} (root only)", cred.uid);
    close(conn);
    return 0;
  }
  if (s->peers.size() >= kMaxPeers) {
    spdlog::warn("D-Bus direct: {} connections are open already; refused one from pid {}", kMaxPeers, cred.pid);
    close(conn);
    return 0;
  }
  sd_bus* b = nullptr;
  sd_id128_t id{};
  int r = sd_bus_new(&b);
  if (r >= 0) r = sd_bus_set_fd(b, conn, conn);
  if (r < 0) close(conn);  // not the bus' yet
  if (r >= 0) r = sd_id128_randomize(&id);
  if (r >= 0) r = sd_bus_set_server(b, 1, id);
  if (r >= 0) r = sd_bus_set_description(b, "direct");
  if (r >= 0) r = s->register_objects(b) ? 0 : -EINVAL;
  if (r >= 0) r = sd_bus_add_filter(b, nullptr, on_peer_message, s);
  if (r >= 0) r = sd_bus_attach_event(b, s->loop, SD_EVENT_PRIORITY_NORMAL);
  if (r >= 0) r = sd_bus_start(b);
  if (r < 0) {
    // Mostly a peer that hung up at once (a check whether the socket is served).
    spdlog::debug("D-Bus direct: cannot serve a connection from pid {}: {}", cred.pid, std::strerror(-r));
    sd_bus_close_unref(b);
    return 0;
  }
  s->peers.push_back(b);
  return 0;
}

int Service::Impl::on_direct_reap(sd_event_source*, void* userdata) {
  auto* s = static_cast<Impl*>(userdata);
  std::erase_if(s->peers, [](sd_bus* b) {
    if (sd_bus_is_open(b) > 0) return false;
    sd_bus_detach_event(b);
    sd_bus_close_unref(b);
    return true;
  });
  return 0;
}

void Service::Impl::close_direct() noexcept {
  for (sd_bus* b : peers) {
    sd_bus_detach_event(b);
    sd_bus_close_unref(b);  // no flush: a peer that does not read must not hold up the exit
  }
  peers.clear();
  direct_io = sd_event_source_disable_unref(direct_io);
  direct_reap = sd_event_source_disable_unref(direct_reap);
  if (direct_fd >= 0) {
    close(direct_fd);
    direct_fd = -1;
    unlink(direct_path.c_str());
  }
  direct_path.clear();
}

}  // namespace mpathd::dbus
