// [[hook]] in mpathd.conf (lib/daemon/config_file.cpp) and the events hooks get
// (lib/daemon/hooks.cpp hook_event). The hook hosts themselves run in the hooks tier.
#include <gtest/gtest.h>

#include "daemon/config_file.hpp"
#include "daemon/hooks.hpp"

namespace mpathd {
namespace {

std::string errors_of(const std::string& text) {
  auto r = parse_config(text, "t.conf");
  EXPECT_FALSE(r.has_value()) << "accepted:\n" << text;
  return r ? std::string() : r.error().message;
}

TEST(HooksConfig, PluginAndExecAreRead) {
  auto r = parse_config(R"([[hook]]
name = "log"
type = "plugin"
path = "/usr/lib/mpathd/log.so"
args = ["/tmp/x"]
timeout = "250ms"

[[hook]]
name = "notify"
type = "exec"
command = ["/usr/local/bin/n", "-q"]
events = ["group-changed", "address-moved"]
)",
                        "t.conf");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->hooks.size(), 2u);
  EXPECT_EQ(r->hooks[0].name, "log");
  EXPECT_EQ(r->hooks[0].type, "plugin");
  EXPECT_EQ(r->hooks[0].path, "/usr/lib/mpathd/log.so");
  EXPECT_EQ(r->hooks[0].args, std::vector<std::string>{"/tmp/x"});
  EXPECT_EQ(r->hooks[0].timeout, milliseconds(250));
  EXPECT_EQ(r->hooks[0].events, 0u);  // all the plugin asks for
  EXPECT_EQ(r->hooks[1].command, (std::vector<std::string>{"/usr/local/bin/n", "-q"}));
  EXPECT_EQ(r->hooks[1].events, (1u << 2) | (1u << 3));
  EXPECT_EQ(r->hooks[1].timeout, seconds(5));
}

TEST(HooksConfig, ErrorsNameFileLineColumnAndKey) {
  EXPECT_EQ(errors_of("[[hook]]\nname = \"a\"\ntype = \"dll\"\n"),
            "t.conf:3:8: hook[0].type: \"dll\" is not one of plugin, exec, systemd, node-attributes");
  EXPECT_EQ(errors_of("[[hook]]\nname = \"a\"\ntype = \"plugin\"\npath = \"rel.so\"\n"),
            "t.conf:4:8: hook[0].path: \"rel.so\" is not an absolute path");
  EXPECT_EQ(errors_of("[[hook]]\nname = \"a\"\ntype = \"plugin\"\n"),
            "t.conf:1:1: hook[0].path: missing (the plugin's shared object)");
  EXPECT_EQ(errors_of("[[hook]]\nname = \"a\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\nevents = [\"boot\"]\n"),
            "t.conf:5:11: hook[0].events[0]: \"boot\" is not one of member-changed, group-changed, "
            "address-moved, takeover-before, takeover-after, release-before, release-after, bind, unbind, "
            "listen, unlisten, connect, disconnect, udp-association");
  EXPECT_EQ(errors_of("[[hook]]\nname = \"a\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\npath = \"/x.so\"\n"),
            "t.conf:5:8: hook[0].path: only for type = \"plugin\" (use command)");
  EXPECT_EQ(errors_of("[[hook]]\nname = \"a b\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"),
            "t.conf:2:8: hook[0].name: \"a b\" is not a hook name (1 to 64 letters, digits, '_', '.', '-')");
  EXPECT_EQ(errors_of("[[hook]]\nname = \"a\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\ntimeout = \"1ms\"\n"),
            "t.conf:5:11: hook[0].timeout: 1ms is below the minimum of 10ms");
  EXPECT_EQ(errors_of("[[hook]]\nname = \"a\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"
                      "[[hook]]\nname = \"a\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"),
            "t.conf:6:8: hook[1].name: duplicate hook name a (see hook[0].name at 2:8)");
}

constexpr const char* kSharedGroup = R"([[group]]
name = "g0"
member = [{name = "m0"}, {name = "m1"}]
shared-addresses = ["198.18.1.50/24", "2001:db8::50/64"]

)";

TEST(HooksConfig, SystemdHooksAreRead) {
  auto r = parse_config(std::string(kSharedGroup) + R"([[hook]]
name = "web"
type = "systemd"
address = "198.18.1.50"
stop = ["nginx.service", "php-fpm@www.service"]
restart = ["nginx.service"]
timeout = "30s"

[[hook]]
name = "all"
type = "systemd"
group = "g0"
start = ["announce.target"]
)",
                        "t.conf");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->hooks.size(), 2u);
  EXPECT_EQ(r->hooks[0].type, "systemd");
  EXPECT_EQ(r->hooks[0].address, IpAddress::parse("198.18.1.50"));
  EXPECT_EQ(r->hooks[0].stop_units, (std::vector<std::string>{"nginx.service", "php-fpm@www.service"}));
  EXPECT_EQ(r->hooks[0].restart_units, std::vector<std::string>{"nginx.service"});
  EXPECT_TRUE(r->hooks[0].start_units.empty());
  EXPECT_EQ(r->hooks[0].timeout, seconds(30));
  EXPECT_EQ(r->hooks[1].group, "g0");
  EXPECT_FALSE(r->hooks[1].address);
  EXPECT_EQ(r->hooks[1].start_units, std::vector<std::string>{"announce.target"});
  EXPECT_EQ(r->hooks[1].timeout, seconds(5));
}

