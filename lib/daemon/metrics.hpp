// Metrics for node_exporter's textfile collector: the Prometheus text exposition format
// (serialized by prometheus-cpp), written atomically to the file that `metrics-file`
// names, at most once a second and only after a change. No socket is opened.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>
#include <optional>
#include <string>
#include <utility>

#include "core/engine.hpp"
#include "core/events.hpp"
#include "core/types.hpp"

namespace mpathd {

// Counts what the Engine's events tell (failovers and their reasons, address moves,
// probes) and renders them with the state of the model.
class Metrics {
 public:
  explicit Metrics(const TimeSource& clock) : clock_(clock) {}

  void on_event(const Event& e, const Engine& engine);
  // The kernel now holds the placement: a failover in progress is complete.
  void applied();
  std::string render(const Engine& engine) const;

 private:
  struct Probes {
    std::uint64_t sent = 0;
    std::uint64_t lost = 0;
  };
  struct Failover {
    std::string reason;       // why the member that caused it went out of service
    TimePoint started{};      // the first evidence of the failure
    bool moving = false;      // addresses moved; completes at applied()
    std::optional<Duration> last;  // duration of the last completed failover
  };
  using Key = std::pair<std::string, std::string>;

  const TimeSource& clock_;
  std::map<Key, std::uint64_t> failovers_;  // (group, reason)
  std::map<Key, std::uint64_t> moves_;      // (group, move reason)
  std::map<Key, Probes> probes_;            // (group, member)
  std::map<std::string, Failover> failover_;  // by group
};

// Failover latency: from a netlink link event to the first GARP/NA that the input
// caused, measured inside mpathd (steady clock). Histogram buckets for all samples,
// quantiles over the last kWindow.
class FailoverLatency {
 public:
  static constexpr std::size_t kWindow = 1024;
  static constexpr std::int64_t kBucketsUs[] = {50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000, 100000};
  void add(std::chrono::microseconds d);
  // {"count", "last_us", "max_us", "p50_us", "p99_us", "buckets": [{"le_us", "count"}]}
  nlohmann::json json() const;

 private:
  std::uint64_t count_ = 0;
  std::int64_t last_ = 0;
  std::int64_t max_ = 0;
  std::vector<std::int64_t> window_;  // ring of the last kWindow samples
  std::uint64_t buckets_[std::size(kBucketsUs) + 1] = {};  // the last: above every bound
};

// Writes Metrics::render() to a file: path.tmp then rename, without fsync (the file is
// rebuilt from memory; the loop never waits for the disk), coalesced to at most one
// write per interval.
class MetricsFile {
 public:
  MetricsFile(sd_event* event, const Metrics& metrics, const Engine& engine, Duration interval = seconds(1));
  ~MetricsFile();
  MetricsFile(const MetricsFile&) = delete;
  MetricsFile& operator=(const MetricsFile&) = delete;

  // "" turns metrics off; a new path is written at once, the old file is removed.
  void set_path(const std::string& path);
  void changed();  // something in the metrics changed

 private:
  static int on_timer(sd_event_source*, uint64_t, void* self);
  void write();

  sd_event* event_;
  const Metrics& metrics_;
  const Engine& engine_;
  Duration interval_;
  std::string path_;
  sd_event_source* timer_ = nullptr;
  bool pending_ = false;
  TimePoint last_write_{};
  std::string last_error_;
};

}  // namespace mpathd
