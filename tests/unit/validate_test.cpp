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

}  // namespace
}  // namespace mpathd
