// lib/dbus SystemdManager (the client of the systemd hook, the data-service restarter)
// against a STAND-IN for systemd's Manager (tests/tools/systemd_standin.cpp) on a
// private dbus-daemon: the same bus name, object path, interface, method names and
// signatures as systemd's, emitting JobRemoved(uoss) with the result it is told to —
// not systemd itself. Checks that the client waits for the job's JobRemoved (not the
// reply), reports failed results, call errors and its own timeout, and never calls
// back inside run(). Every wait is a bounded run of the loop.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dbus/systemd.hpp"
#include "dbus_fixture.hpp"

extern char** environ;

namespace mpathd::test {
namespace {

using Clock = std::chrono::steady_clock;

class SystemdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus_ = std::make_unique<PrivateBus>(PrivateBus::Policy::open);
    ASSERT_TRUE(bus_->ok()) << bus_->error();
    setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_->address().c_str(), 1);
    ASSERT_GE(sd_event_new(&event_), 0);
  }
  void TearDown() override {
    manager_.reset();
    if (standin_ > 0) {
      kill(standin_, SIGTERM);
      waitpid(standin_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
    sd_event_unref(event_);
    unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
    bus_.reset();
  }

  // Starts the stand-in with `units` (UNIT=BEHAVIOUR) and waits for its "ready".
  void standin(std::vector<std::string> units) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    std::vector<char*> argv{const_cast<char*>(SYSTEMD_STANDIN)};
    for (auto& u : units) argv.push_back(u.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&standin_, SYSTEMD_STANDIN, &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    out_ = p[0];
    ASSERT_EQ(read_line(5000), "ready");
  }

  std::string read_line(int timeout_ms) {
    std::string line;
    const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < end) {
      pollfd pf{out_, POLLIN, 0};
      if (poll(&pf, 1, 0) <= 0) {
        if (event_) sd_event_run(event_, 20000);  // the client's calls go out meanwhile
        continue;
      }
      char c;
      if (read(out_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line += c;
    }
    return line;
  }

  dbus::SystemdManager& manager() {
    if (!manager_) manager_ = std::make_unique<dbus::SystemdManager>(event_);
    return *manager_;
  }

  // Runs one job and the loop until its outcome, at most `limit`.
  struct Run {
    std::optional<dbus::JobOutcome> outcome;
    bool called_inside = false;
    std::chrono::milliseconds took{};
  };
  Run job(const char* method, const std::string& unit, std::chrono::milliseconds timeout,
          std::chrono::milliseconds limit = 10000ms) {
    Run r;
    const auto start = Clock::now();
    manager().run(method, unit, timeout, [&](const dbus::JobOutcome& o) {
      r.outcome = o;
      r.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    });
    r.called_inside = r.outcome.has_value();
    pump_until([&] { return r.outcome.has_value(); }, limit);
    return r;
  }

  bool pump_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    const auto end = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() >= end) return false;
      sd_event_run(event_, 50000);
    }
    return true;
  }

  std::unique_ptr<PrivateBus> bus_;
  sd_event* event_ = nullptr;
  std::unique_ptr<dbus::SystemdManager> manager_;
  pid_t standin_ = -1;
  int out_ = -1;
};

TEST_F(SystemdClientTest, WaitsForTheJobsResultNotTheReply) {
  standin({"web.service=done:700"});
  auto r = job("StopUnit", "web.service", 10s);
  ASSERT_TRUE(r.outcome);
  EXPECT_FALSE(r.called_inside);
  EXPECT_TRUE(r.outcome->ok()) << r.outcome->describe();
  EXPECT_EQ(r.outcome->result, "done");
  EXPECT_EQ(r.outcome->method, "StopUnit");
  EXPECT_EQ(r.outcome->unit, "web.service");
  EXPECT_EQ(r.outcome->job, "/org/freedesktop/systemd1/job/1");
  EXPECT_GE(r.took, 600ms);  // the reply came at once; the result 700 ms later
  EXPECT_NE(read_line(2000).find("call StopUnit web.service replace /org/freedesktop/systemd1/job/1"), std::string::npos);
  EXPECT_EQ(manager().pending(), 0u);
}

