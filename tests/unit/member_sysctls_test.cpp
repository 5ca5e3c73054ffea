// MemberSysctls on a directory tree that stands in for /proc/sys (net::Sysctl's root):
// the ARP settings of members, and their return to an interface that was renamed.
#include <gtest/gtest.h>
#include <linux/ip.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "daemon/atomic_file.hpp"
#include "daemon/member_sysctls.hpp"

namespace fs = std::filesystem;
using namespace mpathd;

namespace {

class FakeProcSys : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "mpathd-sysctl-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path conf(const std::string& ifname) const { return root_ / "net/ipv4/conf" / ifname; }
  void make_interface(const std::string& ifname) {
    fs::create_directories(conf(ifname));
    for (const auto& [key, _] : MemberSysctls::kSettings) std::ofstream(conf(ifname) / key) << "0\n";
  }
  std::string value(const std::string& ifname, const char* key) const {
    std::ifstream in(conf(ifname) / key);
    std::string v;
    in >> v;
    return v;
  }
  // The saved originals go to a file here (the daemon gives them to its StateStore).
  MemberSysctls make() {
    const auto path = (root_ / "sysctl.json").string();
    std::ifstream in(path);
    std::string saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return MemberSysctls(net::Sysctl(root_.string()), saved, path,
                         [path](std::string json) { ASSERT_TRUE(write_file_atomically(path, json, false)); });
  }

  fs::path root_;
};

TEST_F(FakeProcSys, MemberGetsTheSettingsAndLeavingRestoresThem) {
  make_interface("m1");
  auto s = make();
  s.apply("m1", 3);
  EXPECT_EQ(value("m1", "arp_ignore"), "1");
  EXPECT_EQ(value("m1", "arp_announce"), "2");
  s.restore("m1");
  EXPECT_EQ(value("m1", "arp_ignore"), "0");
  EXPECT_EQ(value("m1", "arp_announce"), "0");
}

// The kernel announces a rename before it moves /proc/sys/net/ipv4/conf/<name>: the
// restore under the new name is tried again until the directory is there.
TEST_F(FakeProcSys, RenamedInterfaceGetsItsSettingsBackUnderItsNewName) {
  make_interface("m1");
  auto s = make();
  s.apply("m1", 3);
  s.restore("m1", "x1");  // x1's directory does not exist yet
  EXPECT_EQ(value("m1", "arp_ignore"), "1");
  fs::rename(conf("m1"), conf("x1"));  // the kernel catches up
  s.retry_renamed();
  EXPECT_EQ(value("x1", "arp_ignore"), "0");
  EXPECT_EQ(value("x1", "arp_announce"), "0");
  EXPECT_EQ(value("x1", "rp_filter"), "0");
  // Done: a later interface named m1 starts from its own values.
  make_interface("m1");
  std::ofstream(conf("m1") / "rp_filter") << "1\n";
  s.apply("m1", 9);
  s.restore("m1");
  EXPECT_EQ(value("m1", "rp_filter"), "1");
  EXPECT_EQ(value("x1", "arp_ignore"), "0");
}

}  // namespace

// Start-up (hold/release): one save of the originals for every member, and it comes
// before the first value is written.
TEST_F(FakeProcSys, HeldAppliesSaveTheOriginalsOnceBeforeAnyValue) {
  for (const char* n : {"m1", "m2", "m3"}) make_interface(n);
  int saves = 0;
  bool value_before_save = false;
  MemberSysctls s(net::Sysctl(root_.string()), "", "sysctl.json", [&](std::string json) {
    ++saves;
    for (const char* n : {"m1", "m2", "m3"}) value_before_save = value_before_save || value(n, "arp_ignore") != "0";
    for (const char* n : {"m1", "m2"}) EXPECT_NE(json.find(n), std::string::npos) << json;
  });
  s.hold();
  s.apply("m1", 3);
  s.apply("m2", 4);
  s.apply("m3", 5);
  s.restore("m3");  // left before the release: it keeps its values
  EXPECT_EQ(saves, 0);
  EXPECT_EQ(value("m1", "arp_ignore"), "0");
  s.release();
  EXPECT_EQ(saves, 1);
  EXPECT_FALSE(value_before_save);
  EXPECT_EQ(value("m1", "arp_ignore"), "1");
  EXPECT_EQ(value("m2", "rp_filter"), "2");
  EXPECT_EQ(value("m3", "arp_ignore"), "0");
}

namespace {
// The link dump's values (IFLA_INET_CONF, index IPV4_DEVCONF_* - 1).
std::vector<std::int32_t> dumped(int arp_ignore, int arp_announce, int rp_filter, int promote) {
  std::vector<std::int32_t> c(IPV4_DEVCONF_MAX, 0);
  c[IPV4_DEVCONF_ARP_IGNORE - 1] = arp_ignore;
  c[IPV4_DEVCONF_ARP_ANNOUNCE - 1] = arp_announce;
  c[IPV4_DEVCONF_RP_FILTER - 1] = rp_filter;
  c[IPV4_DEVCONF_PROMOTE_SECONDARIES - 1] = promote;
  return c;
}
}  // namespace

// The originals come from the link dump when it has them (no read of /proc/sys); at a
// restart's start-up a value the dump shows set already is not written again, a value
// that differs is; outside the start-up every value is written as before.
TEST_F(FakeProcSys, StartUpUsesTheDumpedValuesAndRewritesOnlyWhatDiffers) {
  for (const char* n : {"m1", "m2"}) make_interface(n);
  std::ofstream(conf("m1") / "arp_ignore") << "5\n";  // what a read would have found
  {
    auto s = make();  // cold start: no saved originals
    s.hold();
    s.apply("m1", 3, dumped(0, 0, 1, 0));
    s.apply("m2", 4, dumped(0, 0, 0, 0));
    s.release();
  }
  EXPECT_EQ(value("m1", "arp_ignore"), "1");
  {
    std::ifstream in(root_ / "sysctl.json");
    std::string saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(saved.find("\"arp_ignore\": \"0\""), std::string::npos) << saved;  // the dump's, not the file's
    EXPECT_NE(saved.find("\"rp_filter\": \"1\""), std::string::npos) << saved;
  }
  // Restart: markers in the files show what is written.
  for (const char* n : {"m1", "m2"})
    for (const auto& [key, _] : MemberSysctls::kSettings) std::ofstream(conf(n) / key) << "9\n";
  {
    auto s = make();
    s.hold();
    s.apply("m1", 3, dumped(1, 2, 2, 1));  // set already
    s.apply("m2", 4, dumped(0, 2, 2, 1));  // arp_ignore was changed meanwhile
    s.release();
    EXPECT_EQ(value("m1", "arp_ignore"), "9");
    EXPECT_EQ(value("m1", "promote_secondaries"), "9");
    EXPECT_EQ(value("m2", "arp_ignore"), "1");
    EXPECT_EQ(value("m2", "rp_filter"), "9");
    // Re-created after the start-up: every value written.
    s.apply("m1", 7, dumped(1, 2, 2, 1));
    EXPECT_EQ(value("m1", "arp_ignore"), "1");
    EXPECT_EQ(value("m1", "promote_secondaries"), "1");
    // Leaving restores the cold start's originals.
    s.restore("m1");
    EXPECT_EQ(value("m1", "arp_ignore"), "0");
    EXPECT_EQ(value("m1", "rp_filter"), "1");
  }
}
