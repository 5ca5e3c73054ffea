// Service lifetime: connect, register the objects of the contract, take the name.
#include <spdlog/spdlog.h>

#include <cstring>

#include "dbus/bus.hpp"

namespace mpathd::dbus {

namespace {

std::unexpected<Error> sd_fail(const char* what, int r) {
  return fail(Errc::system, std::string(what) + ": " + std::strerror(-r));
}

// Logs the loss of the bus once; the daemon keeps running without its API.
int on_message(sd_bus_message* m, void*, sd_bus_error*) {
  if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected") > 0)
    spdlog::warn("D-Bus: connection to the system bus lost; the D-Bus API is unavailable until mpathd restarts");
  return 0;
}

}  // namespace

Service::Impl::~Impl() {
  if (bus) sd_bus_flush_close_unref(bus);
}

Result<std::unique_ptr<Service>> Service::open(sd_event* event, Engine& engine, ServiceHooks hooks,
                                               const std::string& bus_name) {
  if (state_signature() != kStateSignature)
    return fail(Errc::system, "internal error: Manager.GetState's signature " + std::string(kStateSignature) +
                                  " does not match the properties (" + state_signature() + ")");
  auto impl = std::make_shared<Impl>(engine, std::move(hooks));
  void* self = impl.get();
  int r = sd_bus_open_system_with_description(&impl->bus, "mpathd");
  if (r < 0) {
    impl->bus = nullptr;
    return sd_fail("cannot connect to the system bus", r);
  }
  sd_bus* bus = impl->bus;
  // The data plane must outlive the bus: never exit the loop when it goes away.
  if ((r = sd_bus_set_exit_on_disconnect(bus, 0)) < 0) return sd_fail("sd_bus_set_exit_on_disconnect", r);
  if ((r = sd_bus_add_object_vtable(bus, nullptr, kRootPath, kManagerIface, kManagerVtable, self)) < 0)
    return sd_fail("cannot register the Manager object", r);
  if ((r = sd_bus_add_fallback_vtable(bus, nullptr, kGroupPrefix, kGroupIface, kGroupVtable, find_group, self)) < 0)
    return sd_fail("cannot register the Group objects", r);
  if ((r = sd_bus_add_node_enumerator(bus, nullptr, kGroupPrefix, enumerate_groups, self)) < 0)
    return sd_fail("cannot register the Group enumerator", r);
  if ((r = sd_bus_add_fallback_vtable(bus, nullptr, kInterfacePrefix, kInterfaceIface, kInterfaceVtable,
                                      find_interface, self)) < 0)
    return sd_fail("cannot register the Interface objects", r);
  if ((r = sd_bus_add_node_enumerator(bus, nullptr, kInterfacePrefix, enumerate_interfaces, self)) < 0)
    return sd_fail("cannot register the Interface enumerator", r);
  if ((r = sd_bus_add_object_manager(bus, nullptr, kRootPath)) < 0)
    return sd_fail("cannot register the object manager", r);
  if ((r = sd_bus_add_filter(bus, nullptr, on_message, self)) < 0) return sd_fail("sd_bus_add_filter", r);
  if ((r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL)) < 0) return sd_fail("sd_bus_attach_event", r);
  if ((r = sd_bus_request_name(bus, bus_name.c_str(), 0)) < 0)
    return sd_fail(("cannot own the name " + bus_name +
                    (r == -EEXIST ? " (is another mpathd running?)" : r == -EACCES ? " (bus policy)" : ""))
                       .c_str(),
                   r);
  // The Engine has no unsubscribe: the listener holds a weak reference and goes
  // quiet when the Service is gone.
  engine.subscribe([weak = std::weak_ptr<Impl>(impl)](const Event& e) {
    if (auto s = weak.lock()) s->on_event(e);
  });
  spdlog::debug("D-Bus: serving {} on {}", bus_name, kRootPath);
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

Service::Service(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Service::~Service() = default;

}  // namespace mpathd::dbus
