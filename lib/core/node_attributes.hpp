// Group health as Pacemaker node attributes (issue 12): the pure part. What each
// attribute should be (latest value wins), which update runs next (one at a time), and
// the back-off after a failure; time is passed in. lib/daemon/node_attributes runs the
// updates (attrd_updater, a child process) and hands the outcome back. Meant to move
// under the hook layer as a built-in hook.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/types.hpp"

namespace mpathd {

// The attribute of a group: "mpathd-<group name>".
std::string node_attribute_name(const std::string& group);

// The attributes the groups ask for: the number of usable members of each named group
// (0 when the group has failed).
std::map<std::string, std::string> node_attribute_values(const std::vector<Group>& groups);

class NodeAttributeQueue {
 public:
  static constexpr Duration kFirstBackoff = std::chrono::milliseconds(500);
  static constexpr Duration kMaxBackoff = std::chrono::seconds(30);

  // One update: set the attribute to value, or delete it (no value).
  struct Update {
    std::string name;
    std::optional<std::string> value;
    bool operator==(const Update&) const = default;
  };

  // What an outcome means for the log: only a change between working and failing is
  // worth a line (a Pacemaker that is absent is logged once, not at every retry).
  enum class Outcome { ok, recovered, first_failure, failed_again };

  // The values every attribute should have now: one missing from `wanted` that was
  // set before is deleted.
  void want(const std::map<std::string, std::string>& wanted);
  // Deletes every attribute set so far (the feature is switched off).
  void clear();

  // The update to run now: none while one runs, while backing off, or when every
  // attribute is as wanted. Marks it running.
  std::optional<Update> next(TimePoint now);
  // The outcome of the running update.
  Outcome done(bool ok, TimePoint now);

  // When the back-off ends (for a timer), while updates wait for it.
  std::optional<TimePoint> retry_at() const;
  bool running() const { return running_.has_value(); }
  bool idle() const { return !running_ && pending().empty(); }

 private:
  std::vector<std::string> pending() const;

  // name -> wanted value (nullopt: delete); name -> value Pacemaker has (as far as
  // mpathd knows; absent: unknown, so it is sent).
  std::map<std::string, std::optional<std::string>> wanted_;
  std::map<std::string, std::optional<std::string>> applied_;
  std::optional<Update> running_;
  std::optional<TimePoint> retry_at_;
  Duration backoff_{};
  bool failing_ = false;
};

}  // namespace mpathd
