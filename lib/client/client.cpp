// The sd-bus side of mpathd::client: connection, method calls, message reading and
// signal matches. Everything the daemon sends becomes a plain value here.
#include "client/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <unordered_map>
#include <utility>

#include "client/objects.hpp"

namespace mpathd::client {

namespace {

using detail::Properties;
using detail::Value;

constexpr const char* kObjectManager = "org.freedesktop.DBus.ObjectManager";
constexpr const char* kPropertiesIface = "org.freedesktop.DBus.Properties";

// Owning wrappers for sd-bus objects.
struct BusUnref {
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
struct MsgUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
struct SlotUnref {
  void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
using BusPtr = std::unique_ptr<sd_bus, BusUnref>;
using MsgPtr = std::unique_ptr<sd_bus_message, MsgUnref>;
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;

struct ErrorGuard {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  ~ErrorGuard() { sd_bus_error_free(&e); }
};

std::unexpected<Error> bad_reply(std::string_view what, int r) {
  Error e = error_from_errno(r, std::string("cannot parse ") + std::string(what));
  e.failure = Failure::protocol;
  return std::unexpected(std::move(e));
}

// -------------------------------------------------------------- reading values

// Reads one basic value of type `t` as a string (s, o, g).
int read_string(sd_bus_message* m, char t, std::string& out) {
  const char* s = nullptr;
  int r = sd_bus_message_read_basic(m, t, &s);
  if (r > 0) out = s ? s : "";
  return r;
}

int read_strings(sd_bus_message* m, const char* contents, std::vector<std::string>& out) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, contents);
  if (r < 0) return r;
  // The pointers first (they point into the message), then the vector at its size: one
  // allocation rather than one per doubling (flags, link flags and members: ~1,500
  // vectors in a GetState reply at 64 x 4).
  thread_local std::vector<const char*> items;
  items.clear();
  const char* s = nullptr;
  while ((r = sd_bus_message_read_basic(m, contents[0], &s)) > 0) items.push_back(s ? s : "");
  if (r < 0) return r;
  out.reserve(out.size() + items.size());
  out.insert(out.end(), items.begin(), items.end());
  return sd_bus_message_exit_container(m);
}

bool known_signature(std::string_view sig) {
  return sig == "s" || sig == "o" || sig == "b" || sig == "u" || sig == "t" || sig == "as" ||
         sig == "ao" || sig == "a(ssss)" || sig == "a(sssss)" || sig == "a(stt)" || sig == "a{st}";
}

// Typed readers of the contract's value types, at the read pointer.
int read_field(sd_bus_message* m, std::string& out, char t = 's') { return read_string(m, t, out); }
int read_field(sd_bus_message* m, bool& out) {
  int b = 0;
  int r = sd_bus_message_read_basic(m, 'b', &b);
  out = b != 0;
  return r;
}
int read_field(sd_bus_message* m, std::uint32_t& out) { return sd_bus_message_read_basic(m, 'u', &out); }
int read_field(sd_bus_message* m, std::uint64_t& out) { return sd_bus_message_read_basic(m, 't', &out); }
int read_field(sd_bus_message* m, std::vector<std::string>& out, char t = 's') {
  const char contents[] = {t, '\0'};
  out.clear();
  return read_strings(m, contents, out);
}
// An array of structs of basic values, e.g. a(ssss): enter, then read_basic for each
// field (not sd_bus_message_read's format string, parsed again for every element: these
// are read for every group and interface of a GetState reply).
template <typename T, typename Fields>
int read_structs(sd_bus_message* m, const char* contents, std::vector<T>& out, Fields fields) {
  out.clear();
  const std::string array = "(" + std::string(contents) + ")";
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, array.c_str());
  if (r < 0) return r;
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, contents)) > 0) {
    if ((r = fields(out.emplace_back())) < 0) return r;
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
  }
  return r < 0 ? r : sd_bus_message_exit_container(m);
}
int read_field(sd_bus_message* m, std::vector<DataAddress>& out) {
  return read_structs(m, "ssss", out, [m](DataAddress& a) {
    int r = read_string(m, 's', a.address);
    if (r >= 0) r = read_string(m, 's', a.state);
    if (r >= 0) r = read_string(m, 's', a.inbound);
    if (r >= 0) r = read_string(m, 's', a.home);
    return r;
  });
}
int read_field(sd_bus_message* m, std::vector<SharedAddress>& out) {
  return read_structs(m, "sssss", out, [m](SharedAddress& a) {
    int r = read_string(m, 's', a.address);
    if (r >= 0) r = read_string(m, 's', a.state);
    if (r >= 0) r = read_string(m, 's', a.holder);
    if (r >= 0) r = read_string(m, 's', a.reason);
    if (r >= 0) r = read_string(m, 's', a.detail);
    return r;
  });
}
int read_field(sd_bus_message* m, std::vector<Target>& out) {
  return read_structs(m, "stt", out, [m](Target& t) {
    int r = read_string(m, 's', t.address);
    if (r >= 0) r = sd_bus_message_read_basic(m, 't', &t.rtt_avg_usec);
    if (r >= 0) r = sd_bus_message_read_basic(m, 't', &t.rtt_dev_usec);
    return r;
  });
}
int read_field(sd_bus_message* m, std::map<std::string, std::uint64_t>& out) {
  out.clear();
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{st}");
  if (r < 0) return r;
  const char* k = nullptr;
  std::uint64_t n = 0;
  while ((r = sd_bus_message_read(m, "{st}", &k, &n)) > 0) out[k] = n;
  return r < 0 ? r : sd_bus_message_exit_container(m);
}

