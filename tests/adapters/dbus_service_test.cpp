// lib/dbus against a private dbus-daemon: objects, properties, signals in Engine order,
// methods and their errors, the bus policy and the daemon's own privilege check.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "client/client.hpp"
#include "client/objects.hpp"
#include "core/version.hpp"
#include "dbus/bus.hpp"
#include "dbus_fixture.hpp"

namespace mpathd::test {
namespace {

constexpr const char* kErr = "org.ipmp.Mpathd1.Error.";
constexpr const char* kAccessDenied = "org.freedesktop.DBus.Error.AccessDenied";

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

class DbusService : public DbusFixture {
 protected:
  // Everything a refused call must leave alone.
  std::string snapshot() const {
    std::ostringstream s;
    for (const auto& g : engine_->groups()) {
      s << g.name << ' ' << to_string(g.state) << ' ' << g.ifname << ':';
      for (const auto& m : g.members) s << ' ' << m.name << '=' << to_string(m.state) << '/' << m.flags();
      for (const auto& a : g.data) s << ' ' << a.prefix.str() << '@' << a.holder << '~' << a.home;
      s << '\n';
    }
    for (const auto& m : engine_->anonymous().members) s << m.name << '=' << to_string(m.state) << '\n';
    return s.str();
  }

  // Signals as "Interface.Member path", for order checks.
  static std::vector<std::string> names(const std::vector<Signal>& signals) {
    std::vector<std::string> out;
    for (const auto& s : signals) out.push_back(s.interface.substr(s.interface.rfind('.') + 1) + "." + s.member + " " + s.path);
    return out;
  }

