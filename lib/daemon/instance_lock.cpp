#include "daemon/instance_lock.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/atomic_file.hpp"

namespace mpathd {

namespace {
std::unexpected<Error> sys_fail(const std::string& what) {
  return fail(Errc::system, what + ": " + std::strerror(errno));
}

flock whole_file(short type) {
  flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  return fl;
}
}  // namespace

Result<std::string> instance_lock_path(const std::string& dir) {
  struct stat st{};
  if (stat("/proc/self/ns/net", &st) != 0) return sys_fail("cannot identify the network namespace (/proc/self/ns/net)");
  return dir + "/netns-" + std::to_string(st.st_ino) + ".lock";
}

Result<InstanceLock> InstanceLock::acquire(const std::string& dir) {
  auto path = instance_lock_path(dir);
  if (!path) return std::unexpected(path.error());
  if (auto r = make_directory(dir, 0755); !r) return std::unexpected(r.error());
  const int fd = open(path->c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return sys_fail("cannot open the lock file " + *path);
  flock fl = whole_file(F_WRLCK);
  if (fcntl(fd, F_SETLK, &fl) != 0) {
    const int err = errno;
    if (err != EACCES && err != EAGAIN) {
      close(fd);
      errno = err;
      return sys_fail("cannot lock " + *path);
    }
    flock who = whole_file(F_WRLCK);
    const pid_t pid = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? who.l_pid : 0;
    close(fd);
    return fail(Errc::busy, "another mpathd is already running in this network namespace (" +
                                (pid > 0 ? "pid " + std::to_string(pid) : std::string("pid not visible")) +
                                ", lock " + *path + "); refusing to start");
  }
  // For people: the holder's pid (the lock itself is what counts).
  const std::string text = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, text.data(), text.size(), 0);  // not fatal: the lock is held
  return InstanceLock(fd, *path);
}

InstanceLock::~InstanceLock() {
  if (fd_ >= 0) close(fd_);  // releases the lock; the file stays (unlinking it would race)
}

}  // namespace mpathd
