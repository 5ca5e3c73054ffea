// The pure parts of lib/cluster and its lib/net helpers: the association JSON codec, the
// walk → associations classification, the walk → bound sockets diff, import validation, the tickle frame and the
// sock_diag filter bytecode. No kernel, no root.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/inet_diag.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "cluster/association_json.hpp"
#include "cluster/registry_store.hpp"
#include "net/sock_diag.hpp"
#include "net/tickle.hpp"

namespace mpathd::cluster {
namespace {

IpAddress ip(const char* t) { return *IpAddress::parse(t); }

const IpAddress kShared = ip("198.18.0.100");
const IpAddress kClient = ip("198.18.0.20");

Association tcp(std::uint16_t lport, std::uint16_t rport, bool out = false) {
  return {.proto = Proto::tcp, .local = kShared, .local_port = lport, .remote = kClient,
          .remote_port = rport, .tcp_state = 1, .outgoing = out};
}

TEST(ClusterJson, RoundTripsTcpAndUdpEntries) {
  Association udp{.proto = Proto::udp, .local = kShared, .remote = ip("198.18.0.21")};
  Association imp = tcp(80, 40001, true);
  imp.imported = true;
  imp.tcp_state = 8;
  const std::vector<Association> list{tcp(80, 40000), udp, imp};
  const auto j = associations_to_json(list);
  EXPECT_EQ(j[0]["state"], "established");
  EXPECT_EQ(j[0]["direction"], "incoming");
  EXPECT_FALSE(j[1].contains("state"));
  EXPECT_EQ(j[2]["state"], "close-wait");
  auto back = associations_from_json_text(j.dump());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, list);
}

TEST(ClusterJson, EveryTcpStateNameRoundTrips) {
  for (std::uint8_t s = 1; s <= 12; ++s) {
    ASSERT_FALSE(tcp_state_name(s).empty()) << int(s);
    EXPECT_EQ(tcp_state_from_name(tcp_state_name(s)), s);
  }
  EXPECT_TRUE(tcp_state_name(0).empty());
  EXPECT_TRUE(tcp_state_name(13).empty());
  EXPECT_FALSE(tcp_state_from_name("ESTABLISHED"));
}

// Each malformed input is refused with a message naming the index and the field.
TEST(ClusterJson, StrictValidationNamesIndexAndField) {
  const auto good = associations_to_json({tcp(80, 40000), tcp(80, 40001)});
  struct Case {
    std::function<void(nlohmann::json&)> mutate;
    std::string expect;
  };
  const std::vector<Case> cases{
      {[](auto& j) { j[1].erase("remote"); }, "association 1: \"remote\" is missing"},
      {[](auto& j) { j[1]["remote"] = "300.1.1.1"; }, "association 1: \"remote\" is not an IP address"},
      {[](auto& j) { j[0]["local_port"] = 70000; }, "association 0: \"local_port\" must be 0..65535"},
      {[](auto& j) { j[0]["local_port"] = "80"; }, "association 0: \"local_port\" must be an integer"},
      {[](auto& j) { j[1]["proto"] = "sctp"; }, "association 1: \"proto\" must be \"tcp\" or \"udp\""},
      {[](auto& j) { j[1]["state"] = "open"; }, "association 1: \"state\" is not a TCP state"},
      {[](auto& j) { j[0]["direction"] = "in"; }, "association 0: \"direction\" must be"},
      {[](auto& j) { j[0]["extra"] = 1; }, "association 0: \"extra\" is not a known key"},
      {[](auto& j) { j[0]["imported"] = "yes"; }, "association 0: \"imported\" must be true or false"},
      {[](auto& j) { j[1] = 5; }, "association 1: must be an object"},
      {[](auto& j) { j = nlohmann::json::object(); }, "expected a JSON array"},
      {[](auto& j) {
         j[0]["proto"] = "udp";
       },
       "association 0: \"state\" is only for TCP"},
  };
  for (const auto& c : cases) {
    auto j = good;
    c.mutate(j);
    auto r = associations_from_json(j);
    ASSERT_FALSE(r) << c.expect;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  auto text = associations_from_json_text("[{");
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find("not JSON"), std::string::npos);
}

net::DiagSocket sock(net::L4 p, const IpAddress& local, std::uint16_t lport, const IpAddress& remote,
                     std::uint16_t rport, std::uint8_t state) {
  return {.proto = p, .local = local, .local_port = lport, .remote = remote, .remote_port = rport, .state = state};
}

TEST(ClusterWalk, ClassifiesDirectionFromListenerPortsAndSkipsNonConnections) {
  const IpAddress any4 = ip("0.0.0.0");
  const auto ports = detail::listener_ports_for(
      kShared, {sock(net::L4::tcp, kShared, 80, any4, 0, net::kTcpListen),
                sock(net::L4::tcp, any4, 22, any4, 0, net::kTcpListen),
                sock(net::L4::tcp, ip("198.18.0.101"), 443, any4, 0, net::kTcpListen)});
  EXPECT_EQ(ports, (std::set<std::uint16_t>{22, 80}));
  const std::vector<net::DiagSocket> walk{
      sock(net::L4::tcp, kShared, 80, kClient, 40000, 1),          // incoming
      sock(net::L4::tcp, kShared, 22, kClient, 40001, 8),          // incoming (wildcard listener)
      sock(net::L4::tcp, kShared, 45000, kClient, 5432, 1),        // outgoing
      sock(net::L4::tcp, kShared, 443, kClient, 40002, 1),         // 443 listens elsewhere: outgoing
      sock(net::L4::tcp, kShared, 80, any4, 0, net::kTcpListen),   // listener: not an association
      sock(net::L4::tcp, kShared, 80, kClient, 40003, net::kTcpTimeWait),
      sock(net::L4::udp, kShared, 53, kClient, 5000, 1),
      sock(net::L4::udp, kShared, 54, kClient, 5001, 1),           // same client: one entry
      sock(net::L4::udp, kShared, 53, any4, 0, 7),                 // unconnected: no client
      sock(net::L4::tcp, ip("198.18.0.101"), 80, kClient, 1, 1),   // another address
  };
  auto got = detail::associations_from_walk(kShared, walk, ports, {});
  ASSERT_EQ(got.size(), 5u);
  EXPECT_FALSE(got.at({Proto::tcp, 80, kClient, 40000}).outgoing);
  EXPECT_FALSE(got.at({Proto::tcp, 22, kClient, 40001}).outgoing);
  EXPECT_EQ(got.at({Proto::tcp, 22, kClient, 40001}).tcp_state, 8);
  EXPECT_TRUE(got.at({Proto::tcp, 45000, kClient, 5432}).outgoing);
  EXPECT_TRUE(got.at({Proto::tcp, 443, kClient, 40002}).outgoing);
  const auto& u = got.at({Proto::udp, 0, kClient, 0});
  EXPECT_EQ(u.local_port, 0);
  EXPECT_EQ(u.remote_port, 0);
  // A listener opened later on 45000 does not flip a known connection.
  auto again = detail::associations_from_walk(kShared, walk, {22, 80, 45000}, got);
  EXPECT_TRUE(again.at({Proto::tcp, 45000, kClient, 5432}).outgoing);
}

TEST(ClusterWalk, BoundSocketsAreListenersBoundOnlyTcpAndUnconnectedUdpOfTheAddress) {
  const IpAddress any4 = ip("0.0.0.0");
  auto with_cookie = [](net::DiagSocket s, std::uint64_t c) {
    s.cookie = c;
    return s;
  };
  const std::vector<net::DiagSocket> walk{
      with_cookie(sock(net::L4::tcp, kShared, 80, any4, 0, net::kTcpListen), 1),
      with_cookie(sock(net::L4::tcp, kShared, 81, any4, 0, net::kTcpClose), 2),      // bound only
      with_cookie(sock(net::L4::tcp, kShared, 82, kClient, 40001, net::kTcpClose), 8),  // a closed connection
      with_cookie(sock(net::L4::udp, kShared, 53, any4, 0, net::kTcpClose), 3),
      with_cookie(sock(net::L4::udp, kShared, 54, kClient, 5000, 1), 4),             // connected: association
      with_cookie(sock(net::L4::tcp, kShared, 80, kClient, 40000, 1), 5),            // connection
      with_cookie(sock(net::L4::tcp, any4, 22, any4, 0, net::kTcpListen), 6),        // wildcard: not reported
      with_cookie(sock(net::L4::tcp, ip("198.18.0.101"), 80, any4, 0, net::kTcpListen), 7),  // another address
  };
  const auto got = detail::bound_from_walk(kShared, walk);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got.at(1).listening);
  EXPECT_EQ(got.at(1).local_port, 80);
  EXPECT_FALSE(got.at(2).listening);
  EXPECT_EQ(got.at(3).proto, Proto::udp);
  EXPECT_EQ(got.at(3).local_port, 53);
  // Known bound, connected since (TCP and UDP): still bound; in TIME_WAIT: gone.
  const std::map<std::uint64_t, BoundSocket> known{{5, {.local = kShared, .local_port = 80, .cookie = 5}},
                                                   {4, {.proto = Proto::udp, .local = kShared, .local_port = 54,
                                                        .cookie = 4}},
                                                   {9, {.local = kShared, .local_port = 83, .cookie = 9}}};
  auto later = walk;
  later.push_back(with_cookie(sock(net::L4::tcp, kShared, 83, kClient, 40002, net::kTcpTimeWait), 9));
  const auto again = detail::bound_from_walk(kShared, later, known);
  EXPECT_EQ(again.size(), 5u);
  EXPECT_TRUE(again.contains(5) && !again.at(5).listening);
  EXPECT_TRUE(again.contains(4));
  EXPECT_FALSE(again.contains(9));
}

