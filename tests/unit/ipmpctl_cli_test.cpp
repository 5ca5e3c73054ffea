// ipmpctl: argument parsing, usage errors (exit 2) and the exit codes of errors.
// Built by ipmpctl/CMakeLists.txt (see ipmpctl_format_test.cpp).
#include <gtest/gtest.h>

#ifdef IPMPCTL_UNIT_TESTS

#include <cstdlib>
#include <sstream>

#include "ipmpctl.hpp"

namespace ipmpctl {
namespace {

using mpathd::Errc;

struct Run {
  int code;
  std::string out, err;
};

// Runs the command line against a bus address nobody listens on: everything that
// passes the argument checks ends with "unreachable" (5).
Run run(std::vector<std::string> args) {
  setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/ipmpctl-test-bus", 1);
  std::vector<const char*> argv{"ipmpctl"};
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  int code = ipmpctl::main(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

TEST(IpmpctlCli, BadUsageIsTwo) {
  for (auto args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"show"},
           {"show", "things"},
           {"show", "groups", "extra"},
           {"offline"},
           {"offline", "m0", "m1"},
           {"group"},
           {"group", "add", "g0"},
           {"group", "create", "bad name!"},
           {"address", "add", "g0", "198.18.1.10"},        // no prefix length
           {"address", "add", "g0", "198.18.1.300/24"},    // bad address
           {"address", "add", "g0", "198.18.1.10/33"},     // bad prefix
           {"address", "remove", "g0", "not-an-address"},
           {"move", "198.18.1.999", "m0"},
           {"move", "198.18.1.10", "bad/ifname"},
           {"offline", "this-name-is-way-too-long"},
           {"wait", "group", "g0"},
           {"wait", "thing", "g0", "ok"},
           {"wait", "group", "g0", "offline"},  // not a group state
           {"wait", "interface", "m0", "degraded"},
           {"wait", "interface", "m0", "ok", "--timeout", "-1"},
           {"show", "groups", "-P"},                    // -P needs -o
           {"show", "groups", "-P", "-o", "all"},
           {"show", "groups", "-P", "-o", "json"},
           {"show", "groups", "-o", "state,bogus"},
           {"offline", "m0", "-o", "state"},            // no fields on admin verbs
           {"--bogus-option", "show", "groups"},
       }) {
    auto r = run(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.code, kUsage) << line << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << line;
    EXPECT_EQ(r.err.rfind("ipmpctl: ", 0), 0U) << line << ": " << r.err;
  }
}

// Issue 8 item 7: answers that were unclear or wrong.
TEST(IpmpctlCli, ClearAnswersToBadArguments) {
  // The prefix of a moved address was dropped unchecked.
  for (const char* a : {"198.18.1.10/abc", "198.18.1.10/33", "198.18.1.10/", "2001:db8:1::10/129"}) {
    auto r = run({"move", a, "m1"});
    EXPECT_EQ(r.code, kUsage) << a << ": " << r.err;
    EXPECT_NE(r.err.find(std::string("invalid address \"") + a + "\""), std::string::npos) << r.err;
  }
  EXPECT_EQ(run({"move", "198.18.1.10/24", "m1"}).code, kUnreachable);
  // --count 0 printed a 309-digit range.
  for (const char* verb : {"monitor", "probes"})
    for (const char* n : {"0", "-1", "x"}) {
      auto r = run({verb, "--count", n});
      EXPECT_EQ(r.code, kUsage) << verb << " " << n;
      EXPECT_NE(r.err.find("at least 1"), std::string::npos) << r.err;
      EXPECT_LT(r.err.size(), 200U) << r.err;
    }
  // The daemon's address rules, before any bus traffic.
  for (const char* a : {"127.0.0.2/8", "224.0.0.5/4", "255.255.255.255/32", "198.18.1.0/24", "198.18.1.255/24",
                        "::1/128", "ff02::5/64", "0.0.0.0/0"}) {
    auto r = run({"address", "add", "g0", a});
    EXPECT_EQ(r.code, kUsage) << a << ": " << r.err;
    EXPECT_NE(r.err.find("invalid data address: "), std::string::npos) << r.err;
  }
  // Long names are cut in the answer.
  auto r = run({"group", "create", std::string(100000, 'g')});
  EXPECT_EQ(r.code, kUsage);
  EXPECT_LT(r.err.size(), 200U);
}

TEST(IpmpctlCli, ValidCommandsReachTheBus) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"show", "groups"},
           {"show", "interfaces", "-o", "json"},
           {"-o", "json", "show", "addresses"},
           {"show", "targets", "-P", "-o", "interface,mode"},
           {"offline", "m0"},
           {"failover", "m0"},
           {"online", "m0"},
           {"move", "198.18.1.10", "m1"},
           {"move", "2001:db8:1::10", "m1"},
           {"group", "create", "g1", "--interface", "ipmp1"},
           {"group", "destroy", "g1"},
           {"group", "add", "g1", "m3", "--standby"},
           {"group", "remove", "m3"},
           {"address", "add", "g0", "2001:db8:1::11/64"},
           {"address", "remove", "g0", "198.18.1.11"},
           {"reload"},
           {"wait", "interface", "m0", "failed", "--timeout", "1"},
           {"monitor", "-o", "json"},
           {"probes", "--count", "3"},
       }) {
    auto r = run(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.code, kUnreachable) << line << "\n" << r.err;
    EXPECT_NE(r.err.find("cannot contact mpathd"), std::string::npos) << line << ": " << r.err;
  }
}