// Reads one value of signature `sig` (a known_signature) at the read pointer.
int read_value(sd_bus_message* m, std::string_view sig, Value& out) {
  auto read = [&]<typename T>(T v, auto... extra) {
    int r = read_field(m, v, extra...);
    out = std::move(v);
    return r;
  };
  if (sig == "s" || sig == "o") return read(std::string(), sig[0]);
  if (sig == "b") return read(false);
  if (sig == "u") return read(std::uint32_t{0});
  if (sig == "t") return read(std::uint64_t{0});
  if (sig == "as" || sig == "ao") return read(std::vector<std::string>(), sig[1]);
  if (sig == "a(ssss)") return read(std::vector<DataAddress>());
  if (sig == "a(sssss)") return read(std::vector<SharedAddress>());
  if (sig == "a(stt)") return read(std::vector<Target>());
  return read(std::map<std::string, std::uint64_t>());  // a{st}
}

// Reads the variant at the read pointer into a Value (monostate for signatures the
// contract does not use; those are skipped).
int read_variant(sd_bus_message* m, Value& out) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r < 0) return r;
  if (type != SD_BUS_TYPE_VARIANT || !contents) return -EBADMSG;
  std::string_view sig(contents);
  if (!known_signature(sig)) {
    out = std::monostate{};
    return sd_bus_message_skip(m, "v");
  }
  r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, contents);
  if (r < 0) return r;
  if ((r = read_value(m, sig, out)) < 0) return r;
  return sd_bus_message_exit_container(m);
}

// a{sv}
int read_properties(sd_bus_message* m, Properties& out) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
  if (r < 0) return r;
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
    std::string name;
    r = read_string(m, 's', name);
    if (r < 0) return r;
    Value v;
    r = read_variant(m, v);
    if (r < 0) return r;
    out[name] = std::move(v);
    r = sd_bus_message_exit_container(m);
    if (r < 0) return r;
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

// a{sa{sv}}
int read_interfaces(sd_bus_message* m, detail::InterfaceProps& out) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sa{sv}}");
  if (r < 0) return r;
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sa{sv}")) > 0) {
    std::string iface;
    r = read_string(m, 's', iface);
    if (r < 0) return r;
    r = read_properties(m, out[iface]);
    if (r < 0) return r;
    r = sd_bus_message_exit_container(m);
    if (r < 0) return r;
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

std::string message_path(sd_bus_message* m) {
  const char* p = sd_bus_message_get_path(m);
  return p ? p : "";
}

std::string name_from_path(sd_bus_message* m) {
  auto d = decode_path(message_path(m));
  return d ? d->name : std::string();
}

std::uint64_t now_usec(clockid_t clock) {
  struct timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000U +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
}

std::string encode(std::string_view prefix, std::string_view name) {
  char* out = nullptr;
  std::string n(name), p(prefix);
  if (sd_bus_path_encode(p.c_str(), n.c_str(), &out) < 0 || !out) return p + "/_";
  std::string s(out);
  free(out);  // NOLINT: allocated by sd-bus
  return s;
}

}  // namespace

// ------------------------------------------------------------------ paths

std::string group_path(std::string_view name) { return encode(kGroupPathPrefix, name); }
std::string interface_path(std::string_view name) { return encode(kInterfacePathPrefix, name); }

std::optional<ObjectChange> decode_path(std::string_view path) {
  std::string p(path);
  if (p == kManagerPath) return ObjectChange{ObjectKind::manager, "", p};
  for (auto [prefix, kind] : {std::pair{kGroupPathPrefix, ObjectKind::group},
                              std::pair{kInterfacePathPrefix, ObjectKind::interface}}) {
    char* name = nullptr;
    std::string pre(prefix);
    if (sd_bus_path_decode(p.c_str(), pre.c_str(), &name) > 0 && name) {
      std::string n(name);
      free(name);  // NOLINT: allocated by sd-bus
      return ObjectChange{kind, n, p};
    }
  }
  return std::nullopt;
}

