// Internal to lib/cluster: CLOCK_MONOTONIC in µs for sd-event timers. Timers are set from
// the clock, not from sd_event_now(): outside a callback the loop's cached time may be
// long past, and a timer set from it would fire at once.
#pragma once

#include <time.h>

#include <cstdint>

namespace mpathd::cluster::detail {

inline std::uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
}

}  // namespace mpathd::cluster::detail
