#include "daemon/metrics.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include "daemon/atomic_file.hpp"
#include "daemon/event_loop.hpp"

namespace mpathd {

namespace {
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double to_seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

MetricFamily family(std::string name, std::string help, MetricType type) {
  return {std::move(name), std::move(help), type, {}};
}

void add(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

// One sample per value of the enum, 1 for the current one (an OpenMetrics StateSet).
template <typename E>
void add_states(MetricFamily& f, const std::vector<ClientMetric::Label>& labels, E current) {
  for (std::size_t i = 0; i < enum_count<E>(); ++i) {
    auto l = labels;
    l.push_back({"state", std::string(to_string(static_cast<E>(i)))});
    add(f, std::move(l), static_cast<E>(i) == current ? 1 : 0);
  }
}
}  // namespace

void Metrics::on_event(const Event& e, const Engine& engine) {
  if (const auto* p = std::get_if<ProbeCompleted>(&e)) {
    auto& c = probes_[{p->group, p->member}];
    ++c.sent;
    if (!p->acked) ++c.lost;
  } else if (const auto* m = std::get_if<MemberChanged>(&e)) {
    // A member leaving service may start a failover; remember why and since when.
    if (m->before.state == MemberState::ok && m->after.state != MemberState::ok) {
      auto& f = failover_[m->group];
      f.reason = std::string(to_string(m->reason));
      f.started = clock_.now();
      const Member* mem = engine.find_member(m->member);
      if (m->reason == Reason::probe_loss && mem && mem->probe_first_failure != TimePoint{})
        f.started = std::min(f.started, mem->probe_first_failure);
    }
  } else if (const auto* a = std::get_if<AddressMoved>(&e)) {
    ++moves_[{a->group, std::string(to_string(a->reason))}];
    if (a->reason == Reason::failover) {
      auto& f = failover_[a->group];
      if (!f.moving) {
        if (f.reason.empty()) {  // no member change seen first: count it as it came
          f.reason = std::string(to_string(a->reason));
          f.started = clock_.now();
        }
        ++failovers_[{a->group, f.reason}];
        f.moving = true;
      }
    }
  }
}

void Metrics::applied() {
  for (auto& [group, f] : failover_) {
    if (f.moving) f.last = clock_.now() - f.started;
    f.moving = false;
    f.reason.clear();
  }
}

std::string Metrics::render(const Engine& engine) const {
  auto group_state = family("mpathd_group_state", "Group state: 1 for the current one", MetricType::Gauge);
  auto group_fdt = family("mpathd_group_failure_detection_time_seconds", "Failure detection time in force",
                          MetricType::Gauge);
  auto failovers = family("mpathd_failovers_total",
                          "Failovers (data addresses moved off a member that left service), by the member's reason",
                          MetricType::Counter);
  auto moves = family("mpathd_address_moves_total", "Data address moves, by reason", MetricType::Counter);
  auto last = family("mpathd_group_last_failover_duration_seconds",
                     "From the first evidence of the failure to the addresses placed in the kernel",
                     MetricType::Gauge);
  auto member_state = family("mpathd_member_state", "Member state: 1 for the current one", MetricType::Gauge);
  auto active = family("mpathd_member_active", "1 when the member carries traffic (not INACTIVE or unusable)",
                       MetricType::Gauge);
  auto failures = family("mpathd_member_failures_total", "Times the member failed", MetricType::Counter);
  auto repairs = family("mpathd_member_repairs_total", "Times the member was repaired", MetricType::Counter);
  auto sent = family("mpathd_probes_sent_total", "Probes sent and completed (answered or lost)", MetricType::Counter);
  auto lost = family("mpathd_probes_lost_total", "Probes lost", MetricType::Counter);
  auto rtt = family("mpathd_probe_rtt_average_seconds", "Smoothed round-trip time of a probe target",
                    MetricType::Gauge);
  auto dev = family("mpathd_probe_rtt_deviation_seconds", "Mean deviation of a probe target's round-trip time",
                    MetricType::Gauge);

  auto count = [](const std::map<Key, std::uint64_t>& m, MetricFamily& f, const std::string& group) {
    for (auto it = m.lower_bound({group, ""}); it != m.end() && it->first.first == group; ++it)
      add(f, {{"group", group}, {"reason", it->first.second}}, static_cast<double>(it->second));
  };
  for (const auto& g : engine.groups()) {
    add_states(group_state, {{"group", g.name}}, g.state);
    add(group_fdt, {{"group", g.name}}, to_seconds(g.fdt));
    count(failovers_, failovers, g.name);
    count(moves_, moves, g.name);
    if (auto it = failover_.find(g.name); it != failover_.end() && it->second.last)
      add(last, {{"group", g.name}}, to_seconds(*it->second.last));
    for (const auto& m : g.members) {
      const std::vector<ClientMetric::Label> l{{"group", g.name}, {"interface", m.name}};
      add_states(member_state, l, m.state);
      add(active, l, m.active() ? 1 : 0);
      add(failures, l, static_cast<double>(m.counters.failures));
      add(repairs, l, static_cast<double>(m.counters.repairs));
      // Probed members start at 0 (a series that appears late hides the first increase).
      if (auto it = probes_.find({g.name, m.name}); it != probes_.end() || m.probe != ProbeState::disabled) {
        const Probes p = it != probes_.end() ? it->second : Probes{};
        add(sent, l, static_cast<double>(p.sent));
        add(lost, l, static_cast<double>(p.lost));
      }
      for (const auto& t : m.targets) {
        if (t.rtt_avg == Duration{}) continue;  // no estimate yet
        auto lt = l;
        lt.push_back({"target", t.address.str()});
        add(rtt, lt, to_seconds(t.rtt_avg));
        add(dev, std::move(lt), to_seconds(t.rtt_dev));
      }
    }
  }
  std::vector<MetricFamily> all;
  for (auto* f : {&group_state, &group_fdt, &failovers, &moves, &last, &member_state, &active, &failures, &repairs,
                  &sent, &lost, &rtt, &dev})
    if (!f->metric.empty()) all.push_back(std::move(*f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, all);
  return out.str();
}

MetricsFile::MetricsFile(sd_event* event, const Metrics& metrics, const Engine& engine, Duration interval)
    : event_(event), metrics_(metrics), engine_(engine), interval_(interval) {}

MetricsFile::~MetricsFile() { sd_event_source_disable_unref(timer_); }

void MetricsFile::set_path(const std::string& path) {
  if (path == path_) return;
  if (!path_.empty() && ::unlink(path_.c_str()) < 0 && errno != ENOENT)
    spdlog::warn("{}: cannot remove the old metrics file: {}", path_, std::strerror(errno));
  path_ = path;
  last_write_ = {};
  changed();
}

void MetricsFile::changed() {
  if (path_.empty() || pending_) return;
  pending_ = true;
  const TimePoint when = std::max(Clock::now(), last_write_ + interval_);
  if (int r = arm_timer(event_, &timer_, when, milliseconds(10), &MetricsFile::on_timer, this); r < 0) {
    spdlog::warn("metrics timer: {}", std::strerror(-r));
    pending_ = false;
  }
}

int MetricsFile::on_timer(sd_event_source*, uint64_t, void* self) {
  return guarded("metrics", [&] { static_cast<MetricsFile*>(self)->write(); });
}

void MetricsFile::write() {
  pending_ = false;
  if (path_.empty()) return;
  last_write_ = Clock::now();
  // A failure is logged once, not every second; success clears it.
  if (auto r = write_file_atomically(path_, metrics_.render(engine_), false); !r) {
    if (r.error().message != last_error_) spdlog::warn("metrics not written: {}", r.error().message);
    last_error_ = r.error().message;
  } else {
    last_error_.clear();
  }
}

void FailoverLatency::add(std::chrono::microseconds d) {
  const std::int64_t us = d.count();
  if (window_.size() < kWindow)
    window_.push_back(us);
  else
    window_[count_ % kWindow] = us;
  ++count_;
  last_ = us;
  max_ = std::max(max_, us);
  std::size_t b = 0;
  while (b < std::size(kBucketsUs) && us > kBucketsUs[b]) ++b;
  ++buckets_[b];
}

nlohmann::json FailoverLatency::json() const {
  auto sorted = window_;
  std::sort(sorted.begin(), sorted.end());
  auto q = [&](double p) -> std::int64_t {
    if (sorted.empty()) return 0;
    auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[std::min(i, sorted.size() - 1)];
  };
  nlohmann::json buckets = nlohmann::json::array();
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < std::size(kBucketsUs); ++i) {
    cumulative += buckets_[i];
    buckets.push_back({{"le_us", kBucketsUs[i]}, {"count", cumulative}});
  }
  return {{"count", count_}, {"last_us", last_}, {"max_us", max_}, {"p50_us", q(0.5)}, {"p99_us", q(0.99)},
          {"buckets", buckets}};
}

}  // namespace mpathd
