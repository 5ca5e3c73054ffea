// Settings on group members: against ARP flux arp_ignore=1, arp_announce=2,
// rp_filter=2 (loose); and promote_secondaries=1, so that removing the primary IPv4
// address of a subnet (a data or test address moving away) does not take the member's
// other addresses of that subnet, and the routes through it, along.
// The original values are saved (sysctl.json through the StateStore: its runtime copy
// before the first value changes, its durable copy by the writer thread), so that a
// member that leaves the configuration gets them back even across a restart.
#pragma once

#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "net/sysctl.hpp"

namespace mpathd {

class MemberSysctls {
 public:
  // Writes the originals (JSON) where they survive; called before a value changes.
  using Save = std::function<void(std::string json)>;
  // saved: the text saved earlier ("" = none), from `source` (named in warnings).
  MemberSysctls(net::Sysctl sysctl, const std::string& saved, std::string source, Save save);

  // Sets the values on a member's interface (again if it was re-created: ifindex).
  // ipv4_conf: the interface's current values from the link dump (net::LinkInfo), used
  // instead of reading /proc/sys when known; empty = read them.
  void apply(const std::string& ifname, unsigned ifindex, std::span<const std::int32_t> ipv4_conf = {});
  // Restores the saved originals of an interface that is no longer a member; if it was
  // renamed, `now_named` is the name it has now. The kernel announces a rename before
  // it moves the interface's /proc/sys/net/ipv4/conf directory, so a restore under the
  // new name that fails is tried again by retry_renamed().
  void restore(const std::string& ifname, const std::string& now_named = {});
  // Tries the restores of renamed interfaces again (after every input).
  void retry_renamed();
  // Writes the saved originals if they changed (once per batch of changes).
  void flush();
  // Start-up: between hold() and release(), apply() reads and records the originals
  // but defers the writes; release() saves the originals once (not once per member:
  // at 256 members that was most of a cold start) and then writes the values, so the
  // originals are still saved before the first value changes. A value the dump shows
  // set already on an interface whose original was saved by an earlier run (a restart:
  // that run wrote it) is not written again (1024 writes at 64 x 4, a third of a
  // restart's CPU).
  void hold() { holding_ = true; }
  void release();
  // Restores every saved interface for which keep(ifname) is false.
  template <typename Keep>
  void restore_all_except(Keep keep) {
    std::vector<std::string> gone;
    for (const auto& [name, _] : saved_)
      if (!keep(name)) gone.push_back(name);
    for (const auto& n : gone) restore(n);
  }

  static constexpr std::pair<const char*, const char*> kSettings[] = {
      {"arp_ignore", "1"}, {"arp_announce", "2"}, {"rp_filter", "2"}, {"promote_secondaries", "1"}};

 private:
  void load(const std::string& text);
  void save() const;

  net::Sysctl sysctl_;
  std::string source_;
  Save save_;
  std::map<std::string, std::map<std::string, std::string>> saved_;  // ifname -> key -> original
  std::map<std::string, unsigned> applied_;                          // ifname -> ifindex applied to
  bool dirty_ = false;
  bool holding_ = false;
  bool held_save_ = false;          // originals recorded while holding
  // Members whose values are still to be written, with the kSettings to write (bits).
  std::vector<std::pair<std::string, unsigned>> held_;
  static constexpr unsigned kAll = (1U << std::size(kSettings)) - 1;
  void write_values(const std::string& ifname, unsigned which = kAll);
  struct Renamed {
    std::string now_named;
    unsigned tries = 0;
  };
  std::map<std::string, Renamed> renamed_;  // old name -> restore still to do
};

}  // namespace mpathd
