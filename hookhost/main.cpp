// mpathd-hookhost: runs one hook ([[hook]] of mpathd.conf) outside mpathd's event loop.
// mpathd starts one per hook with a SOCK_SEQPACKET socket as fd 3 and talks JSON over
// it (docs/hooks-protocol in lib/daemon/hooks.hpp):
//   mpathd -> host: {"t":"config",...} once, then {"t":"event","seq":N,...} one at a time
//   host -> mpathd: {"t":"ready","mask":M} or {"t":"refused","error":"..."}, then
//                   {"t":"done","seq":N[,"error":"..."]} after each event.
// The host never decides about time: mpathd kills it when a call overruns its budget.
// type "plugin": dlopen()s the plugin and checks it (symbol, major, struct size);
// type "exec": runs the command per event with the event in its environment.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/types.hpp"
#include "daemon/journal.hpp"
#include "mpathd/hook.h"

extern char** environ;

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr int kFd = 3;

struct HostState {
  std::string name;
  mpathd_netns_id netns = 0;
  std::vector<mpathd::IpAddress> shared;
  std::vector<std::string> args;
  std::vector<const char*> argv;
  // Log rate limit per hook: a burst of 100 lines, then 20 a second; the rest counted.
  double tokens = 100;
  Clock::time_point refill = Clock::now();
  std::uint64_t suppressed = 0;
} g;

void send_msg(const json& j) {
  const std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  // The daemon's end is non-blocking but ours is not: this waits for room, never mpathd.
  if (send(kFd, s.data(), s.size(), MSG_NOSIGNAL) < 0) _exit(0);  // mpathd is gone
}

spdlog::level::level_enum level_of(int level) {
  if (level <= MPATHD_HOOK_LOG_ERROR) return spdlog::level::err;
  if (level == MPATHD_HOOK_LOG_WARNING) return spdlog::level::warn;
  if (level <= MPATHD_HOOK_LOG_INFO) return spdlog::level::info;
  return spdlog::level::debug;
}

void flush_suppressed() {
  if (g.suppressed == 0) return;
  spdlog::warn("hook {}: {} log line{} suppressed (more than 20 a second)", g.name, g.suppressed,
               g.suppressed == 1 ? "" : "s");
  g.suppressed = 0;
}

void host_log(int level, const char* message) {
  const auto now = Clock::now();
  g.tokens = std::min(100.0, g.tokens + std::chrono::duration<double>(now - g.refill).count() * 20);
  g.refill = now;
  if (g.tokens < 1) {
    ++g.suppressed;
    return;
  }
  g.tokens -= 1;
  flush_suppressed();
  spdlog::log(level_of(level), "hook {}: {}", g.name, message ? message : "(null)");
}

bool is_shared(std::uint16_t family, const std::uint8_t* laddr) {
  if (!laddr) return false;
  for (const auto& a : g.shared) {
    if ((family == AF_INET) != a.is_v4()) continue;
    if (family != AF_INET && family != AF_INET6) continue;
    if (std::memcmp(a.bytes.data(), laddr, a.size()) == 0) return true;
  }
  return false;
}

int host_is_shared(mpathd_netns_id, std::uint8_t, std::uint16_t family, const std::uint8_t* laddr, void*) {
  return is_shared(family, laddr) ? 1 : 0;
}

