// The pure part of the node attributes (core/node_attributes): which update runs next,
// latest value wins, deletion, back-off and what is worth a log line; fake clock. The
// child process that runs attrd_updater is covered by the integration tier
// (tests/integration/test_node_attributes.py, with a stand-in attrd_updater).
#include <gtest/gtest.h>

#include "core/node_attributes.hpp"
#include "fake.hpp"

namespace mpathd {
namespace {

using Q = NodeAttributeQueue;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(NodeAttributes, ValuesCountUsableMembersOfNamedGroups) {
  Group g;
  g.name = "g0";
  for (auto s : {MemberState::ok, MemberState::failed, MemberState::ok, MemberState::offline}) {
    Member m;
    m.state = s;
    g.members.push_back(m);
  }
  Group failed;
  failed.name = "g1";
  Member f;
  f.state = MemberState::failed;
  failed.members.push_back(f);
  Group anonymous;  // interfaces outside groups: no attribute
  anonymous.members.push_back(Member{});
  const auto v = node_attribute_values({g, failed, anonymous});
  EXPECT_EQ(v, (std::map<std::string, std::string>{{"mpathd-g0", "2"}, {"mpathd-g1", "0"}}));
}

TEST(NodeAttributes, OneUpdateAtATimeAndLatestValueWins) {
  test::FakeClock clock;
  Q q;
  q.want({{"mpathd-g0", "2"}});
  auto u = q.next(clock.now());
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, (Q::Update{"mpathd-g0", "2"}));
  EXPECT_FALSE(q.next(clock.now())) << "one child at a time";
  q.want({{"mpathd-g0", "1"}});
  q.want({{"mpathd-g0", "0"}});
  EXPECT_EQ(q.done(true, clock.now()), Q::Outcome::ok);
  u = q.next(clock.now());
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, (Q::Update{"mpathd-g0", "0"})) << "the intermediate 1 is skipped";
  EXPECT_EQ(q.done(true, clock.now()), Q::Outcome::ok);
  EXPECT_FALSE(q.next(clock.now()));
  EXPECT_TRUE(q.idle());
  q.want({{"mpathd-g0", "0"}});  // unchanged: nothing to run
  EXPECT_FALSE(q.next(clock.now()));
}

TEST(NodeAttributes, ValueBackToWhatPacemakerHasRunsNothing) {
  test::FakeClock clock;
  Q q;
  q.want({{"mpathd-g0", "2"}});
  ASSERT_TRUE(q.next(clock.now()));
  q.want({{"mpathd-g0", "1"}});
  q.want({{"mpathd-g0", "2"}});
  q.done(true, clock.now());
  EXPECT_FALSE(q.next(clock.now()));
}

TEST(NodeAttributes, GoneGroupIsDeletedAndClearDeletesAll) {
  test::FakeClock clock;
  Q q;
  q.want({{"mpathd-g0", "2"}, {"mpathd-g1", "1"}});
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(q.next(clock.now()));
    q.done(true, clock.now());
  }
  q.want({{"mpathd-g1", "1"}});
  auto u = q.next(clock.now());
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, (Q::Update{"mpathd-g0", std::nullopt}));
  q.done(true, clock.now());
  EXPECT_FALSE(q.next(clock.now()));
  q.clear();
  u = q.next(clock.now());
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, (Q::Update{"mpathd-g1", std::nullopt}));
  q.done(true, clock.now());
  EXPECT_FALSE(q.next(clock.now()));
  EXPECT_TRUE(q.idle());
}

TEST(NodeAttributes, NeverSetIsNotDeleted) {
  test::FakeClock clock;
  Q q;
  q.want({{"mpathd-g0", "2"}});
  q.clear();  // switched off before anything ran
  EXPECT_FALSE(q.next(clock.now()));
  EXPECT_TRUE(q.idle());
}

TEST(NodeAttributes, FailureBacksOffDoublingToACapAndIsLoggedOnce) {
  test::FakeClock clock;
  Q q;
  q.want({{"mpathd-g0", "2"}});
  ASSERT_TRUE(q.next(clock.now()));
  EXPECT_EQ(q.done(false, clock.now()), Q::Outcome::first_failure);
  EXPECT_EQ(q.retry_at(), clock.now() + Q::kFirstBackoff);
  EXPECT_FALSE(q.next(clock.now())) << "backing off";
  q.want({{"mpathd-g0", "0"}});  // meanwhile the group failed
  Duration expect = Q::kFirstBackoff;
  for (int i = 0; i < 10; ++i) {
    clock.advance(expect);
    auto u = q.next(clock.now());
    ASSERT_TRUE(u);
    EXPECT_EQ(*u, (Q::Update{"mpathd-g0", "0"})) << "the retry carries the latest value";
    EXPECT_EQ(q.done(false, clock.now()), Q::Outcome::failed_again);
    expect = std::min(expect * 2, Q::kMaxBackoff);
    EXPECT_EQ(q.retry_at(), clock.now() + expect);
  }
  EXPECT_EQ(expect, Q::kMaxBackoff);
  clock.advance(expect);
  ASSERT_TRUE(q.next(clock.now()));
  EXPECT_EQ(q.done(true, clock.now()), Q::Outcome::recovered);
  EXPECT_FALSE(q.retry_at());
  // The next failure starts from the first back-off again.
  q.want({{"mpathd-g0", "1"}});
  ASSERT_TRUE(q.next(clock.now()));
  EXPECT_EQ(q.done(false, clock.now()), Q::Outcome::first_failure);
  EXPECT_EQ(q.retry_at(), clock.now() + Q::kFirstBackoff);
}

}  // namespace
}  // namespace mpathd
