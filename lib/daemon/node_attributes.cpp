#include "daemon/node_attributes.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/event_loop.hpp"

extern char** environ;

namespace mpathd {

namespace {
// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37): the system call itself.
int open_pidfd(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

std::string describe(const NodeAttributeQueue::Update& u) {
  return u.value ? u.name + "=" + *u.value : "delete " + u.name;
}

// The first line of what the child wrote, for the log.
std::string first_line(int fd) {
  char buf[512];
  const ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
  if (n <= 0) return {};
  std::string s(buf, static_cast<std::size_t>(n));
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}
}  // namespace

NodeAttributes::NodeAttributes(sd_event* event, const TimeSource& clock, std::string command)
    : event_(event), clock_(clock), command_(std::move(command)) {}

NodeAttributes::~NodeAttributes() {
  // A child still running is left alone: it ends by itself (attrd_updater is short)
  // and is reaped by init once mpathd has exited.
  close_child();
  sd_event_source_disable_unref(timeout_source_);
  sd_event_source_disable_unref(retry_source_);
}

void NodeAttributes::set_enabled(bool on) {
  if (on == enabled_) return;
  enabled_ = on;
  spdlog::info("node attributes for Pacemaker {}", on ? "on (attrd_updater -n mpathd-GROUP)" : "off");
  if (!on) {
    queue_.clear();
    kick();
  }
}

void NodeAttributes::update(const Engine& engine) {
  if (!enabled_) return;
  queue_.want(node_attribute_values(engine.groups()));
  kick();
}

void NodeAttributes::kick() {
  while (auto u = queue_.next(clock_.now())) {
    if (spawn(*u)) return;
    // Not even started (no such command, no memory): a failure like any other.
  }
  if (auto when = queue_.retry_at())
    if (int r = arm_timer(event_, &retry_source_, *when, std::chrono::milliseconds(10), &NodeAttributes::on_retry, this);
        r < 0)
      spdlog::error("node attributes: retry timer: {}", std::strerror(-r));
}

bool NodeAttributes::spawn(const NodeAttributeQueue::Update& u) {
  current_ = u;
  timed_out_ = false;
  std::vector<std::string> args{command_, "-n", u.name};
  if (u.value) {
    args.insert(args.end(), {"-U", *u.value});
  } else {
    args.emplace_back("-D");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
    finished(false, std::string("pipe: ") + std::strerror(errno));
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  // The daemon blocks the signals it handles in its loop: the child gets none blocked
  // and the default actions.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int r = posix_spawnp(&pid, command_.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(pipefd[1]);
  if (r != 0) {
    close(pipefd[0]);
    finished(false, "cannot run " + command_ + ": " + std::strerror(r));
    return false;
  }
  pid_ = pid;
  err_ = pipefd[0];
  pidfd_ = open_pidfd(pid);
  int s = pidfd_ < 0 ? -errno : sd_event_add_io(event_, &child_source_, pidfd_, EPOLLIN, &NodeAttributes::on_child, this);
  if (s >= 0)
    s = arm_timer(event_, &timeout_source_, clock_.now() + kTimeout, std::chrono::milliseconds(10),
                  &NodeAttributes::on_timeout, this);
  if (s < 0) {
    // Cannot watch it: stop it now rather than leave it unreaped.
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close_child();
    finished(false, std::string("cannot watch ") + command_ + ": " + std::strerror(-s));
    return false;
  }
  spdlog::debug("node attributes: {} {}", command_, describe(u));
  return true;
}

int NodeAttributes::on_child(sd_event_source*, int, uint32_t, void* self) {
  return guarded("node attributes", [&] {
    auto* n = static_cast<NodeAttributes*>(self);
    int status = 0;
    const pid_t r = waitpid(n->pid_, &status, WNOHANG);
    if (r == 0) return;  // not yet (spurious wake-up)
    const std::string said = first_line(n->err_);
    n->close_child();
    std::string why;
    bool ok = false;
    if (r < 0) {
      why = std::string("waitpid: ") + std::strerror(errno);
    } else if (n->timed_out_) {
      why = "no answer within " + format_duration(kTimeout) + " (killed)";
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ok = true;
    } else if (WIFEXITED(status)) {
      why = "exit " + std::to_string(WEXITSTATUS(status));
    } else {
      why = std::string("killed by signal ") + strsignal(WTERMSIG(status));
    }
    if (!said.empty()) why += ": " + said;
    n->finished(ok, why);
    n->kick();
  });
}

int NodeAttributes::on_timeout(sd_event_source*, uint64_t, void* self) {
  return guarded("node attributes timeout", [&] {
    auto* n = static_cast<NodeAttributes*>(self);
    if (n->pid_ > 0) {
      n->timed_out_ = true;
      kill(n->pid_, SIGKILL);  // its exit comes through the pidfd
    }
  });
}

int NodeAttributes::on_retry(sd_event_source*, uint64_t, void* self) {
  return guarded("node attributes retry", [&] { static_cast<NodeAttributes*>(self)->kick(); });
}

void NodeAttributes::finished(bool ok, const std::string& why) {
  const auto u = current_.value_or(NodeAttributeQueue::Update{});
  current_.reset();
  if (ok) last_error_.clear();
  else last_error_ = command_ + " " + describe(u) + ": " + why;
  switch (queue_.done(ok, clock_.now())) {
    case NodeAttributeQueue::Outcome::ok:
      spdlog::debug("node attribute {} set", describe(u));
      break;
    case NodeAttributeQueue::Outcome::recovered:
      spdlog::info("node attributes: {} works again ({} set)", command_, describe(u));
      break;
    case NodeAttributeQueue::Outcome::first_failure:
      spdlog::warn("node attributes: {} {} failed: {}; retrying with back-off (up to {}), not logged again until it works",
                   command_, describe(u), why, format_duration(NodeAttributeQueue::kMaxBackoff));
      break;
    case NodeAttributeQueue::Outcome::failed_again:
      spdlog::debug("node attributes: {} {} failed again: {}", command_, describe(u), why);
      break;
  }
}

void NodeAttributes::close_child() {
  child_source_ = sd_event_source_disable_unref(child_source_);
  if (timeout_source_) sd_event_source_set_enabled(timeout_source_, SD_EVENT_OFF);
  if (pidfd_ >= 0) close(std::exchange(pidfd_, -1));
  if (err_ >= 0) close(std::exchange(err_, -1));
  pid_ = -1;
}

}  // namespace mpathd
