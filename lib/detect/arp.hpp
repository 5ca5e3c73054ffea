// ARP probing for a member without any test address: an "ARP probe" (RFC 5227: a
// request with sender IP 0.0.0.0) for the target's IPv4 address, sent and received
// on an AF_PACKET socket bound to the member. Nothing is configured on the member and
// no neighbour entry is created anywhere (a sender IP of 0 teaches no cache).
//
// ARP carries no id or nonce, so an answer counts only if it answers a request we
// sent: an ARP reply whose sender IP is a target with an unanswered request, addressed
// to our MAC (Ethernet destination and target hardware address) and to our sender IP
// 0.0.0.0 (target protocol address), received after that request and within its reply
// window; each request takes one answer, the newest unanswered one first (an older one
// takes a late answer). Gratuitous ARP (broadcast, or target IP = sender IP) and
// answers to other hosts' requests never count (unmatched).
//
// A reply that claims to answer us for a target we probe when no request of ours is
// waiting for it (all are answered, or it predates them) is unsolicited: someone on the
// link sends "target is-at ..." on their own. For the next kDistrustIntervals probe
// intervals no answer for that target counts (a blind forger that floods such
// replies would otherwise hit every request's window); fewer than the 5 losses that
// fail a member, so one stray reply fails nothing. This cannot stop a host on the
// path that sees our requests and answers each once: echo probing can always be
// faked by the path it probes (docs/design-decisions.md).
#pragma once

#include <deque>
#include <map>
#include <memory>

#include "detect/strategy.hpp"

namespace mpathd::detect {

class ArpProber final : public ProbeStrategy {
 public:
  static constexpr int kDistrustIntervals = 2;
  static Result<std::unique_ptr<ArpProber>> open(sd_event* event, unsigned ifindex, const Mac& mac);
  ProbeKind kind() const override { return ProbeKind::arp; }
  Result<void> send(ProbeSeq seq, const IpAddress& target, std::uint64_t nonce) override;

 private:
  ArpProber(unsigned ifindex, const Mac& mac) : ifindex_(ifindex), mac_(mac) {}
  void readable() override;
  struct Request {  // 24 bytes: up to kHistorySize per target
    std::uint64_t nonce;
    TimePoint sent;
    ProbeSeq seq;
    bool answered = false;
  };
  unsigned ifindex_;
  Mac mac_;
  std::map<IpAddress, std::deque<Request>> requests_;  // per target, within the reply window
  std::map<IpAddress, TimePoint> distrust_until_;  // after unsolicited replies
};

// Pure frame helpers (tested on byte buffers).
// A 42-byte broadcast ARP request: sha = mac, spa = 0.0.0.0, tha = 0, tpa = target.
std::vector<std::uint8_t> build_arp_probe(const Mac& mac, const IpAddress& target);
struct ArpReply {
  Mac eth_dst;
  Mac sender_mac;
  IpAddress sender_ip;
  Mac target_mac;
  IpAddress target_ip;
};
// An Ethernet/IPv4 ARP reply (op 2); nullopt for anything else.
std::optional<ArpReply> parse_arp_reply(const std::uint8_t* frame, std::size_t len);

}  // namespace mpathd::detect
