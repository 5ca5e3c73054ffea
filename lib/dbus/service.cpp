// Service lifetime: connect, register the objects of the contract, take the name; and
// when the bus goes away (a restart of dbus-daemon during a package upgrade), connect
// again with back-off, take the name again and announce the state. The data plane
// never waits for any of it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "dbus/bus.hpp"

namespace mpathd::dbus {

namespace {

constexpr std::chrono::milliseconds kFirstRetry{100};
constexpr std::chrono::milliseconds kMaxRetry{10000};

// The loss of the bus: logged once, and a reconnect is scheduled.
int on_message(sd_bus_message* m, void* self, sd_bus_error*) {
  if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected") > 0) {
    spdlog::warn("D-Bus: connection to the system bus lost; failover goes on, reconnecting");
    static_cast<Service::Impl*>(self)->schedule_reconnect();
  }
  return 0;
}

std::uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

std::unexpected<Error> sd_fail(const std::string& what, int r) {
  return fail(Errc::system, what + ": " + std::strerror(-r));
}

Service::Impl::~Impl() {
  close_direct();
  sd_event_source_disable_unref(retry);
  if (bus) sd_bus_flush_close_unref(bus);
}

Result<void> Service::Impl::register_objects(sd_bus* b) {
  void* self = this;
  int r = 0;
  if ((r = sd_bus_add_object_vtable(b, nullptr, kRootPath, kManagerIface, kManagerVtable, self)) < 0)
    return sd_fail("cannot register the Manager object", r);
  if ((r = sd_bus_add_fallback_vtable(b, nullptr, kGroupPrefix, kGroupIface, kGroupVtable, find_group, self)) < 0)
    return sd_fail("cannot register the Group objects", r);
  if ((r = sd_bus_add_node_enumerator(b, nullptr, kGroupPrefix, enumerate_groups, self)) < 0)
    return sd_fail("cannot register the Group enumerator", r);
  if ((r = sd_bus_add_fallback_vtable(b, nullptr, kInterfacePrefix, kInterfaceIface, kInterfaceVtable,
                                      find_interface, self)) < 0)
    return sd_fail("cannot register the Interface objects", r);
  if ((r = sd_bus_add_node_enumerator(b, nullptr, kInterfacePrefix, enumerate_interfaces, self)) < 0)
    return sd_fail("cannot register the Interface enumerator", r);
  if ((r = sd_bus_add_object_manager(b, nullptr, kRootPath)) < 0)
    return sd_fail("cannot register the object manager", r);
  return {};
}

Result<void> Service::Impl::connect() {
  // Always a fresh connection: registrations, matches and the name belong to it.
  name_refused = false;
  auto fresh = [&]() -> Result<void> {
    int r = sd_bus_open_system_with_description(&bus, "mpathd");
    if (r < 0) {
      bus = nullptr;
      return sd_fail("cannot connect to the system bus", r);
    }
    // The data plane must outlive the bus: never exit the loop when it goes away.
    if ((r = sd_bus_set_exit_on_disconnect(bus, 0)) < 0) return sd_fail("sd_bus_set_exit_on_disconnect", r);
    if (auto reg = register_objects(bus); !reg) return reg;
    void* self = this;
    if ((r = sd_bus_add_filter(bus, nullptr, on_message, self)) < 0) return sd_fail("sd_bus_add_filter", r);
    if ((r = sd_bus_attach_event(bus, loop, SD_EVENT_PRIORITY_NORMAL)) < 0)
      return sd_fail("sd_bus_attach_event", r);
    if ((r = sd_bus_request_name(bus, bus_name.c_str(), 0)) < 0) {
      name_refused = true;
      return sd_fail(("cannot own the name " + bus_name +
                      (r == -EEXIST ? " (is another mpathd running?)" : r == -EACCES ? " (bus policy)" : ""))
                         .c_str(),
                     r);
    }
    return {};
  };
  auto r = fresh();
  if (!r && bus) {
    sd_bus_flush_close_unref(bus);
    bus = nullptr;
  }
  return r;
}

void Service::Impl::schedule_reconnect() {
  backoff = backoff.count() == 0 ? kFirstRetry : std::min(kMaxRetry, backoff * 2);
  const std::uint64_t when = monotonic_usec() + static_cast<std::uint64_t>(backoff.count()) * 1000u;
  int r = retry ? sd_event_source_set_time(retry, when) : sd_event_add_time(loop, &retry, CLOCK_MONOTONIC, when, 10000,
                                                                             &Impl::on_retry, this);
  if (r >= 0) r = sd_event_source_set_enabled(retry, SD_EVENT_ONESHOT);
  if (r < 0) spdlog::error("D-Bus: cannot schedule a reconnect: {}", std::strerror(-r));
}

int Service::Impl::on_retry(sd_event_source*, uint64_t, void* userdata) {
  auto* s = static_cast<Impl*>(userdata);
  try {
    if (s->bus) {  // the closed connection (never from inside its own callbacks)
      sd_bus_flush_close_unref(s->bus);
      s->bus = nullptr;
    }
    ++s->attempts;
    if (auto r = s->connect(); !r) {
      // Quiet while the bus is down: the first failure and then every 10th.
      if (s->attempts == 1 || s->attempts % 10 == 0)
        spdlog::info("D-Bus: not reconnected yet ({}; attempt {}); trying again", r.error().message, s->attempts);
      s->schedule_reconnect();
      return 0;
    }
    spdlog::info("D-Bus: reconnected to the system bus after {} attempt(s); serving {} again", s->attempts,
                 s->bus_name);
    s->attempts = 0;
    s->backoff = std::chrono::milliseconds{0};
    s->announce_all();
  } catch (const std::exception& e) {
    note_callback_exception("D-Bus reconnect", e.what());
    s->schedule_reconnect();
  }
  return 0;
}

void Service::Impl::announce_all() noexcept {
  try {
    std::vector<std::string> paths = all_group_paths(engine);
    auto more = all_interface_paths(engine);
    paths.insert(paths.end(), more.begin(), more.end());
    for (const auto& p : paths)
      if (int r = sd_bus_emit_object_added(bus, p.c_str()); r < 0)
        spdlog::debug("D-Bus: cannot emit InterfacesAdded on {}: {}", p, std::strerror(-r));
    emit_changed(kRootPath, kManagerIface, {"Groups", "Interfaces"});
  } catch (const std::exception& e) {
    spdlog::warn("D-Bus: cannot announce the state after reconnecting: {}", e.what());
  }
}

Result<std::unique_ptr<Service>> Service::open(sd_event* event, Engine& engine, ServiceHooks hooks,
                                               const std::string& bus_name, const std::string& direct_socket) {
  if (state_signature() != kStateSignature)
    return fail(Errc::system, "internal error: Manager.GetState's signature " + std::string(kStateSignature) +
                                  " does not match the properties (" + state_signature() + ")");
  auto impl = std::make_shared<Impl>(engine, std::move(hooks), event, bus_name);
  if (auto r = impl->connect(); !r) {
    if (impl->name_refused) return std::unexpected(r.error());  // another owner, or the policy
    // No bus yet (it may start after mpathd): the API comes when it does.
    spdlog::warn("D-Bus API unavailable for now: {}; running without it and connecting in the background",
                 r.error().message);
    impl->schedule_reconnect();
  }
  if (!direct_socket.empty()) {
    if (auto r = impl->listen_direct(direct_socket); !r)
      spdlog::warn("D-Bus: no direct connections ({}); the system bus only", r.error().message);
    else
      spdlog::debug("D-Bus: direct connections on {}", direct_socket);
  }
  // The Engine has no unsubscribe: the listener holds a weak reference and goes
  // quiet when the Service is gone.
  engine.subscribe([weak = std::weak_ptr<Impl>(impl)](const Event& e) {
    if (auto s = weak.lock(); s && s->bus) s->on_event(e);
  });
  spdlog::debug("D-Bus: serving {} on {}", bus_name, kRootPath);
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

Service::Service(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

void Service::state_problem_changed() { impl_->emit_changed(kRootPath, kManagerIface, {"StateProblem"}); }

Service::~Service() = default;

}  // namespace mpathd::dbus
