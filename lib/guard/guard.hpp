// The one guard for C callbacks (sd-event, sd-bus, libnl): no exception crosses into C.
// What it catches is counted (status.json "callback_exceptions") and logged at error,
// rate-limited so that a handler that throws on every packet cannot flood the log.
#pragma once

#include <cstdint>
#include <exception>
#include <string_view>
#include <utility>

namespace mpathd {

// Counts one caught exception and logs it (at most a few lines a second in total; the
// suppressed ones are summed up in the next line that is written).
void note_callback_exception(std::string_view where, std::string_view what) noexcept;

// How many exceptions the guards have caught since start.
std::uint64_t callback_exceptions() noexcept;

// Runs f() and returns its result; an exception is noted and `fallback` returned.
template <typename F, typename R>
R guard_callback(std::string_view where, R fallback, F&& f) noexcept {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    note_callback_exception(where, e.what());
  } catch (...) {
    note_callback_exception(where, "unknown exception");
  }
  return fallback;
}

// The same for callbacks whose body returns nothing: 0 either way (sd-event keeps the
// source).
template <typename F>
int guard_void_callback(std::string_view where, F&& f) noexcept {
  return guard_callback(where, 0, [&] {
    std::forward<F>(f)();
    return 0;
  });
}

}  // namespace mpathd
