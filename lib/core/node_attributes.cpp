#include "core/node_attributes.hpp"

#include <algorithm>

namespace mpathd {

std::string node_attribute_name(const std::string& group) { return "mpathd-" + group; }

std::map<std::string, std::string> node_attribute_values(const std::vector<Group>& groups) {
  std::map<std::string, std::string> out;
  for (const auto& g : groups) {
    if (g.anonymous()) continue;
    const auto usable = std::count_if(g.members.begin(), g.members.end(), [](const Member& m) { return m.usable(); });
    out[node_attribute_name(g.name)] = std::to_string(usable);
  }
  return out;
}

void NodeAttributeQueue::want(const std::map<std::string, std::string>& wanted) {
  for (auto& [name, value] : wanted_)
    if (!wanted.contains(name)) value.reset();
  for (const auto& [name, value] : wanted) wanted_[name] = value;
}

void NodeAttributeQueue::clear() {
  for (auto& [name, value] : wanted_) value.reset();
}

std::vector<std::string> NodeAttributeQueue::pending() const {
  std::vector<std::string> out;
  for (const auto& [name, value] : wanted_) {
    auto it = applied_.find(name);
    if (it == applied_.end() ? true : it->second != value) out.push_back(name);
  }
  return out;
}

std::optional<NodeAttributeQueue::Update> NodeAttributeQueue::next(TimePoint now) {
  if (running_) return std::nullopt;
  if (retry_at_ && now < *retry_at_) return std::nullopt;
  retry_at_.reset();
  for (const auto& name : pending()) {
    const auto& value = wanted_.at(name);
    // Never set: nothing to delete (and nothing to run).
    if (!value && !applied_.contains(name)) {
      continue;
    }
    running_ = Update{name, value};
    return running_;
  }
  // Forget what is deleted and not set anywhere: the maps stay as small as the groups.
  std::erase_if(wanted_, [&](const auto& kv) { return !kv.second && !applied_.contains(kv.first); });
  return std::nullopt;
}

NodeAttributeQueue::Outcome NodeAttributeQueue::done(bool ok, TimePoint now) {
  const Update u = running_.value_or(Update{});
  running_.reset();
  if (ok) {
    if (u.value)
      applied_[u.name] = u.value;
    else
      applied_.erase(u.name);
    backoff_ = {};
    return std::exchange(failing_, false) ? Outcome::recovered : Outcome::ok;
  }
  // The same attribute is tried again first (with its latest value) after the back-off.
  backoff_ = backoff_ == Duration{} ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
  retry_at_ = now + backoff_;
  return std::exchange(failing_, true) ? Outcome::failed_again : Outcome::first_failure;
}

std::optional<TimePoint> NodeAttributeQueue::retry_at() const {
  if (running_ || pending().empty()) return std::nullopt;
  return retry_at_;
}

}  // namespace mpathd
