// Internals of lib/dbus shared by its .cpp files: names of the contract, the Service
// state, path helpers and the guard that keeps exceptions out of sd-bus callbacks.
#pragma once

#include <systemd/sd-bus.h>

#include <array>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dbus/service.hpp"
#include "guard/guard.hpp"

namespace mpathd::dbus {

// Names from dbus/org.ipmp.Mpathd1.xml.
inline constexpr const char* kRootPath = "/org/ipmp/Mpathd1";
inline constexpr const char* kGroupPrefix = "/org/ipmp/Mpathd1/group";
inline constexpr const char* kInterfacePrefix = "/org/ipmp/Mpathd1/interface";
inline constexpr const char* kManagerIface = "org.ipmp.Mpathd1.Manager";
inline constexpr const char* kGroupIface = "org.ipmp.Mpathd1.Group";
inline constexpr const char* kInterfaceIface = "org.ipmp.Mpathd1.Interface";
inline constexpr const char* kErrorFailed = "org.ipmp.Mpathd1.Error.Failed";

struct Service::Impl {
  Impl(Engine& e, ServiceHooks h, sd_event* ev, std::string name)
      : engine(e), hooks(std::move(h)), loop(ev), bus_name(std::move(name)) {}
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Engine& engine;
  ServiceHooks hooks;
  sd_event* loop;
  std::string bus_name;
  sd_bus* bus = nullptr;  // nullptr while disconnected (signals are dropped)
  // Reconnecting after the bus went away (service.cpp): back-off from 100 ms to 10 s.
  sd_event_source* retry = nullptr;
  std::chrono::milliseconds backoff{0};
  unsigned attempts = 0;
  bool name_refused = false;  // the last connect() failed at the name (not retried at start)

  // Connects, registers the objects and takes the name; on failure bus stays nullptr.
  Result<void> connect();
  // The objects of the contract on `b` (the system bus or a direct connection).
  Result<void> register_objects(sd_bus* b);
  // The bus is gone (or could not be reached): try again after the back-off.
  void schedule_reconnect();
  static int on_retry(sd_event_source*, uint64_t, void* self);
  // After a reconnect: InterfacesAdded for every object and the Manager's lists, so
  // that clients that watch learn the state without asking.
  void announce_all() noexcept;
  // The path of an object being announced as removed. The Engine has already
  // forgotten it, but sd_bus_emit_object_removed() finds interfaces through the find
  // callbacks, which accept this path too while it is set.
  std::string removing;

  // Direct connections (direct.cpp): peer-to-peer D-Bus on a unix socket under the
  // runtime directory that only root may use, as systemd's /run/systemd/private. Method
  // calls and properties, no signals: ipmpctl's one-shot verbs work while dbus-daemon
  // is down, hung or restarting, and a reply takes one hop instead of two.
  std::string direct_path;  // "" while not listening
  int direct_fd = -1;
  sd_event_source* direct_io = nullptr;
  sd_event_source* direct_reap = nullptr;  // closes the peers that went away
  std::vector<sd_bus*> peers;
  Result<void> listen_direct(const std::string& path);
  void close_direct() noexcept;
  static int on_direct_accept(sd_event_source*, int fd, uint32_t revents, void* self);
  static int on_direct_reap(sd_event_source*, void* self);

  // The member named `name` and its group (nullptr if none), as Engine::group_of finds
  // them, remembered by position: a property read does not search every group again
  // (GetManagedObjects reads 17 properties of each of 256 interfaces at 64 x 4). A
  // remembered position is used only while the member there still has that name, and
  // all are forgotten on a change of topology (objects.cpp).
  const Member* member(std::string_view name, const Group** group);
  struct Position {
    std::size_t group;  // index in Engine::groups(), or its size for the ungrouped
    std::size_t member;
  };
  std::unordered_map<std::string, Position> positions;

