#include "dbus_fixture.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mpathd::test {

namespace {

// The defaults of the real system bus (system.conf): connect yes, own and call no.
constexpr const char* kSystemDefaults = R"(
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
)";

constexpr const char* kOpenPolicy = R"(
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
)";

// Reads one line from fd within `timeout`.
std::string read_line(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "";
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return "";
    line.append(buf, static_cast<std::size_t>(n));
  }
  return line.substr(0, line.find('\n'));
}

void quote(std::string& out, const char* s) {
  out += '"';
  out += s ? s : "";
  out += '"';
}

// Renders one complete value at the current position.
int render_one(sd_bus_message* m, std::string& out) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r <= 0) return r;
  if (type == SD_BUS_TYPE_ARRAY || type == SD_BUS_TYPE_STRUCT || type == SD_BUS_TYPE_DICT_ENTRY ||
      type == SD_BUS_TYPE_VARIANT) {
    const char* open = type == SD_BUS_TYPE_ARRAY ? "[" : type == SD_BUS_TYPE_STRUCT ? "(" : "";
    const char* close = type == SD_BUS_TYPE_ARRAY ? "]" : type == SD_BUS_TYPE_STRUCT ? ")" : "";
    std::string inner = contents;
    if ((r = sd_bus_message_enter_container(m, type, inner.c_str())) < 0) return r;
    out += open;
    for (bool first = true;; first = false) {
      std::string item;
      if ((r = render_one(m, item)) < 0) return r;
      if (r == 0) break;
      if (!first) out += type == SD_BUS_TYPE_DICT_ENTRY ? ": " : ", ";
      out += item;
    }
    out += close;
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
    return 1;
  }
  union {
    std::uint8_t y;
    int b;
    std::int16_t n;
    std::uint16_t q;
    std::int32_t i;
    std::uint32_t u;
    std::int64_t x;
    std::uint64_t t;
    double d;
    const char* s;
  } v{};
  if ((r = sd_bus_message_read_basic(m, type, &v)) < 0) return r;
  switch (type) {
    case 'y': out += std::to_string(v.y); break;
    case 'b': out += v.b ? "true" : "false"; break;
    case 'n': out += std::to_string(v.n); break;
    case 'q': out += std::to_string(v.q); break;
    case 'i': out += std::to_string(v.i); break;
    case 'u': out += std::to_string(v.u); break;
    case 'x': out += std::to_string(v.x); break;
    case 't': out += std::to_string(v.t); break;
    case 'd': out += std::to_string(v.d); break;
    case 's':
    case 'o':
    case 'g': quote(out, v.s); break;
    default: out += "?"; break;
  }
  return 1;
}

}  // namespace

std::string render(sd_bus_message* m) {
  std::string out;
  for (bool first = true;; first = false) {
    std::string item;
    int r = render_one(m, item);
    if (r < 0) return "<error " + std::to_string(r) + ">";
    if (r == 0) break;
    if (!first) out += ", ";
    out += item;
  }
  return out;
}

// --- PrivateBus ------------------------------------------------------------------------

PrivateBus::PrivateBus(Policy policy) {
  char tmpl[] = "/tmp/mpathd-dbus-XXXXXX";
  if (!mkdtemp(tmpl)) {
    error_ = std::string("mkdtemp: ") + std::strerror(errno);
    return;
  }
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);  // the non-root client must reach the socket
  const std::string config = dir_ + "/bus.conf";
  {
    std::ofstream f(config);
    f << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
         " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
         "<busconfig>\n  <type>system</type>\n  <listen>unix:path="
      << dir_ << "/bus</listen>\n  <auth>EXTERNAL</auth>\n";
    if (policy == Policy::system)
      f << kSystemDefaults << "  <include>" << MPATHD_SOURCE_DIR << "/units/org.ipmp.Mpathd1.conf</include>\n";
    else
      f << kOpenPolicy;
    f << "</busconfig>\n";
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) < 0) {
    error_ = std::string("pipe: ") + std::strerror(errno);
    return;
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    const std::string arg = "--config-file=" + config;
    execl(DBUS_DAEMON, DBUS_DAEMON, arg.c_str(), "--print-address", "--nofork", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  if (pid_ < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    close(out[0]);
    return;
  }
  address_ = read_line(out[0], 5000ms);
  close(out[0]);
  if (address_.empty()) error_ = "dbus-daemon printed no address (see its stderr)";
}

void PrivateBus::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      poll(nullptr, 0, 5);  // a bounded wait for the child to exit
    }
    pid_ = -1;
  }
}

