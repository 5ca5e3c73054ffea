#include "daemon/hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>

#include <spdlog/spdlog.h>

#include "daemon/event_loop.hpp"

namespace mpathd {

std::optional<nlohmann::json> hook_event(const Event& e) {
  using nlohmann::json;
  if (const auto* m = std::get_if<MemberChanged>(&e)) {
    return json{{"type", "member-changed"},
                {"group", m->group},
                {"member", m->member},
                {"before", to_string(m->before.state)},
                {"after", to_string(m->after.state)},
                {"flags_before", m->before.flags},
                {"flags_after", m->after.flags},
                {"reason", to_string(m->reason)}};
  }
  if (const auto* g = std::get_if<GroupChanged>(&e)) {
    return json{{"type", "group-changed"},
                {"group", g->group},
                {"before", to_string(g->before)},
                {"after", to_string(g->after)},
                {"reason", to_string(g->reason)}};
  }
  if (const auto* a = std::get_if<AddressMoved>(&e)) {
    return json{{"type", "address-moved"}, {"group", a->group},          {"address", a->address.str()},
                {"from", a->from},         {"to", a->to},                {"reason", to_string(a->reason)}};
  }
  return std::nullopt;
}

std::optional<nlohmann::json> hook_association_event(const IpAddress& shared, const cluster::Association& a,
                                                     bool present) {
  if (a.imported) return std::nullopt;  // learned from another node, not a socket here
  const bool tcp = a.proto == cluster::Proto::tcp;
  if (!tcp && !present) return std::nullopt;  // seed 000: UDP clients are registered, never ended
  return nlohmann::json{{"type", tcp ? (present ? "connect" : "disconnect") : "udp-association"},
                        {"protocol", tcp ? "tcp" : "udp"},
                        {"address", shared.str()},
                        {"local_port", a.local_port},
                        {"remote", a.remote.str()},
                        {"remote_port", a.remote_port},
                        {"outgoing", a.outgoing}};
}

std::optional<nlohmann::json> AssociationFeed::operator()(const IpAddress& shared, const cluster::Association& a,
                                                          bool present) {
  if (a.proto == cluster::Proto::tcp && !a.imported) {
    const auto k = std::tuple{shared, a.local_port, a.remote, a.remote_port};
    if (present ? !connected_.insert(k).second : connected_.erase(k) == 0) return std::nullopt;
  }
  return hook_association_event(shared, a, present);
}

nlohmann::json hook_socket_event(cluster::SocketEvent ev, const cluster::BoundSocket& s) {
  static constexpr std::array<const char*, 4> kNames = {"bind", "unbind", "listen", "unlisten"};
  return nlohmann::json{{"type", kNames[static_cast<std::size_t>(ev)]},
                        {"protocol", s.proto == cluster::Proto::tcp ? "tcp" : "udp"},
                        {"address", s.local.str()},
                        {"local_port", s.local_port}};
}

namespace {
constexpr std::size_t kMaxMessage = 1 << 20;

std::string wait_status_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by signal SIG") + sigabbrev_np(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "ended (status " + std::to_string(status) + ")";
}

std::string event_label(const nlohmann::json& e) {
  std::string s = e.value("type", "?") + " #" + std::to_string(e.value("seq", 0ull));
  for (const char* k : {"group", "member", "address"})
    if (e.contains(k)) s += std::string(" ") + k + "=" + e[k].get<std::string>();
  return s;
}
}  // namespace

struct Hooks::Hook {
  enum class State { starting, running, backoff, disabled };
  static std::string_view name_of(State s) {
    switch (s) {
      case State::starting: return "starting";
      case State::running: return "running";
      case State::backoff: return "restarting";
      case State::disabled: return "disabled";
    }
    return "?";
  }

  Hooks& owner;
  HookConfig cfg;
  State state = State::starting;
  pid_t pid = -1;
  int sock = -1;
  int pidfd = -1;
  sd_event_source* sock_src = nullptr;
  sd_event_source* pid_src = nullptr;
  sd_event_source* timer = nullptr;  // the call's budget, or the back-off
  std::deque<nlohmann::json> queue;
  std::optional<nlohmann::json> in_flight;
  std::uint32_t mask = 0;            // the plugin's, once ready
  std::uint64_t seq = 0, delivered = 0, lost = 0, errors = 0, restarts = 0, dropped = 0;
  bool overflowing = false;
  std::string kill_reason;           // why we killed it, for the log line when it is gone
  std::string last_error;
  std::deque<TimePoint> failures;    // within the window
  Duration backoff{};

