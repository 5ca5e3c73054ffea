// Sysctl key formatting, and read/write against a private directory tree.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "net/sysctl.hpp"

namespace mpathd::net {
namespace {

namespace fs = std::filesystem;

TEST(SysctlKey, KeepsDottedInterfaceNamesWhole) {
  EXPECT_EQ(Sysctl::ipv4_conf_key("m1", "arp_ignore"), "net/ipv4/conf/m1/arp_ignore");
  EXPECT_EQ(Sysctl::ipv4_conf_key("eth0.100", "rp_filter"), "net/ipv4/conf/eth0.100/rp_filter");
  EXPECT_EQ(Sysctl::ipv6_conf_key("bond0.7", "accept_dad"), "net/ipv6/conf/bond0.7/accept_dad");
}

class SysctlFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mpathd-sysctl-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "net/ipv4/conf/eth0.100");
    std::ofstream(root_ / "net/ipv4/conf/eth0.100/arp_ignore") << "0\n";
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(SysctlFiles, ReadsWithoutNewlineAndWrites) {
  Sysctl s(root_.string());
  const auto key = Sysctl::ipv4_conf_key("eth0.100", "arp_ignore");
  EXPECT_EQ(s.read(key).value_or("?"), "0");
  ASSERT_TRUE(s.write(key, "1"));
  EXPECT_EQ(s.read(key).value_or("?"), "1");
}

TEST_F(SysctlFiles, MissingKeyNamesThePath) {
  Sysctl s(root_.string());
  auto r = s.read("net/ipv4/conf/nope/arp_ignore");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("net/ipv4/conf/nope/arp_ignore"), std::string::npos);
  EXPECT_FALSE(s.write("net/ipv4/conf/nope/arp_ignore", "1"));
}

TEST_F(SysctlFiles, RefusesKeysThatLeaveTheTree) {
  Sysctl s(root_.string());
  for (const char* bad : {"", "/etc/passwd", "net/../../etc/passwd", "net//ipv4", "net/ipv4/"}) {
    auto r = s.read(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace mpathd::net
