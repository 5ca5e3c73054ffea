// Placement of data addresses (issue 8, item 3): failback and balancing agree on one
// placement, and an AddressMoved is published only when the holder really changes.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;
using namespace std::chrono_literals;

namespace {

const char* const kA = "198.18.1.10";
const char* const kB = "198.18.1.11";

std::map<std::string, std::string> holders(const Group& g) {
  std::map<std::string, std::string> out;
  for (const auto& a : g.data) out[a.prefix.addr.str()] = a.holder;
  return out;
}

std::uint64_t moves_in(const Group& g) {
  std::uint64_t n = 0;
  for (const auto& m : g.members) n += m.counters.addresses_in;
  return n;
}

// Inputs that run the group policy without changing anything the placement depends
// on: the INACTIVE standby's link bounces.
void poke(Rig& r, int times) {
  for (int i = 0; i < times; ++i) {
    r.link("m2", false);
    r.link("m2", true);
  }
}

}  // namespace

// Both addresses homed on m1 (the administrator moved the first there): every policy
// run used to publish a failback and a rebalance move that cancelled out.
class BothHomedOnOne : public ::testing::TestWithParam<bool> {};

TEST_P(BothHomedOnOne, StayThereWithoutPhantomMoves) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"}, GetParam()));
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_EQ(r.holder(kA), "m0");
  ASSERT_EQ(r.holder(kB), "m1");
  ASSERT_TRUE(r.engine.move_address(*IpAddress::parse(kA), "m1"));
  r.events.clear();
  const auto before = moves_in(r.g());
  poke(r, 5);
  EXPECT_TRUE(r.of<AddressMoved>().empty()) << ::testing::PrintToString(r.lines());
  EXPECT_EQ(moves_in(r.g()), before);
  // Each address is on its healthy home (with FAILBACK=no the admin's move is kept).
  EXPECT_EQ(r.holder(kA), "m1");
  EXPECT_EQ(r.holder(kB), "m1");
}

std::string failback_name(const ::testing::TestParamInfo<bool>& p) { return p.param ? "failback" : "no_failback"; }
INSTANTIATE_TEST_SUITE_P(Placement, BothHomedOnOne, ::testing::Bool(), failback_name);

TEST(Placement, AdoptedAddressesOnOneMemberAreNotMovedBackAndForth) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"}));
  for (auto* n : {"m0", "m1", "m2"}) r.link(n, true);
  // A restart finds both on m0 (they were moved there): m0 becomes their home.
  r.engine.observe_address("m0", *IpPrefix::parse("198.18.1.10/24"), true);
  r.engine.observe_address("m0", *IpPrefix::parse("198.18.1.11/24"), true);
  r.engine.start();
  poke(r, 5);
  EXPECT_TRUE(r.of<AddressMoved>().empty()) << ::testing::PrintToString(r.lines());
  EXPECT_EQ(r.holder(kA), "m0");
  EXPECT_EQ(r.holder(kB), "m0");
}

TEST(Placement, BothHomedOnAFailedMemberSpreadAndReturnHome) {
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", true}}, {"198.18.1.10/24", "198.18.1.11/24"}));
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.move_address(*IpAddress::parse(kA), "m1"));
  r.events.clear();
  r.link("m1", false);  // the standby replaces m1; its two addresses spread over m0 and m2
  EXPECT_TRUE(r.m("m2").active());
  EXPECT_EQ(r.g().load("m0"), 1u);
  EXPECT_EQ(r.g().load("m2"), 1u);
  auto moves = r.of<AddressMoved>();
  ASSERT_EQ(moves.size(), 2u) << ::testing::PrintToString(r.lines());
  for (const auto& m : moves) EXPECT_EQ(m.reason, Reason::failover);
  r.events.clear();
  r.link("m1", true);  // FAILBACK=yes: both return to m1, the standby is released
  EXPECT_TRUE(r.m("m2").inactive);
  EXPECT_EQ(r.holder(kA), "m1");
  EXPECT_EQ(r.holder(kB), "m1");
  moves = r.of<AddressMoved>();
  ASSERT_EQ(moves.size(), 2u) << ::testing::PrintToString(r.lines());
  for (const auto& m : moves) EXPECT_EQ(m.reason, Reason::failback);
}

