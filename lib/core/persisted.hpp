// Runtime state that the configuration cannot rebuild, as plain values: what mpathd
// writes to its state directory before acting, and reads back after a restart.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"

namespace mpathd {

// How an admin change that is in force but could not be saved is answered (the D-Bus
// error message starts with this; ipmpctl recognises it and says the change was made).
inline constexpr std::string_view kStateNotSaved = "state not saved";

struct PersistedMember {
  std::string name;
  bool admin_offline = false;
  bool failed = false;  // the member was FAILED: it stays out of service until repaired
  bool operator==(const PersistedMember&) const = default;
};

struct PersistedAddress {
  IpPrefix prefix;
  std::string holder;
  std::string home;
  bool operator==(const PersistedAddress&) const = default;
};

// A shared address held here (released ones are not saved): held again after a
// restart, on the same member when it can (a restarted mpathd adopts it as it is).
struct PersistedShared {
  IpPrefix prefix;
  std::string holder;
  bool operator==(const PersistedShared&) const = default;
};

struct PersistedGroup {
  std::string name;
  std::vector<PersistedMember> members;
  std::vector<PersistedAddress> addresses;
  std::vector<PersistedShared> shared;
  bool operator==(const PersistedGroup&) const = default;
};

struct PersistedState {
  static constexpr int kVersion = 1;
  // The groups in force, including changes made at runtime (D-Bus), and a digest of
  // the configuration file they started from: when the file changed while mpathd was
  // down, the file wins.
  std::vector<GroupConfig> groups;
  std::string config_digest;
  std::vector<PersistedGroup> state;
  bool operator==(const PersistedState&) const = default;
};

}  // namespace mpathd