  static const Signal* find(const std::vector<Signal>& signals, const std::string& member, const std::string& path,
                            std::size_t* index = nullptr) {
    for (std::size_t i = 0; i < signals.size(); ++i)
      if (signals[i].member == member && signals[i].path == path) {
        if (index) *index = i;
        return &signals[i];
      }
    return nullptr;
  }
};

TEST_F(DbusService, ManagedObjectsCarryEveryGroupAndInterface) {
  auto objects = managed_objects();
  const auto g0 = group_path("g0"), m0 = iface_path("m0"), m1 = iface_path("m1"), u0 = iface_path("u0");
  for (const auto& p : {g0, m0, m1, u0}) EXPECT_TRUE(objects.contains(p)) << p;

  auto& g = objects[g0][kGroup];
  EXPECT_EQ(g["Name"], quoted("g0"));
  EXPECT_EQ(g["GroupInterface"], quoted("ipmp0"));
  EXPECT_EQ(g["State"], quoted("ok"));
  EXPECT_EQ(g["Reason"], quoted("startup"));
  EXPECT_EQ(g["FailureDetectionTime"], "10000");
  EXPECT_EQ(g["Failback"], "true");
  EXPECT_EQ(g["Members"], "[" + quoted(m0) + ", " + quoted(m1) + "]");
  EXPECT_EQ(g["DataAddresses"],
            R"([("198.18.1.10/24", "up", "m0", "m0"), ("198.18.1.11/24", "up", "m1", "m1")])");
  EXPECT_EQ(g["SharedAddresses"], "[]");
  EXPECT_EQ(g.size(), 9u);

  auto& i = objects[m0][kInterface];
  EXPECT_EQ(i["Name"], quoted("m0"));
  EXPECT_EQ(i["Index"], "10");
  EXPECT_EQ(i["Group"], quoted("g0"));
  EXPECT_EQ(i["State"], quoted("ok"));
  EXPECT_EQ(i["Active"], "true");
  EXPECT_EQ(i["Flags"], R"(["RUNNING"])");
  EXPECT_EQ(i["Standby"], "false");
  EXPECT_EQ(i["Link"], quoted("up"));
  EXPECT_EQ(i["Probe"], quoted("disabled"));
  EXPECT_EQ(i["Reason"], quoted("startup"));
  EXPECT_EQ(i["HardwareAddress"], quoted("02:00:00:00:00:0a"));
  EXPECT_EQ(i["LinkFlags"], R"(["UP", "BROADCAST", "MULTICAST", "LOWER_UP"])");
  EXPECT_EQ(i["TestAddresses"], "[]");
  EXPECT_EQ(i["TargetMode"], quoted("disabled"));
  EXPECT_EQ(i["Targets"], "[]");
  EXPECT_EQ(i["Counters"], R"(["state_changes": 1, "failures": 0, "repairs": 0, "link_ups": 1, "link_downs": 0, )"
                           R"("addresses_in": 1, "addresses_out": 0])");
  EXPECT_EQ(i.size(), 17u);
  // CLOCK_REALTIME of the start-up transition: a moment ago.
  auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto changed_us = std::stoll(i.at("LastChangeUsec"));
  EXPECT_LE(changed_us, now_us);
  EXPECT_GT(changed_us, now_us - 60'000'000);

  const auto& u = objects[u0][kInterface];
  EXPECT_EQ(u.at("Group"), quoted(""));
  EXPECT_EQ(u.at("State"), quoted("ok"));
  EXPECT_EQ(u.at("Active"), "true");

  auto r = get(kRoot, kManager, "Groups");
  EXPECT_EQ(r.body, "[" + quoted(g0) + "]");
  r = get(kRoot, kManager, "Interfaces");
  EXPECT_EQ(r.body, "[" + quoted(m0) + ", " + quoted(m1) + ", " + quoted(u0) + "]");
  EXPECT_EQ(get(kRoot, kManager, "Version").body, quoted(kVersion));
  EXPECT_EQ(get(kRoot, kManager, "FailureDetectionTime").body, "10000");
  EXPECT_EQ(get(kRoot, kManager, "TrackInterfacesOnlyWithGroups").body, "false");
  EXPECT_EQ(get(kRoot, kManager, "NotificationCount").body, "3");
  EXPECT_EQ(get(kRoot, kManager, "NotificationInterval").body, "1000");
  EXPECT_EQ(get(kRoot, kManager, "StateProblem").body, quoted(""));  // the fixture's daemon saves fine
}

// Manager.GetState is the same state as the objects' properties, in the contract's
// order (the values are made by the same code; this pins the order and the layout).
TEST_F(DbusService, GetStateIsWhatTheObjectsAndPropertiesSay) {
  auto check = [&] {
    auto objects = managed_objects();
    auto r = manager("GetState");
    ASSERT_TRUE(r.ok) << r.error_name << ": " << r.error_message;
    auto join = [](const std::vector<std::string>& items) {
      std::string out;
      for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
      return out;
    };
    std::vector<std::string> manager_values;
    for (const char* p : {"Version", "FailureDetectionTime", "Failback", "TrackInterfacesOnlyWithGroups",
                          "NotificationCount", "NotificationInterval", "RegistryLevel",
                          "RegistryLevelReason", "Hooks", "StateProblem"})
      manager_values.push_back(get(kRoot, kManager, p).body);
    auto object = [&](const std::string& path, const char* iface, std::initializer_list<const char*> order) {
      std::vector<std::string> values{quoted(path)};
      for (const char* p : order) {
        std::string v = objects.at(path).at(iface).at(p);
        if (std::string_view(p) == "Counters") {  // GetState: a struct of the values, in order
          const std::regex number(R"(: (\d+))");
          std::vector<std::string> n;
          for (auto it = std::sregex_iterator(v.begin(), v.end(), number); it != std::sregex_iterator(); ++it)
            n.push_back((*it)[1]);
          EXPECT_EQ(n.size(), 7u) << v;
          v = "(" + join(n) + ")";
        }
        values.push_back(v);
      }
      return "(" + join(values) + ")";
    };
    const auto group = object(group_path("g0"), kGroup,
                              {"Name", "GroupInterface", "State", "Reason", "FailureDetectionTime", "Failback",
                               "Members", "DataAddresses", "SharedAddresses"});
    std::vector<std::string> interfaces;
    for (const char* m : {"m0", "m1", "u0"})  // Manager.Interfaces' order
      interfaces.push_back(object(iface_path(m), kInterface,
                                  {"Name", "Index", "Group", "State", "Active", "Flags", "Standby", "Link", "Probe",
                                   "Reason", "LastChangeUsec", "HardwareAddress", "LinkFlags", "TestAddresses",
                                   "TargetMode", "Targets", "Counters"}));
    const std::string expected =
        "(" + join(manager_values) + "), [" + group + "], [" + join(interfaces) + "]";
    // LastChangeUsec is CLOCK_REALTIME computed at each read: equal up to a few us.
    const std::regex usec(R"(\b1\d{15}\b)");
    EXPECT_EQ(std::regex_replace(r.body, usec, "<usec>"), std::regex_replace(expected, usec, "<usec>"));
    // ... and the pattern matched those three values only.
    EXPECT_EQ(std::distance(std::sregex_iterator(r.body.begin(), r.body.end(), usec), std::sregex_iterator()), 3);
  };
  check();
  link("m0", false, 10);  // a change: the next GetState shows it
  ASSERT_TRUE(pump_until([&] { return engine_->find_member("m0")->state == MemberState::failed; }));
  check();
  EXPECT_NE(manager("GetState").body.find(R"("failed")"), std::string::npos);
}

// The client library reads the same Snapshot both ways (GetState, and the standard
// interfaces it falls back to), from a thread of its own while this one serves.
TEST_F(DbusService, TheClientReadsTheSameStateByGetStateAndByGetManagedObjects) {
  link("m1", false, 11);  // some variety: a failed member, a moved address
  ASSERT_TRUE(pump_until([&] { return engine_->find_member("m1")->state == MemberState::failed; }));
  std::optional<client::Result<client::Snapshot>> by_state, by_objects;
  std::atomic<bool> done = false;
  std::thread reader([&] {
    if (auto c = client::Client::connect()) {
      by_state = c->snapshot();
      by_objects = c->snapshot_from_objects();
    }
    done = true;
  });
  EXPECT_TRUE(pump_until([&] { return done.load(); }, 10s));
  reader.join();
  ASSERT_TRUE(by_state && *by_state) << (by_state ? client::describe(by_state->error()) : "no connection");
  ASSERT_TRUE(by_objects && *by_objects) << (by_objects ? client::describe(by_objects->error()) : "no connection");
  auto a = **by_state, b = **by_objects;
  // CLOCK_REALTIME computed at each read: equal up to a few us.
  for (auto* s : {&a, &b})
    for (auto& i : s->interfaces) {
      EXPECT_GT(i.last_change_usec, 0u) << i.name;
      i.last_change_usec = 0;
    }
  EXPECT_EQ(a, b);
  // ... and snapshot() did read GetState: the client expects the daemon's signature.
  EXPECT_EQ(client::detail::kStateSignature, std::string_view(dbus::kStateSignature));
  ASSERT_EQ(a.groups.size(), 1u);
  EXPECT_EQ(a.groups[0].members, (std::vector<std::string>{"m0", "m1"}));
  ASSERT_EQ(a.interfaces.size(), 3u);
  EXPECT_EQ(a.find_interface("m1")->state, "failed");
  EXPECT_EQ(a.manager.version, kVersion);
}

TEST_F(DbusService, LinkFailureIsAnnouncedInEngineOrder) {
  take_signals();
  link("m0", false, 10);
  sync();
  auto signals = take_signals();
  const auto g0 = group_path("g0"), m0 = iface_path("m0"), m1 = iface_path("m1");
  std::size_t state = 0, moved = 0, group_state = 0, group_props = 0;
  const Signal* s = find(signals, "StateChanged", m0, &state);
  ASSERT_TRUE(s) << testing::PrintToString(names(signals));
  EXPECT_EQ(s->interface, kInterface);
  EXPECT_EQ(s->body, R"("ok", "failed", ["RUNNING"], ["FAILED"], "link-down")");
  s = find(signals, "AddressMoved", g0, &moved);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->body, R"("198.18.1.10/24", "m0", "m1", "failover")");
  s = find(signals, "StateChanged", g0, &group_state);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->interface, kGroup);
  EXPECT_EQ(s->body, R"("ok", "degraded", "link-down")");
  EXPECT_LT(state, moved);
  EXPECT_LT(moved, group_state);

