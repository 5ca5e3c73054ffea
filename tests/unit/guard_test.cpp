#include <gtest/gtest.h>

#include <stdexcept>

#include "guard/guard.hpp"

using namespace mpathd;

TEST(Guard, ReturnsTheResultWhenNothingIsThrown) {
  auto before = callback_exceptions();
  EXPECT_EQ(guard_callback("test", -1, [] { return 7; }), 7);
  EXPECT_EQ(callback_exceptions(), before);
}

TEST(Guard, CatchesCountsAndReturnsTheFallback) {
  auto before = callback_exceptions();
  EXPECT_EQ(guard_callback("test", -1, []() -> int { throw std::runtime_error("boom"); }), -1);
  EXPECT_EQ(guard_void_callback("test", [] { throw 42; }), 0);
  EXPECT_EQ(callback_exceptions(), before + 2);
}

TEST(Guard, AFloodIsCountedInFull) {
  auto before = callback_exceptions();
  for (int i = 0; i < 1000; ++i) guard_void_callback("flood", [] { throw std::runtime_error("again"); });
  EXPECT_EQ(callback_exceptions(), before + 1000);  // logged rate-limited, counted in full
}
