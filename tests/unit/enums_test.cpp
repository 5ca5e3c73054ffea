#include <gtest/gtest.h>

#include <set>
#include <typeinfo>
#include <utility>
#include <string>

#include "core/enums.hpp"
#include "core/error.hpp"

using namespace mpathd;

// Whether V is a declared enumerator of E, read from the compiler's spelling of the
// template argument: GCC and Clang print a declared value by name ("E::ok") and any
// other value as a cast ("(E)4"). This is what makes the completeness check below
// independent of the tables it checks.
template <auto V>
constexpr bool is_enumerator() {
  std::string_view f = __PRETTY_FUNCTION__;
  auto at = f.find("V = ");
  return at != std::string_view::npos && f[at + 4] != '(';
}

template <typename E, std::size_t... I>
constexpr std::size_t declared_count(std::index_sequence<I...>) {
  // Enumerators are 0..n-1 (no gaps): count the leading declared values.
  std::size_t n = 0;
  bool gap = false;
  ((is_enumerator<static_cast<E>(I)>() && !gap ? ++n : (gap = true, n)), ...);
  return n;
}

template <typename E>
constexpr std::size_t declared_count() {
  return declared_count<E>(std::make_index_sequence<64>{});
}

static_assert(is_enumerator<MemberState::offline>());
static_assert(!is_enumerator<static_cast<MemberState>(4)>());

template <typename E>
void check_table() {
  // Every declared value has its string: a value added without one, or a string
  // removed, makes the table shorter than the enum.
  EXPECT_EQ(enum_count<E>(), declared_count<E>()) << typeid(E).name();
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
  check_table<Errc>();
}

TEST(Enums, EveryErrorCodeHasADbusName) {
  for (std::size_t i = 0; i < enum_count<Errc>(); ++i) {
    auto e = static_cast<Errc>(i);
    auto name = dbus_error_name(e);
    EXPECT_TRUE(name.starts_with("org.ipmp.Mpathd1.Error.")) << name;
    auto back = errc_from_dbus_name(name);
    ASSERT_TRUE(back) << name;
    // Codes without a name of their own travel as Failed and come back as system.
    if (name.ends_with(".Failed"))
      EXPECT_EQ(*back, Errc::system);
    else
      EXPECT_EQ(*back, e) << name;
  }
  EXPECT_FALSE(errc_from_dbus_name("org.ipmp.Mpathd1.Error.NoSuchThing"));
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