// Seed 000's cl_tcp_walk_list: a sock_diag dump of TCP sockets of this namespace, those
// on shared addresses handed to the callback (listeners excluded: associations only).
int host_tcp_walk(mpathd_netns_id, int (*callback)(const mpathd_hook_tcp_info*, void*), void* arg) {
  if (!callback) return 0;
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -1;
  int stop = 0;
  for (int fam : {AF_INET, AF_INET6}) {
    const auto family = static_cast<std::uint8_t>(fam);
    struct {
      nlmsghdr nlh;
      inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~(1u << 10);  // all but TCP_LISTEN
    if (send(fd, &msg, sizeof msg, 0) < 0) {
      close(fd);
      return -1;
    }
    bool done = false;
    alignas(nlmsghdr) char buf[32768];
    while (!done) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        close(fd);
        return -1;
      }
      for (std::size_t off = 0; off + sizeof(nlmsghdr) <= static_cast<std::size_t>(n);) {
        const auto* h = reinterpret_cast<const nlmsghdr*>(buf + off);
        if (h->nlmsg_len < sizeof(nlmsghdr) || off + h->nlmsg_len > static_cast<std::size_t>(n)) break;
        off += NLMSG_ALIGN(h->nlmsg_len);
        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(inet_diag_msg)) continue;
        const auto* m = reinterpret_cast<const inet_diag_msg*>(reinterpret_cast<const char*>(h) + NLMSG_HDRLEN);
        const auto* src = reinterpret_cast<const std::uint8_t*>(m->id.idiag_src);
        if (stop || !is_shared(family, src)) continue;
        mpathd_hook_tcp_info info{};
        info.size = sizeof info;
        info.family = family;
        info.state = m->idiag_state;
        std::memcpy(info.local, m->id.idiag_src, family == AF_INET ? 4 : 16);
        std::memcpy(info.remote, m->id.idiag_dst, family == AF_INET ? 4 : 16);
        info.local_port = ntohs(m->id.idiag_sport);
        info.remote_port = ntohs(m->id.idiag_dport);
        stop = callback(&info, arg);
      }
    }
    if (stop) break;
  }
  close(fd);
  return 0;
}

mpathd_hook_address to_hook_address(const std::string& text) {
  mpathd_hook_address a{};
  auto p = mpathd::IpPrefix::parse(text);  // a bare address gets the full length
  if (!p) return a;
  a.family = p->addr.is_v4() ? AF_INET : AF_INET6;
  a.prefix_length = p->len;
  std::memcpy(a.bytes, p->addr.bytes.data(), p->addr.size());
  return a;
}

int event_type(const std::string& name) {
  static const char* const names[] = {"",       "member-changed", "group-changed", "address-moved",
                                      "takeover-before", "takeover-after", "release-before",
                                      "release-after", "bind", "unbind", "listen", "unlisten",
                                      "connect", "disconnect", "udp-association"};
  for (int i = 1; i <= MPATHD_HOOK_EVENT_MAX; ++i)
    if (name == names[i]) return i;
  return 0;
}

std::string str(const json& e, const char* key) { return e.contains(key) ? e[key].get<std::string>() : ""; }

// --- type plugin -------------------------------------------------------------------

struct Plugin {
  mpathd_hook_plugin p{};  // what the plugin returned, as far as this host knows it
  mpathd_hook_host host{};
  std::uint32_t mask = 0;
};

[[noreturn]] void refuse(const std::string& why) {
  send_msg({{"t", "refused"}, {"error", why}});
  _exit(2);
}

