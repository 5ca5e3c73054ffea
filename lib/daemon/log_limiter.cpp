#include "daemon/log_limiter.hpp"

namespace mpathd {

namespace {
// The line without its subject prefix ("g0/m0: failed -> ok" -> "failed -> ok").
std::string_view without_subject(std::string_view line, std::string_view subject) {
  if (!line.starts_with(subject)) return line;
  line.remove_prefix(subject.size());
  if (line.starts_with(':')) line.remove_prefix(1);
  while (line.starts_with(' ')) line.remove_prefix(1);
  return line;
}
}  // namespace

LogLimiter::Verdict LogLimiter::offer(const std::string& subject, std::string_view noun, std::string_view line) {
  const TimePoint now = clock_.now();
  Verdict v;
  auto it = intervals_.find(subject);
  if (it != intervals_.end() && ended(it->second, now)) {
    if (it->second.suppressed) v.summaries.push_back(summary(subject, it->second));
    intervals_.erase(it);
    it = intervals_.end();
  }
  // Forget the quiet subjects whose interval is over (members and addresses come and go):
  // at most once per interval, not on every line (this runs before a failover's GARP).
  if (now >= next_sweep_) {
    std::erase_if(intervals_, [&](const auto& kv) { return kv.second.suppressed == 0 && ended(kv.second, now); });
    next_sweep_ = now + limits_.interval;
  }
  if (it == intervals_.end()) it = intervals_.emplace(subject, Interval{now, 0, 0, std::string(noun), {}}).first;
  Interval& i = it->second;
  if (i.logged < limits_.burst) {
    ++i.logged;
    return v;
  }
  ++i.suppressed;
  i.last = without_subject(line, subject);
  v.log = false;
  return v;
}

std::vector<std::string> LogLimiter::expire() { return summarise(false); }
std::vector<std::string> LogLimiter::flush() { return summarise(true); }

std::vector<std::string> LogLimiter::summarise(bool all) {
  const TimePoint now = clock_.now();
  std::vector<std::string> out;
  for (auto it = intervals_.begin(); it != intervals_.end();) {
    if (!all && !ended(it->second, now)) {
      ++it;
      continue;
    }
    if (it->second.suppressed) out.push_back(summary(it->first, it->second));
    it = intervals_.erase(it);
  }
  return out;
}

std::optional<TimePoint> LogLimiter::next_deadline() const {
  std::optional<TimePoint> next;
  for (const auto& [subject, i] : intervals_)
    if (i.suppressed && (!next || i.start + limits_.interval < *next)) next = i.start + limits_.interval;
  return next;
}

std::string LogLimiter::summary(const std::string& subject, const Interval& i) const {
  return subject + ": " + std::to_string(i.suppressed) + " more " + i.noun + " suppressed in the last " +
         format_duration(limits_.interval) + " (last: " + i.last + ")";
}

std::optional<LogSubject> log_subject(const Event& e) {
  struct V {
    std::optional<LogSubject> operator()(const MemberChanged& c) const {
      return LogSubject{(c.group.empty() ? "-" : c.group) + "/" + c.member, "transitions"};
    }
    std::optional<LogSubject> operator()(const GroupChanged& c) const {
      return LogSubject{"group " + c.group, "transitions"};
    }
    std::optional<LogSubject> operator()(const AddressMoved& c) const {
      return LogSubject{"group " + c.group + ": " + c.address.str(), "moves"};
    }
    std::optional<LogSubject> operator()(const TargetsChanged& c) const {
      return LogSubject{(c.group.empty() ? "-" : c.group) + "/" + c.member + ": probe targets", "changes"};
    }
    std::optional<LogSubject> operator()(const LinkFlagsChanged& c) const {
      return LogSubject{(c.group.empty() ? "-" : c.group) + "/" + c.member + ": link flags", "changes"};
    }
    std::optional<LogSubject> operator()(const DataAddressesChanged& c) const {
      return LogSubject{"group " + c.group + ": " + c.address.str(), "changes"};
    }
    // Once per reload: never limited.
    std::optional<LogSubject> operator()(const SettingsChanged&) const { return std::nullopt; }
    // Follows the RTTs, which can swing: limited like a flapping link.
    std::optional<LogSubject> operator()(const FdtChanged& c) const {
      return LogSubject{"group " + c.group + ": failure detection time", "changes"};
    }
    std::optional<LogSubject> operator()(const SharedAddressChanged& c) const {
      return LogSubject{"group " + c.group + ": shared " + c.address.str(), "transitions"};
    }
    std::optional<LogSubject> operator()(const TopologyChanged&) const { return std::nullopt; }
    std::optional<LogSubject> operator()(const ProbeCompleted&) const { return std::nullopt; }
  };
  return std::visit(V{}, e);
}

}  // namespace mpathd
