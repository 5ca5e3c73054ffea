#include "daemon/notifier.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "daemon/event_loop.hpp"

namespace mpathd {

NotificationSchedule::Send NotificationSchedule::announce(unsigned ifindex, const Mac& mac, const IpAddress& address,
                                                          unsigned count, TimePoint now, Duration interval) {
  cancel(address);
  Send first{ifindex, mac, address};
  if (count > 1) pending_.push_back({first, count - 1, now + interval});
  return first;
}

void NotificationSchedule::cancel(const IpAddress& address) {
  std::erase_if(pending_, [&](const Pending& p) { return p.send.address == address; });
}

std::vector<NotificationSchedule::Send> NotificationSchedule::due(TimePoint now, Duration interval) {
  std::vector<Send> out;
  for (auto& p : pending_)
    if (p.due <= now) {
      out.push_back(p.send);
      --p.remaining;
      p.due = now + interval;
    }
  std::erase_if(pending_, [](const Pending& p) { return p.remaining == 0; });
  return out;
}

std::optional<TimePoint> NotificationSchedule::next() const {
  if (pending_.empty()) return std::nullopt;
  return std::min_element(pending_.begin(), pending_.end(),
                          [](const Pending& a, const Pending& b) { return a.due < b.due; })
      ->due;
}

Notifier::Notifier(net::PacketSender& packets, sd_event* event, const Config& config)
    : packets_(packets), event_(event), config_(config) {}

Notifier::~Notifier() { sd_event_source_disable_unref(timer_); }

void Notifier::send(const NotificationSchedule::Send& s) {
  auto r = s.address.is_v4() ? packets_.send_arp_announcement(s.ifindex, s.mac, s.address)
                             : packets_.send_unsolicited_na(s.ifindex, s.mac, s.address);
  if (!r) spdlog::warn("{}", r.error().message);
}

void Notifier::announce(unsigned ifindex, const Mac& mac, const IpAddress& address) {
  const TimePoint issued = Clock::now();
  timespec cpu{};
  if (!first_sent_) ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
  auto first = schedule_.announce(ifindex, mac, address, config_.notification_count, issued, config_.notification_interval);
  if (holding_) {
    std::erase_if(held_, [&](const NotificationSchedule::Send& s) { return s.address == address; });
    held_.push_back(first);
    rearm();
    return;
  }
  send(first);
  if (!first_sent_)
    first_sent_ = FirstSent{issued, Clock::now(), std::chrono::seconds(cpu.tv_sec) + std::chrono::nanoseconds(cpu.tv_nsec)};
  spdlog::debug("announced {} on ifindex {}", address.str(), ifindex);
  rearm();
}

void Notifier::cancel(const IpAddress& address) {
  schedule_.cancel(address);
  std::erase_if(held_, [&](const NotificationSchedule::Send& s) { return s.address == address; });
}

void Notifier::release() {
  holding_ = false;
  for (const auto& s : std::exchange(held_, {})) {
    send(s);
    spdlog::debug("announced {} on ifindex {}", s.address.str(), s.ifindex);
  }
}

void Notifier::rearm() {
  if (auto next = schedule_.next()) arm_timer(event_, &timer_, *next, milliseconds(1), &Notifier::on_timer, this);
}

int Notifier::on_timer(sd_event_source*, uint64_t, void* self) {
  return guarded("notification timer", [&] {
    auto* n = static_cast<Notifier*>(self);
    for (const auto& s : n->schedule_.due(Clock::now(), n->config_.notification_interval)) n->send(s);
    n->rearm();
  });
}

}  // namespace mpathd