TEST(ClusterWalk, BoundDiffReportsEachSocketInTheOrderOfItsLife) {
  using detail::bound_diff;
  auto b = [](std::uint64_t cookie, std::uint16_t port, bool listening) {
    return BoundSocket{.proto = Proto::tcp, .local = kShared, .local_port = port, .listening = listening,
                       .cookie = cookie};
  };
  auto kinds = [](const std::vector<std::pair<SocketEvent, BoundSocket>>& v) {
    std::vector<std::pair<SocketEvent, std::uint64_t>> out;
    for (const auto& [e, s] : v) out.emplace_back(e, s.cookie);
    return out;
  };
  using V = std::vector<std::pair<SocketEvent, std::uint64_t>>;
  // A listener first seen listening: bind then listen; a bound-only one: bind.
  EXPECT_EQ(kinds(bound_diff({}, {{1, b(1, 80, true)}, {2, b(2, 81, false)}})),
            (V{{SocketEvent::bind, 1}, {SocketEvent::listen, 1}, {SocketEvent::bind, 2}}));
  // Gone: unlisten then unbind; still there: the change alone; unchanged: nothing.
  EXPECT_EQ(kinds(bound_diff({{1, b(1, 80, true)}, {2, b(2, 81, false)}, {3, b(3, 82, true)}},
                             {{2, b(2, 81, true)}, {3, b(3, 82, true)}})),
            (V{{SocketEvent::unlisten, 1}, {SocketEvent::unbind, 1}, {SocketEvent::listen, 2}}));
  EXPECT_EQ(kinds(bound_diff({{2, b(2, 81, true)}}, {{2, b(2, 81, false)}})), (V{{SocketEvent::unlisten, 2}}));
  // A closed socket whose port was reused by a new one (another cookie): both reported.
  EXPECT_EQ(kinds(bound_diff({{1, b(1, 80, true)}}, {{9, b(9, 80, true)}})),
            (V{{SocketEvent::unlisten, 1}, {SocketEvent::unbind, 1}, {SocketEvent::bind, 9},
               {SocketEvent::listen, 9}}));
}

