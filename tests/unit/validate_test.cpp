// core/validate: the one set of rules for names and addresses that every way in uses.
#include "core/validate.hpp"

#include <gtest/gtest.h>

namespace mpathd {
namespace {

IpPrefix prefix(const char* text) {
  auto p = IpPrefix::parse(text);
  EXPECT_TRUE(p) << text;
  return p.value_or(IpPrefix{});
}

TEST(Validate, AddressesMpathdMustNotManage) {
  // From issue 8: accepted by AddDataAddress, or refused by the kernel yet shown up.
  const char* bad[] = {"127.0.0.2/8",      "224.0.0.5/4",  "255.255.255.255/32", "198.18.1.0/24", "198.18.1.255/24",
                       "::1/128",          "::/0",         "ff02::5/64",         "0.0.0.0/0",     "0.1.2.3/8",
                       "::ffff:1.2.3.4/96", "fe80::10/64", "198.18.1.10/0",      "2001:db8::10/0"};
  for (const char* text : bad) {
    auto problem = address_problem(prefix(text), AddressRole::data);
    ASSERT_TRUE(problem) << text;
    EXPECT_NE(problem->find(prefix(text).str()), std::string::npos) << *problem;
  }
  EXPECT_EQ(address_problem(prefix("198.18.1.0/24"), AddressRole::data).value(),
            "198.18.1.0/24 is the network address of its subnet 198.18.1.0/24");
  EXPECT_EQ(address_problem(prefix("198.18.1.127/25"), AddressRole::shared).value(),
            "198.18.1.127/25 is the broadcast address of its subnet 198.18.1.0/25");
  EXPECT_EQ(address_problem(prefix("127.0.0.2/8"), AddressRole::data).value(),
            "127.0.0.2/8 is a loopback address, not a data address");
  EXPECT_EQ(address_problem(prefix("ff02::5/64"), AddressRole::test).value(),
            "ff02::5/64 is a multicast address, not a test address");
}

TEST(Validate, AddressesMpathdManages) {
  const char* good[] = {"198.18.1.10/24", "198.18.1.1/24",   "198.18.1.254/24", "198.18.1.0/31", "198.18.1.1/31",
                        "198.18.1.7/32",  "2001:db8::10/64", "2001:db8::/64",   "169.254.1.1/16"};
  for (const char* text : good)
    for (auto role : {AddressRole::data, AddressRole::shared, AddressRole::test})
      EXPECT_FALSE(address_problem(prefix(text), role)) << text << " as " << to_string(role);
  // A link-local address is tied to its link: a test address may be one, a moving one not.
  EXPECT_FALSE(address_problem(prefix("fe80::10/64"), AddressRole::test));
  EXPECT_TRUE(address_problem(prefix("fe80::10/64"), AddressRole::shared));
}

TEST(Validate, ManagedAddressNeedsAPrefixLengthInRange) {
  EXPECT_EQ(parse_managed_address("198.18.1.10/24", AddressRole::data).value(), prefix("198.18.1.10/24"));
  EXPECT_EQ(parse_managed_address("198.18.1.10", AddressRole::data).error(),
            R"("198.18.1.10" has no prefix length (write e.g. 198.18.1.10/24))");
  EXPECT_EQ(parse_managed_address("2001:db8::10", AddressRole::data).error(),
            R"("2001:db8::10" has no prefix length (write e.g. 2001:db8::10/64))");
  EXPECT_EQ(parse_managed_address("198.18.1.10/33", AddressRole::data).error(),
            R"("198.18.1.10/33": prefix length 33 is out of range 1..32)");
  EXPECT_EQ(parse_managed_address("2001:db8::10/129", AddressRole::data).error(),
            R"("2001:db8::10/129": prefix length 129 is out of range 1..128)");
  EXPECT_EQ(parse_managed_address("198.18.1.10/99999999999", AddressRole::data).error(),
            R"("198.18.1.10/99999999999": prefix length 99999999999 is out of range 1..32)");
  for (const char* text : {"198.18.1.10/abc", "198.18.1.10/", "198.18.1.10/-1", "198.18.1.10/24x", "198.18.1.10/ 24"})
    EXPECT_NE(parse_managed_address(text, AddressRole::data).error().find("is not a number"), std::string::npos)
        << text;
  EXPECT_EQ(parse_managed_address("198.18.1.300/24", AddressRole::data).error(),
            R"("198.18.1.300/24" is not an address with prefix length (e.g. 198.18.1.10/24))");
  EXPECT_EQ(parse_managed_address("127.0.0.2/8", AddressRole::data).error(),
            "127.0.0.2/8 is a loopback address, not a data address");
}

TEST(Validate, AddressWithOptionalPrefixChecksAGivenLength) {
  EXPECT_EQ(parse_address_maybe_prefix("198.18.1.10"), IpAddress::parse("198.18.1.10"));
  EXPECT_EQ(parse_address_maybe_prefix("198.18.1.10/24"), IpAddress::parse("198.18.1.10"));
  EXPECT_EQ(parse_address_maybe_prefix("2001:db8::1/64"), IpAddress::parse("2001:db8::1"));
  for (const char* text : {"198.18.1.10/abc", "198.18.1.10/33", "198.18.1.10/", "2001:db8::1/129", "bogus", ""})
    EXPECT_FALSE(parse_address_maybe_prefix(text)) << text;
}

TEST(Validate, NamesAsMessages) {
  EXPECT_FALSE(group_name_problem("g0"));
  EXPECT_EQ(group_name_problem("g 0").value(),
            R"("g 0" is not a valid group name (1 to 32 characters of A-Z a-z 0-9 _ . -))");
  EXPECT_FALSE(ifname_problem("m0"));
  EXPECT_EQ(ifname_problem("a/b").value(),
            R"("a/b" is not a valid interface name (1 to 15 characters, no '/', ':' or space))");
}

TEST(Validate, MembersMustBeEthernetLike) {
  EXPECT_FALSE(member_link_problem("m0", {}));
  EXPECT_EQ(member_link_problem("lo", {.loopback = true}).value(),
            "lo is the loopback interface; members must be Ethernet-like interfaces");
  EXPECT_NE(member_link_problem("tun0", {.broadcast = false}).value().find("tun0 cannot broadcast"), std::string::npos);
  EXPECT_NE(member_link_problem("ipip0", {.has_hwaddr = false}).value().find("ipip0 has no Ethernet hardware address"),
            std::string::npos);
}

TEST(Validate, EchoTruncatesLongValuesAndShowsControlBytes) {
  EXPECT_EQ(echo("g0"), R"("g0")");
  EXPECT_EQ(echo("a\tb"), R"("a\x09b")");
  const std::string huge(50 * 1024 * 1024, 'x');
  const std::string shown = echo(huge);
  EXPECT_LT(shown.size(), kEchoLimit + 40);
  EXPECT_EQ(shown, "\"" + std::string(kEchoLimit, 'x') + "\"... (52428800 bytes)");
  // Never cut inside a UTF-8 sequence.
  std::string utf8(kEchoLimit - 1, 'x');
  utf8 += "\xc3\xa9";  // é straddles the limit
  utf8 += "tail";
  EXPECT_EQ(echo(utf8), "\"" + std::string(kEchoLimit - 1, 'x') + "\"... (" + std::to_string(utf8.size()) + " bytes)");
}

// The rules between groups, shared by the configuration file parser and the Engine's
// runtime changes (their own tests check each applies them: ConfigFile.*, Topology.*).
TEST(Validate, ClaimsCollideWithinTheirNamespace) {
  using K = Claim::Kind;
  const Claim g0{K::group_name, "g0", "g0", {}, {}};
  const Claim ipmp0{K::group_interface, "ipmp0", "g0", {}, {}};
  const Claim m0{K::member, "m0", "g0", {}, {}};
  EXPECT_EQ(claim_conflict(g0, {K::group_name, "g0", "g0", {}, {}}).value(), "duplicate group name g0");
  EXPECT_EQ(claim_conflict(ipmp0, {K::group_interface, "ipmp0", "g1", {}, {}}).value(),
            "interface ipmp0 is already the interface of group g0");
  EXPECT_EQ(claim_conflict(m0, {K::member, "m0", "g0", {}, {}}).value(), "m0 is listed twice in group g0");
  EXPECT_EQ(claim_conflict(m0, {K::member, "m0", "g1", {}, {}}).value(), "m0 is already a member of group g0");
  // Group interfaces and members share one namespace, both ways round.
  EXPECT_EQ(claim_conflict(ipmp0, {K::member, "ipmp0", "g1", {}, {}}).value(), "ipmp0 is the interface name of group g0");
  EXPECT_EQ(claim_conflict(m0, {K::group_interface, "m0", "g1", {}, {}}).value(),
            "interface m0 is already a member of group g0");
  // Group names are a namespace of their own: a group may be named like an interface.
  EXPECT_FALSE(claim_conflict(m0, {K::group_name, "m0", "m0", {}, {}}));
  EXPECT_FALSE(claim_conflict({K::group_name, "m0", "m0", {}, {}}, m0));
  EXPECT_FALSE(claim_conflict(g0, {K::group_interface, "g0", "g1", {}, {}}));
  // Different values never collide.
  EXPECT_FALSE(claim_conflict(m0, {K::member, "m1", "g0", {}, {}}));
}

TEST(Validate, AddressClaimsIgnoreRoleAndPrefixLength) {
  const auto p = [](const char* s) { return *IpPrefix::parse(s); };
  const Claim data = address_claim(p("198.18.1.10/24"), AddressRole::data, "g0");
  const Claim test = address_claim(p("198.18.1.20/24"), AddressRole::test, "g0", "m1");
  EXPECT_EQ(claim_conflict(data, address_claim(p("198.18.1.10/25"), AddressRole::shared, "g1")).value(),
            "198.18.1.10 is already a data address of group g0");
  EXPECT_EQ(claim_conflict(test, address_claim(p("198.18.1.20/24"), AddressRole::data, "g0")).value(),
            "198.18.1.20 is already a test address of m1 in group g0");
  EXPECT_EQ(claim_conflict(address_claim(p("2001:db8::1/64"), AddressRole::shared, "g0"),
                           address_claim(p("2001:db8:0::1/128"), AddressRole::test, "g0", "m0"))
                .value(),
            "2001:db8::1 is already a shared address of group g0");
  EXPECT_FALSE(claim_conflict(data, address_claim(p("198.18.1.11/24"), AddressRole::data, "g0")));
  // An address is no name, even when it reads like one.
  EXPECT_FALSE(claim_conflict(data, {Claim::Kind::member, "198.18.1.10", "g0", {}, {}}));
}

TEST(Validate, ClaimsOfAGroupInOrderAndTheFirstConflict) {
  GroupConfig g;
  g.name = "g0";
  g.members = {{"m0", false, {*IpPrefix::parse("198.18.1.20/24")}}, {"m1", true, {}}};
  g.data_addresses = {*IpPrefix::parse("198.18.1.10/24")};
  g.shared_addresses = {*IpPrefix::parse("198.18.1.99/24")};
  std::vector<std::string> values;
  for (const auto& c : claims_of(g)) values.push_back(c.value);
  EXPECT_EQ(values, (std::vector<std::string>{"g0", "g0", "m0", "m1", "198.18.1.10", "198.18.1.99", "198.18.1.20"}))
      << "the interface defaults to the name";
  EXPECT_FALSE(first_conflict({}, claims_of(g)));
  // Within the fresh claims, and against those taken before.
  GroupConfig twice = g;
  twice.members.push_back({"m0", false, {}});
  EXPECT_EQ(first_conflict({}, claims_of(twice)).value(), "m0 is listed twice in group g0");
  GroupConfig other;
  other.name = "g1";
  other.interface = "ipmp1";
  other.members = {{"m2", false, {}}};
  other.data_addresses = {*IpPrefix::parse("198.18.1.20/24")};
  EXPECT_EQ(first_conflict(claims_of(g), claims_of(other)).value(), "198.18.1.20 is already a test address of m0 in group g0");
  other.data_addresses.clear();
  EXPECT_FALSE(first_conflict(claims_of(g), claims_of(other)));
}

}  // namespace
}  // namespace mpathd