bool InterfaceView::has_flag(std::string_view f) const {
  return std::find(flags.begin(), flags.end(), f) != flags.end();
}

bool InterfaceView::has_link_flag(std::string_view f) const {
  return std::find(link_flags.begin(), link_flags.end(), f) != link_flags.end();
}

const GroupView* Snapshot::find_group(std::string_view name) const {
  for (const auto& g : groups)
    if (g.name == name) return &g;
  return nullptr;
}

const InterfaceView* Snapshot::find_interface(std::string_view name) const {
  for (const auto& i : interfaces)
    if (i.name == name) return &i;
  return nullptr;
}

// ------------------------------------------------------------------ Impl

struct Client::Impl {
  BusPtr bus;
  std::vector<SlotPtr> slots;
  Callbacks cb;
  bool stop_requested = false;
  bool direct = false;  // connect_direct(): mpathd's socket, no bus
  std::exception_ptr pending;  // an exception thrown by a callback, rethrown by run()

  Result<MsgPtr> call(const char* path, const char* iface, const char* member,
                      const char* types = nullptr, ...);

  template <typename F>
  static int guarded(void* userdata, F&& f) {
    auto* self = static_cast<Impl*>(userdata);
    try {
      f(*self);
    } catch (...) {
      if (!self->pending) self->pending = std::current_exception();
    }
    return 0;
  }

  void rethrow() {
    if (pending) std::rethrow_exception(std::exchange(pending, nullptr));
  }
};

Result<MsgPtr> Client::Impl::call(const char* path, const char* iface, const char* member,
                                  const char* types, ...) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus.get(), &raw, std::string(kBusName).c_str(), path,
                                         iface, member);
  if (r < 0) return std::unexpected(error_from_errno(r, "cannot create a D-Bus call"));
  MsgPtr msg(raw);
  if (types) {
    va_list ap;
    va_start(ap, types);
    r = sd_bus_message_appendv(msg.get(), types, ap);
    va_end(ap);
    if (r < 0) return std::unexpected(error_from_errno(r, "cannot build a D-Bus call"));
  }
  ErrorGuard err;
  sd_bus_message* reply = nullptr;
  r = sd_bus_call(bus.get(), msg.get(), 0, &err.e, &reply);
  if (r < 0) {
    if (sd_bus_error_is_set(&err.e))
      return std::unexpected(error_from_dbus(err.e.name, err.e.message ? err.e.message : ""));
    return std::unexpected(error_from_errno(r, std::string("cannot call ") + member));
  }
  return MsgPtr(reply);
}

// ------------------------------------------------------------------ Client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::connect() {
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  if (r < 0) return std::unexpected(error_from_errno(r, "cannot connect to the system bus"));
  auto impl = std::make_unique<Impl>();
  impl->bus.reset(raw);
  return Client(std::move(impl));
}

Result<Client> Client::connect_address(const std::string& address) {
  sd_bus* raw = nullptr;
  int r = sd_bus_new(&raw);
  if (r < 0) return std::unexpected(error_from_errno(r, "cannot create a bus connection"));
  BusPtr bus(raw);
  if ((r = sd_bus_set_address(bus.get(), address.c_str())) < 0 ||
      (r = sd_bus_set_bus_client(bus.get(), 1)) < 0 || (r = sd_bus_start(bus.get())) < 0)
    return std::unexpected(error_from_errno(r, "cannot connect to " + address));
  auto impl = std::make_unique<Impl>();
  impl->bus = std::move(bus);
  return Client(std::move(impl));
}

Result<Client> Client::connect_direct(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path)
    return std::unexpected(error_from_errno(-ENAMETOOLONG, "cannot connect to " + path));
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(error_from_errno(-errno, "socket"));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0) {
    const int e = errno;
    close(fd);
    return std::unexpected(error_from_errno(-e, "cannot connect to " + path));
  }
  sd_bus* raw = nullptr;
  int r = sd_bus_new(&raw);
  if (r < 0) {
    close(fd);
    return std::unexpected(error_from_errno(r, "cannot create a bus connection"));
  }
  BusPtr bus(raw);
  if ((r = sd_bus_set_fd(bus.get(), fd, fd)) < 0) {
    close(fd);
    return std::unexpected(error_from_errno(r, "cannot connect to " + path));
  }
  if ((r = sd_bus_start(bus.get())) < 0) return std::unexpected(error_from_errno(r, "cannot connect to " + path));
  auto impl = std::make_unique<Impl>();
  impl->bus = std::move(bus);
  impl->direct = true;
  return Client(std::move(impl));
}