  Hook(Hooks& o, HookConfig c) : owner(o), cfg(std::move(c)), backoff(o.limits_.first_backoff) {}
  ~Hook() { stop(true); }

  std::uint32_t wanted() const {
    const std::uint32_t configured = cfg.events ? cfg.events : ~0u;
    return state == State::running ? (mask & configured) : configured;
  }

  void set_state(State s) {
    if (state == s) return;
    state = s;
    owner.changed_();
  }

  void close_fds() {
    sock_src = sd_event_source_disable_unref(sock_src);
    pid_src = sd_event_source_disable_unref(pid_src);
    timer = sd_event_source_disable_unref(timer);
    if (sock >= 0) close(sock);
    if (pidfd >= 0) close(pidfd);
    sock = pidfd = -1;
  }

  // graceful: the host sees EOF, calls the plugin's fini and exits; it gets a moment
  // (bounded) before it is killed. Used when the hook goes away or mpathd stops.
  void stop(bool graceful) {
    if (pid > 0) {
      if (sock >= 0) shutdown(sock, SHUT_RDWR);
      bool gone = false;
      if (graceful && pidfd >= 0) {
        pollfd p{pidfd, POLLIN, 0};
        gone = poll(&p, 1, 100) > 0;
      }
      if (!gone) kill(pid, SIGKILL);
      int st = 0;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
      pid = -1;
    }
    close_fds();
  }