TEST(Placement, AddressesAwayFromTheirHomeAreBalancedByCount) {
  // Four addresses homed on m0 and m1; m1 fails: its two go to the emptiest active
  // members, one each, and the addresses at home on m0 stay.
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", false}},
                    {"198.18.1.10/24", "198.18.1.11/24", "198.18.1.12/24", "198.18.1.13/24"}));
  r.start_all_up({"m0", "m1", "m2"});
  ASSERT_TRUE(r.engine.move_address(*IpAddress::parse("198.18.1.12"), "m1"));
  ASSERT_TRUE(r.engine.move_address(*IpAddress::parse("198.18.1.10"), "m0"));
  // Homes now: .10 m0, .11 m1, .12 m1, .13 m0.
  r.events.clear();
  r.link("m1", false);
  EXPECT_EQ(r.g().load("m0"), 2u);
  EXPECT_EQ(r.g().load("m2"), 2u);
  EXPECT_EQ(r.of<AddressMoved>().size(), 2u) << ::testing::PrintToString(r.lines());
  EXPECT_EQ(r.holder("198.18.1.10"), "m0");
  EXPECT_EQ(r.holder("198.18.1.13"), "m0");
}

// Random inputs: every AddressMoved names a real change of holder, at most one per
// address per input, and together they are exactly the difference between the
// placements before and after. With FAILBACK=yes an address whose home is active is
// on it; and a policy run that changes nothing moves nothing.
class PlacementRandom : public ::testing::TestWithParam<bool> {};

TEST_P(PlacementRandom, MovesAreExactlyTheHolderChanges) {
  const bool failback = GetParam();
  Rig r(make_config({{"m0", false}, {"m1", false}, {"m2", false}, {"m3", true}},
                    {"198.18.1.10/24", "198.18.1.11/24", "198.18.1.12/24", "198.18.1.13/24",
                     "198.18.1.14/24", "2001:db8:1::10/64", "2001:db8:1::11/64"},
                    failback));
  r.start_all_up({"m0", "m1", "m2", "m3"});
  std::mt19937 rng(8);
  const std::vector<std::string> names{"m0", "m1", "m2", "m3"};
  const std::vector<std::string> addrs{kA, kB, "198.18.1.12", "198.18.1.13", "198.18.1.14", "2001:db8:1::10",
                                       "2001:db8:1::11"};
  std::map<std::string, bool> up;
  for (const auto& n : names) up[n] = true;
  std::size_t total_moves = 0;
  for (int step = 0; step < 400; ++step) {
    const auto before = holders(r.g());
    r.events.clear();
    const auto& n = names[rng() % names.size()];
    r.clock.advance(std::chrono::seconds(rng() % 20));  // link-flap damping holds and ends
    switch (rng() % 5) {
      case 4:
        r.engine.on_timer();
        break;
      case 0:
      case 1:
        up[n] = !up[n];
        r.link(n, up[n]);
        break;
      case 2:
        (void)r.engine.move_address(*IpAddress::parse(addrs[rng() % addrs.size()]), n);
        break;
      case 3:
        if (r.m(n).admin_offline)
          (void)r.engine.online(n);
        else
          (void)r.engine.offline(n);
        break;
    }
    const auto after = holders(r.g());
    std::map<std::string, std::string> moved_to;
    for (const auto& m : r.of<AddressMoved>()) {
      const auto a = m.address.addr.str();
      EXPECT_NE(m.from, m.to) << "step " << step;
      EXPECT_FALSE(moved_to.contains(a)) << "step " << step << ": " << a << " moved twice\n"
                                         << ::testing::PrintToString(r.lines());
      EXPECT_EQ(m.from, before.at(a)) << "step " << step;
      moved_to[a] = m.to;
      ++total_moves;
    }
    for (const auto& [a, h] : after) {
      if (h != before.at(a)) {
        EXPECT_EQ(moved_to[a], h) << "step " << step << ": " << a;
      } else {
        EXPECT_FALSE(moved_to.contains(a)) << "step " << step << ": " << a;
      }
    }
    if (failback)
      for (const auto& a : r.g().data)
        if (const Member* home = r.g().find(a.home); home && home->active()) {
          EXPECT_EQ(a.holder, a.home) << "step " << step << ": " << a.prefix.str();
        }
    // Bouncing the link of an INACTIVE standby changes nothing the placement depends
    // on: nothing moves.
    if (up["m3"] && r.m("m3").inactive) {
      r.events.clear();
      r.link("m3", false);
      r.link("m3", true);
      EXPECT_TRUE(r.m("m3").inactive);
      EXPECT_TRUE(r.of<AddressMoved>().empty()) << "step " << step << "\n" << ::testing::PrintToString(r.lines());
    }
  }
  EXPECT_GT(total_moves, 100u) << total_moves << "the inputs must move addresses for the test to mean anything";
}

INSTANTIATE_TEST_SUITE_P(Placement, PlacementRandom, ::testing::Bool(), failback_name);