TEST(HooksConfig, SystemdHookErrorsNameFileLineColumnAndKey) {
  const std::string g = kSharedGroup;  // 5 lines
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\nstop = [\"x.service\"]\n"),
            "t.conf:6:1: hook[0].address: missing (a systemd hook is for one shared address, or group = the shared "
            "addresses of a group)");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.50\"\n"
                          "stop = [\"nginx\"]\n"),
            "t.conf:10:9: hook[0].stop[0]: \"nginx\" is not a unit name: it has no unit type suffix (.service, "
            ".socket, .target, ...)");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.50\"\n"
                          "start = [\"web.servce\"]\n"),
            "t.conf:10:10: hook[0].start[0]: \"web.servce\" is not a unit name: it '.servce' is not a unit type "
            "(service, socket, target, mount, ...)");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.50\"\n"
                          "restart = [\"a b.service\"]\n"),
            "t.conf:10:12: hook[0].restart[0]: \"a b.service\" is not a unit name: it contains ' ' (allowed: "
            "letters, digits, ':', '-', '_', '.', '\\', one '@')");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.50\"\n"
                          "stop = [\"getty@.service\"]\n"),
            "t.conf:10:9: hook[0].stop[0]: \"getty@.service\" is not a unit name: it is a template without an "
            "instance (name@INSTANCE.type)");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.99\"\n"
                          "stop = [\"x.service\"]\n"),
            "t.conf:9:11: hook[0].address: 198.18.1.99 is not a shared address of any [[group]]");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1\"\n"
                          "stop = [\"x.service\"]\n"),
            "t.conf:9:11: hook[0].address: \"198.18.1\" is not an IPv4 or IPv6 address");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\ngroup = \"nope\"\n"
                          "stop = [\"x.service\"]\n"),
            "t.conf:9:9: hook[0].group: no [[group]] is named \"nope\"");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.50\"\n"
                          "group = \"g0\"\nstop = [\"x.service\"]\n"),
            "t.conf:10:9: hook[0].group: address and group exclude each other (one of them per systemd hook)");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.50\"\n"),
            "t.conf:6:1: hook[0].stop: missing (a systemd hook needs units to stop, start or restart)");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.50\"\n"
                          "stop = [\"x.service\"]\ntimeout = \"soon\"\n"),
            errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"
                          "\ntimeout = \"soon\"\n"));
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"systemd\"\naddress = \"198.18.1.50\"\n"
                          "stop = [\"x.service\"]\nevents = [\"group-changed\"]\n"),
            "t.conf:11:10: hook[0].events: not for type = \"systemd\" (it acts on release and takeover)");
  EXPECT_EQ(errors_of(g + "[[hook]]\nname = \"a\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"
                          "stop = [\"x.service\"]\n"),
            "t.conf:10:8: hook[0].stop: only for type = \"systemd\"");
}

TEST(HooksConfig, NodeAttributesIsABuiltInHookAndTheOldKeyItsAlias) {
  auto r = parse_config("[[hook]]\nname = \"pacemaker\"\ntype = \"node-attributes\"\n", "t.conf");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->hooks.size(), 1u);
  EXPECT_EQ(r->hooks[0].type, "node-attributes");
  EXPECT_FALSE(r->node_attributes);
  EXPECT_TRUE(r->node_attributes_on());
  auto old = parse_config("node-attributes = true\n", "t.conf");
  ASSERT_TRUE(old.has_value()) << old.error().message;
  EXPECT_TRUE(old->hooks.empty());
  EXPECT_TRUE(old->node_attributes_on());
  auto none = parse_config("", "t.conf");
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->node_attributes_on());
  EXPECT_EQ(errors_of("[[hook]]\nname = \"p\"\ntype = \"node-attributes\"\ntimeout = \"1s\"\n"),
            "t.conf:4:11: hook[0].timeout: not for type = \"node-attributes\" (it sets mpathd-<group> on every "
            "change of a group)");
  EXPECT_EQ(errors_of("[[hook]]\nname = \"p\"\ntype = \"node-attributes\"\nevents = [\"group-changed\"]\n"),
            "t.conf:4:10: hook[0].events: not for type = \"node-attributes\" (it sets mpathd-<group> on every "
            "change of a group)");
}

