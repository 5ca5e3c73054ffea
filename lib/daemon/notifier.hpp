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

// What the Notifier sends when: the decision logic, pure (time is passed in), so that it
// is unit-tested with a fake clock (tests/unit/notifier_test.cpp). The Notifier only
// sends what it says, at the times it says, through sd-event and net::PacketSender.
class NotificationSchedule {
 public:
  struct Send {
    unsigned ifindex = 0;
    Mac mac;
    IpAddress address;
  };

  // The first notification of `address`, to send now; `count` - 1 repeats follow, one
  // interval apart. Replaces the pending repeats of the address (it moved again).
  Send announce(unsigned ifindex, const Mac& mac, const IpAddress& address, unsigned count, TimePoint now,
                Duration interval);
  // No more repeats for an address that is no longer ours.
  void cancel(const IpAddress& address);
  // The repeats due at `now`, each once (a late timer does not catch up); the next of
  // each is `interval` later (the interval in force then: a reload may change it).
  std::vector<Send> due(TimePoint now, Duration interval);
  // When the next repeat is due; nullopt when none is pending.
  std::optional<TimePoint> next() const;

 private:
  struct Pending {
    Send send;
    unsigned remaining = 0;
    TimePoint due{};
  };
  std::vector<Pending> pending_;
};

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
  // Start-up: between hold() and release() the first notifications are kept and sent
  // by release() (after READY=1: on a bridge each broadcast costs the sender the
  // delivery to every port, about 1 ms at 256 ports, which the addresses do not need
  // to be placed and served).
  void hold() { holding_ = true; }
  void release();
  // When the first notification announce()d since the last call was handed to the
  // kernel (issued) and when its send returned (sent: on a veth into a bridge, the
  // send also delivers the broadcast to every port).
  struct FirstSent {
    TimePoint issued;
    TimePoint sent;
    std::chrono::nanoseconds cpu_at_issue;  // the loop thread's CPU time when it was issued
  };
  std::optional<FirstSent> take_first_sent() { return std::exchange(first_sent_, std::nullopt); }

 private:
  void send(const NotificationSchedule::Send& s);
  void rearm();
  static int on_timer(sd_event_source*, uint64_t, void* self);

  net::PacketSender& packets_;
  sd_event* event_;
  const Config& config_;
  NotificationSchedule schedule_;
  sd_event_source* timer_ = nullptr;
  std::optional<FirstSent> first_sent_;
  bool holding_ = false;
  std::vector<NotificationSchedule::Send> held_;
};

}  // namespace mpathd
