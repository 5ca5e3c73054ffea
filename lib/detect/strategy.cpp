#include "detect/strategy.hpp"

#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "guard/guard.hpp"

namespace mpathd::detect {

ProbeStrategy::~ProbeStrategy() {
  sd_event_source_disable_unref(io_);
  if (fd_ >= 0) close(fd_);
}

int ProbeStrategy::release_socket() {
  io_ = sd_event_source_disable_unref(io_);
  return std::exchange(fd_, -1);
}

Result<void> ProbeStrategy::discover(std::uint64_t) {
  return fail(Errc::invalid_argument, std::string(to_string(kind())) + " probing cannot discover targets");
}

Result<void> ProbeStrategy::attach(sd_event* event, int fd) {
  fd_ = fd;
  // Edge-triggered: readable() reads until the socket is empty, and a socket is
  // reported again only when something new arrives. Level-triggered, every socket
  // with an answer queued was polled again by each epoll_wait() until the loop got to
  // it, and sd-event dispatches one source per epoll_wait(): with hundreds of answers
  // queued at 1024 members that was quadratic, two thirds of mpathd's CPU spent in
  // epoll_wait() polling packet sockets, and the loop fell behind its probe timers.
  int r = sd_event_add_io(event, &io_, fd, EPOLLIN | EPOLLET, &ProbeStrategy::on_io, this);
  if (r < 0) return fail(Errc::system, std::string("watch probe socket: ") + std::strerror(-r));
  (void)sd_event_source_set_description(io_, "probe-socket");
  return {};
}

int ProbeStrategy::on_io(sd_event_source*, int, std::uint32_t, void* userdata) noexcept {
  // A handler that throws drops the answer; the source stays.
  return guard_void_callback("probe socket", [&] { static_cast<ProbeStrategy*>(userdata)->readable(); });
}

namespace sock {

void close_all(std::vector<int> fds, unsigned threads) {
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < fds.size();)
      if (fds[i] >= 0) close(fds[i]);
  };
  std::vector<std::thread> workers;
  const std::size_t want = std::min<std::size_t>(threads, fds.size());
  try {
    for (std::size_t t = 1; t < want; ++t) workers.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads: the ones there are (and this one) close the rest.
  }
  work();
  for (auto& w : workers) w.join();
}

std::unexpected<Error> errno_error(const char* what) {
  return fail(Errc::system, std::string(what) + ": " + std::strerror(errno));
}

Result<void> set(int fd, int level, int name, const void* value, unsigned len, const char* what) {
  if (setsockopt(fd, level, name, value, len) != 0) return errno_error(what);
  return {};
}

Result<void> set_int(int fd, int level, int name, int value, const char* what) {
  return set(fd, level, name, &value, sizeof value, what);
}

TimePoint rx_time(const ::msghdr& msg) {
  const TimePoint mono_now = Clock::now();
  for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&msg)); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec ts{};
    std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
    timespec real{};
    clock_gettime(CLOCK_REALTIME, &real);
    const auto ns = [](const timespec& t) {
      return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
    };
    const Duration age = ns(real) - ns(ts);
    if (age < Duration::zero()) return mono_now;
    return mono_now - age;
  }
  return mono_now;
}

std::uint16_t inet_checksum(const std::uint8_t* data, std::size_t len) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < len; i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  if (len & 1) sum += static_cast<std::uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::uint64_t siphash24(const std::array<std::uint64_t, 2>& key, std::uint64_t m) {
  auto rotl = [](std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  std::uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
  std::uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
  auto round = [&] {
    v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);
    v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;
    v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;
    v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);
  };
  const std::uint64_t b = 8ULL << 56;  // the length (8 bytes) in the last block
  v3 ^= m, round(), round(), v0 ^= m;
  v3 ^= b, round(), round(), v0 ^= b;
  v2 ^= 0xff, round(), round(), round(), round();
  return v0 ^ v1 ^ v2 ^ v3;
}

namespace {

struct NonceSource {
  std::array<std::uint64_t, 2> key{};
  std::uint64_t counter = 0;
  NonceSource() {
    // One getrandom(2) per process (per thread), not one per probe.
    if (getrandom(key.data(), sizeof key, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof key)) {
      std::random_device rd;
      for (auto& k : key) k = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
  }
};

}  // namespace

std::uint64_t random64() {
  thread_local NonceSource source;
  return siphash24(source.key, source.counter++);
}

}  // namespace sock
}  // namespace mpathd::detect
