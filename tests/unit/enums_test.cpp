#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/enums.hpp"
#include "core/error.hpp"

using namespace mpathd;

template <typename E>
void check_table() {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < enum_count<E>(); ++i) {
    auto e = static_cast<E>(i);
    auto s = to_string(e);
    EXPECT_FALSE(s.empty());
    EXPECT_TRUE(seen.insert(s).second) << "duplicate string " << s;
    EXPECT_EQ(enum_from_string<E>(s), e) << s;
  }
  EXPECT_FALSE(enum_from_string<E>("no-such-value"));
}

TEST(Enums, EveryTableIsCompleteAndRoundTrips) {
  check_table<MemberState>();
  check_table<LinkState>();
  check_table<ProbeState>();
  check_table<GroupState>();
  check_table<TargetMode>();
  check_table<ProbeMethod>();
  check_table<Reason>();
}

TEST(Enums, ApiStringsAreStable) {
  // These strings are API (D-Bus, JSON, hooks): changing one breaks users.
  EXPECT_EQ(to_string(MemberState::ok), "ok");
  EXPECT_EQ(to_string(MemberState::offline), "offline");
  EXPECT_EQ(to_string(GroupState::degraded), "degraded");
  EXPECT_EQ(to_string(LinkState::unknown), "unknown");
  EXPECT_EQ(to_string(ProbeState::disabled), "disabled");
  EXPECT_EQ(to_string(Reason::link_down), "link-down");
  EXPECT_EQ(to_string(Reason::group_failure), "group-failure");
  EXPECT_EQ(to_string(Reason::adopted), "adopted");
  EXPECT_EQ(to_string(Errc::last_usable_member), "last-usable-member");
  EXPECT_EQ(to_string(Errc::not_usable), "not-usable");
}