void load_plugin(Plugin& pl, const std::string& path) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) refuse(std::string("cannot load plugin: ") + dlerror());
  auto* init = reinterpret_cast<mpathd_hook_init_fn>(dlsym(h, MPATHD_HOOK_INIT_SYMBOL));
  if (!init) {
    for (int major = 2; major <= 9; ++major)
      if (dlsym(h, ("mpathd_hook_init_v" + std::to_string(major)).c_str()))
        refuse(path + " is built for hook ABI major " + std::to_string(major) + " (mpathd_hook_init_v" +
               std::to_string(major) + "); this mpathd speaks major " + std::to_string(MPATHD_HOOK_VERSION_MAJOR));
    refuse(path + " has no symbol " MPATHD_HOOK_INIT_SYMBOL ": not an mpathd hook plugin of ABI major " +
           std::to_string(MPATHD_HOOK_VERSION_MAJOR));
  }
  auto& host = pl.host;
  host.size = sizeof host;
  host.version_major = MPATHD_HOOK_VERSION_MAJOR;
  host.version_minor = MPATHD_HOOK_VERSION_MINOR;
  host.netns = g.netns;
  host.hook_name = g.name.c_str();
  host.argc = static_cast<int>(g.args.size());
  host.argv = g.argv.data();
  host.log = host_log;
  host.is_shared_address = host_is_shared;
  host.tcp_walk = host_tcp_walk;
  const mpathd_hook_plugin* got = nullptr;
  try {
    got = init(&host);
  } catch (const std::exception& e) {
    refuse(path + ": init threw an exception: " + e.what());
  } catch (...) {
    refuse(path + ": init threw an exception");
  }
  flush_suppressed();
  if (!got) refuse(path + ": init failed (" MPATHD_HOOK_INIT_SYMBOL " returned NULL)");
  if (got->version_major != MPATHD_HOOK_VERSION_MAJOR)
    refuse(path + " is built for hook ABI " + std::to_string(got->version_major) + "." +
           std::to_string(got->version_minor) + "; this mpathd speaks major " +
           std::to_string(MPATHD_HOOK_VERSION_MAJOR));
  if (got->size < sizeof(mpathd_hook_plugin))  // 1.0 is the smallest of major 1
    refuse(path + ": struct mpathd_hook_plugin of " + std::to_string(got->size) + " bytes, less than the " +
           std::to_string(sizeof(mpathd_hook_plugin)) + " of ABI " + std::to_string(MPATHD_HOOK_VERSION_MAJOR) +
           "." + std::to_string(got->version_minor));
  std::memcpy(&pl.p, got, std::min<std::size_t>(got->size, sizeof pl.p));
  pl.mask = pl.p.event_mask & MPATHD_HOOK_ALL_EVENTS;
  if (got->version_minor > MPATHD_HOOK_VERSION_MINOR)
    spdlog::info("hook {}: {} is built for hook ABI {}.{}, newer than this mpathd's {}.{}: what it adds is not used",
                 g.name, path, got->version_major, got->version_minor, MPATHD_HOOK_VERSION_MAJOR,
                 MPATHD_HOOK_VERSION_MINOR);
}

void call_plugin(Plugin& pl, const json& e, mpathd_hook_args& args) {
  const auto& p = pl.p;
  const int type = event_type(str(e, "type"));
  if (!(pl.mask & MPATHD_HOOK_BIT(type))) return;
  const std::string group = str(e, "group"), member = str(e, "member"), before = str(e, "before"),
                    after = str(e, "after"), reason = str(e, "reason"), from = str(e, "from"), to = str(e, "to");
  const auto addr = to_hook_address(str(e, "address"));
  const auto remote = to_hook_address(str(e, "remote"));
  const auto proto = static_cast<std::uint8_t>(str(e, "protocol") == "udp" ? IPPROTO_UDP : IPPROTO_TCP);
  const auto lport = e.value("local_port", std::uint16_t{0});
  const auto rport = e.value("remote_port", std::uint16_t{0});
  const mpathd_netns_id ns = g.netns;
  switch (type) {
    case MPATHD_HOOK_MEMBER_CHANGED:
      if (p.member_changed) {
        mpathd_hook_member_event ev{sizeof ev,     e.value("flags_before", 0u), e.value("flags_after", 0u), 0,
                                    group.c_str(), member.c_str(), before.c_str(), after.c_str(), reason.c_str()};
        p.member_changed(ns, &ev, &args);
      }
      break;
    case MPATHD_HOOK_GROUP_CHANGED:
      if (p.group_changed) {
        mpathd_hook_group_event ev{sizeof ev, 0, group.c_str(), before.c_str(), after.c_str(), reason.c_str()};
        p.group_changed(ns, &ev, &args);
      }
      break;
    case MPATHD_HOOK_ADDRESS_MOVED:
      if (p.address_moved) {
        mpathd_hook_address_event ev{sizeof ev, 0, group.c_str(), from.c_str(), to.c_str(), reason.c_str(), addr};
        p.address_moved(ns, &ev, &args);
      }
      break;
    case MPATHD_HOOK_TAKEOVER_BEFORE:
    case MPATHD_HOOK_TAKEOVER_AFTER:
    case MPATHD_HOOK_RELEASE_BEFORE:
    case MPATHD_HOOK_RELEASE_AFTER:
      if (p.shared_address) {
        mpathd_hook_shared_event ev{sizeof ev, static_cast<std::uint32_t>(type), group.c_str(), reason.c_str(), addr};
        p.shared_address(ns, &ev, &args);
      }
      break;
    case MPATHD_HOOK_BIND:
      if (p.bind) p.bind(ns, proto, addr.family, addr.bytes, lport, &args);
      break;
    case MPATHD_HOOK_UNBIND:
      if (p.unbind) p.unbind(ns, proto, addr.family, addr.bytes, lport, &args);
      break;
    case MPATHD_HOOK_LISTEN:
      if (p.listen) p.listen(ns, proto, addr.family, addr.bytes, lport, &args);
      break;
    case MPATHD_HOOK_UNLISTEN:
      if (p.unlisten) p.unlisten(ns, proto, addr.family, addr.bytes, lport, &args);
      break;
    case MPATHD_HOOK_CONNECT:
      if (p.connect)
        p.connect(ns, proto, e.value("outgoing", false) ? 1 : 0, addr.family, addr.bytes, lport, remote.bytes, rport,
                  &args);
      break;
    case MPATHD_HOOK_DISCONNECT:
      if (p.disconnect) p.disconnect(ns, proto, addr.family, addr.bytes, lport, remote.bytes, rport, &args);
      break;
    case MPATHD_HOOK_UDP_ASSOCIATION:
      if (p.udp_association) p.udp_association(ns, addr.family, addr.bytes, lport, remote.bytes, rport, &args);
      break;
    default:
      break;
  }
}