TEST(IpmpctlCli, JsonModeReportsFailuresOnStdout) {
  auto r = run({"-o", "json", "offline", "m0"});
  EXPECT_EQ(r.code, kUnreachable);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["verb"], "offline");
  EXPECT_EQ(j["error"], "unreachable");
  EXPECT_EQ(j["exit_code"], kUnreachable);
}

TEST(IpmpctlCli, HelpAndVersion) {
  auto h = run({"--help"});
  EXPECT_EQ(h.code, kOk);
  EXPECT_NE(h.out.find("Exit status"), std::string::npos);
  EXPECT_NE(h.out.find("7 timeout"), std::string::npos);
  auto v = run({"--version"});
  EXPECT_EQ(v.code, kOk);
  EXPECT_EQ(v.out.rfind("ipmpctl ", 0), 0U);
}

client::Error daemon_error(Errc e) {
  return client::error_from_dbus(client::error_name(e), "m0: something");
}

TEST(IpmpctlExit, FromDaemonErrors) {
  EXPECT_EQ(exit_code(daemon_error(Errc::invalid_argument)), kUsage);
  EXPECT_EQ(exit_code(daemon_error(Errc::no_such_group)), kNotFound);
  EXPECT_EQ(exit_code(daemon_error(Errc::no_such_interface)), kNotFound);
  EXPECT_EQ(exit_code(daemon_error(Errc::no_such_address)), kNotFound);
  EXPECT_EQ(exit_code(daemon_error(Errc::not_in_group)), kNotFound);
  EXPECT_EQ(exit_code(daemon_error(Errc::last_usable_member)), kRefused);
  EXPECT_EQ(exit_code(daemon_error(Errc::already_offline)), kRefused);
  EXPECT_EQ(exit_code(daemon_error(Errc::not_offline)), kRefused);
  EXPECT_EQ(exit_code(daemon_error(Errc::not_usable)), kRefused);
  EXPECT_EQ(exit_code(daemon_error(Errc::exists)), kRefused);
  EXPECT_EQ(exit_code(daemon_error(Errc::hwaddr_duplicate)), kRefused);
  EXPECT_EQ(exit_code(daemon_error(Errc::system)), kFailure);
  EXPECT_EQ(exit_code(client::error_from_dbus("org.ipmp.Mpathd1.Error.SomethingNew", "")), kFailure);
}

TEST(IpmpctlExit, FromBusErrors) {
  EXPECT_EQ(exit_code(client::error_from_dbus("org.freedesktop.DBus.Error.AccessDenied", "no")), kDenied);
  EXPECT_EQ(exit_code(client::error_from_dbus("org.freedesktop.DBus.Error.ServiceUnknown", "")), kUnreachable);
  EXPECT_EQ(exit_code(client::error_from_dbus("org.freedesktop.DBus.Error.NameHasNoOwner", "")), kUnreachable);
  EXPECT_EQ(exit_code(client::error_from_dbus("org.freedesktop.DBus.Error.NoReply", "")), kUnreachable);
  EXPECT_EQ(exit_code(client::error_from_dbus("org.freedesktop.DBus.Error.UnknownMethod", "")), kFailure);
  EXPECT_EQ(exit_code(client::error_from_errno(-ENOENT, "connect")), kUnreachable);
  EXPECT_EQ(exit_code(client::error_from_errno(-ECONNREFUSED, "connect")), kUnreachable);
  EXPECT_EQ(exit_code(client::error_from_errno(-EACCES, "connect")), kDenied);
}

TEST(IpmpctlExit, Messages) {
  EXPECT_EQ(failure_message("offline", "m0", daemon_error(Errc::last_usable_member)),
            "cannot offline m0: no other functioning interface is in its group");
  EXPECT_EQ(failure_message("offline", "m0", daemon_error(Errc::already_offline)),
            "cannot offline m0: interface is already offline");
  EXPECT_EQ(failure_message("online", "m0", daemon_error(Errc::not_offline)),
            "cannot online m0: interface is not offline");
  // Errors without a fixed text carry the daemon's message.
  EXPECT_EQ(failure_message("add", "x to group g0", daemon_error(Errc::invalid_argument)),
            "cannot add x to group g0: m0: something");
  EXPECT_EQ(failure_message("offline", "m0",
                            client::error_from_dbus("org.freedesktop.DBus.Error.AccessDenied", "")),
            "cannot offline m0: permission denied (changes need root)");
  // Issue 8: a change in force that could not be saved is not "cannot".
  auto not_saved = client::error_from_dbus(client::error_name(Errc::system),
                                           "state not saved (open x: Read-only file system): the change is in "
                                           "force but is lost when mpathd restarts");
  EXPECT_EQ(failure_message("offline", "m0", not_saved),
            "offline m0: done, but state not saved (open x: Read-only file system): the change is in force but is "
            "lost when mpathd restarts");
  EXPECT_EQ(exit_code(not_saved), kFailure);
}

}  // namespace
}  // namespace ipmpctl

#endif  // IPMPCTL_UNIT_TESTS
