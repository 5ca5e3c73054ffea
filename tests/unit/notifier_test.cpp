// The Notifier's decision logic, NotificationSchedule: what is sent when, with a fake
// clock (the seam: time is passed in; the Notifier itself only wires sd-event and the
// packet sender, exercised by the integration tests that watch the announcements).
#include <gtest/gtest.h>

#include "daemon/notifier.hpp"
#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {

const IpAddress kV4 = *IpAddress::parse("198.18.1.10");
const IpAddress kV6 = *IpAddress::parse("2001:db8::10");
constexpr Duration kInterval = seconds(1);

std::vector<std::string> addresses(const std::vector<NotificationSchedule::Send>& sends) {
  std::vector<std::string> out;
  for (const auto& s : sends) out.push_back(s.address.str());
  return out;
}

}  // namespace

TEST(NotificationSchedule, FirstAtOnceThenCountMinusOneRepeatsAnIntervalApart) {
  FakeClock clock;
  NotificationSchedule s;
  const auto first = s.announce(7, mac_n(7), kV4, 3, clock.now(), kInterval);
  EXPECT_EQ(first.ifindex, 7u);
  EXPECT_EQ(first.mac, mac_n(7));
  EXPECT_EQ(first.address, kV4);
  EXPECT_EQ(s.next(), clock.now() + kInterval);
  clock.advance(milliseconds(999));
  EXPECT_TRUE(s.due(clock.now(), kInterval).empty()) << "not yet";
  clock.advance(milliseconds(1));
  EXPECT_EQ(addresses(s.due(clock.now(), kInterval)), std::vector<std::string>{"198.18.1.10"});
  clock.advance(kInterval);
  const auto last = s.due(clock.now(), kInterval);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].ifindex, 7u);
  EXPECT_EQ(s.next(), std::nullopt) << "three sent in all";
  clock.advance(kInterval);
  EXPECT_TRUE(s.due(clock.now(), kInterval).empty());
}

TEST(NotificationSchedule, CountOneHasNoRepeats) {
  FakeClock clock;
  NotificationSchedule s;
  s.announce(7, mac_n(7), kV4, 1, clock.now(), kInterval);
  EXPECT_EQ(s.next(), std::nullopt);
}

TEST(NotificationSchedule, AMoveReplacesThePendingRepeatsAndCancelStopsThem) {
  FakeClock clock;
  NotificationSchedule s;
  s.announce(7, mac_n(7), kV4, 3, clock.now(), kInterval);
  clock.advance(milliseconds(500));
  s.announce(8, mac_n(8), kV4, 3, clock.now(), kInterval);  // moved to ifindex 8
  EXPECT_EQ(s.next(), clock.now() + kInterval) << "counted from the move";
  clock.advance(kInterval);
  auto sends = s.due(clock.now(), kInterval);
  ASSERT_EQ(sends.size(), 1u) << "the old holder's repeats are gone";
  EXPECT_EQ(sends[0].ifindex, 8u);
  s.cancel(kV4);
  EXPECT_EQ(s.next(), std::nullopt);
  clock.advance(kInterval);
  EXPECT_TRUE(s.due(clock.now(), kInterval).empty());
}

TEST(NotificationSchedule, AddressesRepeatOnTheirOwnTimes) {
  FakeClock clock;
  NotificationSchedule s;
  const TimePoint t0 = clock.now();
  s.announce(7, mac_n(7), kV4, 2, t0, kInterval);
  clock.advance(milliseconds(300));
  s.announce(8, mac_n(8), kV6, 2, clock.now(), kInterval);
  EXPECT_EQ(s.next(), t0 + kInterval) << "the earliest";
  clock.advance(milliseconds(700));
  EXPECT_EQ(addresses(s.due(clock.now(), kInterval)), std::vector<std::string>{"198.18.1.10"});
  EXPECT_EQ(s.next(), t0 + milliseconds(1300));
  clock.advance(milliseconds(300));
  EXPECT_EQ(addresses(s.due(clock.now(), kInterval)), std::vector<std::string>{"2001:db8::10"});
  EXPECT_EQ(s.next(), std::nullopt);
}

// A timer that fires late sends each due address once, and the next repeat follows an
// interval after that send; the interval is the one in force when it fires (reload).
TEST(NotificationSchedule, ALateTimerDoesNotCatchUpAndTheIntervalInForceCounts) {
  FakeClock clock;
  NotificationSchedule s;
  s.announce(7, mac_n(7), kV4, 4, clock.now(), kInterval);
  clock.advance(seconds(5));
  EXPECT_EQ(s.due(clock.now(), seconds(2)).size(), 1u);
  EXPECT_EQ(s.next(), clock.now() + seconds(2));
  clock.advance(seconds(2));
  EXPECT_EQ(s.due(clock.now(), kInterval).size(), 1u);
  clock.advance(kInterval);
  EXPECT_EQ(s.due(clock.now(), kInterval).size(), 1u);
  EXPECT_EQ(s.next(), std::nullopt) << "four sent in all";
}
