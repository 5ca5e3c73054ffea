// MemberSysctls on a directory tree that stands in for /proc/sys (net::Sysctl's root):
// the ARP settings of members, and their return to an interface that was renamed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

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