TEST(ClusterImport, RefusesTheWholeBatchNamingTheEntry) {
  EXPECT_TRUE(detail::validate_import(kShared, {tcp(80, 40000)}));
  auto wrong_local = tcp(80, 1);
  wrong_local.local = ip("198.18.0.101");
  auto no_port = tcp(80, 0);
  auto listen = tcp(80, 1);
  listen.tcp_state = net::kTcpListen;
  auto v6 = tcp(80, 1);
  v6.remote = ip("2001:db8::1");
  Association udp_state{.proto = Proto::udp, .local = kShared, .remote = kClient, .tcp_state = 1};
  for (const auto& bad : {wrong_local, no_port, listen, v6, udp_state}) {
    auto r = detail::validate_import(kShared, {tcp(80, 40000), bad});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("association 1:"), std::string::npos) << r.error().message;
  }
}

TEST(ClusterStore, ReportsAppearedChangedGoneAndImports) {
  std::vector<std::pair<Association, bool>> ev;
  detail::Store st([&](const IpAddress&, const Association& a, bool p) { ev.emplace_back(a, p); });
  st.add(kShared);
  st.replace_local(kShared, {{detail::key_of(tcp(80, 1)), tcp(80, 1)}});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(ev[0].second);
  auto closing = tcp(80, 1);
  closing.tcp_state = 8;
  st.replace_local(kShared, {{detail::key_of(closing), closing}});
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].first.tcp_state, 8);
  EXPECT_EQ(st.import(kShared, {tcp(80, 1), tcp(80, 2)}), 2u);
  const auto all = st.associations(kShared);
  ASSERT_EQ(all.size(), 2u);  // the local entry shadows the imported copy of itself
  EXPECT_EQ(std::count_if(all.begin(), all.end(), [](auto& a) { return a.imported; }), 1);
  st.replace_local(kShared, {});
  EXPECT_FALSE(ev.back().second);
  EXPECT_EQ(st.import(kShared, {}), 0u);
  EXPECT_TRUE(st.associations(kShared).empty());
}