Result<Client> Client::connect_nearest() {
  std::string path;
  if (const char* s = std::getenv("MPATHD_SOCKET"); s && *s)
    path = s;
  else if (!std::getenv("DBUS_SYSTEM_BUS_ADDRESS"))
    path = kDirectSocket;
  if (!path.empty() && geteuid() == 0)
    if (auto c = connect_direct(path)) return c;
  return connect();
}

bool Client::direct() const { return impl_->direct; }

void Client::set_call_timeout(std::chrono::milliseconds t) {
  sd_bus_set_method_call_timeout(impl_->bus.get(),
                                 static_cast<std::uint64_t>(t.count()) * 1000U);
}

namespace {

constexpr std::size_t kCounterCount = std::size(detail::kCounterNames);

// Every counter name with 0, and for each entry of that map (in its order) the index of
// its name in kCounterNames (the order of GetState's Counters struct).
struct CounterMap {
  std::map<std::string, std::uint64_t> prototype;
  std::array<std::size_t, kCounterCount> order{};
  CounterMap() {
    for (const char* name : detail::kCounterNames) prototype.emplace(name, 0);
    std::size_t i = 0;
    for (const auto& entry : prototype)
      order[i++] = static_cast<std::size_t>(
          std::find(std::begin(detail::kCounterNames), std::end(detail::kCounterNames), std::string_view(entry.first)) -
          std::begin(detail::kCounterNames));
  }
};

int read_manager(sd_bus_message* m, ManagerView& v) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, "stbbutssa(ssstts)s");
  if (r >= 0) r = read_field(m, v.version);
  if (r >= 0) r = read_field(m, v.fdt_ms);
  if (r >= 0) r = read_field(m, v.failback);
  if (r >= 0) r = read_field(m, v.track_interfaces_only_with_groups);
  if (r >= 0) r = read_field(m, v.notification_count);
  if (r >= 0) r = read_field(m, v.notification_interval_ms);
  if (r >= 0) r = read_field(m, v.registry_level);
  if (r >= 0) r = read_field(m, v.registry_level_reason);
  if (r >= 0) r = sd_bus_message_skip(m, "a(ssstts)s");  // Hooks, StateProblem: not in the view
  return r < 0 ? r : sd_bus_message_exit_container(m);
}

int read_group(sd_bus_message* m, GroupView& v) {
  int r = read_field(m, v.path, 'o');
  if (r >= 0) r = read_field(m, v.name);
  if (r >= 0) r = read_field(m, v.group_interface);
  if (r >= 0) r = read_field(m, v.state);
  if (r >= 0) r = read_field(m, v.reason);
  if (r >= 0) r = read_field(m, v.fdt_ms);
  if (r >= 0) r = read_field(m, v.failback);
  if (r >= 0) r = read_field(m, v.members, 'o');  // paths; names once the interfaces are read
  if (r >= 0) r = read_field(m, v.data_addresses);
  if (r >= 0) r = read_field(m, v.shared);
  return r;
}

int read_interface(sd_bus_message* m, InterfaceView& v) {
  int r = read_field(m, v.path, 'o');
  if (r >= 0) r = read_field(m, v.name);
  if (r >= 0) r = read_field(m, v.index);
  if (r >= 0) r = read_field(m, v.group);
  if (r >= 0) r = read_field(m, v.state);
  if (r >= 0) r = read_field(m, v.active);
  if (r >= 0) r = read_field(m, v.flags);
  if (r >= 0) r = read_field(m, v.standby);
  if (r >= 0) r = read_field(m, v.link);
  if (r >= 0) r = read_field(m, v.probe);
  if (r >= 0) r = read_field(m, v.reason);
  if (r >= 0) r = read_field(m, v.last_change_usec);
  if (r >= 0) r = read_field(m, v.hwaddr);
  if (r >= 0) r = read_field(m, v.link_flags);
  if (r >= 0) r = read_field(m, v.test_addresses);
  if (r >= 0) r = read_field(m, v.target_mode);
  if (r >= 0) r = read_field(m, v.targets);
  if (r >= 0) r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, "ttttttt");
  std::array<std::uint64_t, kCounterCount> values{};
  for (auto& n : values)
    if (r >= 0) r = sd_bus_message_read_basic(m, 't', &n);
  // The map is copied from one with every name (its nodes, without a key comparison)
  // and its values set in its own order: 256 x 7 inserts by name (a string made and
  // compared for each) were the most frequent allocation of a snapshot.
  static const CounterMap counters;
  v.counters = counters.prototype;
  std::size_t i = 0;
  for (auto& entry : v.counters) entry.second = values[counters.order[i++]];
  return r < 0 ? r : sd_bus_message_exit_container(m);
}

