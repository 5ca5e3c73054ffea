// The contract test: what the live Service introspects equals dbus/org.ipmp.Mpathd1.xml,
// member by member (methods with their arguments, properties with type and access,
// signals with their arguments). Annotations and documentation are ignored.
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "dbus/bus.hpp"
#include "dbus_fixture.hpp"

namespace mpathd::test {
namespace {

struct Interface {
  std::map<std::string, std::vector<std::string>> methods;  // name -> "in s name", ...
  std::map<std::string, std::string> properties;            // name -> "type access"
  std::map<std::string, std::vector<std::string>> signals;  // name -> "s name", ...
  bool operator==(const Interface&) const = default;
};

struct Tag {
  std::string name;
  std::map<std::string, std::string> attrs;
  bool closing = false;
  bool empty = false;  // <x/>
};

// Just enough XML for introspection data: tags with quoted attributes; comments,
// declarations and processing instructions are skipped.
std::vector<Tag> tags(const std::string& xml) {
  std::vector<Tag> out;
  std::size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    if (xml.compare(i, 4, "<!--") == 0) {
      i = xml.find("-->", i);
      if (i == std::string::npos) break;
      continue;
    }
    std::size_t end = xml.find('>', i);
    if (end == std::string::npos) break;
    std::string body = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (body.empty() || body[0] == '!' || body[0] == '?') continue;
    Tag t;
    if (body[0] == '/') {
      t.closing = true;
      body.erase(0, 1);
    }
    if (!body.empty() && body.back() == '/') {
      t.empty = true;
      body.pop_back();
    }
    std::size_t p = body.find_first_of(" \t\r\n");
    t.name = body.substr(0, p);
    while (p != std::string::npos && p < body.size()) {
      std::size_t eq = body.find('=', p);
      if (eq == std::string::npos) break;
      std::size_t k = body.find_first_not_of(" \t\r\n", p);
      std::string key = body.substr(k, eq - k);
      while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
      std::size_t q = body.find_first_of("\"'", eq);
      if (q == std::string::npos) break;
      std::size_t qe = body.find(body[q], q + 1);
      if (qe == std::string::npos) break;
      t.attrs[key] = body.substr(q + 1, qe - q - 1);
      p = qe + 1;
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::map<std::string, Interface> parse(const std::string& xml) {
  std::map<std::string, Interface> out;
  Interface* iface = nullptr;
  std::vector<std::string>* args = nullptr;  // of the open method or signal
  bool in_method = false;
  for (const auto& t : tags(xml)) {
    if (t.name == "interface") {
      iface = t.closing ? nullptr : &out[t.attrs.at("name")];
    } else if (!iface) {
      continue;
    } else if (t.name == "method" || t.name == "signal") {
      if (t.closing) {
        args = nullptr;
        continue;
      }
      in_method = t.name == "method";
      args = in_method ? &iface->methods[t.attrs.at("name")] : &iface->signals[t.attrs.at("name")];
      if (t.empty) args = nullptr;
    } else if (t.name == "arg" && args) {
      auto attr = [&](const char* k, const char* dflt) { return t.attrs.contains(k) ? t.attrs.at(k) : dflt; };
      std::string dir = in_method ? attr("direction", "in") + " " : "";
      args->push_back(dir + attr("type", "?") + " " + attr("name", ""));
    } else if (t.name == "property" && !t.closing) {
      iface->properties[t.attrs.at("name")] = t.attrs.at("type") + " " + t.attrs.at("access");
    }
  }
  return out;
}

std::string file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// mpathd encodes object paths itself (one allocation; GetState encodes every member's
// path twice): the same as sd_bus_path_encode, and decoded back by sd-bus.
TEST(DbusPaths, EncodedAsSdBusDoes) {
  const std::string names[] = {"m0", "eth0.100", "g-0.x", "0eth", "9", "", "_", "a_b", "ÿx", "en p1s0", "ABCxyz09"};
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    for (const char* prefix : {"/org/ipmp/Mpathd1/group", "/org/ipmp/Mpathd1/interface"}) {
      char* want = nullptr;
      ASSERT_GE(sd_bus_path_encode(prefix, name.c_str(), &want), 0);
      const std::string got = std::string_view(prefix).ends_with("group") ? dbus::group_path(name)
                                                                           : dbus::interface_path(name);
      EXPECT_EQ(got, want);
      std::free(want);
      char* back = nullptr;
      ASSERT_GT(sd_bus_path_decode(got.c_str(), prefix, &back), 0);
      EXPECT_EQ(std::string(back), name);
      std::free(back);
    }
  }
}

class DbusContract : public DbusFixture {};

TEST_F(DbusContract, LiveIntrospectionEqualsTheCheckedInXml) {
  const auto contract = parse(file(std::string(MPATHD_SOURCE_DIR) + "/dbus/org.ipmp.Mpathd1.xml"));
  ASSERT_EQ(contract.size(), 3u);
  const std::pair<std::string, const char*> objects[] = {
      {kRoot, kManager}, {group_path("g0"), kGroup}, {iface_path("m0"), kInterface}, {iface_path("u0"), kInterface}};
  for (const auto& [path, name] : objects) {
    SCOPED_TRACE(path);
    auto r = call(path, "org.freedesktop.DBus.Introspectable", "Introspect");
    ASSERT_TRUE(r.ok) << r.error_name << ": " << r.error_message;
    // The reply is one string: the XML, rendered in quotes.
    auto live = parse(r.body.substr(1, r.body.size() - 2));
    ASSERT_TRUE(live.contains(name)) << r.body;
    const Interface& want = contract.at(name);
    const Interface& got = live.at(name);
    EXPECT_EQ(got.methods, want.methods);
    EXPECT_EQ(got.properties, want.properties);
    EXPECT_EQ(got.signals, want.signals);
    // No other interface of ours on this object.
    for (const auto& [other, _] : live)
      if (other.starts_with("org.ipmp.")) {
        EXPECT_EQ(other, name);
      }
  }
}

TEST_F(DbusContract, TheParserSeesEveryMemberOfTheContract) {
  // Guards the test itself: a parser that found nothing would compare equal too.
  const auto contract = parse(file(std::string(MPATHD_SOURCE_DIR) + "/dbus/org.ipmp.Mpathd1.xml"));
  const auto& m = contract.at(kManager);
  EXPECT_EQ(m.methods.size(), 15u);
  EXPECT_EQ(m.properties.size(), 14u);
  EXPECT_EQ(m.methods.at("GetState"),
            (std::vector<std::string>{"out (stbbutssa(ssstts)s) manager", "out a(osssstbaoa(ssss)a(sssss)) groups",
                                      "out a(osussbasbssstsasassa(stt)(ttttttt)) interfaces"}));
  EXPECT_EQ(m.properties.at("Hooks"), "a(ssstts) read");
  EXPECT_EQ(m.properties.at("Replication"), "s read");  // not in GetState (its signature is API)
  EXPECT_EQ(m.methods.at("AddMember"),
            (std::vector<std::string>{"in s group", "in s interface", "in b standby", "out o member"}));
  EXPECT_TRUE(m.methods.at("Reload").empty());
  EXPECT_EQ(contract.at(kGroup).properties.at("DataAddresses"), "a(ssss) read");
  EXPECT_EQ(contract.at(kGroup).properties.at("SharedAddresses"), "a(sssss) read");
  EXPECT_EQ(contract.at(kInterface).signals.at("StateChanged"),
            (std::vector<std::string>{"s old_state", "s new_state", "as old_flags", "as new_flags", "s reason"}));
  EXPECT_EQ(contract.at(kInterface).properties.at("LinkFlags"), "as read");
  EXPECT_EQ(contract.at(kInterface).properties.size(), 17u);
}

}  // namespace
}  // namespace mpathd::test
