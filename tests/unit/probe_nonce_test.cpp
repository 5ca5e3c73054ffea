// The detector's nonce check (ProbeBase): an answer counts only with the nonce of its
// own probe, one of the last kHistorySize probes. The nonces sit in 64 slots by
// sequence number; an answer that names another probe of the same slot must not pass.
// Driven through a strategy without a socket, on a real sd-event loop at the shortest
// FDT (a probe every ~14 ms, more once losses raise the probes per interval).
#include <gtest/gtest.h>
#include <systemd/sd-event.h>

#include "detect/probe_base.hpp"

using namespace mpathd;
using namespace mpathd::detect;
using namespace std::chrono_literals;

namespace {
class FakeStrategy final : public ProbeStrategy {
 public:
  struct Sent {
    ProbeSeq seq;
    std::uint64_t nonce;
  };
  std::vector<Sent> sent;
  ProbeKind kind() const override { return ProbeKind::icmp; }
  Result<void> send(ProbeSeq seq, const IpAddress&, std::uint64_t nonce) override {
    sent.push_back({seq, nonce});
    return {};
  }
  // An answer as a socket would hand it over.
  void answer(ProbeSeq seq, std::uint64_t nonce, const IpAddress& from) {
    const TimePoint now = Clock::now();
    if (reply_) reply_(ProbeReply{seq, from, nonce, now, now});
  }

 private:
  void readable() override {}
};
}  // namespace

TEST(ProbeNonces, AnAnswerCountsOnlyWithItsOwnProbesNonceWithinTheHistory) {
  sd_event* e = nullptr;
  ASSERT_GE(sd_event_new(&e), 0);
  auto owned = std::make_unique<FakeStrategy>();
  FakeStrategy& s = *owned;
  auto created = ProbeBase::create(e, "m0", std::move(owned), 100ms, {}, {}, [] { return 0.5; });
  ASSERT_TRUE(created);
  std::unique_ptr<ProbeBase> base = std::move(*created);
  ProbeBase& b = *base;
  const IpAddress target = *IpAddress::parse("198.18.0.1");
  b.set_targets({target}, TargetMode::static_);
  // 70 probes, none answered: more than the 64 slots, fewer than the history keeps.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (s.sent.size() < 70 && std::chrono::steady_clock::now() < deadline) ASSERT_GE(sd_event_run(e, 100'000), 0);
  ASSERT_GE(s.sent.size(), 70u);
  const std::size_t n = s.sent.size();
  const auto newest = s.sent[n - 1];
  const auto before = b.counters();

  // The newest probe's nonce under the number of the probe 64 before it (its slot's
  // previous holder, still in the history as lost): not an answer to anything.
  s.answer(static_cast<ProbeSeq>(newest.seq - 64), newest.nonce, target);
  EXPECT_EQ(b.counters().ignored, before.ignored + 1);
  EXPECT_EQ(b.counters().late, before.late);
  // A wrong nonce for the newest probe.
  s.answer(newest.seq, newest.nonce ^ 1, target);
  EXPECT_EQ(b.counters().ignored, before.ignored + 2);
  // The probe 52 back with its own nonce: beyond the window (kHistorySize).
  s.answer(s.sent[n - 1 - probe::kHistorySize].seq, s.sent[n - 1 - probe::kHistorySize].nonce, target);
  EXPECT_EQ(b.counters().ignored, before.ignored + 3);
  // 51 back: within it, declared lost by now, so a late answer.
  s.answer(s.sent[n - probe::kHistorySize].seq, s.sent[n - probe::kHistorySize].nonce, target);
  EXPECT_EQ(b.counters().late, before.late + 1);
  EXPECT_EQ(b.counters().ignored, before.ignored + 3);
  // A reset forgets every nonce: the newest probe's answer no longer counts.
  b.reset();
  s.answer(newest.seq, newest.nonce, target);
  EXPECT_EQ(b.counters().ignored, before.ignored + 4);

  base.reset();
  sd_event_unref(e);
}