  // PropertiesChanged follow each transition with the new values.
  bool m0_props = false, data_props = false, m1_counters = false, m0_link_flags = false;
  for (std::size_t i = 0; i < signals.size(); ++i) {
    const auto& p = signals[i];
    if (p.member != "PropertiesChanged") continue;
    if (p.path == m0 && i > state && p.body.find(R"("State": "failed")") != std::string::npos) {
      m0_props = true;
      EXPECT_NE(p.body.find(R"("Flags": ["FAILED"])"), std::string::npos) << p.body;
      EXPECT_NE(p.body.find(R"("Active": false)"), std::string::npos) << p.body;
      EXPECT_NE(p.body.find(R"("Link": "down")"), std::string::npos) << p.body;
    }
    if (p.path == g0 && i > moved && p.body.find(R"(("198.18.1.10/24", "up", "m1", "m0"))") != std::string::npos)
      data_props = true;
    if (p.path == m1 && p.body.find(R"("addresses_in": 2)") != std::string::npos) m1_counters = true;
    // The kernel's flags without LOWER_UP (carrier lost).
    if (p.path == m0 && p.body.find(R"("LinkFlags": ["UP", "BROADCAST", "MULTICAST"])") != std::string::npos)
      m0_link_flags = true;
    if (p.path == g0 && i > group_state && p.body.find(R"("State": "degraded")") != std::string::npos)
      group_props = i;
  }
  EXPECT_TRUE(m0_props);
  EXPECT_TRUE(data_props);
  EXPECT_TRUE(m1_counters);
  EXPECT_TRUE(m0_link_flags);
  EXPECT_GT(group_props, group_state);
  EXPECT_EQ(get(m0, kInterface, "State").body, quoted("failed"));
  EXPECT_EQ(get(g0, kGroup, "State").body, quoted("degraded"));
}

TEST_F(DbusService, ObjectsFollowCreateDestroyAddRemove) {
  take_signals();
  const auto g1 = group_path("g1"), m2 = iface_path("m2");

  auto r = manager("CreateGroup", "ss", "g1", "ipmp1");
  ASSERT_TRUE(r.ok) << r.error_name << ": " << r.error_message;
  EXPECT_EQ(r.body, quoted(g1));
  r = manager("AddMember", "ssb", "g1", "m2", 1);
  ASSERT_TRUE(r.ok) << r.error_name << ": " << r.error_message;
  EXPECT_EQ(r.body, quoted(m2));
  EXPECT_EQ(after_change_calls_, 2);
  auto objects = managed_objects();
  ASSERT_TRUE(objects.contains(g1));
  ASSERT_TRUE(objects.contains(m2));
  EXPECT_EQ(objects[g1][kGroup]["GroupInterface"], quoted("ipmp1"));
  EXPECT_EQ(objects[g1][kGroup]["Members"], "[" + quoted(m2) + "]");
  EXPECT_EQ(objects[m2][kInterface]["State"], quoted("unknown"));  // no link seen yet
  EXPECT_EQ(objects[m2][kInterface]["Standby"], "true");
  auto signals = take_signals();
  const Signal* added = find(signals, "InterfacesAdded", kRoot);
  ASSERT_TRUE(added);
  EXPECT_NE(added->body.find(quoted(g1)), std::string::npos);
  bool m2_added = false, groups_changed = false, members_changed = false;
  for (const auto& s : signals) {
    if (s.member == "InterfacesAdded" && s.body.starts_with(quoted(m2))) m2_added = true;
    if (s.member == "PropertiesChanged" && s.path == kRoot && s.body.find("\"Groups\"") != std::string::npos)
      groups_changed = true;
    if (s.member == "PropertiesChanged" && s.path == g1 && s.body.find("\"Members\"") != std::string::npos)
      members_changed = true;
  }
  EXPECT_TRUE(m2_added);
  EXPECT_TRUE(groups_changed);
  EXPECT_TRUE(members_changed);

  r = manager("RemoveMember", "s", "m2");
  ASSERT_TRUE(r.ok) << r.error_name << ": " << r.error_message;
  signals = take_signals();
  const Signal* removed = find(signals, "InterfacesRemoved", kRoot);
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->body.substr(0, removed->body.find(',')), quoted(m2));
  EXPECT_NE(removed->body.find(quoted(kInterface)), std::string::npos) << removed->body;
  EXPECT_FALSE(get(m2, kInterface, "State").ok);

  r = manager("DestroyGroup", "s", "g1");
  ASSERT_TRUE(r.ok) << r.error_name << ": " << r.error_message;
  signals = take_signals();
  removed = find(signals, "InterfacesRemoved", kRoot);
  ASSERT_TRUE(removed);
  // sd-bus lists its built-in interfaces first; ours must be there although the Engine
  // had already forgotten the group when it published the removal.
  EXPECT_TRUE(removed->body.starts_with(quoted(g1) + ", [")) << removed->body;
  EXPECT_TRUE(removed->body.ends_with(quoted(kGroup) + "]")) << removed->body;
  EXPECT_FALSE(get(g1, kGroup, "State").ok);

  // Destroying a group removes its members' objects too; ungrouped u0 stays.
  r = manager("DestroyGroup", "s", "g0");
  ASSERT_TRUE(r.ok) << r.error_name << ": " << r.error_message;
  objects = managed_objects();
  EXPECT_FALSE(objects.contains(group_path("g0")));
  EXPECT_FALSE(objects.contains(iface_path("m0")));
  EXPECT_FALSE(objects.contains(iface_path("m1")));
  EXPECT_TRUE(objects.contains(iface_path("u0")));
  std::size_t removals = 0;
  for (const auto& s : take_signals()) removals += s.member == "InterfacesRemoved";
  EXPECT_EQ(removals, 3u);
  EXPECT_EQ(get(kRoot, kManager, "Groups").body, "[]");
  EXPECT_EQ(after_change_calls_, 5);
}