TEST(HookEvents, EngineEventsAsHooksSeeThem) {
  MemberChanged m{"g0", "m0", {MemberState::ok, LinkState::up, ProbeState::ok, 2},
                  {MemberState::failed, LinkState::down, ProbeState::ok, 1}, Reason::link_down};
  auto j = hook_event(m);
  ASSERT_TRUE(j);
  EXPECT_EQ(*j, (nlohmann::json{{"type", "member-changed"}, {"group", "g0"}, {"member", "m0"}, {"before", "ok"},
                                {"after", "failed"}, {"flags_before", 2}, {"flags_after", 1}, {"reason", "link-down"}}));
  AddressMoved a{"g0", *IpPrefix::parse("198.18.1.10/24"), "m0", "m1", Reason::failover};
  EXPECT_EQ((*hook_event(a))["address"], "198.18.1.10/24");
  EXPECT_EQ((*hook_event(a))["from"], "m0");
  EXPECT_FALSE(hook_event(ProbeCompleted{}));  // frequent, not for hooks
  EXPECT_EQ(hook_event_type("udp-association"), 14u);
  EXPECT_FALSE(hook_event_type(""));
}

TEST(HookEvents, OneConnectAndOneDisconnectPerConnectionWhateverItsStateChanges) {
  AssociationFeed feed;
  const auto shared = *IpAddress::parse("198.18.1.50");
  cluster::Association a{.proto = cluster::Proto::tcp, .local = shared, .local_port = 80,
                         .remote = *IpAddress::parse("198.18.1.2"), .remote_port = 40000, .tcp_state = 1};
  auto type = [](const std::optional<nlohmann::json>& j) { return j ? (*j)["type"].get<std::string>() : "-"; };
  EXPECT_EQ(type(feed(shared, a, true)), "connect");
  a.tcp_state = 8;  // CLOSE_WAIT: the same connection
  EXPECT_EQ(type(feed(shared, a, true)), "-");
  EXPECT_EQ(type(feed(shared, a, false)), "disconnect");
  EXPECT_EQ(type(feed(shared, a, false)), "-");
  EXPECT_EQ(type(feed(shared, a, true)), "connect");  // the same 4-tuple again: a new connection
  cluster::Association u{.proto = cluster::Proto::udp, .local = shared, .remote = *IpAddress::parse("198.18.1.3")};
  EXPECT_EQ(type(feed(shared, u, true)), "udp-association");
  EXPECT_EQ(type(feed(shared, u, false)), "-");  // UDP clients are registered, never ended
  a.imported = true;
  a.remote_port = 40001;
  EXPECT_EQ(type(feed(shared, a, true)), "-");  // learned from another node
}

TEST(HookEvents, BoundSocketEventsCarryProtocolAddressAndPort) {
  const cluster::BoundSocket s{.proto = cluster::Proto::udp, .local = *IpAddress::parse("2001:db8::50"),
                               .local_port = 5353, .cookie = 7};
  EXPECT_EQ(hook_socket_event(cluster::SocketEvent::bind, s),
            (nlohmann::json{{"type", "bind"}, {"protocol", "udp"}, {"address", "2001:db8::50"}, {"local_port", 5353}}));
  const char* names[] = {"bind", "unbind", "listen", "unlisten"};
  for (auto ev : {cluster::SocketEvent::bind, cluster::SocketEvent::unbind, cluster::SocketEvent::listen,
                  cluster::SocketEvent::unlisten}) {
    const auto name = hook_socket_event(ev, s)["type"].get<std::string>();
    EXPECT_EQ(name, names[static_cast<int>(ev)]);
    EXPECT_TRUE(hook_event_type(name));  // a name mpathd.conf's `events` accepts
  }
}

}  // namespace
}  // namespace mpathd

namespace mpathd {
namespace {

// The daemon's side of the queue, without running the loop: a host that never says
// ready (here /bin/true, never reaped because the loop does not run) leaves every event
// queued, and events beyond the bound are dropped and counted, never waited for.
TEST(HookQueue, OverflowIsCountedNotWaitedFor) {
  sd_event* event = nullptr;
  ASSERT_GE(sd_event_new(&event), 0);
  int changes = 0;
  {
    HookLimits limits;
    limits.queue = 4;
    Hooks hooks(event, "/bin/true", [&] { ++changes; }, limits);
    HookConfig c;
    c.name = "q";
    c.type = "exec";
    c.command = {"/bin/true"};
    hooks.configure({c}, {});
    for (int i = 0; i < 10; ++i)
      hooks.on_event(GroupChanged{"g0", GroupState::ok, GroupState::degraded, Reason::link_down});
    hooks.on_event(ProbeCompleted{});  // not for hooks: neither queued nor dropped
    const auto s = hooks.status();
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0]["state"], "starting");
    EXPECT_EQ(s[0]["queued"], 4);
    EXPECT_EQ(s[0]["dropped"], 6);
    EXPECT_EQ(s[0]["lost"], 6);
    EXPECT_GE(changes, 2);  // configured, and the overflow began
  }
  sd_event_unref(event);
}

}  // namespace
}  // namespace mpathd
