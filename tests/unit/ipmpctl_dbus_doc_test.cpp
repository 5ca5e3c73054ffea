// docs/dbus-api.md documents every interface, method, property, signal and error of
// dbus/org.ipmp.Mpathd1.xml, so that the reference cannot drift from the contract.
// Built by ipmpctl/CMakeLists.txt (see ipmpctl_format_test.cpp).
#include <gtest/gtest.h>

#ifdef IPMPCTL_UNIT_TESTS

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.hpp"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const std::string kXml = std::string(MPATHD_SOURCE_DIR) + "/dbus/org.ipmp.Mpathd1.xml";
const std::string kDoc = std::string(MPATHD_SOURCE_DIR) + "/docs/dbus-api.md";

// Every name="..." of the given element kind in the contract.
std::set<std::string> names(const std::string& xml, const std::string& element) {
  std::set<std::string> out;
  std::regex re("<" + element + "\\s+name=\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), re); it != std::sregex_iterator(); ++it)
    out.insert((*it)[1]);
  return out;
}

// The error names listed in the contract's header comment: org.ipmp.Mpathd1.Error.{A, B}.
std::set<std::string> contract_error_names(const std::string& xml) {
  std::set<std::string> out;
  std::smatch m;
  if (!std::regex_search(xml, m, std::regex(R"(org\.ipmp\.Mpathd1\.Error\.\{([^}]*)\})"))) return out;
  std::string list = m[1];
  std::regex word(R"([A-Za-z]+)");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), word); it != std::sregex_iterator(); ++it)
    out.insert(it->str());
  return out;
}

TEST(DbusDoc, EveryContractNameIsDocumented) {
  auto xml = slurp(kXml);
  auto doc = slurp(kDoc);
  ASSERT_FALSE(xml.empty()) << kXml;
  ASSERT_FALSE(doc.empty()) << kDoc;
  std::size_t checked = 0;
  for (const char* element : {"interface", "method", "property", "signal"}) {
    auto found = names(xml, element);
    EXPECT_FALSE(found.empty()) << element;
    for (const auto& n : found) {
      ++checked;
      // As code in the reference: `Name` or `Name(args)`.
      EXPECT_TRUE(doc.find("`" + n + "`") != std::string::npos ||
                  doc.find("`" + n + "(") != std::string::npos)
          << element << " " << n << " is in " << kXml << " but not documented in " << kDoc;
    }
  }
  // Method and signal arguments too.
  for (const auto& a : names(xml, "arg")) {
    EXPECT_NE(doc.find(a), std::string::npos) << "argument " << a << " not documented";
  }
  // The error names listed in the contract's header comment.
  auto errors = contract_error_names(xml);
  EXPECT_FALSE(errors.empty());
  for (const auto& e : errors) {
    ++checked;
    std::string full = "org.ipmp.Mpathd1.Error." + e;
    EXPECT_NE(doc.find(full), std::string::npos) << full << " not documented in " << kDoc;
  }
  EXPECT_GT(checked, 40U);
}

// The one table of error names (core/error.hpp), used by the daemon and the client,
// is exactly the contract's list.
TEST(DbusDoc, ErrorTableIsTheContractsList) {
  auto contract = contract_error_names(slurp(kXml));
  std::set<std::string> table;
  for (auto n : mpathd::kErrcDbusNames) table.emplace(n);
  EXPECT_EQ(table, contract);
}

// The text with troff font requests, backquotes, parentheses and line breaks folded
// into single spaces, so that a sentence reads the same in a man page and in Markdown.
std::string prose(std::string text) {
  text = std::regex_replace(text, std::regex(R"(\n\.(BR|B|IR|I|RB|BI)\s)"), " ");
  text = std::regex_replace(text, std::regex(R"([`()\\])"), " ");
  return std::regex_replace(text, std::regex(R"(\s+)"), " ");
}

// Who may change things: mpathd (lib/dbus/manager.cpp) and the bus policy accept
// root (uid 0) only; no document may promise more.
TEST(DbusDoc, ChangesNeedRootEverywhere) {
  for (const char* rel : {"/man/mpathd.8", "/man/ipmpctl.8", "/docs/dbus-api.md", "/dbus/org.ipmp.Mpathd1.xml",
                          "/units/org.ipmp.Mpathd1.conf"}) {
    const std::string path = std::string(MPATHD_SOURCE_DIR) + rel;
    const std::string text = prose(slurp(path));
    ASSERT_FALSE(text.empty()) << path;
    EXPECT_EQ(text.find("or CAP_NET_ADMIN"), std::string::npos) << path << " says CAP_NET_ADMIN would do";
    EXPECT_NE(text.find("root uid 0"), std::string::npos) << path << " does not say that changes need root (uid 0)";
  }
}

}  // namespace

#endif  // IPMPCTL_UNIT_TESTS
