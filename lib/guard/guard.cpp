#include "guard/guard.hpp"

#include <atomic>
#include <chrono>
#include <mutex>

#include <spdlog/spdlog.h>

namespace mpathd {

namespace {

std::atomic<std::uint64_t> g_caught{0};

// A token bucket: a burst of 5 lines, then one a second; what was held back is counted.
struct LogBudget {
  std::mutex mu;
  std::chrono::steady_clock::time_point refilled{};
  double tokens = 5;
  std::uint64_t suppressed = 0;
};
LogBudget g_budget;

}  // namespace

void note_callback_exception(std::string_view where, std::string_view what) noexcept {
  g_caught.fetch_add(1, std::memory_order_relaxed);
  try {
    std::uint64_t held_back = 0;
    {
      std::lock_guard lock(g_budget.mu);
      auto now = std::chrono::steady_clock::now();
      std::chrono::duration<double> dt = now - g_budget.refilled;
      g_budget.refilled = now;
      g_budget.tokens = std::min(5.0, g_budget.tokens + dt.count());
      if (g_budget.tokens < 1) {
        ++g_budget.suppressed;
        return;
      }
      g_budget.tokens -= 1;
      held_back = std::exchange(g_budget.suppressed, 0);
    }
    if (held_back)
      spdlog::error("{}: exception caught in a callback: {} ({} more not logged)", where, what, held_back);
    else
      spdlog::error("{}: exception caught in a callback: {}", where, what);
  } catch (...) {  // logging itself failed (allocation): counted above, nothing else to do
  }
}

std::uint64_t callback_exceptions() noexcept { return g_caught.load(std::memory_order_relaxed); }

}  // namespace mpathd