TEST_F(SystemdClientTest, EveryMethodAndAFailedResult) {
  standin({"a.service=done", "b.service=failed", "c.service=done"});
  auto start = job("StartUnit", "a.service", 5s);
  ASSERT_TRUE(start.outcome);
  EXPECT_TRUE(start.outcome->ok()) << start.outcome->describe();
  auto failed = job("RestartUnit", "b.service", 5s);
  ASSERT_TRUE(failed.outcome);
  EXPECT_FALSE(failed.outcome->ok());
  EXPECT_EQ(failed.outcome->result, "failed");
  EXPECT_EQ(failed.outcome->describe(), "RestartUnit b.service: failed");
  auto stop = job("StopUnit", "c.service", 5s);
  ASSERT_TRUE(stop.outcome);
  EXPECT_TRUE(stop.outcome->ok());
  EXPECT_NE(read_line(2000).find("call StartUnit a.service replace"), std::string::npos);
}

TEST_F(SystemdClientTest, AJobWithoutResultEndsAtTheTimeout) {
  standin({"stuck.service=never"});
  auto r = job("StopUnit", "stuck.service", 400ms);
  ASSERT_TRUE(r.outcome);
  EXPECT_FALSE(r.outcome->ok());
  EXPECT_TRUE(r.outcome->result.empty());
  EXPECT_NE(r.outcome->error.find("no result within 400 ms"), std::string::npos) << r.outcome->error;
  EXPECT_GE(r.took, 390ms);
  EXPECT_LT(r.took, 5000ms);
  EXPECT_EQ(manager().pending(), 0u);
}

TEST_F(SystemdClientTest, AResultBeforeTheReplyIsNotMissed) {
  standin({"quick.service=early"});
  auto r = job("StartUnit", "quick.service", 3s);
  ASSERT_TRUE(r.outcome);
  EXPECT_TRUE(r.outcome->ok()) << r.outcome->describe();
  EXPECT_LT(r.took, 2500ms);  // not the timeout
}

TEST_F(SystemdClientTest, AnUnknownUnitIsTheCallsError) {
  standin({"a.service=done"});
  auto r = job("StartUnit", "nope.service", 3s);
  ASSERT_TRUE(r.outcome);
  EXPECT_FALSE(r.outcome->ok());
  EXPECT_NE(r.outcome->error.find("org.freedesktop.systemd1.NoSuchUnit"), std::string::npos) << r.outcome->error;
  EXPECT_LT(r.took, 2500ms);
}

TEST_F(SystemdClientTest, JobsInParallelEachGetTheirOwnResult) {
  standin({"slow.service=done:600", "fast.service=failed:100", "stuck.service=never"});
  std::map<std::string, dbus::JobOutcome> got;
  for (const char* u : {"slow.service", "fast.service", "stuck.service"})
    manager().run("StopUnit", u, 1500ms, [&](const dbus::JobOutcome& o) { got[o.unit] = o; });
  EXPECT_EQ(manager().pending(), 3u);
  ASSERT_TRUE(pump_until([&] { return got.size() == 3; }, 10s));
  EXPECT_EQ(got["slow.service"].result, "done");
  EXPECT_EQ(got["fast.service"].result, "failed");
  EXPECT_NE(got["stuck.service"].error.find("no result within 1500 ms"), std::string::npos);
}

TEST_F(SystemdClientTest, NoBusIsAnErrorFromTheLoop) {
  setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/mpathd-test-bus", 1);
  auto r = job("StopUnit", "web.service", 3s);
  ASSERT_TRUE(r.outcome);
  EXPECT_FALSE(r.called_inside);
  EXPECT_NE(r.outcome->error.find("system bus"), std::string::npos) << r.outcome->error;
  EXPECT_LT(r.took, 2500ms);
}

TEST_F(SystemdClientTest, ABusThatGoesAwayEndsTheWaitingJobs) {
  standin({"stuck.service=never"});
  std::optional<dbus::JobOutcome> got;
  manager().run("StopUnit", "stuck.service", 20s, [&](const dbus::JobOutcome& o) { got = o; });
  ASSERT_NE(read_line(5000).find("call StopUnit stuck.service"), std::string::npos);
  bus_->stop();
  ASSERT_TRUE(pump_until([&] { return got.has_value(); }, 10s));
  EXPECT_FALSE(got->ok());
  EXPECT_FALSE(got->error.empty());
}

}  // namespace
}  // namespace mpathd::test
