// A two-namespace lab for lib/cluster's adapter tests and bench/shared: A (the node holding
// the shared addresses) and B (the clients), joined by a veth pair, made by the calling
// process with unshare() and visited with setns() (sockets keep the namespace they were
// made in). Call it only in a disposable child process: the namespaces disappear with it.
// Also: socket helpers, a bounded sd-event wait, and a cgroup2 directory of one's own.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "core/types.hpp"

namespace mpathd::cluster::lab {

using Ms = std::chrono::milliseconds;

inline bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }
inline IpAddress ip(const char* t) { return *IpAddress::parse(t); }

// The addresses of one family in the lab.
struct Fam {
  IpAddress shared, other, client;
};
inline const Fam kV4{ip("198.18.1.100"), ip("198.18.1.101"), ip("198.18.1.2")};
inline const Fam kV6{ip("2001:db8:1::100"), ip("2001:db8:1::101"), ip("2001:db8:1::2")};

// Two namespaces, A (server side, holds the shared addresses) and B (client).
struct Lab {
  int a = -1, b = -1;
  bool in_a() const { return setns(a, CLONE_NEWNET) == 0; }
  bool in_b() const { return setns(b, CLONE_NEWNET) == 0; }

  bool setup() {
    if (unshare(CLONE_NEWNET) != 0) return false;
    a = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (!sh("ip link set lo up")) return false;
    if (unshare(CLONE_NEWNET) != 0) return false;
    b = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int pass = dup(a);  // without O_CLOEXEC, for `ip ... netns /proc/PID/fd/N`
    const bool ok =
        sh("ip link set lo up") &&
        sh("ip link add vb type veth peer name va netns /proc/" + std::to_string(getpid()) + "/fd/" +
           std::to_string(pass)) &&
        sh("ip addr add 198.18.1.2/24 dev vb && ip -6 addr add 2001:db8:1::2/64 dev vb nodad && "
           "ip link set vb up") &&
        in_a() &&
        sh("ip addr add 198.18.1.1/24 dev va && ip addr add 198.18.1.100/32 dev va && "
           "ip addr add 198.18.1.101/32 dev va && ip -6 addr add 2001:db8:1::1/64 dev va nodad && "
           "ip -6 addr add 2001:db8:1::100/128 dev va nodad && "
           "ip -6 addr add 2001:db8:1::101/128 dev va nodad && ip link set va up");
    close(pass);
    return ok;
  }
};

inline sockaddr_storage sa(const IpAddress& addr, std::uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  if (addr.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, addr.bytes.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, addr.bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  return ss;
}

inline int sock(const IpAddress& a, int type) { return socket(a.is_v4() ? AF_INET : AF_INET6, type | SOCK_CLOEXEC, 0); }

inline int bound(const IpAddress& a, std::uint16_t port, int type) {
  const int fd = sock(a, type);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = 0;
  auto ss = sa(a, port, len);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::perror("bind");
    close(fd);
    return -1;
  }
  return fd;
}

inline int listener(const IpAddress& a, std::uint16_t port, int backlog = 64) {
  const int fd = bound(a, port, SOCK_STREAM);
  if (fd >= 0 && listen(fd, backlog) != 0) return -1;
  return fd;
}

// A non-blocking connect; returns the fd (connection may still be in progress).
inline int connect_nb(const IpAddress& to, std::uint16_t port, int type = SOCK_STREAM, const IpAddress* from = nullptr) {
  const int fd = from ? bound(*from, 0, type) : sock(to, type);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  socklen_t len = 0;
  auto ss = sa(to, port, len);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    std::perror("connect");
    close(fd);
    return -1;
  }
  return fd;
}

// Waits up to `limit` for events on fd; true if any.
inline bool wait_fd(int fd, short events, Ms limit) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, static_cast<int>(limit.count())) > 0;
}

inline bool connected_within(int fd, Ms limit) {
  if (!wait_fd(fd, POLLOUT, limit)) return false;
  int err = 0;
  socklen_t l = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
  return err == 0;
}

inline int accept_within(int lfd, Ms limit) {
  if (!wait_fd(lfd, POLLIN, limit)) return -1;
  return accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

// errno of a non-blocking recv (0 if data or nothing arrived).
inline int recv_errno(int fd) {
  char c;
  if (recv(fd, &c, 1, MSG_DONTWAIT) >= 0) return 0;
  return errno == EAGAIN ? 0 : errno;
}

inline std::uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t l = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &l);
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

inline bool run_until(sd_event* e, const std::function<bool()>& done, Ms limit = Ms(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (sd_event_run(e, 50'000) < 0) return false;
  }
  return true;
}


// The cgroup2 mount, from /proc/mounts ("" if none).
inline std::string cgroup2_mount() {
  std::ifstream in("/proc/mounts");
  std::string dev, dir, type, rest;
  while (in >> dev >> dir >> type && std::getline(in, rest))
    if (type == "cgroup2") return dir;
  return "";
}

// A cgroup of this test run under the cgroup2 mount, removed at the end (the child that
// joined it has exited by then; removal is retried while the kernel releases it).
struct TestCgroup {
  std::string path;
  explicit TestCgroup(const std::string& prefix = "mpathd-adapter-") {
    const auto root = cgroup2_mount();
    if (root.empty()) return;
    path = root + "/" + prefix + std::to_string(getpid());
    if (mkdir(path.c_str(), 0755) != 0) path.clear();
  }
  ~TestCgroup() {
    if (path.empty()) return;
    for (int i = 0; i < 200 && rmdir(path.c_str()) != 0 && errno == EBUSY; ++i) usleep(10'000);
  }
};

inline bool join(const std::string& cgroup) {
  std::ofstream f(cgroup + "/cgroup.procs");
  f << getpid() << std::flush;
  return f.good();
}


}  // namespace mpathd::cluster::lab
