// wait (group NAME | interface IF) STATE [--timeout SEC]: returns when the state is
// reached. Driven by StateChanged signals: subscribe, then read the state once, then
// sleep in the bus until a signal, the timeout or Ctrl-C.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <chrono>
#include <cmath>

#include "ipmpctl.hpp"

namespace ipmpctl {

namespace {

constexpr std::array<std::string_view, 3> kGroupStates{"ok", "degraded", "failed"};
constexpr std::array<std::string_view, 4> kInterfaceStates{"ok", "failed", "offline", "unknown"};

struct Args {
  std::string kind, name, state;
  double timeout = -1;  // seconds; < 0: no limit
};

template <std::size_t N>
bool one_of(const std::array<std::string_view, N>& set, const std::string& s) {
  for (auto x : set)
    if (x == s) return true;
  return false;
}

template <std::size_t N>
std::string list(const std::array<std::string_view, N>& set) {
  std::string out;
  for (auto x : set) out += (out.empty() ? "" : "|") + std::string(x);
  return out;
}

int wait(Context& ctx, const Args& a) {
  if (!ctx.no_fields("wait")) return kUsage;
  const bool group = a.kind == "group";
  if (!group && a.kind != "interface")
    return ctx.usage("wait: expected 'group' or 'interface', not '" + a.kind + "'");
  if (group ? !one_of(kGroupStates, a.state) : !one_of(kInterfaceStates, a.state))
    return ctx.usage("wait: invalid " + a.kind + " state '" + a.state + "' (" +
                     (group ? list(kGroupStates) : list(kInterfaceStates)) + ")");
  if (std::isnan(a.timeout)) return ctx.usage("wait: invalid --timeout");
  const std::string object = a.kind + " " + a.name;
  auto result = [&](bool ok, const std::string& state) {
    return nlohmann::json{{"verb", "wait"}, {"kind", a.kind}, {"name", a.name},
                          {"state", state}, {"wanted", a.state}, {"ok", ok}};
  };

  auto c = ctx.client(true);
  if (!c) return ctx.fail("wait", "wait for", object, c.error());
  client::Client& cl = **c;

  bool reached = false, gone = false, daemon_lost = false;
  std::string last;
  client::Callbacks cb;
  if (group) {
    cb.group_state_changed = [&](const client::GroupStateChanged& e) {
      if (e.group != a.name) return;
      last = e.new_state;
      if (e.new_state == a.state) {
        reached = true;
        cl.stop();
      }
    };
  } else {
    cb.interface_state_changed = [&](const client::InterfaceStateChanged& e) {
      if (e.interface != a.name) return;
      last = e.new_state;
      if (e.new_state == a.state) {
        reached = true;
        cl.stop();
      }
    };
  }
  cb.object_removed = [&](const client::ObjectChange& o) {
    if (o.name == a.name && (o.kind == client::ObjectKind::group) == group) {
      gone = true;
      cl.stop();
    }
  };
  cb.daemon_presence = [&](bool present) {
    if (!present) {
      daemon_lost = true;
      cl.stop();
    }
  };
  if (auto r = cl.subscribe(std::move(cb)); !r) return ctx.fail("wait", "wait for", object, r.error());

  auto snap = cl.snapshot();
  if (!snap) return ctx.fail("wait", "wait for", object, snap.error());
  if (group) {
    const auto* g = snap->find_group(a.name);
    if (!g) return ctx.fail(kNotFound, "no such group " + a.name);
    last = g->state;
  } else {
    const auto* i = snap->find_interface(a.name);
    if (!i) return ctx.fail(kNotFound, "no such interface " + a.name);
    last = i->state;
  }
  if (last == a.state) {
    if (ctx.output.mode == OutputMode::json) ctx.json(result(true, last));
    return kOk;
  }
  // Signals that arrived while the snapshot was read are queued; process() sees them.
  if (auto r = cl.process(); !r) return ctx.fail("wait", "wait for", object, r.error());

  int sfd = stop_signal_fd();
  using clock = std::chrono::steady_clock;
  const auto deadline = a.timeout < 0 ? clock::time_point::max()
                                      : clock::now() + std::chrono::duration_cast<clock::duration>(
                                                           std::chrono::duration<double>(a.timeout));
  int code = kOk;
  while (!reached) {
    if (gone) {
      code = ctx.fail(kNotFound, object + " disappeared while waiting for state " + a.state);
      break;
    }
    if (daemon_lost) {
      code = ctx.fail(kUnreachable, "mpathd left the bus while waiting for " + object);
      break;
    }
    auto left = deadline == clock::time_point::max()
                    ? std::chrono::milliseconds(-1)
                    : std::max(std::chrono::milliseconds(0),
                               std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()));
    auto w = cl.run(left, sfd);
    if (!w) {
      code = ctx.fail("wait", "wait for", object, w.error());
      break;
    }
    if (reached) break;
    if (*w == client::Wake::timeout) {
      code = ctx.fail(kTimeout, "timed out waiting for " + object + " to become " + a.state +
                                    " (it is " + last + ")");
      break;
    }
    if (*w == client::Wake::fd_ready) {
      code = ctx.fail(kFailure, "interrupted while waiting for " + object);
      break;
    }
  }
  if (sfd >= 0) close(sfd);
  if (ctx.output.mode == OutputMode::json) ctx.json(result(code == kOk, last));
  return code;
}

}  // namespace

void setup_wait(CLI::App& app, Runner* run) {
  auto* cmd = add_verb(app, "wait",
                       "wait until a group (ok|degraded|failed) or an interface "
                       "(ok|failed|offline|unknown) is in a state");
  auto a = std::make_shared<Args>();
  cmd->add_option("kind", a->kind, "group or interface")->required();
  cmd->add_option("name", a->name, "group or interface name")->required();
  cmd->add_option("state", a->state, "the state to wait for")->required();
  cmd->add_option("--timeout", a->timeout, "give up after SEC seconds (exit 7); default: none")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([run, a] { *run = [a](Context& ctx) { return wait(ctx, *a); }; });
}

}  // namespace ipmpctl