  // Engine event -> signals (signals.cpp). Never throws.
  void on_event(const Event& e) noexcept;
  // PropertiesChanged for `names` (nullptr-free list) on one object; errors are logged.
  void emit_changed(const std::string& path, const char* iface, std::vector<const char*> names) noexcept;
  // After a successful admin method: hooks.after_change, guarded; `reply` (may be
  // empty) gets its outcome, now or later.
  void changed(ServiceHooks::Reply reply) noexcept;
};

// Object paths (sd_bus_path_encode of the name under the prefix).
std::string group_path(std::string_view name);
std::string interface_path(std::string_view ifname);
// The name encoded in `path` below `prefix`, if it is exactly one element below it.
std::optional<std::string> path_name(const char* path, const char* prefix);

// vtables and object callbacks (objects.cpp, manager.cpp).
extern const sd_bus_vtable kManagerVtable[];
extern const sd_bus_vtable kGroupVtable[];
extern const sd_bus_vtable kInterfaceVtable[];
int find_group(sd_bus* bus, const char* path, const char* iface, void* userdata, void** found, sd_bus_error* error);
int find_interface(sd_bus* bus, const char* path, const char* iface, void* userdata, void** found,
                   sd_bus_error* error);
int enumerate_groups(sd_bus* bus, const char* prefix, void* userdata, char*** nodes, sd_bus_error* error);
int enumerate_interfaces(sd_bus* bus, const char* prefix, void* userdata, char*** nodes, sd_bus_error* error);

// Paths of every group / every tracked interface, in the Engine's order.
std::vector<std::string> all_group_paths(const Engine& engine);
std::vector<std::string> all_interface_paths(const Engine& engine);

// An error for a negative errno (sd-bus' and sd-event's results): "what: reason".
std::unexpected<Error> sd_fail(const std::string& what, int r);

// Message helpers.
int append_strings(sd_bus_message* m, char type, const std::vector<std::string>& items);

// The value of one property (its name as in the vtable) appended to `reply`; -ENOENT
// for a name the object does not have. The property getters and Manager.GetState
// (state.cpp) both use these, so the two can never disagree.
int manager_property(sd_bus_message* reply, const Service::Impl& impl, std::string_view p);
int group_property(sd_bus_message* reply, const Group& g, std::string_view p);
// CLOCK_REALTIME usec of steady-clock time points (LastChangeUsec), one per reply: both
// clocks are read once, at its first value, not for every interface of a GetState reply.
class WallClock {
 public:
  std::uint64_t usec(TimePoint t) const;  // 0 for "never"

 private:
  mutable TimePoint now_{};  // of the first value; {} before it
  mutable Duration offset_{};
};
int interface_property(sd_bus_message* reply, const Group& g, const Member& m, std::string_view p,
                       const WallClock& clock);

// An interface's Counters, in the contract's order (the property's a{st} and
// GetState's struct of t).
std::array<std::pair<const char*, std::uint64_t>, 7> counter_items(const Member& m);

// Manager.GetState (state.cpp): the whole state in one reply, every object a struct of
// its object path and its properties in vtable order (Groups and Interfaces of the
// Manager are the order of the arrays, so they are left out; Counters is a struct of
// its values in counter_items' order, not a dictionary). The out-signature is a
// literal in the vtable; state_signature() derives it from the property vtables and
// Service::open refuses to serve a contract that contradicts itself.
inline constexpr char kStateSignature[] =
    "(stbbutssa(ssstts)s)"
    "a(osssstbaoa(ssss)a(sssss))"
    "a(osussbasbssstsasassa(stt)(ttttttt))";
int get_state(sd_bus_message* m, void* userdata, sd_bus_error* error);
std::string state_signature();

// Runs f (returning an sd-bus result) so that no exception crosses into sd-bus: one
// becomes an org.ipmp.Mpathd1.Error.Failed reply.
template <typename F>
int guarded(sd_bus_error* error, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    note_callback_exception("D-Bus method", e.what());
    return sd_bus_error_setf(error, kErrorFailed, "internal error: %s", e.what());
  } catch (...) {
    note_callback_exception("D-Bus method", "unknown exception");
    return sd_bus_error_set(error, kErrorFailed, "internal error");
  }
}

}  // namespace mpathd::dbus
