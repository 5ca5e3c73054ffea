#include "daemon/restarter.hpp"

#include <spdlog/spdlog.h>

#include "dbus/systemd.hpp"

namespace mpathd {

Restarter::Restarter(sd_event* event, std::function<void()> changed)
    : changed_(std::move(changed)), manager_(std::make_unique<dbus::SystemdManager>(event)) {}

Restarter::~Restarter() = default;

void Restarter::configure(const std::vector<HookConfig>& hooks) {
  std::vector<Hook> next;
  for (const auto& c : hooks) {
    if (c.type != "systemd") continue;
    auto it = std::find_if(hooks_.begin(), hooks_.end(), [&](const Hook& h) { return h.cfg == c; });
    next.push_back(it != hooks_.end() ? std::move(*it) : Hook{c, 0, 0, 0, {}});  // an unchanged hook keeps its counts
  }
  hooks_ = std::move(next);
}

std::vector<const Restarter::Hook*> Restarter::hooks_for(const std::string& group, const IpAddress& address) const {
  std::vector<const Hook*> out;
  for (const auto& h : hooks_)
    if ((h.cfg.address && *h.cfg.address == address) || (!h.cfg.group.empty() && h.cfg.group == group))
      out.push_back(&h);
  return out;
}

Restarter::Hook* Restarter::find(const std::string& name) {
  auto it = std::find_if(hooks_.begin(), hooks_.end(), [&](const Hook& h) { return h.cfg.name == name; });
  return it == hooks_.end() ? nullptr : &*it;
}

void Restarter::run(const std::string& hook, const char* method, const std::string& unit, Duration timeout,
                    const std::string& why, std::function<void()> then) {
  if (Hook* h = find(hook)) {
    ++h->jobs;
    ++h->pending;
  }
  const auto started = Clock::now();
  spdlog::info("hook {}: {} {} ({})", hook, method, unit, why);
  manager_->run(method, unit, timeout, [this, hook, why, started, then = std::move(then)](const dbus::JobOutcome& o) {
    const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - started).count();
    Hook* h = find(hook);  // gone if a reload removed it meanwhile
    if (h && h->pending) --h->pending;
    if (o.ok()) {
      spdlog::info("hook {}: {} after {} ms ({})", hook, o.describe(), ms, why);
    } else {
      spdlog::warn("hook {}: {} after {} ms ({})", hook, o.describe(), ms, why);
      if (h) {
        ++h->failed;
        h->last_error = o.describe();
      }
    }
    changed_();
    if (then) then();
  });
  changed_();
}

bool Restarter::stop(const std::string& group, const IpAddress& address, std::function<void()> done) {
  struct Batch {
    std::size_t left = 0;
    std::function<void()> done;
  };
  auto batch = std::make_shared<Batch>();
  batch->done = std::move(done);
  std::vector<std::tuple<std::string, std::string, Duration>> jobs;
  for (const Hook* h : hooks_for(group, address))
    for (const auto& u : h->cfg.stop_units) jobs.emplace_back(h->cfg.name, u, h->cfg.timeout);
  if (jobs.empty()) return false;
  batch->left = jobs.size();
  const std::string why = "release of " + address.str();
  for (const auto& [hook, unit, timeout] : jobs)
    run(hook, "StopUnit", unit, timeout, why, [batch] {
      if (--batch->left == 0 && batch->done) std::exchange(batch->done, nullptr)();
    });
  return true;
}

void Restarter::start(const std::string& group, const IpAddress& address) {
  const std::string why = "takeover of " + address.str();
  std::vector<std::tuple<std::string, const char*, std::string, Duration>> jobs;
  for (const Hook* h : hooks_for(group, address)) {
    for (const auto& u : h->cfg.start_units) jobs.emplace_back(h->cfg.name, "StartUnit", u, h->cfg.timeout);
    for (const auto& u : h->cfg.restart_units) jobs.emplace_back(h->cfg.name, "RestartUnit", u, h->cfg.timeout);
  }
  for (const auto& [hook, method, unit, timeout] : jobs) run(hook, method, unit, timeout, why, nullptr);
}

nlohmann::json Restarter::status() const {
  auto j = nlohmann::json::array();
  for (const auto& h : hooks_)
    j.push_back({{"name", h.cfg.name},
                 {"type", "systemd"},
                 {"state", "running"},
                 {"jobs", h.jobs},
                 {"jobs_failed", h.failed},
                 {"jobs_pending", h.pending},
                 {"last_error", h.last_error}});
  return j;
}

std::vector<dbus::HookState> Restarter::states() const {
  std::vector<dbus::HookState> out;
  for (const auto& h : hooks_) out.push_back({h.cfg.name, "systemd", "running", 0, 0, h.last_error});
  return out;
}

}  // namespace mpathd