// a(...) of objects, each read by `one` into a new element of `out`.
template <typename View, typename Read>
int read_objects(sd_bus_message* m, const char* contents, std::vector<View>& out, Read one) {
  const std::string array = "(" + std::string(contents) + ")";
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, array.c_str());
  if (r < 0) return r;
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, contents)) > 0) {
    if ((r = one(m, out.emplace_back())) < 0) return r;
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
  }
  return r < 0 ? r : sd_bus_message_exit_container(m);
}

}  // namespace

Result<void> Client::read_replication(ManagerView& v) {
  for (auto [name, out] : {std::pair{"Replication", &v.replication}, {"ReplicationReason", &v.replication_reason}}) {
    ErrorGuard err;
    char* value = nullptr;
    int r = sd_bus_get_property_string(impl_->bus.get(), std::string(kBusName).c_str(), std::string(kManagerPath).c_str(),
                                       std::string(kManagerInterface).c_str(), name, &err.e, &value);
    if (r < 0) {
      if (sd_bus_error_has_name(&err.e, "org.freedesktop.DBus.Error.UnknownProperty") ||
          sd_bus_error_has_name(&err.e, SD_BUS_ERROR_INVALID_ARGS))
        return {};  // a daemon from before replication
      if (sd_bus_error_is_set(&err.e))
        return std::unexpected(error_from_dbus(err.e.name, err.e.message ? err.e.message : ""));
      return std::unexpected(error_from_errno(r, std::string("cannot read ") + name));
    }
    *out = value;
    std::free(value);
  }
  return {};
}

Result<Snapshot> Client::snapshot() {
  auto reply = impl_->call(std::string(kManagerPath).c_str(), std::string(kManagerInterface).c_str(),
                           "GetState");
  if (!reply) {
    // A daemon from before GetState, or a bus policy from before it: the slower way.
    const auto& name = reply.error().dbus_name;
    if (name == "org.freedesktop.DBus.Error.UnknownMethod" || name == "org.freedesktop.DBus.Error.AccessDenied")
      return snapshot_from_objects();
    return std::unexpected(reply.error());
  }
  sd_bus_message* m = reply->get();
  const char* sig = sd_bus_message_get_signature(m, 1);
  if (!sig || sig != detail::kStateSignature) return snapshot_from_objects();  // another contract

  Snapshot s;
  int r = read_manager(m, s.manager);
  if (r >= 0) r = read_objects(m, "osssstbaoa(ssss)a(sssss)", s.groups, read_group);
  std::size_t members = 0;
  for (const auto& g : s.groups) members += g.members.size();
  s.interfaces.reserve(members);  // the grouped ones; ungrouped tracked ones are few
  if (r >= 0) r = read_objects(m, "osussbasbssstsasassa(stt)(ttttttt)", s.interfaces, read_interface);
  if (r < 0) return bad_reply("GetState", r);
  // Members: paths -> names.
  std::unordered_map<std::string_view, std::string_view> names;
  names.reserve(s.interfaces.size());
  for (const auto& i : s.interfaces) names.emplace(i.path, i.name);
  for (auto& g : s.groups)
    for (auto& member : g.members) {
      if (auto it = names.find(member); it != names.end()) member = std::string(it->second);
      else if (auto d = decode_path(member)) member = d->name;
    }
  return s;
}

Result<Snapshot> Client::snapshot_from_objects() {
  auto path = std::string(kManagerPath);
  auto reply = impl_->call(path.c_str(), kObjectManager, "GetManagedObjects");
  if (!reply) return std::unexpected(reply.error());
  sd_bus_message* m = reply->get();

  detail::ObjectMap objects;
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{oa{sa{sv}}}");
  if (r < 0) return bad_reply("GetManagedObjects", r);
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "oa{sa{sv}}")) > 0) {
    std::string obj;
    if ((r = read_string(m, 'o', obj)) < 0) return bad_reply("GetManagedObjects", r);
    if ((r = read_interfaces(m, objects[obj])) < 0) return bad_reply("GetManagedObjects", r);
    if ((r = sd_bus_message_exit_container(m)) < 0) return bad_reply("GetManagedObjects", r);
  }
  if (r < 0) return bad_reply("GetManagedObjects", r);

  // sd-bus' object manager lists the objects below its path, not itself.
  Properties manager;
  auto mo = objects.find(path);
  if (mo != objects.end() && mo->second.contains(kManagerInterface)) {
    manager = mo->second.find(kManagerInterface)->second;
  } else {
    auto all = impl_->call(path.c_str(), kPropertiesIface, "GetAll", "s",
                           std::string(kManagerInterface).c_str());
    if (!all) return std::unexpected(all.error());
    if ((r = read_properties(all->get(), manager)) < 0) return bad_reply("GetAll", r);
  }
  return detail::build_snapshot(objects, manager);
}

