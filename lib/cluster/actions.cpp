// Actions: the release and takeover mechanisms on the kernel of the daemon's network
// namespace, composed from lib/net (nftables block, sock_diag destroy, tickle ACKs).
#include <list>
#include <optional>

#include "cluster/cluster.hpp"
#include "cluster/monotonic.hpp"
#include "guard/guard.hpp"
#include "net/nft_block.hpp"
#include "net/sock_diag.hpp"
#include "net/tickle.hpp"

namespace mpathd::cluster {
namespace {

constexpr Duration kMinSpacing = std::chrono::milliseconds(500);
using detail::monotonic_usec;

class KernelActions final : public Actions {
 public:
  explicit KernelActions(sd_event* event) : event_(sd_event_ref(event)) {}
  ~KernelActions() override {
    for (auto& r : rounds_) sd_event_source_disable_unref(r.timer);
    sd_event_unref(event_);
  }

  Result<void> block(const IpAddress& shared) override {
    auto b = nft();
    if (!b) return std::unexpected(b.error());
    return (*b)->block(shared);
  }

  Result<void> unblock(const IpAddress& shared) override {
    auto b = nft();
    if (!b) return std::unexpected(b.error());
    return (*b)->unblock(shared);
  }

  Result<std::size_t> destroy_sockets(const IpAddress& shared) override {
    if (shared.is_unspecified()) return fail(Errc::invalid_argument, "destroy: unspecified address");
    std::vector<net::DiagSocket> all;
    for (auto proto : {net::L4::tcp, net::L4::udp}) {
      auto s = net::diag_dump(proto, shared);
      if (!s) return std::unexpected(s.error());
      all.insert(all.end(), s->begin(), s->end());
    }
    return net::diag_destroy(all);
  }

  Result<std::size_t> tickle(const IpAddress& shared, const std::vector<Association>& to, int repeats,
                             Duration spacing) override {
    if (repeats < 0) return fail(Errc::invalid_argument, "tickle: repeats must not be negative");
    if (repeats > 0 && spacing < kMinSpacing)
      return fail(Errc::invalid_argument,
                  "tickle: spacing " + format_duration(spacing) + " is below 500ms (the client's "
                  "tcp_invalid_ratelimit would swallow the repeat)");
    Round round;
    round.shared = shared;
    for (const auto& a : to) {
      if (a.proto != Proto::tcp) continue;  // UDP has nothing to reset
      if (a.local != shared)
        return fail(Errc::invalid_argument, "tickle: association " + a.remote.str() + ":" +
                                                std::to_string(a.remote_port) + " is on " + a.local.str() +
                                                ", not on " + shared.str());
      if (a.remote.family != shared.family || a.local_port == 0 || a.remote_port == 0)
        return fail(Errc::invalid_argument,
                    "tickle: incomplete association to " + a.remote.str() + " (ports and family needed)");
      round.targets.push_back(a);
    }
    if (!sender_) {
      auto s = net::TickleSender::open();
      if (!s) return std::unexpected(s.error());
      sender_.emplace(std::move(*s));
    }
    auto sent = send_round(round);
    if (!sent) return std::unexpected(sent.error());
    if (repeats > 0 && !round.targets.empty()) {
      round.left = repeats;
      round.spacing = spacing;
      rounds_.push_back(std::move(round));
      auto it = std::prev(rounds_.end());
      it->self = it;
      it->owner = this;
      if (int r = sd_event_add_time(event_, &it->timer, CLOCK_MONOTONIC,
                                    monotonic_usec() + static_cast<std::uint64_t>(spacing.count() / 1000),
                                    1000 /* 1 ms accuracy */, &on_timer, &*it);
          r < 0) {
        rounds_.erase(it);
        return fail(Errc::system, "tickle: cannot arm the repeat timer");
      }
    }
    return *sent;
  }

 private:
  struct Round {
    IpAddress shared;
    std::vector<Association> targets;
    int left = 0;
    Duration spacing{};
    sd_event_source* timer = nullptr;
    std::list<Round>::iterator self;
    KernelActions* owner = nullptr;
  };

  Result<net::AddressBlock*> nft() {
    if (!nft_) {
      auto b = net::AddressBlock::open();
      if (!b) return std::unexpected(b.error());
      nft_.emplace(std::move(*b));
    }
    return &*nft_;
  }

  // Sends one tickle per target; the first failure is returned after trying them all.
  Result<std::size_t> send_round(const Round& r) {
    std::size_t ok = 0;
    std::optional<Error> first;
    for (const auto& a : r.targets) {
      if (auto s = sender_->send(a.local, a.local_port, a.remote, a.remote_port); s)
        ++ok;
      else if (!first)
        first = s.error();
    }
    if (ok == 0 && first) return std::unexpected(*first);
    return ok;
  }

  static int on_timer(sd_event_source*, std::uint64_t, void* user) {
    auto* round = static_cast<Round*>(user);
    return guard_void_callback("tickle repeat", [round] { round->owner->repeat(*round); });
  }

  void repeat(Round& r) {
    (void)send_round(r);  // a repeat that fails changes nothing: the first round counted
    if (--r.left > 0) {
      sd_event_source_set_time(r.timer, monotonic_usec() + static_cast<std::uint64_t>(r.spacing.count() / 1000));
      sd_event_source_set_enabled(r.timer, SD_EVENT_ONESHOT);
      return;
    }
    sd_event_source_disable_unref(r.timer);
    rounds_.erase(r.self);
  }

  sd_event* event_;
  std::optional<net::AddressBlock> nft_;
  std::optional<net::TickleSender> sender_;
  std::list<Round> rounds_;
};

}  // namespace

std::unique_ptr<Actions> Actions::create(sd_event* event) {
  return std::make_unique<KernelActions>(event);
}

}  // namespace mpathd::cluster