PrivateBus::~PrivateBus() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

// --- DbusFixture -------------------------------------------------------------------------

Config DbusFixture::config() {
  Config c;
  c.track_interfaces_only_with_groups = false;  // u0 is tracked without a group
  GroupConfig g;
  g.name = "g0";
  g.interface = "ipmp0";
  g.members = {{"m0", false, {}}, {"m1", false, {}}};
  g.data_addresses = {*IpPrefix::parse("198.18.1.10/24"), *IpPrefix::parse("198.18.1.11/24")};
  c.groups.push_back(g);
  return c;
}

void DbusFixture::link(const std::string& name, bool up, unsigned index, int mac) {
  Mac m;
  m.bytes = {0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(mac ? mac : static_cast<int>(index))};
  // As a veth: UP BROADCAST MULTICAST, and LOWER_UP with carrier.
  const std::uint32_t flags = link_flag::up | link_flag::broadcast | link_flag::multicast;
  engine_->observe_link({name, index, true, up, m, false, up ? flags | link_flag::lower_up : flags});
}

void DbusFixture::start(PrivateBus::Policy policy) {
  bus_ = std::make_unique<PrivateBus>(policy);
  ASSERT_TRUE(bus_->ok()) << bus_->error();
  setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_->address().c_str(), 1);
  ASSERT_GE(sd_event_new(&event_), 0);
  engine_ = std::make_unique<Engine>(clock_, config());
  link("m0", true, 10);
  link("m1", true, 11);
  link("u0", true, 20);
  engine_->start();
  dbus::ServiceHooks hooks;
  hooks.after_change = [this](dbus::ServiceHooks::Reply reply) {
    ++after_change_calls_;
    reply(after_change_ ? after_change_() : Result<void>{});
  };
  hooks.reload = reload_;
  auto s = dbus::Service::open(event_, *engine_, std::move(hooks), bus_name_, direct_socket_);
  ASSERT_TRUE(s) << s.error().message;
  service_ = std::move(*s);
  ASSERT_GE(sd_bus_open_system(&client_), 0);
  ASSERT_GE(sd_bus_attach_event(client_, event_, SD_EVENT_PRIORITY_NORMAL), 0);
  const std::string match = "type='signal',sender='" + bus_name_ + "'";
  ASSERT_GE(sd_bus_add_match(client_, nullptr, match.c_str(), &DbusFixture::on_signal, this), 0);
}

