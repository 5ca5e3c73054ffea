// Event-driven rtnetlink monitor on an sd-event loop. One subscribed socket delivers
// link and address changes as plain values; no polling.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "core/error.hpp"
#include "net/netlink.hpp"

namespace mpathd::net {

class Monitor {
 public:
  // Any handler may be empty. Handlers run on the event loop; an exception thrown by
  // one is caught (never crosses into sd-event), counted, and the rest of that batch
  // of messages is dropped and followed by resync.
  struct Handlers {
    std::function<void(const LinkInfo&)> link_changed;
    std::function<void(const LinkInfo&)> link_removed;
    std::function<void(const AddrInfo&, bool present)> address;
    // Events were lost (receive buffer overrun): the owner should call dump() and
    // reconcile its view against what it delivers.
    std::function<void()> resync;
    // Optional, for later use by the routing code.
    std::function<void(const Route&, bool present)> route;
    std::function<void(const Rule&, bool present)> rule;
  };

  // Subscribes to links, IPv4/IPv6 addresses, routes and rules and attaches an io
  // source (priority SD_EVENT_PRIORITY_IMPORTANT) to `event`.
  static Result<std::unique_ptr<Monitor>> open(sd_event* event, Handlers handlers);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Delivers every current link (link_changed) and then every address (address, true)
  // synchronously, read over a separate socket. Call after open(): since the
  // subscription already exists, no change is lost between the dump and the events.
  Result<void> dump();

  std::uint64_t overruns() const;          // times the kernel dropped events for us
  std::uint64_t handler_failures() const;  // exceptions caught from handlers

 private:
  struct State;
  explicit Monitor(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace mpathd::net
