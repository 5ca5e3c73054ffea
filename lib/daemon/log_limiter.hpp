// A rate limit for the log lines about one subject (a member, a group, a data
// address): a flapping link must not flood the log, and its final state must still be
// in it. Pure: time comes from a TimeSource; the caller logs the lines it is given and
// calls expire() at next_deadline() (the daemon's timer), so a summary is written also
// when the flapping stops.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/events.hpp"
#include "core/types.hpp"

namespace mpathd {

// Per subject, the first `burst` lines of an interval are logged; the rest are counted,
// and when the interval ends one summary line says how many were suppressed and which
// was the last ("g0/m0: 1234 more transitions suppressed in the last 10s (last:
// failed -> ok (link-up))"). The next line after that starts a new interval.
class LogLimiter {
 public:
  struct Limits {
    std::size_t burst = 10;
    Duration interval = seconds(10);
  };
  struct Verdict {
    std::vector<std::string> summaries;  // to log first: the subject's interval that ended
    bool log = true;                     // false: suppressed (counted for the summary)
  };

  LogLimiter(const TimeSource& clock, Limits limits) : clock_(clock), limits_(limits) {}

  // One more line about `subject`; `noun` names what a summary counts ("transitions").
  Verdict offer(const std::string& subject, std::string_view noun, std::string_view line);
  // Summaries of the intervals that have ended with lines suppressed.
  std::vector<std::string> expire();
  // Summaries of every interval with lines suppressed, ended or not (at exit).
  std::vector<std::string> flush();
  // When the earliest pending summary is due; none when nothing is suppressed.
  std::optional<TimePoint> next_deadline() const;

 private:
  struct Interval {
    TimePoint start;
    std::size_t logged = 0;
    std::size_t suppressed = 0;
    std::string noun;
    std::string last;  // the last suppressed line, without its subject
  };
  std::string summary(const std::string& subject, const Interval& i) const;
  std::vector<std::string> summarise(bool all);
  bool ended(const Interval& i, TimePoint now) const { return i.start + limits_.interval <= now; }

  const TimeSource& clock_;
  Limits limits_;
  std::map<std::string, Interval, std::less<>> intervals_;
  TimePoint next_sweep_{};  // when quiet subjects are forgotten next
};

// What an event's log line is about, for the limiter; none for events that are not
// rate-limited (topology changes are rare and each one matters).
struct LogSubject {
  std::string subject;  // the line's own prefix: "g0/m0", "group g0", ...
  std::string_view noun;
};
std::optional<LogSubject> log_subject(const Event& e);

}  // namespace mpathd