// Issue 10: TakeoverShared / ReleaseShared reach the Engine, each transition is a
// SharedAddressChanged signal and a PropertiesChanged of the typed SharedAddresses, and
// every refusal has its own error name and changes nothing. (No registry hooks here: the
// daemon gives them; ExportAssociations says so.)
TEST_F(DbusService, SharedAddressesAndTheirErrors) {
  Config c = config();
  c.groups[0].shared_addresses = {*IpPrefix::parse("198.18.1.50/24")};
  engine_->reconfigure(c);
  sync();
  take_signals();
  const auto g0 = group_path("g0");
  auto r = manager("TakeoverShared", "s", "198.18.1.50");
  ASSERT_TRUE(r.ok) << r.error_message;
  sync();
  auto signals = take_signals();
  const Signal* s = find(signals, "SharedAddressChanged", g0);
  ASSERT_TRUE(s) << testing::PrintToString(names(signals));
  EXPECT_EQ(s->interface, kGroup);
  EXPECT_EQ(s->body, R"("198.18.1.50/24", "released", "held", "", "m0", "admin-takeover", "")");
  EXPECT_TRUE(std::any_of(signals.begin(), signals.end(), [&](const Signal& x) {
    return x.member == "PropertiesChanged" && x.path == g0 && x.body.find("SharedAddresses") != std::string::npos;
  }));
  EXPECT_EQ(managed_objects()[g0][kGroup]["SharedAddresses"], R"([("198.18.1.50/24", "held", "m0", "admin-takeover", "")])");
  EXPECT_EQ(get(kRoot, kManager, "RegistryLevel").body, quoted("none"));
  // Without the daemon's replication hook: off, and why.
  EXPECT_EQ(get(kRoot, kManager, "Replication").body, quoted("off"));
  EXPECT_EQ(get(kRoot, kManager, "ReplicationReason").body, quoted("no replication"));

  const std::string e = kErr;
  struct Case {
    const char* method;
    const char* arg;
    std::string error;
    const char* mentions;
  } cases[] = {
      {"TakeoverShared", "198.18.1.50", e + "AlreadyHeld", "already held"},
      {"TakeoverShared", "198.18.1.10", e + "NotShared", "198.18.1.10"},
      {"TakeoverShared", "bogus", e + "InvalidArgument", "bogus"},
      {"ReleaseShared", "198.18.1.99", e + "NotShared", "198.18.1.99"},
      {"ExportAssociations", "198.18.1.99", e + "NotShared", "198.18.1.99"},
      {"ExportAssociations", "198.18.1.50", e + "Failed", "not available"},
  };
  const auto before = managed_objects();
  for (const auto& k : cases) {
    SCOPED_TRACE(std::string(k.method) + "(" + k.arg + ")");
    auto x = manager(k.method, "s", k.arg);
    EXPECT_FALSE(x.ok);
    EXPECT_EQ(x.error_name, k.error);
    EXPECT_NE(x.error_message.find(k.mentions), std::string::npos) << x.error_message;
  }
  auto imp = manager("ImportAssociations", "ss", "198.18.1.50", "[]");
  EXPECT_EQ(imp.error_name, e + "Failed");
  EXPECT_EQ(managed_objects(), before);

  ASSERT_TRUE(manager("ReleaseShared", "s", "198.18.1.50/24").ok);
  auto again = manager("ReleaseShared", "s", "198.18.1.50");
  EXPECT_EQ(again.error_name, e + "NotHeld");
  sync();
  signals = take_signals();
  s = find(signals, "SharedAddressChanged", g0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->body, R"("198.18.1.50/24", "held", "released", "m0", "", "admin-release", "")");
}

TEST_F(DbusService, BadInputGetsItsErrorNameAndChangesNothing) {
  struct Case {
    const char* method;
    const char* types;
    const char* a;
    const char* b;
    std::string error;
    const char* mentions;
  };
  const std::string e = kErr;
  const Case cases[] = {
      {"DestroyGroup", "s", "nope", nullptr, e + "NoSuchGroup", "nope"},
      {"AddMember", "ssb", "nope", "m5", e + "NoSuchGroup", "nope"},
      {"Offline", "s", "nope", nullptr, e + "NoSuchInterface", "nope"},
      {"Online", "s", "nope", nullptr, e + "NoSuchInterface", "nope"},
      {"RemoveMember", "s", "nope", nullptr, e + "NoSuchInterface", "nope"},
      {"CreateGroup", "ss", "bad name!", "", e + "InvalidArgument", "bad name!"},
      {"CreateGroup", "ss", "g9", "bad/if", e + "InvalidArgument", "bad/if"},
      {"CreateGroup", "ss", "g0", "ipmp9", e + "Exists", "g0"},
      {"AddMember", "ssb", "g0", "bad/name", e + "InvalidArgument", "bad/name"},
      {"AddMember", "ssb", "g0", "m0", e + "Exists", "m0"},
      {"AddDataAddress", "ss", "g0", "not-an-address", e + "InvalidArgument", "not-an-address"},
      {"AddDataAddress", "ss", "g0", "198.18.1.10/24", e + "Exists", "198.18.1.10"},
      {"AddDataAddress", "ss", "nope", "198.18.1.50/24", e + "NoSuchGroup", "nope"},
      {"RemoveDataAddress", "ss", "g0", "300.1.2.3", e + "InvalidArgument", "300.1.2.3"},
      {"RemoveDataAddress", "ss", "g0", "198.18.1.99", e + "NoSuchAddress", "198.18.1.99"},
      {"MoveAddress", "ss", "bogus", "m1", e + "InvalidArgument", "bogus"},
      {"MoveAddress", "ss", "198.18.1.99", "m1", e + "NoSuchAddress", "198.18.1.99"},
      {"MoveAddress", "ss", "198.18.1.10", "u0", e + "NotInGroup", "u0"},
      {"Offline", "s", "u0", nullptr, e + "NotInGroup", "u0"},
      {"Online", "s", "m0", nullptr, e + "NotOffline", "m0"},
      {"Reload", nullptr, nullptr, nullptr, e + "Failed", "reload is not available"},
  };
  take_signals();
  const auto before = snapshot();
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + "(" + (c.a ? c.a : "") + ", " + (c.b ? c.b : "") + ")");
    Reply r;
    if (!c.types)
      r = manager(c.method);
    else if (std::string_view(c.types) == "s")
      r = manager(c.method, c.types, c.a);
    else if (std::string_view(c.types) == "ss")
      r = manager(c.method, c.types, c.a, c.b);
    else
      r = manager(c.method, c.types, c.a, c.b, 0);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error_name, c.error);
    EXPECT_NE(r.error_message.find(c.mentions), std::string::npos) << r.error_message;
  }
  sync();
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(after_change_calls_, 0);
  EXPECT_TRUE(take_signals().empty());
}

