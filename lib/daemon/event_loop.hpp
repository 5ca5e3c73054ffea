// Small helpers for sd-event: timers on the steady clock with explicit accuracy, and a
// guard so that no exception crosses a C callback.
#pragma once

#include <systemd/sd-event.h>

#include <exception>
#include <string_view>

#include <spdlog/spdlog.h>

#include "core/types.hpp"
#include "guard/guard.hpp"

namespace mpathd {

inline std::uint64_t to_usec(TimePoint t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}

// Creates or re-arms a one-shot CLOCK_MONOTONIC timer (steady_clock is CLOCK_MONOTONIC).
// sd-event coalesces within `accuracy`; never pass 0, which means 250 ms.
inline int arm_timer(sd_event* event, sd_event_source** src, TimePoint when, Duration accuracy,
                     sd_event_time_handler_t handler, void* userdata) {
  auto acc = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(accuracy).count());
  if (acc == 0) acc = 1;
  if (!*src) return sd_event_add_time(event, src, CLOCK_MONOTONIC, to_usec(when), acc, handler, userdata);
  int r = sd_event_source_set_time(*src, to_usec(when));
  if (r >= 0) r = sd_event_source_set_time_accuracy(*src, acc);
  if (r >= 0) r = sd_event_source_set_enabled(*src, SD_EVENT_ONESHOT);
  return r;
}

// Runs f; an exception is counted, logged (rate-limited) and turned into 0 so sd-event
// keeps the source.
template <typename F>
int guarded(std::string_view what, F&& f) noexcept {
  return guard_void_callback(what, std::forward<F>(f));
}

}  // namespace mpathd