TEST(ClusterTickle, Ipv4FrameIsAnAckWithSeqAndAckZeroAndValidChecksums) {
  const auto f = net::build_tickle_v4(kShared, 80, kClient, 40000);
  ASSERT_EQ(f.size(), 40u);
  auto sum = [](const std::uint8_t* p, std::size_t n, std::uint32_t acc) {
    for (std::size_t i = 0; i + 1 < n; i += 2) acc += (p[i] << 8) | p[i + 1];
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return acc;
  };
  EXPECT_EQ(sum(f.data(), 20, 0), 0xffffu);  // IP header checksum verifies
  std::uint32_t pseudo = sum(f.data() + 12, 8, 0) + 6 + 20;
  EXPECT_EQ(sum(f.data() + 20, 20, pseudo), 0xffffu);  // TCP checksum verifies
  EXPECT_EQ(f[33], 0x10);                              // ACK only
  for (int i = 24; i < 32; ++i) EXPECT_EQ(f[i], 0) << i;  // seq 0, ack 0
  EXPECT_EQ((f[20] << 8) | f[21], 80);
  EXPECT_EQ((f[22] << 8) | f[23], 40000);
  EXPECT_TRUE(net::build_tickle_v4(kShared, 80, ip("2001:db8::1"), 1).empty());
  const auto t6 = net::build_tickle_tcp6(ip("2001:db8::100"), 80, ip("2001:db8::2"), 40000);
  ASSERT_EQ(t6.size(), 20u);
  EXPECT_EQ(t6[13], 0x10);
}

TEST(ClusterSockDiag, FilterIsOneSourceConditionAcceptingAtTheEnd) {
  const auto bc = net::local_address_filter(kShared);
  ASSERT_EQ(bc.size(), sizeof(inet_diag_bc_op) + sizeof(inet_diag_hostcond) + 4);
  inet_diag_bc_op op;
  std::memcpy(&op, bc.data(), sizeof op);
  EXPECT_EQ(op.code, INET_DIAG_BC_S_COND);
  EXPECT_EQ(op.yes, bc.size());
  EXPECT_EQ(op.no, bc.size() + 4);
  inet_diag_hostcond hc;
  std::memcpy(&hc, bc.data() + sizeof op, sizeof hc);
  EXPECT_EQ(hc.prefix_len, 32);
  EXPECT_EQ(hc.port, -1);
  EXPECT_EQ(net::local_address_filter(ip("2001:db8::1")).size(), bc.size() + 12);
}

TEST(ClusterSockDiag, ParsesMappedAddressesAsIpv4) {
  inet_diag_msg m{};
  m.idiag_family = AF_INET6;
  m.idiag_state = 1;
  m.id.idiag_sport = htons(80);
  m.id.idiag_dport = htons(40000);
  m.id.idiag_src[2] = htonl(0xffff);
  std::memcpy(&m.id.idiag_src[3], kShared.bytes.data(), 4);
  m.id.idiag_dst[2] = htonl(0xffff);
  std::memcpy(&m.id.idiag_dst[3], kClient.bytes.data(), 4);
  m.id.idiag_cookie[0] = 7;
  auto s = net::parse_inet_diag_msg(
      net::L4::tcp, {reinterpret_cast<const std::uint8_t*>(&m), sizeof m});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->local, kShared);
  EXPECT_EQ(s->remote, kClient);
  EXPECT_EQ(s->local_port, 80);
  EXPECT_EQ(s->remote_port, 40000);
  EXPECT_EQ(s->cookie, 7u);
  EXPECT_FALSE(net::parse_inet_diag_msg(net::L4::tcp, {reinterpret_cast<const std::uint8_t*>(&m), 10}));
}

}  // namespace
}  // namespace mpathd::cluster