TEST_F(DbusService, RefusalsThatDependOnStateChangeNothing) {
  auto ok = [&](Reply r) { EXPECT_TRUE(r.ok) << r.error_name << ": " << r.error_message; };
  auto refused = [&](Reply r, const std::string& error) {
    EXPECT_EQ(r.error_name, kErr + error) << r.error_message;
    EXPECT_FALSE(r.error_message.empty());
  };
  ok(manager("Offline", "s", "m0"));
  EXPECT_EQ(get(iface_path("m0"), kInterface, "State").body, quoted("offline"));
  EXPECT_EQ(after_change_calls_, 1);
  take_signals();
  auto before = snapshot();
  refused(manager("Offline", "s", "m0"), "AlreadyOffline");
  refused(manager("Offline", "s", "m1"), "LastUsableMember");
  refused(manager("RemoveMember", "s", "m1"), "LastUsableMember");
  refused(manager("MoveAddress", "ss", "198.18.1.10", "m0"), "NotUsable");
  sync();
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(after_change_calls_, 1);
  EXPECT_TRUE(take_signals().empty());

  ok(manager("Online", "s", "m0"));
  // m1 reports m0's MAC: HWADDRDUP takes it offline; online is refused until it is unique.
  link("m1", true, 11, 10);
  EXPECT_EQ(get(iface_path("m1"), kInterface, "Flags").body, R"(["RUNNING", "OFFLINE", "HWADDRDUP"])");
  ok(manager("Offline", "s", "m1"));
  before = snapshot();
  refused(manager("Online", "s", "m1"), "HwAddrDuplicate");
  EXPECT_EQ(snapshot(), before);
}

TEST_F(DbusService, AddressMethodsChangeDataAddresses) {
  const auto g0 = group_path("g0");
  auto r = manager("AddDataAddress", "ss", "g0", "198.18.1.12/24");
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_NE(get(g0, kGroup, "DataAddresses").body.find(R"(("198.18.1.12/24", "up", "m0", "m0"))"), std::string::npos);
  r = manager("MoveAddress", "ss", "198.18.1.10", "m1");
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_NE(get(g0, kGroup, "DataAddresses").body.find(R"(("198.18.1.10/24", "up", "m1", "m1"))"), std::string::npos);
  sync();
  bool admin_move = false;
  for (const auto& s : take_signals())
    if (s.member == "AddressMoved" && s.body == R"("198.18.1.10/24", "m0", "m1", "admin-move")") admin_move = true;
  EXPECT_TRUE(admin_move);
  r = manager("RemoveDataAddress", "ss", "g0", "198.18.1.12");
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_EQ(get(g0, kGroup, "DataAddresses").body.find("198.18.1.12"), std::string::npos);
  EXPECT_EQ(after_change_calls_, 3);
}

// Issue 8 item 4: D-Bus gets the configuration file's rules (core/validate.hpp).
TEST_F(DbusService, AddressAndNameRulesOfTheConfigFile) {
  engine_->observe_link({"lo", 1, true, true, Mac{}, true});
  sync();
  take_signals();
  const auto before = snapshot();
  const std::string invalid = std::string(kErr) + "InvalidArgument";
  for (const char* a : {"127.0.0.2/8", "224.0.0.5/4", "255.255.255.255/32", "198.18.1.0/24", "198.18.1.255/24",
                        "::1/128", "::/0", "ff02::5/64", "0.0.0.0/0"}) {
    auto r = manager("AddDataAddress", "ss", "g0", a);
    EXPECT_EQ(r.error_name, invalid) << a;
    EXPECT_NE(r.error_message.find(IpPrefix::parse(a)->str()), std::string::npos) << r.error_message;
  }
  // No prefix length: it was taken as /32.
  auto r = manager("AddDataAddress", "ss", "g0", "198.18.1.50");
  EXPECT_EQ(r.error_name, invalid);
  EXPECT_NE(r.error_message.find("has no prefix length"), std::string::npos) << r.error_message;
  r = manager("AddDataAddress", "ss", "g0", "198.18.1.50/abc");
  EXPECT_EQ(r.error_name, invalid);
  // A group interface named like a member; the loopback as a member.
  r = manager("CreateGroup", "ss", "g9", "m1");
  EXPECT_EQ(r.error_name, std::string(kErr) + "Exists");
  EXPECT_NE(r.error_message.find("interface m1 is already a member of group g0"), std::string::npos) << r.error_message;
  r = manager("AddMember", "ssb", "g0", "lo", 0);
  EXPECT_EQ(r.error_name, invalid);
  EXPECT_NE(r.error_message.find("lo is the loopback interface"), std::string::npos) << r.error_message;
  // A long value is cut in the answer.
  const std::string huge(1 << 20, 'g');
  r = manager("DestroyGroup", "s", huge.c_str());
  EXPECT_EQ(r.error_name, std::string(kErr) + "NoSuchGroup");
  EXPECT_LT(r.error_message.size(), 200u);
  r = manager("AddDataAddress", "ss", "g0", huge.c_str());
  EXPECT_EQ(r.error_name, invalid);
  EXPECT_LT(r.error_message.size(), 200u);
  sync();
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(after_change_calls_, 0);
  EXPECT_TRUE(take_signals().empty());
}

// Issue 8 item 4: an address the kernel refuses is an error for the caller, and is not
// kept. The daemon marks the refusal after applying (a stand-in does that here; the
// real kernel's refusal is in tests/integration/test_validation.py).
TEST_F(DbusService, KernelRefusalOfAnAddedAddressIsTheCallersError) {
  after_change_ = [this]() -> Result<void> {
    engine_->observe_address_refused(*IpAddress::parse("198.18.1.60"), "add 198.18.1.60/24 on m0: Permission denied");
    return {};
  };
  const auto before = snapshot();
  auto r = manager("AddDataAddress", "ss", "g0", "198.18.1.60/24");
  EXPECT_EQ(r.error_name, std::string(kErr) + "Failed");
  EXPECT_NE(r.error_message.find("the kernel refused the address (add 198.18.1.60/24 on m0: Permission denied)"),
            std::string::npos)
      << r.error_message;
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(get(group_path("g0"), kGroup, "DataAddresses").body.find("198.18.1.60"), std::string::npos);
  // A placed address that the kernel refuses later is shown down, and announced from
  // the Engine's event alone.
  sync();
  take_signals();
  engine_->observe_address_refused(*IpAddress::parse("198.18.1.10"), "add 198.18.1.10/24 on m0: Permission denied");
  // (The Engine publishes DataAddressesChanged; nothing else is called.)
  EXPECT_NE(get(group_path("g0"), kGroup, "DataAddresses").body.find(R"(("198.18.1.10/24", "down", "", "m0"))"),
            std::string::npos);
  sync();
  bool announced = false;
  for (const auto& sig : take_signals())
    announced |= sig.member == "PropertiesChanged" && sig.path == group_path("g0") &&
                 sig.body.find(R"(("198.18.1.10/24", "down", "", "m0"))") != std::string::npos;
  EXPECT_TRUE(announced);
}