namespace {
Result<void> ok_or(Result<MsgPtr> r) {
  if (!r) return std::unexpected(r.error());
  return {};
}
Result<std::string> path_or(Result<MsgPtr> r) {
  if (!r) return std::unexpected(r.error());
  std::string p;
  int e = read_string(r->get(), 'o', p);
  if (e < 0) return bad_reply("reply", e);
  return p;
}
}  // namespace

#define MPATHD_MANAGER_CALL(member, ...)                                               \
  impl_->call(std::string(kManagerPath).c_str(), std::string(kManagerInterface).c_str(), \
              member __VA_OPT__(, ) __VA_ARGS__)

Result<void> Client::offline(const std::string& ifname) {
  return ok_or(MPATHD_MANAGER_CALL("Offline", "s", ifname.c_str()));
}
Result<void> Client::online(const std::string& ifname) {
  return ok_or(MPATHD_MANAGER_CALL("Online", "s", ifname.c_str()));
}
Result<void> Client::move_address(const std::string& address, const std::string& ifname) {
  return ok_or(MPATHD_MANAGER_CALL("MoveAddress", "ss", address.c_str(), ifname.c_str()));
}
Result<std::string> Client::create_group(const std::string& name,
                                         const std::string& group_interface) {
  return path_or(MPATHD_MANAGER_CALL("CreateGroup", "ss", name.c_str(), group_interface.c_str()));
}
Result<void> Client::destroy_group(const std::string& name) {
  return ok_or(MPATHD_MANAGER_CALL("DestroyGroup", "s", name.c_str()));
}
Result<std::string> Client::add_member(const std::string& group, const std::string& ifname,
                                       bool standby) {
  return path_or(MPATHD_MANAGER_CALL("AddMember", "ssb", group.c_str(), ifname.c_str(),
                                     static_cast<int>(standby)));
}
Result<void> Client::remove_member(const std::string& ifname) {
  return ok_or(MPATHD_MANAGER_CALL("RemoveMember", "s", ifname.c_str()));
}
Result<void> Client::add_data_address(const std::string& group, const std::string& address) {
  return ok_or(MPATHD_MANAGER_CALL("AddDataAddress", "ss", group.c_str(), address.c_str()));
}
Result<void> Client::remove_data_address(const std::string& group, const std::string& address) {
  return ok_or(MPATHD_MANAGER_CALL("RemoveDataAddress", "ss", group.c_str(), address.c_str()));
}
Result<void> Client::reload() { return ok_or(MPATHD_MANAGER_CALL("Reload")); }
Result<void> Client::takeover_shared(const std::string& address) {
  return ok_or(MPATHD_MANAGER_CALL("TakeoverShared", "s", address.c_str()));
}
Result<void> Client::release_shared(const std::string& address) {
  return ok_or(MPATHD_MANAGER_CALL("ReleaseShared", "s", address.c_str()));
}
Result<std::string> Client::export_associations(const std::string& address) {
  auto r = MPATHD_MANAGER_CALL("ExportAssociations", "s", address.c_str());
  if (!r) return std::unexpected(r.error());
  std::string json;
  if (int e = read_string(r->get(), 's', json); e < 0) return bad_reply("ExportAssociations", e);
  return json;
}
Result<std::uint32_t> Client::import_associations(const std::string& address, const std::string& json) {
  auto r = MPATHD_MANAGER_CALL("ImportAssociations", "ss", address.c_str(), json.c_str());
  if (!r) return std::unexpected(r.error());
  std::uint32_t n = 0;
  if (int e = sd_bus_message_read_basic(r->get(), 'u', &n); e < 0) return bad_reply("ImportAssociations", e);
  return n;
}

#undef MPATHD_MANAGER_CALL

// ------------------------------------------------------------------ signals