void DbusFixture::TearDown() {
  service_.reset();
  if (client_) client_ = sd_bus_flush_close_unref(client_);
  engine_.reset();
  if (event_) event_ = sd_event_unref(event_);
  bus_.reset();
  unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

bool DbusFixture::pump_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (sd_event_run(event_, 10'000) < 0) return false;
  }
  return true;
}

int DbusFixture::on_signal(sd_bus_message* m, void* self, sd_bus_error*) {
  auto* f = static_cast<DbusFixture*>(self);
  f->signals_.push_back({sd_bus_message_get_path(m), sd_bus_message_get_interface(m), sd_bus_message_get_member(m),
                         render(m)});
  return 0;
}

Reply DbusFixture::send(sd_bus_message* m, int r) {
  Reply reply;
  if (r >= 0)
    r = sd_bus_call_async(
        client_, nullptr, m,
        [](sd_bus_message* msg, void* userdata, sd_bus_error*) -> int {
          auto* out = static_cast<Reply*>(userdata);
          out->done = true;
          if (const sd_bus_error* e = sd_bus_message_get_error(msg)) {
            out->error_name = e->name ? e->name : "";
            out->error_message = e->message ? e->message : "";
          } else {
            out->ok = true;
            out->body = render(msg);
          }
          return 0;
        },
        &reply, 2'000'000);
  sd_bus_message_unref(m);
  if (r < 0) {
    ADD_FAILURE() << "cannot send: " << std::strerror(-r);
    return reply;
  }
  EXPECT_TRUE(pump_until([&] { return reply.done; })) << "no reply within 2 s";
  return reply;
}

void DbusFixture::sync() {
  auto r = call(kRoot, "org.freedesktop.DBus.Peer", "Ping");
  EXPECT_TRUE(r.ok) << r.error_name;
}

Objects DbusFixture::managed_objects() {
  Objects out;
  sd_bus_message* m = nullptr;
  sd_bus_message* reply = nullptr;
  // A manual round trip: the typed body is parsed rather than rendered.
  bool done = false;
  struct Ctx {
    bool* done;
    sd_bus_message** reply;
  } ctx{&done, &reply};
  int r = sd_bus_message_new_method_call(client_, &m, bus_name_.c_str(), kRoot, "org.freedesktop.DBus.ObjectManager",
                                         "GetManagedObjects");
  if (r >= 0)
    r = sd_bus_call_async(
        client_, nullptr, m,
        [](sd_bus_message* msg, void* userdata, sd_bus_error*) -> int {
          auto* c = static_cast<Ctx*>(userdata);
          *c->done = true;
          *c->reply = sd_bus_message_ref(msg);
          return 0;
        },
        &ctx, 2'000'000);
  sd_bus_message_unref(m);
  EXPECT_GE(r, 0);
  EXPECT_TRUE(pump_until([&] { return done; }));
  if (!reply) return out;
  EXPECT_FALSE(sd_bus_message_is_method_error(reply, nullptr)) << sd_bus_message_get_error(reply)->message;
  if (sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}") > 0) {
    while (sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}") > 0) {
      const char* path = nullptr;
      sd_bus_message_read(reply, "o", &path);
      auto& ifaces = out[path];
      sd_bus_message_enter_container(reply, 'a', "{sa{sv}}");
      while (sd_bus_message_enter_container(reply, 'e', "sa{sv}") > 0) {
        const char* iface = nullptr;
        sd_bus_message_read(reply, "s", &iface);
        auto& props = ifaces[iface];
        sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
          const char* name = nullptr;
          sd_bus_message_read(reply, "s", &name);
          std::string value;
          render_one(reply, value);
          props[name] = value;
          sd_bus_message_exit_container(reply);
        }
        sd_bus_message_exit_container(reply);
        sd_bus_message_exit_container(reply);
      }
      sd_bus_message_exit_container(reply);
      sd_bus_message_exit_container(reply);
    }
  }
  sd_bus_message_unref(reply);
  return out;
}

namespace {
// Keeps only CAP_NET_ADMIN, effective and permitted (after PR_SET_KEEPCAPS and a uid
// change the effective set is empty).
bool raise_net_admin() {
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  data[CAP_NET_ADMIN / 32].permitted = data[CAP_NET_ADMIN / 32].effective = 1u << (CAP_NET_ADMIN % 32);
  return syscall(SYS_capset, &head, data) == 0;
}

bool has_effective_net_admin() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> CAP_NET_ADMIN) & 1;
  return false;
}
}  // namespace

std::string DbusFixture::as_nobody(const std::function<std::string(sd_bus*)>& body, bool net_admin) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) < 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return "";
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    std::string result;
    sd_bus* b = nullptr;
    if (net_admin && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
      result = "keepcaps failed";
    else if (setgroups(0, nullptr) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
      result = "setresuid failed";
    else if (net_admin && (!raise_net_admin() || !has_effective_net_admin()))
      result = "CAP_NET_ADMIN could not be kept";
    else if (int r = sd_bus_open_system(&b); r < 0)
      result = std::string("connect: ") + std::strerror(-r);
    else
      result = body(b);
    if (write(out[1], result.data(), result.size()) < 0) _exit(2);
    _exit(0);
  }
  close(out[1]);
  if (pid < 0) {
    close(out[0]);
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return "";
  }
  int status = 0;
  bool ended = pump_until([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 3000ms);
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ADD_FAILURE() << "the unprivileged client did not finish within 3 s";
  }
  std::string result;
  char buf[512];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) result.append(buf, static_cast<std::size_t>(n));
  close(out[0]);
  return result;
}

}  // namespace mpathd::test