  void start() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
      return fail(std::string("socketpair: ") + std::strerror(errno));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);  // the copy as fd 3 has no CLOEXEC
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t dfl;
    sigemptyset(&dfl);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&dfl, s);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string arg0 = "mpathd-hookhost", arg1 = cfg.name;
    char* argv[] = {arg0.data(), arg1.data(), nullptr};
    int r = posix_spawn(&pid, owner.host_.c_str(), &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    sock = sv[0];
    if (r != 0) {
      pid = -1;
      close_fds();
      return disable("cannot start " + owner.host_ + ": " + std::strerror(r));
    }
    pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
      close_fds();
      return disable(std::string("pidfd_open: ") + std::strerror(errno));
    }
    sd_event_add_io(owner.event_, &sock_src, sock, EPOLLIN, &Hook::on_socket, this);
    sd_event_add_io(owner.event_, &pid_src, pidfd, EPOLLIN, &Hook::on_exit, this);
    set_state(State::starting);
    nlohmann::json c = {{"t", "config"},     {"type", cfg.type},   {"path", cfg.path},
                        {"args", cfg.args},  {"command", cfg.command},
                        {"timeout_ms", std::chrono::duration_cast<milliseconds>(cfg.timeout).count()},
                        {"shared", owner.shared_},
                        {"log_level", spdlog::level::to_string_view(spdlog::get_level()).data()}};
    send(c);
    arm_budget("loading");
  }

  void send(const nlohmann::json& m) {
    const std::string s = m.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    // One message at a time, small, to a peer that reads: a full buffer means a host
    // that stopped reading, which the budget timer deals with.
    if (::send(sock, s.data(), s.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
      spdlog::debug("hook {}: send: {}", cfg.name, std::strerror(errno));
  }

  // The time budget of what is in progress: loading or one call. An exec hook's host
  // enforces the command's timeout itself; its budget allows for that.
  void arm_budget(const std::string& what) {
    const Duration budget = cfg.type == "exec" ? cfg.timeout + seconds(2) : cfg.timeout;
    kill_reason = what + " took longer than its budget of " + std::to_string(duration_cast<milliseconds>(budget).count()) + " ms";
    arm_timer(owner.event_, &timer, Clock::now() + budget, milliseconds(10), &Hook::on_budget, this);
  }

  static int on_budget(sd_event_source*, uint64_t, void* self) {
    return guarded("hook budget", [&] {
      auto* h = static_cast<Hook*>(self);
      if (h->state == State::backoff) return h->start();
      if (h->pid > 0) {
        spdlog::warn("hook {}: {}; killing its host (pid {})", h->cfg.name, h->kill_reason, h->pid);
        kill(h->pid, SIGKILL);  // on_exit follows
      }
    });
  }

  static int on_socket(sd_event_source*, int, uint32_t revents, void* self) {
    return guarded("hook socket", [&] {
      auto* h = static_cast<Hook*>(self);
      std::string buf(kMaxMessage, '\0');
      for (;;) {
        ssize_t n = recv(h->sock, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) {  // the host is going: wait for its exit
          h->sock_src = sd_event_source_disable_unref(h->sock_src);
          return;
        }
        h->on_message(nlohmann::json::parse(std::string_view(buf.data(), static_cast<std::size_t>(n)), nullptr, false));
        if (h->sock < 0) return;
      }
      (void)revents;
    });
  }

  void on_message(const nlohmann::json& m) {
    if (!m.is_object()) return;
    const std::string t = m.value("t", "");
    if (t == "ready") {
      mask = m.value("mask", 0u);
      timer = sd_event_source_disable_unref(timer);
      spdlog::info("hook {}: running ({} {}, pid {})", cfg.name, cfg.type,
                   cfg.type == "plugin" ? cfg.path : cfg.command.front(), pid);
      set_state(State::running);
      std::erase_if(queue, [&](const nlohmann::json& e) { return !wants(e); });
      pump();
    } else if (t == "refused") {
      // A bad library (symbol, version, init): no retry can help; the error names it.
      disable(m.value("error", "refused"));
    } else if (t == "done" && in_flight && m.value("seq", 0ull) == in_flight->value("seq", 0ull)) {
      timer = sd_event_source_disable_unref(timer);
      ++delivered;
      if (m.contains("error")) {
        ++errors;
        last_error = m["error"].get<std::string>();
        spdlog::warn("hook {}: {}: {}", cfg.name, event_label(*in_flight), last_error);
      }
      in_flight.reset();
      backoff = owner.limits_.first_backoff;
      pump();
      if (!in_flight) owner.changed_();  // drained: status.json shows the counts
    }
  }

  bool wants(const nlohmann::json& e) const {
    const auto t = hook_event_type(e.value("type", ""));
    return t && (wanted() & (1u << *t));
  }

  static int on_exit(sd_event_source*, int, uint32_t, void* self) {
    return guarded("hook exit", [&] {
      auto* h = static_cast<Hook*>(self);
      int st = 0;
      if (waitpid(h->pid, &st, WNOHANG) <= 0) return;
      h->pid = -1;
      h->close_fds();
      if (h->state == State::disabled) return;  // refused: already said
      std::string why = "host " + wait_status_text(st);
      if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && !h->kill_reason.empty()) why = h->kill_reason;
      if (h->in_flight) {
        why += " during " + event_label(*h->in_flight);
        ++h->lost;  // that event is not delivered again (it may be what kills it)
        h->in_flight.reset();
      } else if (h->state == State::starting) {
        why += " while loading";
      }
      h->failed(why);
    });
  }

  void failed(const std::string& why) {
    last_error = why;
    const auto now = Clock::now();
    failures.push_back(now);
    while (!failures.empty() && failures.front() < now - owner.limits_.failure_window) failures.pop_front();
    if (failures.size() >= owner.limits_.max_failures)
      return disable(why + "; " + std::to_string(failures.size()) + " failures within " +
                     std::to_string(duration_cast<seconds>(owner.limits_.failure_window).count()) + " s");
    spdlog::warn("hook {}: {}; restarting in {} ms", cfg.name, why, duration_cast<milliseconds>(backoff).count());
    ++restarts;
    set_state(State::backoff);
    arm_timer(owner.event_, &timer, now + backoff, milliseconds(10), &Hook::on_budget, this);
    backoff = std::min(backoff * 2, owner.limits_.max_backoff);
  }

  void fail(const std::string& why) { failed(why); }

  void disable(const std::string& why) {
    last_error = why;
    spdlog::error("hook {}: disabled: {}; fix it and reload mpathd (SIGHUP) to try again", cfg.name, why);
    lost += queue.size();
    queue.clear();
    set_state(State::disabled);
    if (pid > 0) kill(pid, SIGKILL);  // on_exit reaps it
    else close_fds();
  }

  void offer(nlohmann::json e) {
    if (state == State::disabled || !wants(e)) return;
    if (queue.size() >= owner.limits_.queue) {
      ++dropped;
      ++lost;
      if (!overflowing) {
        overflowing = true;
        spdlog::warn("hook {}: queue full ({} events waiting); events are dropped and counted", cfg.name, queue.size());
        owner.changed_();
      }
      return;
    }
    if (overflowing) {
      overflowing = false;
      spdlog::warn("hook {}: queue has room again; {} events dropped so far", cfg.name, dropped);
      owner.changed_();
    }
    e["seq"] = ++seq;
    queue.push_back(std::move(e));
    pump();
  }

  void pump() {
    if (state != State::running || in_flight || queue.empty()) return;
    in_flight = std::move(queue.front());
    queue.pop_front();
    (*in_flight)["t"] = "event";
    (*in_flight)["lost"] = lost;
    send(*in_flight);
    arm_budget("call for " + event_label(*in_flight));
  }

  nlohmann::json status() const {
    nlohmann::json j = {{"name", cfg.name},          {"type", cfg.type},    {"state", name_of(state)},
                        {"delivered", delivered},    {"queued", queue.size() + (in_flight ? 1 : 0)},
                        {"dropped", dropped},        {"lost", lost},        {"errors", errors},
                        {"restarts", restarts},      {"last_error", last_error}};
    if (cfg.type == "plugin") j["path"] = cfg.path;
    if (pid > 0) j["pid"] = pid;
    return j;
  }
};

