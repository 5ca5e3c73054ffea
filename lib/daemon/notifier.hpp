// Tells neighbours where a data address now lives: a gratuitous ARP request and reply
// (IPv4) or an unsolicited NA with Override (IPv6), the first at once, then repeated
// notification-count - 1 times, notification-interval apart.
#pragma once

#include <systemd/sd-event.h>

#include <optional>
#include <utility>
#include <vector>

#include "core/config.hpp"
#include "net/packet.hpp"

namespace mpathd {

class Notifier {
 public:
  Notifier(net::PacketSender& packets, sd_event* event, const Config& config);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Sends the first notification now and schedules the repeats; replaces any pending
  // repeats for the same address (it moved again).
  void announce(unsigned ifindex, const Mac& mac, const IpAddress& address);
  // Stops the repeats for an address that is no longer ours.
  void cancel(const IpAddress& address);
  // When the first notification announce()d since the last call was sent.
  std::optional<TimePoint> take_first_sent() { return std::exchange(first_sent_, std::nullopt); }

 private:
  struct Pending {
    unsigned ifindex;
    Mac mac;
    IpAddress address;
    unsigned remaining;
    TimePoint due;
  };
  void send(const Pending& p);
  void rearm();
  static int on_timer(sd_event_source*, uint64_t, void* self);

  net::PacketSender& packets_;
  sd_event* event_;
  const Config& config_;
  std::vector<Pending> pending_;
  sd_event_source* timer_ = nullptr;
  std::optional<TimePoint> first_sent_;
};

}  // namespace mpathd
