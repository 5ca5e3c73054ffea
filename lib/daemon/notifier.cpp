#include "daemon/notifier.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/event_loop.hpp"

namespace mpathd {

Notifier::Notifier(net::PacketSender& packets, sd_event* event, const Config& config)
    : packets_(packets), event_(event), config_(config) {}

Notifier::~Notifier() { sd_event_source_disable_unref(timer_); }

void Notifier::send(const Pending& p) {
  auto r = p.address.is_v4() ? packets_.send_arp_announcement(p.ifindex, p.mac, p.address)
                             : packets_.send_unsolicited_na(p.ifindex, p.mac, p.address);
  if (!r) spdlog::warn("{}", r.error().message);
}

void Notifier::announce(unsigned ifindex, const Mac& mac, const IpAddress& address) {
  std::erase_if(pending_, [&](const Pending& p) { return p.address == address; });
  Pending p{ifindex, mac, address, config_.notification_count, Clock::now()};
  send(p);
  if (!first_sent_) first_sent_ = Clock::now();
  spdlog::debug("announced {} on ifindex {}", address.str(), ifindex);
  if (--p.remaining == 0) return;
  p.due = Clock::now() + config_.notification_interval;
  pending_.push_back(p);
  rearm();
}

void Notifier::cancel(const IpAddress& address) {
  std::erase_if(pending_, [&](const Pending& p) { return p.address == address; });
}

void Notifier::rearm() {
  if (pending_.empty()) return;
  auto next = std::min_element(pending_.begin(), pending_.end(),
                               [](const Pending& a, const Pending& b) { return a.due < b.due; })->due;
  arm_timer(event_, &timer_, next, milliseconds(1), &Notifier::on_timer, this);
}

int Notifier::on_timer(sd_event_source*, uint64_t, void* self) {
  return guarded("notification timer", [&] {
    auto* n = static_cast<Notifier*>(self);
    const auto now = Clock::now();
    for (auto& p : n->pending_)
      if (p.due <= now) {
        n->send(p);
        --p.remaining;
        p.due = now + n->config_.notification_interval;
      }
    std::erase_if(n->pending_, [](const Pending& p) { return p.remaining == 0; });
    n->rearm();
  });
}

}  // namespace mpathd