// --- type exec -----------------------------------------------------------------------

std::string status_text(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal SIG") + sigabbrev_np(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Runs the command with the event in its environment; waits at most timeout_ms, then
// kills it. Returns "" or what went wrong (also logged).
std::string run_command(const std::vector<std::string>& command, const json& e, long timeout_ms) {
  std::vector<std::string> env;
  for (char** v = environ; *v; ++v)
    if (std::strncmp(*v, "MPATHD_", 7) != 0) env.emplace_back(*v);
  auto upper = [](std::string k) {
    for (auto& c : k) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return k;
  };
  env.push_back("MPATHD_EVENT=" + str(e, "type"));
  env.push_back("MPATHD_HOOK=" + g.name);
  env.push_back("MPATHD_NETNS=" + std::to_string(g.netns));
  for (const auto& [k, v] : e.items()) {
    if (k == "t" || k == "type") continue;
    env.push_back("MPATHD_" + upper(k) + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  }
  std::vector<char*> envp, argv;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> cmd = command;
  for (auto& s : cmd) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  int r = posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  const std::string what = str(e, "type") + " #" + std::to_string(e.value("seq", 0ull));
  if (r != 0) {
    std::string err = "cannot run " + command[0] + ": " + std::strerror(r);
    spdlog::error("hook {}: {}", g.name, err);
    return err;
  }
  int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const auto start = Clock::now();
  bool timed_out = false;
  if (pfd >= 0) {
    pollfd p{pfd, POLLIN, 0};
    int n;
    while ((n = poll(&p, 1, static_cast<int>(timeout_ms))) < 0 && errno == EINTR) {}
    timed_out = n == 0;
    close(pfd);
  }
  if (timed_out) kill(-pid, SIGKILL);  // its process group: what it started goes too
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  if (timed_out) {
    std::string err = command[0] + " for " + what + " killed after its timeout of " + std::to_string(timeout_ms) + " ms";
    spdlog::warn("hook {}: {}", g.name, err);
    return err;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    spdlog::info("hook {}: {} for {}: exit status 0 ({} ms)", g.name, command[0], what, ms);
    return "";
  }
  std::string err = command[0] + " for " + what + ": " + status_text(status);
  spdlog::warn("hook {}: {} ({} ms)", g.name, err, ms);
  return err;
}

void setup_logging(const std::string& name, const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (mpathd::stderr_is_journal()) {
    logger = std::make_shared<spdlog::logger>("hook", mpathd::make_journal_sink("mpathd-hookhost"));
  } else {
    logger = spdlog::stderr_logger_st("hook");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l: %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  (void)name;
}

}  // namespace

int main(int argc, char** argv) {
  // Gone with mpathd, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  // Hooks are best effort: on a busy machine the daemon's failover work comes first.
  setpriority(PRIO_PROCESS, 0, 10);
  int type = 0;
  socklen_t len = sizeof type;
  if (argc < 2 || getsockopt(kFd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
    std::fprintf(stderr, "mpathd-hookhost: started by mpathd only (mpathd-hookhost NAME, with its socket as fd 3)\n");
    return 64;
  }
  fcntl(kFd, F_SETFD, FD_CLOEXEC);  // never inherited by an exec hook's command
  g.name = argv[1];
  struct stat st{};
  if (stat("/proc/self/ns/net", &st) == 0) g.netns = st.st_ino;

  std::vector<char> buf(1 << 20);
  auto receive = [&]() -> json {
    for (;;) {
      ssize_t n = recv(kFd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return json();  // mpathd closed the socket: stop
      return json::parse(std::string_view(buf.data(), static_cast<std::size_t>(n)), nullptr, false);
    }
  };
  json cfg = receive();
  if (!cfg.is_object() || cfg.value("t", "") != "config") return 65;
  setup_logging(g.name, cfg.value("log_level", "info"));
  for (const auto& a : cfg.value("args", std::vector<std::string>{})) g.args.push_back(a);
  for (const auto& a : g.args) g.argv.push_back(a.c_str());
  g.argv.push_back(nullptr);
  for (const auto& s : cfg.value("shared", std::vector<std::string>{}))
    if (auto a = mpathd::IpAddress::parse(s)) g.shared.push_back(*a);
  const std::string kind = cfg.value("type", "");
  const std::vector<std::string> command = cfg.value("command", std::vector<std::string>{});
  const long timeout_ms = cfg.value("timeout_ms", 5000L);

  Plugin plugin;
  if (kind == "plugin") {
    load_plugin(plugin, cfg.value("path", ""));
    spdlog::info("hook {}: plugin {} loaded ({}, ABI {}.{}, event mask {:#x})", g.name, cfg.value("path", ""),
                 plugin.p.name ? plugin.p.name : "unnamed", plugin.p.version_major, plugin.p.version_minor,
                 plugin.mask);
    send_msg({{"t", "ready"}, {"mask", plugin.mask}});
  } else if (kind == "exec" && !command.empty()) {
    send_msg({{"t", "ready"}, {"mask", MPATHD_HOOK_ALL_EVENTS}});
  } else {
    refuse("unknown hook type " + kind);
  }

  for (;;) {
    json m = receive();
    if (m.is_null()) break;
    if (!m.is_object()) continue;
    const std::string t = m.value("t", "");
    if (t == "shared") {
      g.shared.clear();
      for (const auto& s : m.value("addresses", std::vector<std::string>{}))
        if (auto a = mpathd::IpAddress::parse(s)) g.shared.push_back(*a);
      continue;
    }
    if (t != "event") continue;
    json done = {{"t", "done"}, {"seq", m.value("seq", 0ull)}};
    if (kind == "exec") {
      if (auto err = run_command(command, m, timeout_ms); !err.empty()) done["error"] = err;
    } else {
      mpathd_hook_args args{sizeof args, 0, plugin.p.plugin_data, m.value("seq", 0ull), m.value("lost", 0ull)};
      // An exception thrown across the C boundary (a C++ plugin) is contained here; a
      // crash or a hang costs this process, and mpathd restarts it.
      try {
        call_plugin(plugin, m, args);
      } catch (const std::exception& ex) {
        done["error"] = std::string("callback threw an exception: ") + ex.what();
      } catch (...) {
        done["error"] = "callback threw an exception";
      }
      flush_suppressed();
    }
    send_msg(done);
  }
  if (kind == "plugin" && plugin.p.fini) plugin.p.fini(plugin.p.plugin_data);
  flush_suppressed();
  return 0;
}