// Issue 8 item 7: a change whose state cannot be saved is in force, and the caller is
// told that it will not survive a restart.
TEST_F(DbusService, ChangeThatCannotBeSavedIsReported) {
  after_change_ = []() -> Result<void> {
    return fail(Errc::system, "state not saved (open /x/state.json.tmp: Read-only file system): the change is in "
                              "force but is lost when mpathd restarts");
  };
  auto r = manager("Offline", "s", "m0");
  EXPECT_EQ(r.error_name, std::string(kErr) + "Failed");
  EXPECT_NE(r.error_message.find("state not saved (open /x/state.json.tmp: Read-only file system)"), std::string::npos)
      << r.error_message;
  EXPECT_EQ(get(iface_path("m0"), kInterface, "State").body, quoted("offline"));
  r = manager("CreateGroup", "ss", "g5", "");
  EXPECT_EQ(r.error_name, std::string(kErr) + "Failed");
  EXPECT_NE(engine_->find_group("g5"), nullptr);
}

TEST_F(DbusService, SecondInstanceCannotTakeTheName) {
  auto second = dbus::Service::open(event_, *engine_, {});
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("another mpathd"), std::string::npos) << second.error().message;
  // The first one still serves.
  EXPECT_EQ(get(iface_path("m0"), kInterface, "State").body, quoted("ok"));
}

TEST_F(DbusService, EngineKeepsWorkingWhenTheBusGoesAway) {
  bus_->stop();
  // Both connections see the hang-up in the same loop iterations.
  EXPECT_TRUE(pump_until([&] { return sd_bus_is_open(client_) <= 0; }));
  link("m0", false, 10);
  EXPECT_EQ(engine_->find_member("m0")->state, MemberState::failed);
  EXPECT_EQ(engine_->find_group("g0")->state, GroupState::degraded);
  int state = sd_event_get_state(event_);
  EXPECT_NE(state, SD_EVENT_FINISHED);
}

// No bus at start: the Service exists and connects in the background (with back-off;
// tests/integration/test_dbus_reconnect.py starts the bus later); events meanwhile
// are dropped, and nothing is left behind once it is gone.
TEST(DbusServiceOpen, WithoutABusItConnectsInTheBackground) {
  setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/mpathd-test-bus", 1);
  sd_event* event = nullptr;
  ASSERT_GE(sd_event_new(&event), 0);
  SteadyTimeSource clock;
  Engine engine(clock, Config{});
  auto s = dbus::Service::open(event, engine, {});
  ASSERT_TRUE(s) << s.error().message;
  engine.observe_link({"x0", 3, true, true, Mac{}, false});  // no bus: nothing to emit on
  for (int i = 0; i < 3; ++i) sd_event_run(event, 300000);  // a few failed attempts
  s->reset();
  engine.observe_link({"x0", 3, true, false, Mac{}, false});  // no listener left behind to crash
  sd_event_unref(event);
  unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

// --- Direct connections (lib/dbus/direct.cpp) ----------------------------------------------

// The Service also listens on a socket of its own: the same objects without a bus.
class DbusDirect : public DbusFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mpathd-direct-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    direct_socket_ = dir_ + "/private";
    DbusFixture::SetUp();
  }
  void TearDown() override {
    DbusFixture::TearDown();
    std::filesystem::remove_all(dir_);
  }
  // Runs `body` with a client of its own in another thread while this one serves.
  template <typename F>
  void from_thread(F body) {
    std::atomic<bool> done = false;
    std::thread t([&] {
      body();
      done = true;
    });
    EXPECT_TRUE(pump_until([&] { return done.load(); }, 10s));
    t.join();
  }
  std::string dir_;
};

TEST_F(DbusDirect, TheSameStateAndMethodsAsOnTheBusForRootOnly) {
  struct stat st{};
  ASSERT_EQ(stat(direct_socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::optional<client::Result<client::Snapshot>> direct, bus;
  std::optional<client::Result<void>> offline, subscribed;
  bool is_direct = false;
  from_thread([&] {
    if (auto c = client::Client::connect_direct(direct_socket_)) {
      is_direct = c->direct();
      offline = c->offline("m0");  // a method that changes the Engine and waits for after_change
      direct = c->snapshot();
      subscribed = c->subscribe({});
    }
    if (auto c = client::Client::connect()) bus = c->snapshot();
  });
  ASSERT_TRUE(direct && *direct) << (direct ? client::describe(direct->error()) : "no direct connection");
  ASSERT_TRUE(bus && *bus) << (bus ? client::describe(bus->error()) : "no bus connection");
  EXPECT_TRUE(is_direct);
  ASSERT_TRUE(offline && *offline) << (offline ? client::describe(offline->error()) : "");
  EXPECT_EQ(engine_->find_member("m0")->state, MemberState::offline);
  ASSERT_TRUE(subscribed);
  ASSERT_FALSE(*subscribed);  // no signals on a direct connection: said, not silently nothing
  EXPECT_NE(subscribed->error().message.find("system bus"), std::string::npos);
  auto a = **direct, b = **bus;
  for (auto* snap : {&a, &b})
    for (auto& i : snap->interfaces) i.last_change_usec = 0;  // CLOCK_REALTIME computed at each read
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.find_interface("m0")->state, "offline");

  // Root only: the mode says so, and a caller that gets past it is refused on accept.
  ASSERT_EQ(chmod(direct_socket_.c_str(), 0666), 0);
  const std::string result = as_nobody([&](sd_bus*) {
    auto c = client::Client::connect_direct(direct_socket_);
    if (!c) return std::string("refused: ") + client::describe(c.error());
    auto snap = c->snapshot();
    return snap ? std::string("served") : "refused: " + client::describe(snap.error());
  });
  EXPECT_TRUE(result.starts_with("refused")) << result;
}

// A connection that goes away is closed and forgotten: more connections one after
// the other than may be open at once are all served.
TEST_F(DbusDirect, ClosedConnectionsAreReaped) {
  int served = 0;
  for (int i = 0; i < 80; ++i) {
    bool ok = false;
    from_thread([&] {
      auto c = client::Client::connect_direct(direct_socket_);
      ok = c && c->snapshot().has_value();
    });
    served += ok;
  }
  EXPECT_EQ(served, 80);
}

// A socket file left by a daemon that is gone is replaced; one that another process
// serves is not taken over, and that Service serves the bus without it.
TEST_F(DbusDirect, AStaleSocketIsReplacedAndALiveOneLeftAlone) {
  const std::string stale = dir_ + "/stale";
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, stale.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    close(fd);  // the file stays, nobody listens
  }
  SteadyTimeSource clock;
  Engine other(clock, Config{});
  auto s = dbus::Service::open(event_, other, {}, bus_name_ + ".other", stale);
  ASSERT_TRUE(s) << s.error().message;
  bool served_stale = false;
  from_thread([&] {
    auto c = client::Client::connect_direct(stale);
    served_stale = c && c->snapshot().has_value();
  });
  EXPECT_TRUE(served_stale);
  s->reset();
  EXPECT_FALSE(std::filesystem::exists(stale));  // removed by the Service that made it

  auto second = dbus::Service::open(event_, other, {}, bus_name_ + ".second", direct_socket_);
  ASSERT_TRUE(second) << second.error().message;  // the bus is served; the socket is logged as taken
  second->reset();
  bool still = false;
  from_thread([&] {
    auto c = client::Client::connect_direct(direct_socket_);
    still = c && c->snapshot().has_value() && c->snapshot()->groups.size() == 1;
  });
  EXPECT_TRUE(still);  // the first Service's socket, still there and still its own
}

