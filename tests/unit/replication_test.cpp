// Association replication (lib/cluster/replication.*): the wire codec and the Replicator's
// rules (batching, splitting, state transfer to a joiner, tables kept when their origin
// leaves, takeover, cap, flow control, reconnect). Unit tier: a FAKE GroupTransport (an
// in-process "group" that delivers in one agreed order, like CPG) and a real sd-event
// loop for the batch timer; the libcpg adapter is exercised with a real corosync by
// tests/integration/test_replication.py.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>

#include "cluster/replication.hpp"

using namespace mpathd;
using namespace mpathd::cluster;
using namespace std::chrono_literals;

namespace {

IpAddress ip(const char* s) { return *IpAddress::parse(s); }

Association tcp(const char* shared, int n, std::uint8_t state = 1) {
  Association a;
  a.proto = Proto::tcp;
  a.local = ip(shared);
  a.local_port = 80;
  a.remote = ip(shared).is_v4() ? IpAddress::v4(0xC6130000U + static_cast<std::uint32_t>(n / 60000))
                                : ip("2001:db8::99");
  a.remote_port = static_cast<std::uint16_t>(1024 + n % 60000);
  a.tcp_state = state;
  return a;
}

// The group: every multicast is queued and delivered to every open member (the sender
// too) in one order, when pump() is called.
struct Bus {
  struct Member;
  std::vector<Member*> members;
  std::deque<std::pair<GroupMember, std::vector<std::uint8_t>>> wire;
  std::size_t messages = 0, bytes = 0, largest = 0;
  void pump();
  void membership_changed(const std::vector<GroupMember>& joined, const std::vector<GroupMember>& left);
};

struct Bus::Member final : GroupTransport {
  Bus& bus;
  GroupMember id;
  Handlers h;
  bool open_ = false;
  bool refuse_open = false;
  int try_again = 0;  // the next sends answered TRY_AGAIN
  Member(Bus& b, std::uint32_t nodeid) : bus(b), id{nodeid, 1000 + nodeid} {}
  Result<GroupMember> open(const std::string&, Handlers handlers) override {
    if (refuse_open) return fail(Errc::system, "cpg_initialize: cannot connect to corosync");
    h = std::move(handlers);
    open_ = true;
    bus.members.push_back(this);
    bus.membership_changed({id}, {});
    return id;
  }
  void close() override {
    if (!open_) return;
    open_ = false;
    std::erase(bus.members, this);
    bus.membership_changed({}, {id});
  }
  Result<Sent> send(std::span<const std::uint8_t> m) override {
    if (!open_) return fail(Errc::system, "not connected");
    if (try_again > 0) {
      --try_again;
      return Sent::try_again;
    }
    bus.wire.emplace_back(id, std::vector<std::uint8_t>(m.begin(), m.end()));
    ++bus.messages;
    bus.bytes += m.size();
    bus.largest = std::max(bus.largest, m.size());
    return Sent::sent;
  }
  // The daemon kills it: no leave from here (the others see it leave).
  void crash() {
    open_ = false;
    std::erase(bus.members, this);
  }
};

void Bus::pump() {
  while (!wire.empty()) {
    auto [from, m] = std::move(wire.front());
    wire.pop_front();
    for (auto* mem : std::vector<Member*>(members))
      if (mem->h.message) mem->h.message(from, m);
  }
}

void Bus::membership_changed(const std::vector<GroupMember>& joined, const std::vector<GroupMember>& left) {
  std::vector<GroupMember> all;
  for (auto* m : members) all.push_back(m->id);
  for (auto* m : std::vector<Member*>(members))
    if (m->h.membership) m->h.membership(all, joined, left);
}

// One node: a Replicator, its "kernel" entries and what it imported into its registry.
struct Node {
  std::map<IpAddress, std::vector<Association>> local;
  std::map<IpAddress, std::vector<Association>> imported;
  Bus::Member* transport = nullptr;
  std::unique_ptr<Replicator> rep;
  Node(sd_event* ev, Bus& bus, std::uint32_t nodeid, ReplicationOptions o = {}, bool refuse = false) {
    auto t = std::make_unique<Bus::Member>(bus, nodeid);
    t->refuse_open = refuse;
    transport = t.get();
    Replicator::Hooks h;
    h.local = [this](const IpAddress& a) { return local[a]; };
    h.imported = [this](const IpAddress& a, std::vector<Association> e) { imported[a] = std::move(e); };
    o.batch = 1h;  // the tests flush by hand unless they test the timer
    rep = std::make_unique<Replicator>(ev, o, std::move(t), std::move(h));
  }
  void set_local(const IpAddress& a, std::vector<Association> v) {
    local[a] = std::move(v);
    rep->local_changed(a);
  }
};

struct ReplicationTest : ::testing::Test {
  sd_event* ev = nullptr;
  Bus bus;
  IpAddress X = ip("198.18.1.50");
  void SetUp() override { ASSERT_GE(sd_event_new(&ev), 0); }
  void TearDown() override { sd_event_unref(ev); }
  void flush(std::initializer_list<Node*> nodes) {
    for (auto* n : nodes) n->rep->flush_now();
    bus.pump();
  }
};

std::vector<Association> first_n(const char* shared, int n) {
  std::vector<Association> v;
  for (int i = 0; i < n; ++i) v.push_back(tcp(shared, i));
  return v;
}

}  // namespace

