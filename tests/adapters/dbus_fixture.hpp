// Test support for lib/dbus: a private dbus-daemon with the system bus policy of
// units/, a real Engine, the Service on an sd-event loop and a client connection on
// the same loop. Every wait is bounded; nothing sleeps.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/engine.hpp"
#include "dbus/service.hpp"

namespace mpathd::test {

using namespace std::chrono_literals;

inline constexpr const char* kName = "org.ipmp.Mpathd1";
inline constexpr const char* kRoot = "/org/ipmp/Mpathd1";
inline constexpr const char* kManager = "org.ipmp.Mpathd1.Manager";
inline constexpr const char* kGroup = "org.ipmp.Mpathd1.Group";
inline constexpr const char* kInterface = "org.ipmp.Mpathd1.Interface";
inline constexpr const char* kProperties = "org.freedesktop.DBus.Properties";

// A dbus-daemon of type system on a unix socket in a temporary directory. `system`
// policy: deny-by-default like /usr/share/dbus-1/system.conf plus
// units/org.ipmp.Mpathd1.conf. `open`: everybody may own and call anything (to reach
// the daemon's own privilege check).
class PrivateBus {
 public:
  enum class Policy { system, open };
  explicit PrivateBus(Policy policy);
  ~PrivateBus();
  PrivateBus(const PrivateBus&) = delete;
  PrivateBus& operator=(const PrivateBus&) = delete;

  bool ok() const { return !address_.empty(); }
  const std::string& address() const { return address_; }
  const std::string& error() const { return error_; }
  void stop();  // SIGTERM, bounded wait, SIGKILL

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::string address_;
  std::string error_;
};

// A method reply (or error), with its body rendered as text.
struct Reply {
  bool done = false;
  bool ok = false;
  std::string error_name;
  std::string error_message;
  std::string body;  // e.g. ("ok", ["RUNNING"]) — see render()
};

// One received signal.
struct Signal {
  std::string path;
  std::string interface;
  std::string member;
  std::string body;
};

// Renders a message body from the current position: strings "..", arrays [..],
// structs (..), dict entries k: v, variants as their content.
std::string render(sd_bus_message* m);

// path -> interface -> property -> rendered value.
using Objects = std::map<std::string, std::map<std::string, std::map<std::string, std::string>>>;

class DbusFixture : public ::testing::Test {
 protected:
  void SetUp() override { start(PrivateBus::Policy::system); }
  void TearDown() override;

  // Starts the bus, the Engine (group g0 = ipmp0 with m0, m1, two data addresses;
  // ungrouped u0 tracked), the Service and the client.
  void start(PrivateBus::Policy policy);
  static Config config();
  void link(const std::string& name, bool up, unsigned index, int mac = 0);

  // Runs the loop until pred() holds; false after `timeout`.
  bool pump_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 2000ms);

  template <typename... Args>
  Reply call(const std::string& path, const char* iface, const char* member, const char* types = nullptr,
             Args... args) {
    sd_bus_message* m = nullptr;
    int r = sd_bus_message_new_method_call(client_, &m, bus_name_.c_str(), path.c_str(), iface, member);
    if (r >= 0 && types) r = sd_bus_message_append(m, types, args...);
    return send(m, r);
  }
  Reply manager(const char* member, const char* types = nullptr, auto... args) {
    return call(kRoot, kManager, member, types, args...);
  }
  Reply get(const std::string& path, const char* iface, const char* property) {
    return call(path, kProperties, "Get", "ss", iface, property);
  }
  Objects managed_objects();
  // A Peer.Ping round trip to the Service: every signal it sent before is received.
  void sync();
  std::vector<Signal> take_signals() { return std::exchange(signals_, {}); }

  // Runs body in a child as uid/gid 65534 with its own bus connection while this
  // process serves; returns what body returned ("" plus a failure if it did not end).
  // With net_admin the child keeps CAP_NET_ADMIN (effective) after giving up root.
  std::string as_nobody(const std::function<std::string(sd_bus*)>& body, bool net_admin = false);

  std::unique_ptr<PrivateBus> bus_;
  sd_event* event_ = nullptr;
  SteadyTimeSource clock_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<dbus::Service> service_;
  std::string direct_socket_;  // set before start(): the Service also serves direct connections there
  sd_bus* client_ = nullptr;
  int after_change_calls_ = 0;
  std::function<Result<void>()> after_change_;  // what the daemon does after a change (a stand-in)
  std::function<Result<void>()> reload_;  // set before start() to give the Service a reload hook
  std::string bus_name_ = kName;          // set before start() to serve an instance name
  std::vector<Signal> signals_;

 private:
  Reply send(sd_bus_message* m, int r);
  static int on_signal(sd_bus_message* m, void* self, sd_bus_error*);
};

inline std::string group_path(const std::string& name) { return std::string(kRoot) + "/group/" + name; }
inline std::string iface_path(const std::string& name) { return std::string(kRoot) + "/interface/" + name; }

}  // namespace mpathd::test
