// StateStore on temporary directories with a real sd-event loop and its real writer
// thread: the runtime copy is written at once, the durable copy by the thread (newest
// wins), failures and hangs of the state directory are reported and retried, and a
// clean close leaves only the durable copy.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "daemon/state_store.hpp"

namespace fs = std::filesystem;
using namespace mpathd;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "mpathd-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "run");
    fs::create_directories(root_ / "state");
    ASSERT_GE(sd_event_new(&event_), 0);
  }
  void TearDown() override {
    store_.reset();
    sd_event_unref(event_);
    fs::remove_all(root_);
  }
  StateStore& make(Duration stall = seconds(2)) {
    store_ = std::make_unique<StateStore>(event_, (root_ / "run").string(), (root_ / "state").string(), stall);
    return *store_;
  }
  // Runs the loop until pred() holds; false after `limit` (a bounded wait).
  template <typename P>
  bool run_until(P pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      sd_event_run(event_, 20000);
    }
    return true;
  }

  fs::path root_;
  sd_event* event_ = nullptr;
  std::unique_ptr<StateStore> store_;
};

TEST_F(StateStoreTest, RuntimeCopyAtOnceDurableCopyFromTheWriter) {
  auto& s = make();
  std::optional<Result<void>> done;
  ASSERT_TRUE(s.save("state.json", "one\n", [&](const Result<void>& r) { done = r; }));
  EXPECT_EQ(read(root_ / "run/state.json"), "one\n");  // before save() returned
  ASSERT_TRUE(run_until([&] { return done.has_value(); }));
  EXPECT_TRUE(*done);
  EXPECT_EQ(read(root_ / "state/state.json"), "one\n");
  EXPECT_EQ(s.problem(), "");
}

TEST_F(StateStoreTest, TheNewestContentWins) {
  auto& s = make();
  int ok = 0;
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(s.save("state.json", std::to_string(i), [&](const Result<void>& r) { ok += r ? 1 : 0; }));
  ASSERT_TRUE(run_until([&] { return ok == 50; }));
  EXPECT_EQ(read(root_ / "state/state.json"), "49");
  EXPECT_EQ(read(root_ / "run/state.json"), "49");
  bool written = false;
  s.when_written("state.json", [&](const Result<void>& r) { written = static_cast<bool>(r); });
  EXPECT_TRUE(written);  // nothing pending: at once
}

TEST_F(StateStoreTest, AFailingStateDirIsReportedAndTriedAgain) {
  fs::remove_all(root_ / "state");
  std::ofstream(root_ / "state") << "not a directory";
  auto& s = make();
  std::optional<Result<void>> done;
  int changes = 0;
  s.on_problem_changed = [&] { ++changes; };
  ASSERT_TRUE(s.save("state.json", "x", [&](const Result<void>& r) { done = r; }));  // the runtime copy is fine
  ASSERT_TRUE(run_until([&] { return done.has_value(); }));
  ASSERT_FALSE(*done);
  EXPECT_NE(done->error().message.find("Not a directory"), std::string::npos) << done->error().message;
  EXPECT_NE(s.problem().find("Not a directory"), std::string::npos);
  EXPECT_EQ(changes, 1);
  // Repaired: the retry (after 1 s) writes it without another save.
  fs::remove(root_ / "state");
  fs::create_directories(root_ / "state");
  ASSERT_TRUE(run_until([&] { return s.problem().empty(); }));
  EXPECT_EQ(read(root_ / "state/state.json"), "x");
  EXPECT_EQ(changes, 2);
}

TEST_F(StateStoreTest, AHangingWriteIsReportedWithoutBlockingTheLoop) {
  const auto fifo = root_ / "state/state.json.tmp";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);  // the writer's open(2) blocks until a reader comes
  auto& s = make(milliseconds(100));
  std::optional<Result<void>> done;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(s.save("state.json", "y", [&](const Result<void>& r) { done = r; }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));  // save() did not wait
  ASSERT_TRUE(run_until([&] { return done.has_value(); }));
  ASSERT_FALSE(*done);
  EXPECT_NE(done->error().message.find("has not finished"), std::string::npos) << done->error().message;
  // The stall is seen by the store's poll, which may come just after the waiter's deadline.
  ASSERT_TRUE(run_until([&] { return s.problem().find("not responding") != std::string::npos; })) << s.problem();
  EXPECT_EQ(read(root_ / "run/state.json"), "y");
  // Unblocked: the write into the pipe fails (no fsync on a FIFO), the writer removes
  // its temporary file, and the retry succeeds.
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  ASSERT_TRUE(run_until([&] { return s.problem().empty(); }));
  ::close(reader);
  EXPECT_EQ(read(root_ / "state/state.json"), "y");
}

TEST_F(StateStoreTest, LoadPrefersTheRuntimeCopyAndCloseLeavesTheDurableOne) {
  std::ofstream(root_ / "state/state.json") << "old";
  auto& s = make();
  auto l = s.load("state.json");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->text, "old");
  ASSERT_TRUE(s.save("state.json", "new"));
  l = s.load("state.json");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->path, s.runtime_path("state.json"));
  EXPECT_EQ(l->text, "new");
  auto durable = s.load_durable_after(*l, "state.json");
  ASSERT_TRUE(durable);
  EXPECT_EQ(durable->path, s.durable_path("state.json"));
  s.close(seconds(5));
  EXPECT_FALSE(fs::exists(root_ / "run/state.json"));
  EXPECT_EQ(read(root_ / "state/state.json"), "new");
  EXPECT_FALSE(s.load("nothing.json"));
}

}  // namespace
