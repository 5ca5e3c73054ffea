// One mpathd per network namespace. Two daemons in one namespace fight over the same
// addresses, routes and rules, so the second refuses to start.
//
// The lock is a POSIX record lock (fcntl F_SETLK) on <dir>/netns-<inode>.lock, keyed
// by the inode of the namespace (/proc/self/ns/net): daemons in different namespaces
// may share the directory, and the lock does not depend on --runtime-dir. The kernel
// drops the lock when its holder exits in any way (kill -9 included), so no stale lock
// ever blocks a restart; the file itself may stay. The directory is root's (0755), so
// no other user can take the lock first.
#pragma once

#include <string>

#include "core/error.hpp"

namespace mpathd {

class InstanceLock {
 public:
  // The lock, or an Error: Errc::busy when another process holds it (the message
  // names its pid), Errc::system when it cannot be taken.
  static Result<InstanceLock> acquire(const std::string& dir);

  InstanceLock(InstanceLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  InstanceLock& operator=(InstanceLock&&) = delete;
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;
  ~InstanceLock();

  const std::string& path() const { return path_; }

 private:
  InstanceLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// The lock file's path for the calling process's network namespace.
Result<std::string> instance_lock_path(const std::string& dir);

}  // namespace mpathd