TEST(ReplicationWire, RoundTripsV4AndV6) {
  wire::Message m;
  m.sequence = 7;
  wire::Record r4{ip("198.18.1.50"), wire::Kind::full_first, wire::kTakeover, first_n("198.18.1.50", 3), {}};
  Association u;
  u.proto = Proto::udp;
  u.local = ip("2001:db8::50");
  u.remote = ip("2001:db8::7");
  u.outgoing = true;
  wire::Record r6{ip("2001:db8::50"), wire::Kind::delta, 0, {u}, {tcp("2001:db8::50", 5)}};
  m.records = {r4, r6};
  const auto bytes = wire::encode(m);
  EXPECT_EQ(bytes.size(), wire::kHeaderSize + wire::record_overhead(r4.address) + 3 * 10 +
                              wire::record_overhead(r6.address) + 2 * 22);
  auto back = wire::decode(bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->sequence, 7U);
  ASSERT_EQ(back->records.size(), 2U);
  EXPECT_EQ(back->records[0].add, r4.add);
  EXPECT_EQ(back->records[0].flags, wire::kTakeover);
  EXPECT_EQ(back->records[1].add, r6.add);
  EXPECT_EQ(back->records[1].remove, r6.remove);
  EXPECT_EQ(back->records[1].kind, wire::Kind::delta);
}

TEST(ReplicationWire, RefusesBadInput) {
  wire::Message m;
  m.records = {{ip("198.18.1.50"), wire::Kind::delta, 0, first_n("198.18.1.50", 2), {}}};
  auto bytes = wire::encode(m);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_FALSE(wire::decode(std::span(bytes).first(cut))) << "truncated to " << cut;
  auto trailing = bytes;
  trailing.push_back(0);
  EXPECT_FALSE(wire::decode(trailing));
  auto magic = bytes;
  magic[0] = 'X';
  EXPECT_FALSE(wire::decode(magic));
  auto version = bytes;
  version[3] = 2;
  EXPECT_FALSE(wire::decode(version));
  auto reserved = bytes;
  reserved[11] = 1;  // a later version's field: not read as version 1
  EXPECT_FALSE(wire::decode(reserved));
  auto kind = bytes;
  kind[wire::kHeaderSize + 5] = 9;  // family(1) + address(4) -> kind
  EXPECT_FALSE(wire::decode(kind));
  auto count = bytes;
  count[wire::kHeaderSize + 7] = 0xff;  // add count high byte: more entries than bytes
  auto r = wire::decode(count);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("do not fit"), std::string::npos) << r.error().message;
}

TEST_F(ReplicationTest, ChangesAreBatchedIntoOneMessage) {
  Node a(ev, bus, 1), b(ev, bus, 2);
  a.rep->set_held({X});
  flush({&a, &b});
  const auto before = bus.messages;
  for (int i = 1; i <= 50; ++i) a.set_local(X, first_n("198.18.1.50", i));
  flush({&a});
  EXPECT_EQ(bus.messages - before, 1U) << "50 changes in one batch, one message";
  EXPECT_EQ(b.imported[X].size(), 50U);
  EXPECT_TRUE(b.imported[X].front().imported);
  // A gone connection leaves the other side in the next batch.
  auto v = first_n("198.18.1.50", 50);
  v.erase(v.begin());
  a.set_local(X, v);
  flush({&a});
  EXPECT_EQ(b.imported[X].size(), 49U);
  EXPECT_EQ(a.rep->status().state, "joined");
  EXPECT_EQ(b.rep->status().imported, 49U);
}