Hooks::Hooks(sd_event* event, std::string host, std::function<void()> changed, HookLimits limits)
    : event_(event), host_(std::move(host)), changed_(std::move(changed)), limits_(limits) {}

Hooks::~Hooks() = default;

void Hooks::configure(const std::vector<HookConfig>& hooks, const std::vector<IpAddress>& shared) {
  std::vector<std::string> addrs;
  for (const auto& a : shared) addrs.push_back(a.str());
  const bool shared_changed = addrs != shared_;
  shared_ = std::move(addrs);
  std::vector<std::unique_ptr<Hook>> next;
  for (const auto& c : hooks) {
    if (c.type == "systemd" || c.type == "node-attributes") continue;  // built in, on the daemon's side
    auto it = std::find_if(hooks_.begin(), hooks_.end(), [&](const auto& h) { return h && h->cfg == c; });
    if (it != hooks_.end() && (*it)->state != Hook::State::disabled) {
      if (shared_changed && (*it)->sock >= 0) (*it)->send({{"t", "shared"}, {"addresses", shared_}});
      next.push_back(std::move(*it));
      continue;
    }
    next.push_back(std::make_unique<Hook>(*this, c));
    next.back()->start();
  }
  hooks_ = std::move(next);  // the rest stop (gracefully, bounded)
  changed_();
}

void Hooks::on_event(const Event& e) {
  if (hooks_.empty()) return;
  if (const auto* c = std::get_if<SharedAddressChanged>(&e)) {
    // Held -> released/unserviceable is a release; anything -> held a takeover. "before"
    // is queued now, ahead of the kernel steps; "after" once the kernel is in line.
    const bool was = c->before == SharedState::held, is = c->after == SharedState::held;
    if (was == is) return;
    const std::string kind = is ? "takeover" : "release";
    // A release-after still held back (its stops were cut short) comes first.
    std::erase_if(after_reconcile_, [&](nlohmann::json& j) {
      if (j.value("address", "") != c->address.str()) return false;
      publish(std::move(j));
      return true;
    });
    nlohmann::json j = {{"group", c->group}, {"address", c->address.str()}, {"reason", to_string(c->reason)},
                        {"from", c->from}, {"to", c->to}};
    j["type"] = kind + "-before";
    publish(j);
    j["type"] = kind + "-after";
    after_reconcile_.push_back(std::move(j));
    return;
  }
  if (auto j = hook_event(e)) publish(std::move(*j));
}

void Hooks::after_reconcile(const std::function<bool(const IpAddress&)>& releasing) {
  std::erase_if(after_reconcile_, [&](nlohmann::json& j) {
    if (releasing && j.value("type", "") == "release-after")
      if (auto a = IpAddress::parse(j.value("address", "")); a && releasing(*a)) return false;
    publish(std::move(j));
    return true;
  });
}

void Hooks::publish(nlohmann::json event) {
  for (auto& h : hooks_) h->offer(event);
}

std::vector<dbus::HookState> Hooks::states() const {
  std::vector<dbus::HookState> out;
  for (const auto& h : hooks_)
    out.push_back({h->cfg.name, h->cfg.type, std::string(Hook::name_of(h->state)), h->restarts, h->lost, h->last_error});
  return out;
}

nlohmann::json Hooks::status() const {
  auto j = nlohmann::json::array();
  for (const auto& h : hooks_) j.push_back(h->status());
  return j;
}

}  // namespace mpathd
