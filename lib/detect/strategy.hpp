// The strategy side of probing: one socket that sends a probe and recognises the
// answers to it. Strategies know packets, not statistics: they hand every answer that
// looks like ours to the ProbeBase, which decides whether it counts.
#pragma once

#include <sys/socket.h>
#include <systemd/sd-event.h>

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/error.hpp"
#include "core/probe.hpp"
#include "core/types.hpp"

namespace mpathd::detect {

// An answer as the strategy saw it. `seq` and `nonce` are the ones carried by the
// reply (ICMP) or remembered with the matching request (ARP).
struct ProbeReply {
  ProbeSeq seq = 0;
  IpAddress from;
  std::uint64_t nonce = 0;
  TimePoint sent{};      // when the request left (monotonic)
  TimePoint received{};  // kernel reception timestamp (monotonic)
};

struct StrategyCounters {
  std::uint64_t sent = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t replies = 0;    // handed to the ProbeBase
  std::uint64_t foreign = 0;    // not addressed to this prober (another id, not a reply)
  std::uint64_t malformed = 0;  // truncated, bad checksum, wrong code
  std::uint64_t unmatched = 0;  // looked like an answer to us but matched no request
  std::uint64_t unsolicited = 0;  // ARP: an answer to us with no request out, and answers distrusted after it
};

class ProbeStrategy {
 public:
  using ReplyHandler = std::function<void(const ProbeReply&)>;
  using DiscoveryHandler = std::function<void(const IpAddress& from, std::uint64_t nonce)>;

  ProbeStrategy() = default;
  ProbeStrategy(const ProbeStrategy&) = delete;
  ProbeStrategy& operator=(const ProbeStrategy&) = delete;
  virtual ~ProbeStrategy();

  virtual ProbeKind kind() const = 0;
  // Sends one probe. An error is a value; the probe will simply be lost.
  virtual Result<void> send(ProbeSeq seq, const IpAddress& target, std::uint64_t nonce) = 0;
  // Multicast echo to all hosts on the link (224.0.0.1 / ff02::1); answers arrive
  // through the discovery handler. Not every strategy can.
  virtual Result<void> discover(std::uint64_t nonce);
  // The probe interval in force. Answers older than kHistorySize intervals are not
  // matched (ARP, which has no nonce on the wire).
  void set_interval(Duration interval) {
    interval_ = interval;
    reply_window_ = probe::kHistorySize * interval;
  }

  // Reads the answers already queued now, as if the socket had been reported
  // readable: before probes are declared lost, so that an answer the kernel received
  // in time is not counted as lost because the loop read it late.
  void drain() { readable(); }

  // Stops watching the socket and hands it over (-1 if none): the caller closes it.
  // Shutdown closes every member's socket at once (sock::close_all()).
  int release_socket();

  void set_reply_handler(ReplyHandler h) { reply_ = std::move(h); }
  void set_discovery_handler(DiscoveryHandler h) { discovered_ = std::move(h); }
  const StrategyCounters& counters() const { return counters_; }

 protected:
  // Takes ownership of `fd` (non-blocking) and watches it for input on `event`.
  Result<void> attach(sd_event* event, int fd);
  int fd() const { return fd_; }
  // Reads everything queued, until the socket says EAGAIN (it is watched
  // edge-triggered: what is left unread is not reported again until more arrives);
  // called on input. Must not throw out of the loop.
  virtual void readable() = 0;

  ReplyHandler reply_;
  DiscoveryHandler discovered_;
  StrategyCounters counters_;
  Duration interval_ = seconds(1);
  Duration reply_window_ = seconds(60);

 private:
  static int on_io(sd_event_source* s, int fd, std::uint32_t revents, void* userdata) noexcept;
  int fd_ = -1;
  sd_event_source* io_ = nullptr;
};

// Helpers shared by the strategies.
namespace sock {
// Sets an option, turning a failure into an Error naming it.
Result<void> set(int fd, int level, int name, const void* value, unsigned len, const char* what);
Result<void> set_int(int fd, int level, int name, int value, const char* what);
std::unexpected<Error> errno_error(const char* what);
// The kernel's reception time (SCM_TIMESTAMPNS, wall clock) moved to the monotonic
// clock; now() when the message has none.
TimePoint rx_time(const ::msghdr& msg);
// 16-bit one's complement Internet checksum.
std::uint16_t inet_checksum(const std::uint8_t* data, std::size_t len);
// A fresh unpredictable 64-bit value (probe nonces, generator seeds): SipHash-2-4 of a
// counter under a key read once per thread from getrandom(2) — no syscall per probe.
std::uint64_t random64();
// SipHash-2-4 of one 64-bit word (little-endian, 8 bytes) under a 128-bit key (two
// little-endian words), as in Aumasson & Bernstein's reference: a PRF, so successive
// outputs for a counter cannot be predicted from earlier ones without the key.
std::uint64_t siphash24(const std::array<std::uint64_t, 2>& key, std::uint64_t m);
// Closes the descriptors from up to `threads` threads at once. Closing a packet socket
// waits for an RCU grace period (synchronize_net() in packet_release(), ~8-16 ms):
// 1024 members' sockets closed one after another took 10 s to stop mpathd; closes
// that run at the same time share their grace periods (32 threads: ~0.1 s for 256).
void close_all(std::vector<int> fds, unsigned threads = 32);
}  // namespace sock

}  // namespace mpathd::detect