namespace {

int on_interface_state(sd_bus_message* m, void* userdata, sd_bus_error*) {
  return Client::Impl::guarded(userdata, [m](Client::Impl& self) {
    InterfaceStateChanged ev;
    ev.interface = name_from_path(m);
    const char *o = nullptr, *n = nullptr, *reason = nullptr;
    if (sd_bus_message_read(m, "ss", &o, &n) < 0) return;
    if (read_strings(m, "s", ev.old_flags) < 0 || read_strings(m, "s", ev.new_flags) < 0) return;
    if (sd_bus_message_read(m, "s", &reason) < 0) return;
    ev.old_state = o;
    ev.new_state = n;
    ev.reason = reason;
    if (self.cb.interface_state_changed) self.cb.interface_state_changed(ev);
  });
}

int on_group_state(sd_bus_message* m, void* userdata, sd_bus_error*) {
  return Client::Impl::guarded(userdata, [m](Client::Impl& self) {
    GroupStateChanged ev;
    ev.group = name_from_path(m);
    const char *o = nullptr, *n = nullptr, *reason = nullptr;
    if (sd_bus_message_read(m, "sss", &o, &n, &reason) < 0) return;
    ev.old_state = o;
    ev.new_state = n;
    ev.reason = reason;
    if (self.cb.group_state_changed) self.cb.group_state_changed(ev);
  });
}

int on_address_moved(sd_bus_message* m, void* userdata, sd_bus_error*) {
  return Client::Impl::guarded(userdata, [m](Client::Impl& self) {
    AddressMoved ev;
    ev.group = name_from_path(m);
    const char *a = nullptr, *from = nullptr, *to = nullptr, *reason = nullptr;
    if (sd_bus_message_read(m, "ssss", &a, &from, &to, &reason) < 0) return;
    ev.address = a;
    ev.from_interface = from;
    ev.to_interface = to;
    ev.reason = reason;
    if (self.cb.address_moved) self.cb.address_moved(ev);
  });
}

int on_shared_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  return Client::Impl::guarded(userdata, [m](Client::Impl& self) {
    SharedAddressChanged ev;
    ev.group = name_from_path(m);
    const char *a = nullptr, *os = nullptr, *ns = nullptr, *from = nullptr, *to = nullptr, *reason = nullptr,
               *detail = nullptr;
    if (sd_bus_message_read(m, "sssssss", &a, &os, &ns, &from, &to, &reason, &detail) < 0) return;
    ev.address = a;
    ev.old_state = os;
    ev.new_state = ns;
    ev.from_interface = from;
    ev.to_interface = to;
    ev.reason = reason;
    ev.detail = detail;
    if (self.cb.shared_address_changed) self.cb.shared_address_changed(ev);
  });
}

int on_probe_result(sd_bus_message* m, void* userdata, sd_bus_error*) {
  return Client::Impl::guarded(userdata, [m](Client::Impl& self) {
    ProbeResult ev;
    ev.interface = name_from_path(m);
    const char* target = nullptr;
    int acked = 0;
    if (sd_bus_message_read(m, "usbtttt", &ev.sequence, &target, &acked, &ev.net_rtt_usec,
                            &ev.rtt_usec, &ev.rtt_avg_usec, &ev.rtt_dev_usec) < 0)
      return;
    ev.target = target;
    ev.acked = acked != 0;
    if (self.cb.probe_result) self.cb.probe_result(ev);
  });
}

// InterfacesAdded (o a{sa{sv}}) / InterfacesRemoved (o as): one event per object
// that gains or loses one of our interfaces.
int on_objects(sd_bus_message* m, void* userdata, bool added) {
  return Client::Impl::guarded(userdata, [m, added](Client::Impl& self) {
    std::string path;
    if (read_string(m, 'o', path) < 0) return;
    auto d = decode_path(path);
    if (!d || d->kind == ObjectKind::manager) return;
    std::vector<std::string> ifaces;
    if (added) {
      detail::InterfaceProps props;
      if (read_interfaces(m, props) < 0) return;
      for (const auto& [k, v] : props) ifaces.push_back(k);
    } else if (read_strings(m, "s", ifaces) < 0) {
      return;
    }
    auto want = d->kind == ObjectKind::group ? kGroupInterface : kInterfaceInterface;
    bool ours = false;
    for (const auto& i : ifaces) ours = ours || i == want;
    if (!ours) return;
    auto& f = added ? self.cb.object_added : self.cb.object_removed;
    if (f) f(*d);
  });
}

int on_added(sd_bus_message* m, void* userdata, sd_bus_error*) { return on_objects(m, userdata, true); }
int on_removed(sd_bus_message* m, void* userdata, sd_bus_error*) { return on_objects(m, userdata, false); }

int on_owner(sd_bus_message* m, void* userdata, sd_bus_error*) {
  return Client::Impl::guarded(userdata, [m](Client::Impl& self) {
    const char *name = nullptr, *old_owner = nullptr, *new_owner = nullptr;
    if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0) return;
    if (!name || std::string_view(name) != kBusName) return;
    if (self.cb.daemon_presence) self.cb.daemon_presence(new_owner && *new_owner);
  });
}

std::string signal_rule(std::string_view iface, std::string_view member,
                        std::string_view path_namespace) {
  return "type='signal',interface='" + std::string(iface) + "',member='" + std::string(member) +
         "',path_namespace='" + std::string(path_namespace) + "'";
}

}  // namespace