// --- Reload -------------------------------------------------------------------------------

class DbusReload : public DbusFixture {
 protected:
  void SetUp() override {
    // The daemon's reload (one function for SIGHUP and the Reload method): the file
    // is read, then the Engine applies the difference.
    reload_ = [this]() -> Result<void> {
      ++reloads_;
      if (fail_) return fail(Errc::config, "mpathd.conf:3:1: unknown key 'bogus'");
      engine_->reconfigure(next_);
      return {};
    };
    DbusFixture::SetUp();
  }
  // PropertiesChanged received since the last call, as "path body", sorted; the values
  // that differ from one run to the next (counters, times) are masked.
  std::vector<std::string> properties_changed() {
    sync();
    static const std::regex counters(R"("Counters": \[[^\]]*\])"), usec(R"("LastChangeUsec": [0-9]+)");
    std::vector<std::string> out;
    for (const auto& s : take_signals())
      if (s.member == "PropertiesChanged") {
        auto body = std::regex_replace(s.body, counters, R"("Counters": *)");
        out.push_back(s.path + " " + std::regex_replace(body, usec, R"("LastChangeUsec": *)"));
      }
    std::sort(out.begin(), out.end());
    return out;
  }
  static bool has(const std::vector<std::string>& changes, const std::string& path, const std::string& text) {
    return std::any_of(changes.begin(), changes.end(), [&](const std::string& c) {
      return c.starts_with(path + " ") && c.find(text) != std::string::npos;
    });
  }
  Config next_ = config();
  int reloads_ = 0;
  bool fail_ = false;
};

TEST_F(DbusReload, CallsTheHookAndReportsItsError) {
  take_signals();
  next_.failure_detection_time = seconds(20);
  auto r = manager("Reload");
  EXPECT_TRUE(r.ok) << r.error_message;
  EXPECT_EQ(reloads_, 1);
  EXPECT_EQ(after_change_calls_, 1);
  // What the reload changed is announced (from the Engine's events).
  auto changes = properties_changed();
  EXPECT_TRUE(has(changes, kRoot, R"("FailureDetectionTime": 20000)")) << ::testing::PrintToString(changes);
  EXPECT_TRUE(has(changes, group_path("g0"), R"("FailureDetectionTime": 20000)")) << ::testing::PrintToString(changes);
  // A reload that changes nothing announces nothing.
  r = manager("Reload");
  EXPECT_TRUE(r.ok) << r.error_message;
  EXPECT_TRUE(properties_changed().empty());
  fail_ = true;
  r = manager("Reload");
  EXPECT_EQ(r.error_name, std::string(kErr) + "Failed");
  EXPECT_NE(r.error_message.find("unknown key 'bogus'"), std::string::npos) << r.error_message;
  EXPECT_EQ(reloads_, 3);
  EXPECT_EQ(after_change_calls_, 2);
}

// Issue 9 item 1: a SIGHUP reload (the daemon calls its reload directly, no D-Bus
// method involved) and the D-Bus Reload method announce exactly the same
// PropertiesChanged, because both come from the Engine's events and the method adds
// nothing of its own.
TEST_F(DbusReload, SighupAndTheReloadMethodAnnounceTheSame) {
  const Config before = config();
  Config after = before;
  after.failback = false;
  after.notification_count = 5;
  after.groups[0].failure_detection_time = seconds(30);
  after.groups[0].shared_addresses = {*IpPrefix::parse("198.18.1.99/24")};
  after.groups[0].members[1].standby = true;
  after.groups[0].data_addresses.push_back(*IpPrefix::parse("198.18.1.12/24"));
  take_signals();

  next_ = after;
  ASSERT_TRUE(reload_());  // SIGHUP: the daemon's signal handler calls the same reload
  const auto by_sighup = properties_changed();
  next_ = before;
  ASSERT_TRUE(reload_());
  const auto back = properties_changed();

  next_ = after;
  auto r = manager("Reload");
  ASSERT_TRUE(r.ok) << r.error_message;
  const auto by_method = properties_changed();
  EXPECT_EQ(by_sighup, by_method);
  // ... and they name every setting that changed.
  EXPECT_TRUE(has(by_sighup, kRoot, R"("Failback": false)")) << ::testing::PrintToString(by_sighup);
  EXPECT_TRUE(has(by_sighup, kRoot, R"("NotificationCount": 5)"));
  EXPECT_TRUE(has(by_sighup, group_path("g0"), R"("FailureDetectionTime": 30000)"));
  EXPECT_TRUE(has(by_sighup, group_path("g0"), R"("SharedAddresses": [("198.18.1.99/24", "released", "", "none", "")])"));
  EXPECT_TRUE(has(by_sighup, group_path("g0"), R"("198.18.1.12/24")"));
  EXPECT_TRUE(has(by_sighup, iface_path("m1"), R"("Standby": true)"));
  // Going back is announced too.
  EXPECT_TRUE(has(back, group_path("g0"), R"("FailureDetectionTime": 10000)")) << ::testing::PrintToString(back);
  EXPECT_TRUE(has(back, iface_path("m1"), R"("Standby": false)"));
}

