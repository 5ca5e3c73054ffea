// The journal side of logging: detection of journald's stream, priorities, the fields
// of an Engine event and the record the journal sink sends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>

#include "daemon/journal.hpp"
#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;
using ::testing::Contains;
using ::testing::Not;

namespace {
// Points fd 2 at a fresh temporary file for the life of the object.
struct StderrToFile {
  int saved = dup(STDERR_FILENO);
  char path[32] = "/tmp/journal_testXXXXXX";
  StderrToFile() {
    int fd = mkstemp(path);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  ~StderrToFile() {
    dup2(saved, STDERR_FILENO);
    close(saved);
    unlink(path);
    unsetenv("JOURNAL_STREAM");
  }
  std::string dev_ino() const {
    struct stat st {};
    fstat(STDERR_FILENO, &st);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
};

std::vector<std::string> record_of(const Event& e) {
  const auto f = log::fields_of(e);
  return journal_record("mpathd", log::level_of(e), describe(e), &f);
}
}  // namespace

TEST(Journal, StderrIsTheJournalOnlyWhenJournalStreamNamesIt) {
  StderrToFile redirected;
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  setenv("JOURNAL_STREAM", redirected.dev_ino().c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  // Inherited from a parent whose stderr was the journal, while ours is another file.
  struct stat st {};
  fstat(STDERR_FILENO, &st);
  setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), 1);
  EXPECT_FALSE(stderr_is_journal());
  for (const char* bad : {"", ":", "12", "12:", ":34", "x:y", "12:34:56", "12:34 "}) {
    setenv("JOURNAL_STREAM", bad, 1);
    EXPECT_FALSE(stderr_is_journal()) << bad;
  }
}

TEST(Journal, PrioritiesAreSyslogs) {
  EXPECT_EQ(journal_priority(spdlog::level::trace), 7);
  EXPECT_EQ(journal_priority(spdlog::level::debug), 7);
  EXPECT_EQ(journal_priority(spdlog::level::info), 6);
  EXPECT_EQ(journal_priority(spdlog::level::warn), 4);
  EXPECT_EQ(journal_priority(spdlog::level::err), 3);
  EXPECT_EQ(journal_priority(spdlog::level::critical), 2);
}

TEST(Journal, MessageIdsAreDistinct128BitIds) {
  const std::regex id("[0-9a-f]{32}");
  for (auto m : {log::message_id::member_changed, log::message_id::group_changed, log::message_id::address_moved})
    EXPECT_TRUE(std::regex_match(std::string(m), id)) << m;
  EXPECT_NE(log::message_id::member_changed, log::message_id::group_changed);
  EXPECT_NE(log::message_id::member_changed, log::message_id::address_moved);
  EXPECT_NE(log::message_id::group_changed, log::message_id::address_moved);
}

TEST(Journal, AFailoverCarriesItsFieldsAndMessageIds) {
  Rig r(make_config({{"m0", false}, {"m1", false}}));
  r.start_all_up({"m0", "m1"});
  r.events.clear();
  r.link("m0", false);
  ASSERT_EQ(r.events.size(), 3u);

  const auto member = record_of(r.events[0]);
  EXPECT_THAT(member, Contains("MESSAGE=g0/m0: ok -> failed [RUNNING -> FAILED] (link-down)"));
  EXPECT_THAT(member, Contains("PRIORITY=4"));
  EXPECT_THAT(member, Contains("SYSLOG_IDENTIFIER=mpathd"));
  EXPECT_THAT(member, Contains("MESSAGE_ID=" + std::string(log::message_id::member_changed)));
  EXPECT_THAT(member, Contains("MPATHD_GROUP=g0"));
  EXPECT_THAT(member, Contains("INTERFACE=m0"));
  EXPECT_THAT(member, Contains("MPATHD_REASON=link-down"));

  const auto move = record_of(r.events[1]);
  EXPECT_THAT(move, Contains("MESSAGE_ID=" + std::string(log::message_id::address_moved)));
  EXPECT_THAT(move, Contains("PRIORITY=6"));
  EXPECT_THAT(move, Contains("MPATHD_ADDRESS=198.18.1.10"));
  EXPECT_THAT(move, Contains("INTERFACE=m1"));
  EXPECT_THAT(move, Contains("MPATHD_FROM=m0"));
  EXPECT_THAT(move, Contains("MPATHD_TO=m1"));
  EXPECT_THAT(move, Contains("MPATHD_REASON=failover"));

  const auto group = record_of(r.events[2]);
  EXPECT_THAT(group, Contains("MESSAGE_ID=" + std::string(log::message_id::group_changed)));
  EXPECT_THAT(group, Contains("PRIORITY=4"));  // ok -> degraded
  EXPECT_THAT(group, Not(Contains(::testing::StartsWith("INTERFACE="))));

  r.events.clear();
  r.link("m1", false);  // the last one: the group fails
  bool failed_seen = false;
  for (const auto& e : r.events)
    if (const auto* g = std::get_if<GroupChanged>(&e); g && g->after == GroupState::failed) {
      EXPECT_THAT(record_of(e), Contains("PRIORITY=3"));
      failed_seen = true;
    }
  EXPECT_TRUE(failed_seen);
}

TEST(Journal, PlainLinesCarryNoFieldsAndEmptyFieldsAreLeftOut) {
  EXPECT_EQ(journal_record("mpathd", spdlog::level::err, "state not saved", nullptr),
            (std::vector<std::string>{"MESSAGE=state not saved", "PRIORITY=3", "SYSLOG_IDENTIFIER=mpathd"}));
  const auto f = log::member_fields("", "m0");
  EXPECT_EQ(journal_record("mpathd", spdlog::level::info, "x", &f),
            (std::vector<std::string>{"MESSAGE=x", "PRIORITY=6", "SYSLOG_IDENTIFIER=mpathd", "INTERFACE=m0"}));
}

TEST(Journal, WriteSetsTheFieldsForTheSinkOnlyDuringTheLine) {
  struct Probe final : spdlog::sinks::sink {
    std::vector<std::string> seen;
    void log(const spdlog::details::log_msg& msg) override {
      seen.push_back(std::string(msg.payload.data(), msg.payload.size()) + "|" +
                     (log::current ? log::current->interface : "none"));
    }
    void flush() override {}
    void set_pattern(const std::string&) override {}
    void set_formatter(std::unique_ptr<spdlog::formatter>) override {}
  };
  auto sink = std::make_shared<Probe>();
  auto before = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("t", sink));
  log::write(spdlog::level::warn, log::member_fields("", "m3"), "a {}", 1);
  spdlog::warn("b");
  spdlog::set_default_logger(before);
  EXPECT_EQ(sink->seen, (std::vector<std::string>{"a 1|m3", "b|none"}));
}