Result<void> Client::subscribe(Callbacks cb) {
  if (impl_->direct)
    return std::unexpected(Error{Failure::protocol, Errc::system, {},
                                 "a direct connection carries no signals: subscribe on the system bus"});
  impl_->slots.clear();
  impl_->cb = std::move(cb);
  const auto& c = impl_->cb;
  std::vector<std::pair<std::string, sd_bus_message_handler_t>> rules;
  if (c.interface_state_changed)
    rules.emplace_back(signal_rule(kInterfaceInterface, "StateChanged", kInterfacePathPrefix),
                       on_interface_state);
  if (c.probe_result)
    rules.emplace_back(signal_rule(kInterfaceInterface, "ProbeResult", kInterfacePathPrefix),
                       on_probe_result);
  if (c.group_state_changed)
    rules.emplace_back(signal_rule(kGroupInterface, "StateChanged", kGroupPathPrefix),
                       on_group_state);
  if (c.address_moved)
    rules.emplace_back(signal_rule(kGroupInterface, "AddressMoved", kGroupPathPrefix),
                       on_address_moved);
  if (c.shared_address_changed)
    rules.emplace_back(signal_rule(kGroupInterface, "SharedAddressChanged", kGroupPathPrefix),
                       on_shared_changed);
  // arg0path with a trailing '/' matches every object path below it, wherever the
  // daemon put its object manager.
  std::string below = std::string(kManagerPath) + "/";
  if (c.object_added)
    rules.emplace_back("type='signal',interface='org.freedesktop.DBus.ObjectManager',"
                       "member='InterfacesAdded',arg0path='" + below + "'",
                       on_added);
  if (c.object_removed)
    rules.emplace_back("type='signal',interface='org.freedesktop.DBus.ObjectManager',"
                       "member='InterfacesRemoved',arg0path='" + below + "'",
                       on_removed);
  if (c.daemon_presence)
    rules.emplace_back("type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                       "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" +
                           std::string(kBusName) + "'",
                       on_owner);
  for (const auto& [rule, handler] : rules) {
    sd_bus_slot* slot = nullptr;
    // Synchronous: the bus has the match when this returns.
    int r = sd_bus_add_match(impl_->bus.get(), &slot, rule.c_str(), handler, impl_.get());
    if (r < 0) {
      impl_->slots.clear();
      return std::unexpected(error_from_errno(r, "cannot subscribe to mpathd's signals"));
    }
    impl_->slots.emplace_back(slot);
  }
  return {};
}

Result<void> Client::process() {
  for (;;) {
    int r = sd_bus_process(impl_->bus.get(), nullptr);
    impl_->rethrow();
    if (r < 0) return std::unexpected(error_from_errno(r, "lost the bus connection"));
    if (r == 0) return {};
  }
}

void Client::stop() { impl_->stop_requested = true; }

int Client::fd() const { return sd_bus_get_fd(impl_->bus.get()); }

short Client::events() const {
  int e = sd_bus_get_events(impl_->bus.get());
  return static_cast<short>(e < 0 ? POLLIN : e);
}

Result<Wake> Client::run(std::chrono::milliseconds timeout, int wake_fd) {
  sd_bus* bus = impl_->bus.get();
  const bool forever = timeout.count() < 0;
  const std::uint64_t deadline =
      forever ? UINT64_MAX
              : now_usec(CLOCK_MONOTONIC) + static_cast<std::uint64_t>(timeout.count()) * 1000U;
  for (;;) {
    if (std::exchange(impl_->stop_requested, false)) return Wake::stopped;
    int r = sd_bus_process(bus, nullptr);
    impl_->rethrow();
    if (r < 0) return std::unexpected(error_from_errno(r, "lost the bus connection"));
    if (r > 0) continue;
    if (std::exchange(impl_->stop_requested, false)) return Wake::stopped;

    std::uint64_t now = now_usec(CLOCK_MONOTONIC);
    if (now >= deadline) return Wake::timeout;
    std::uint64_t until = deadline;
    std::uint64_t bus_until = 0;
    if (sd_bus_get_timeout(bus, &bus_until) > 0 && bus_until < until) until = bus_until;

    struct pollfd fds[2] = {{sd_bus_get_fd(bus), events(), 0}, {wake_fd, POLLIN, 0}};
    nfds_t n = wake_fd >= 0 ? 2 : 1;
    struct timespec ts{};
    struct timespec* tsp = nullptr;
    if (until != UINT64_MAX) {
      std::uint64_t left = until > now ? until - now : 0;
      ts.tv_sec = static_cast<time_t>(left / 1000000U);
      ts.tv_nsec = static_cast<long>((left % 1000000U) * 1000U);
      tsp = &ts;
    }
    r = ppoll(fds, n, tsp, nullptr);
    if (r < 0 && errno != EINTR) return std::unexpected(error_from_errno(-errno, "poll"));
    if (n == 2 && r > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      // Deliver what already arrived before reporting the fd.
      if (auto p = process(); !p) return std::unexpected(p.error());
      return Wake::fd_ready;
    }
  }
}

}  // namespace mpathd::client