// Issue 9 item 1: an FDT raised because the probe RTTs make the configured one
// impossible changes Group.FailureDetectionTime, and that is announced, as is its
// restoration. The lab cannot make RTTs that large (no netem), so the verdict of the
// member's detector is given to the Engine here, as lib/daemon's probing does.
TEST_F(DbusReload, RaisedFailureDetectionTimeIsAnnounced) {
  ProbeVerdict v{ProbeState::ok, {}, clock_.now(), false, {}, {}, {}};
  engine_->observe_probe("m0", v);  // probing works: only the FDT changes below
  properties_changed();
  v.fdt_unachievable = true;
  v.needed_fdt = seconds(25);
  engine_->observe_probe("m0", v);
  auto changes = properties_changed();
  ASSERT_EQ(changes.size(), 1u) << ::testing::PrintToString(changes);
  EXPECT_TRUE(has(changes, group_path("g0"), R"(["FailureDetectionTime": 25000])")) << changes[0];
  v.fdt_unachievable = false;
  v.needed_fdt = {};
  engine_->observe_probe("m0", v);
  changes = properties_changed();
  EXPECT_TRUE(has(changes, group_path("g0"), R"("FailureDetectionTime": 10000)")) << ::testing::PrintToString(changes);
}

// --- Unprivileged callers ------------------------------------------------------------------

// What a uid-65534 client gets from `name`: a property read, GetState, two method calls and an
// attempt to own a name of ours.
std::function<std::string(sd_bus*)> read_then_change(const std::string& name) {
  return [name](sd_bus* b) {
    std::string out;
    sd_bus_error e = SD_BUS_ERROR_NULL;
    auto result = [&](int r) {
      std::string s = r >= 0 ? std::string("ok") : std::string(e.name ? e.name : "?") + "|" + (e.message ? e.message : "");
      sd_bus_error_free(&e);
      return s + "\n";
    };
    char* state = nullptr;
    int r = sd_bus_get_property_string(b, name.c_str(), iface_path("m0").c_str(), kInterface, "State", &e, &state);
    out += "State=" + (r >= 0 ? std::string(state) + "\n" : result(r));
    free(state);
    r = sd_bus_call_method(b, name.c_str(), kRoot, kManager, "GetState", &e, nullptr, nullptr);
    out += "GetState=" + result(r);
    r = sd_bus_call_method(b, name.c_str(), kRoot, kManager, "Offline", &e, nullptr, "s", "m0");
    out += "Offline=" + result(r);
    r = sd_bus_call_method(b, name.c_str(), kRoot, kManager, "CreateGroup", &e, nullptr, "ss", "g7", "ipmp7");
    out += "CreateGroup=" + result(r);
    r = sd_bus_request_name(b, "org.ipmp.Mpathd1.ns_evil", 0);
    out += "Own=" + std::string(r >= 0 ? "ok" : std::strerror(-r)) + "\n";
    sd_bus_flush_close_unref(b);
    return out;
  };
}

TEST_F(DbusService, NonRootReadsButTheBusPolicyRefusesChanges) {
  const auto before = snapshot();
  auto out = as_nobody(read_then_change(kName));
  EXPECT_NE(out.find("State=ok\n"), std::string::npos) << out;
  EXPECT_NE(out.find("GetState=ok\n"), std::string::npos) << out;  // a read
  // Refused by the bus (units/org.ipmp.Mpathd1.conf) before mpathd sees it.
  EXPECT_NE(out.find(std::string("Offline=") + kAccessDenied + "|Rejected send message"), std::string::npos) << out;
  EXPECT_NE(out.find(std::string("CreateGroup=") + kAccessDenied + "|Rejected send message"), std::string::npos)
      << out;
  EXPECT_NE(out.find(std::string("Own=") + std::strerror(EACCES)), std::string::npos) << out;
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(after_change_calls_, 0);
}

// mpathd@NAME owns org.ipmp.Mpathd1.ns_NAME; the policy covers it the same way.
class DbusInstance : public DbusService {
 protected:
  void SetUp() override {
    bus_name_ = "org.ipmp.Mpathd1.ns_lab";
    DbusService::SetUp();
  }
};

TEST_F(DbusInstance, ServesAnInstanceNameUnderTheSamePolicy) {
  EXPECT_EQ(get(iface_path("m0"), kInterface, "State").body, quoted("ok"));
  EXPECT_TRUE(manager("Offline", "s", "m0").ok);
  const auto before = snapshot();
  auto out = as_nobody(read_then_change(bus_name_));
  EXPECT_NE(out.find("State=offline\n"), std::string::npos) << out;
  EXPECT_NE(out.find(std::string("CreateGroup=") + kAccessDenied + "|Rejected send message"), std::string::npos)
      << out;
  EXPECT_EQ(snapshot(), before);
}

class DbusOpenBus : public DbusService {
 protected:
  void SetUp() override { start(PrivateBus::Policy::open); }
};

// Changes need root (uid 0), as the man pages say; capabilities are not consulted
// (the bus policy cannot test them either).
constexpr const char* kNeedsRoot = " requires root (uid 0); capabilities such as CAP_NET_ADMIN do not suffice";

TEST_F(DbusOpenBus, TheDaemonRefusesNonRootEvenWhenTheBusLetsItThrough) {
  const auto before = snapshot();
  for (bool net_admin : {false, true}) {  // a plain user, and one with CAP_NET_ADMIN
    auto out = as_nobody(read_then_change(kName), net_admin);
    EXPECT_NE(out.find("State=ok\n"), std::string::npos) << out;
    EXPECT_NE(out.find(std::string("Offline=") + kAccessDenied + "|Offline" + kNeedsRoot), std::string::npos) << out;
    EXPECT_NE(out.find(std::string("CreateGroup=") + kAccessDenied + "|CreateGroup" + kNeedsRoot), std::string::npos)
        << out;
    EXPECT_EQ(snapshot(), before);
    EXPECT_EQ(after_change_calls_, 0);
  }
  // Root still may.
  auto r = manager("Offline", "s", "m0");
  EXPECT_TRUE(r.ok) << r.error_name << ": " << r.error_message;
}

TEST_F(DbusService, NonRootWithCapNetAdminIsRefusedByTheBusPolicy) {
  const auto before = snapshot();
  auto out = as_nobody(read_then_change(kName), /*net_admin=*/true);
  EXPECT_NE(out.find("State=ok\n"), std::string::npos) << out;
  EXPECT_NE(out.find(std::string("Offline=") + kAccessDenied + "|Rejected send message"), std::string::npos) << out;
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(after_change_calls_, 0);
}

}  // namespace
}  // namespace mpathd::test