TEST_F(ReplicationTest, TheBatchTimerSendsWithinOneSecond) {
  Node a(ev, bus, 1), b(ev, bus, 2);
  // This node keeps the default batch (200 ms): the loop sends, no flush by hand.
  Replicator::Hooks h;
  std::vector<Association> mine = first_n("198.18.1.50", 3);
  h.local = [&](const IpAddress&) { return mine; };
  auto t = std::make_unique<Bus::Member>(bus, 3);
  Replicator c(ev, {}, std::move(t), h);
  c.set_held({X});
  const auto start = std::chrono::steady_clock::now();
  while (b.imported[X].size() < 3 && std::chrono::steady_clock::now() - start < 5s) {
    sd_event_run(ev, 50'000);
    bus.pump();
  }
  EXPECT_EQ(b.imported[X].size(), 3U);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(ReplicationTest, LargeTablesAreSplitIntoBoundedMessages) {
  ReplicationOptions o;
  o.max_message = 4096;
  Node a(ev, bus, 1, o), b(ev, bus, 2, o);
  a.local[X] = first_n("198.18.1.50", 10000);
  a.rep->set_held({X});
  flush({&a, &b});
  EXPECT_EQ(b.imported[X].size(), 10000U);
  EXPECT_LE(bus.largest, 4096U);
  EXPECT_GE(bus.messages, 10000U * 10 / 4096);
}

TEST_F(ReplicationTest, AJoinerReceivesTheFullTables) {
  Node a(ev, bus, 1);
  a.local[X] = first_n("198.18.1.50", 20);
  a.rep->set_held({X});
  flush({&a});
  Node c(ev, bus, 3);  // joins later: A sends its tables whole again
  flush({&a, &c});
  EXPECT_EQ(c.imported[X].size(), 20U);
}

TEST_F(ReplicationTest, TablesOfAnOriginThatLeftAreKept) {
  Node a(ev, bus, 1), b(ev, bus, 2);
  a.local[X] = first_n("198.18.1.50", 5);
  a.rep->set_held({X});
  flush({&a, &b});
  a.transport->crash();
  bus.membership_changed({}, {a.transport->id});
  flush({&b});
  EXPECT_EQ(b.imported[X].size(), 5U) << "the node taking over must tickle exactly these";
  // A release (its group died) sends nothing either.
  Node c(ev, bus, 3);
  c.local[X] = first_n("198.18.1.50", 2);
  c.rep->set_held({X});
  flush({&c, &b});
  c.rep->set_held({});
  c.set_local(X, {});
  flush({&c, &b});
  EXPECT_EQ(b.imported[X].size(), 5U);
}

TEST_F(ReplicationTest, AReleaseSendsTheChangesWaitingForTheBatch) {
  Node a(ev, bus, 1), b(ev, bus, 2);
  a.local[X] = first_n("198.18.1.50", 3);
  a.rep->set_held({X});
  flush({&a, &b});
  a.set_local(X, first_n("198.18.1.50", 4));  // a client connects; the batch is 1 h away
  const auto before = bus.messages;
  a.rep->releasing(X);  // its group fails now
  bus.pump();
  EXPECT_EQ(bus.messages - before, 1U);
  EXPECT_EQ(b.imported[X].size(), 4U) << "the new client is known before the sockets go";
  a.rep->releasing(X);  // nothing waits any more: nothing sent
  bus.pump();
  EXPECT_EQ(bus.messages - before, 1U);
}

TEST_F(ReplicationTest, ATakeoverDropsTheOldHoldersTcpEntriesEverywhere) {
  Node a(ev, bus, 1), b(ev, bus, 2), c(ev, bus, 3);
  Association udp;
  udp.proto = Proto::udp;
  udp.local = X;
  udp.remote = ip("198.19.0.2");
  a.local[X] = first_n("198.18.1.50", 4);
  a.local[X].push_back(udp);
  a.rep->set_held({X});
  flush({&a, &b, &c});
  ASSERT_EQ(b.imported[X].size(), 5U);
  ASSERT_EQ(c.imported[X].size(), 5U);
  a.transport->crash();
  // B takes over: it tickles what it imported (the daemon), then announces.
  b.rep->set_held({X});
  b.local[X] = {tcp("198.18.1.50", 777)};
  b.rep->taken_over(X);
  ASSERT_EQ(b.imported[X].size(), 1U) << "the tickled TCP connections go, the UDP client stays";
  EXPECT_EQ(b.imported[X][0].proto, Proto::udp);
  flush({&b, &c});
  ASSERT_EQ(c.imported[X].size(), 2U);  // n2's connection and n1's UDP client
  EXPECT_EQ(c.imported[X][0].remote_port, tcp("198.18.1.50", 777).remote_port);
  EXPECT_EQ(c.imported[X][1].proto, Proto::udp);
}

TEST_F(ReplicationTest, TheCapLimitsWhatIsSentAndSaysSo) {
  ReplicationOptions o;
  o.max_associations = 10;
  Node a(ev, bus, 1, o), b(ev, bus, 2, o);
  auto v = first_n("198.18.1.50", 15);
  v[14].tcp_state = 2;  // SYN_SENT: after the established ones
  a.local[X] = v;
  a.rep->set_held({X});
  flush({&a, &b});
  EXPECT_EQ(b.imported[X].size(), 10U);
  const auto st = a.rep->status();
  ASSERT_EQ(st.capped.size(), 1U);
  EXPECT_NE(st.capped[0].find("10 of 15"), std::string::npos) << st.capped[0];
  for (const auto& e : b.imported[X]) EXPECT_EQ(e.tcp_state, 1);
  a.set_local(X, first_n("198.18.1.50", 3));
  flush({&a, &b});
  EXPECT_TRUE(a.rep->status().capped.empty());
  EXPECT_EQ(b.imported[X].size(), 3U);
}

TEST_F(ReplicationTest, FlowControlDefersWithoutLosingChanges) {
  Node a(ev, bus, 1), b(ev, bus, 2);
  a.rep->set_held({X});
  flush({&a, &b});
  a.transport->try_again = 2;
  a.set_local(X, first_n("198.18.1.50", 4));
  flush({&a});
  EXPECT_TRUE(b.imported[X].empty());
  EXPECT_EQ(a.rep->status().try_again, 1U);
  flush({&a});
  flush({&a});
  EXPECT_EQ(b.imported[X].size(), 4U);
  EXPECT_EQ(a.rep->status().try_again, 2U);
}

TEST_F(ReplicationTest, OffWithoutCorosyncOrByConfiguration) {
  Node a(ev, bus, 1, {}, /*refuse=*/true);
  auto st = a.rep->status();
  EXPECT_TRUE(st.enabled);
  EXPECT_EQ(st.state, "off");
  EXPECT_NE(st.reason.find("cannot connect to corosync"), std::string::npos) << st.reason;
  Replicator off(ev, ReplicationOptions{.enabled = false}, nullptr, {});
  EXPECT_FALSE(off.status().enabled);
  EXPECT_EQ(off.status().state, "off");
  EXPECT_NE(off.status().reason.find("replication = false"), std::string::npos);
  off.set_held({X});
  off.local_changed(X);
  off.flush_now();  // nothing to send, nothing breaks
  // The hand-over API still works without the group.
  auto n = off.import_manual(X, first_n("198.18.1.50", 2));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2U);
}

TEST_F(ReplicationTest, ALostConnectionIsReopenedAndTheTablesResent) {
  Node a(ev, bus, 1), b(ev, bus, 2);
  a.local[X] = first_n("198.18.1.50", 3);
  a.rep->set_held({X});
  flush({&a, &b});
  a.transport->crash();
  a.transport->h.lost("corosync closed the connection");
  EXPECT_EQ(a.rep->status().state, "off");
  a.local[X] = first_n("198.18.1.50", 6);
  // The reconnect timer (1 s back-off) runs on the loop.
  const auto start = std::chrono::steady_clock::now();
  while (a.rep->status().state != "joined" && std::chrono::steady_clock::now() - start < 5s) sd_event_run(ev, 100'000);
  ASSERT_EQ(a.rep->status().state, "joined");
  flush({&a, &b});
  EXPECT_EQ(b.imported[X].size(), 6U);
}

TEST_F(ReplicationTest, ManualImportsAndReplicatedTablesAreUnited) {
  Node a(ev, bus, 1), b(ev, bus, 2);
  a.local[X] = first_n("198.18.1.50", 3);
  a.rep->set_held({X});
  flush({&a, &b});
  ASSERT_TRUE(b.rep->import_manual(X, {tcp("198.18.1.50", 500)}));
  EXPECT_EQ(b.imported[X].size(), 4U);
  EXPECT_FALSE(b.rep->import_manual(X, {tcp("198.18.9.9", 1)})) << "local is not the shared address";
}
