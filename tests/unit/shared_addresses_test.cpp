// The daemon's side of shared addresses (lib/daemon/shared_addresses.*): the order of
// the release and takeover steps around the data plane's reconcile, the registry's
// tracked list, and the hand-over API's checks. Unit tier: the Engine on a fake clock
// and a RECORDING FAKE of the lib/cluster seam (Registry, Actions); the real ones are
// exercised by tests/adapters/cluster_test.cpp and tests/integration/test_shared.py.
#include <gtest/gtest.h>

#include "daemon/shared_addresses.hpp"
#include "fake.hpp"

using namespace mpathd;
using namespace mpathd::test;

namespace {

using Log = std::vector<std::string>;

struct FakeRegistry final : cluster::Registry {
  Log& log;
  std::map<IpAddress, std::vector<cluster::Association>> known;
  explicit FakeRegistry(Log& l) : log(l) {}
  cluster::RegistryLevel level() const override { return cluster::RegistryLevel::sock_diag; }
  std::string level_reason() const override { return "eBPF disabled by the configuration"; }
  void track(const std::vector<IpAddress>& held) override {
    std::string s = "track";
    for (const auto& a : held) s += " " + a.str();
    log.push_back(s);
  }
  std::vector<cluster::Association> associations(const IpAddress& shared) const override {
    auto it = known.find(shared);
    return it == known.end() ? std::vector<cluster::Association>{} : it->second;
  }
  Result<std::size_t> import(const IpAddress& shared, std::vector<cluster::Association> entries) override {
    log.push_back("import " + shared.str() + " " + std::to_string(entries.size()));
    known[shared] = entries;
    return entries.size();
  }
};

struct FakeActions final : cluster::Actions {
  Log& log;
  explicit FakeActions(Log& l) : log(l) {}
  Result<void> block(const IpAddress& a) override {
    log.push_back("block " + a.str());
    return {};
  }
  Result<void> unblock(const IpAddress& a) override {
    log.push_back("unblock " + a.str());
    return {};
  }
  Result<std::size_t> destroy_sockets(const IpAddress& a) override {
    log.push_back("destroy " + a.str());
    return 2;
  }
  Result<std::size_t> tickle(const IpAddress& a, const std::vector<cluster::Association>& to, int, Duration) override {
    log.push_back("tickle " + a.str() + " " + std::to_string(to.size()));
    return to.size();
  }
};

Config shared_config() {
  Config c = make_config({{"m0", false}, {"m1", false}}, {"198.18.1.10/24"});
  c.groups[0].shared_addresses = {*IpPrefix::parse("198.18.1.50/24")};
  return c;
}

struct Daemonish {
  Log log;
  Rig rig{shared_config()};
  FakeRegistry* registry = nullptr;
  std::unique_ptr<SharedAddresses> shared;
  bool wait_for_stops = false;          // the stop hooks' answer (true: systemd units to stop)
  std::function<void()> stops_done;     // what they call once the units stopped
  Daemonish() {
    auto r = std::make_unique<FakeRegistry>(log);
    registry = r.get();
    shared = std::make_unique<SharedAddresses>(std::move(r), std::make_unique<FakeActions>(log));
    shared->stop_hooks = [this](const std::string& g, const IpAddress& a, std::function<void()> done) {
      log.push_back("stop-hooks " + g + " " + a.str());
      stops_done = std::move(done);
      return wait_for_stops;
    };
    shared->start_hooks = [this](const std::string& g, const IpAddress& a) { log.push_back("start-hooks " + g + " " + a.str()); };
    shared->changed = [this] { log.push_back("changed"); };
    rig.engine.subscribe([this](const Event& e) { shared->on_event(e); });
    rig.start_all_up({"m0", "m1"});
  }
  // What the daemon does after every input: reconcile (the address is added or
  // removed there), then after_reconcile().
  void after_input() {
    log.push_back("reconcile");
    shared->after_reconcile(rig.engine);
  }
  cluster::ReplicationStatus replicated_status() const { return shared->replication_status(); }
};

const IpAddress kShared = *IpAddress::parse("198.18.1.50");

}  // namespace

TEST(SharedAddresses, TakeoverTracksThenTicklesTheKnownClients) {
  Daemonish d;
  d.after_input();
  d.log.clear();
  cluster::Association a{cluster::Proto::tcp, kShared, 80, *IpAddress::parse("198.18.2.20"), 40001, 1, false, true};
  ASSERT_TRUE(d.shared->import_json(kShared, R"([{"proto": "tcp", "local": "198.18.1.50", "local_port": 80,
      "remote": "198.18.2.20", "remote_port": 40001, "state": "established", "direction": "incoming"}])"));
  ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
  d.after_input();
  EXPECT_EQ(d.log, (Log{"import 198.18.1.50 1", "reconcile", "track 198.18.1.50", "tickle 198.18.1.50 1", "start-hooks g0 198.18.1.50"}));
  EXPECT_EQ(d.registry->known[kShared][0].remote_port, a.remote_port);
  // Nothing more on the next input: one tickle per takeover.
  d.log.clear();
  d.after_input();
  EXPECT_EQ(d.log, (Log{"reconcile"}));
}

TEST(SharedAddresses, ReleaseBlocksStopsDestroysBeforeTheRemovalAndUnblocksAfter) {
  Daemonish d;
  ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
  d.after_input();
  d.log.clear();
  ASSERT_TRUE(d.rig.engine.release_shared(kShared));
  d.after_input();
  EXPECT_EQ(d.log, (Log{"block 198.18.1.50", "stop-hooks g0 198.18.1.50", "destroy 198.18.1.50", "reconcile",
                        "unblock 198.18.1.50", "track"}));
}

TEST(SharedAddresses, GroupFailureRunsTheSameRelease) {
  Daemonish d;
  ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
  d.after_input();
  d.log.clear();
  d.rig.link("m0", false);
  d.rig.link("m1", false);
  d.after_input();
  EXPECT_EQ(d.log, (Log{"block 198.18.1.50", "stop-hooks g0 198.18.1.50", "destroy 198.18.1.50", "reconcile",
                        "unblock 198.18.1.50", "track"}));
}

// The systemd hook's stops: the release waits for them with the address kept in place
// (kept() is what the daemon's reconcile keeps), then destroys and removes.
TEST(SharedAddresses, AReleaseWaitsForItsStopsWithTheAddressKept) {
  Daemonish d;
  ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
  d.after_input();
  const std::string holder = d.rig.g().find_shared(kShared)->holder;
  d.wait_for_stops = true;
  d.log.clear();
  ASSERT_TRUE(d.rig.engine.release_shared(kShared));
  d.after_input();
  EXPECT_EQ(d.log, (Log{"block 198.18.1.50", "stop-hooks g0 198.18.1.50", "reconcile", "track"}));
  ASSERT_EQ(d.shared->kept().size(), 1u);
  EXPECT_EQ(d.shared->kept()[0], (KeptAddress{"g0", *IpPrefix::parse("198.18.1.50/24"), holder}));
  EXPECT_TRUE(d.shared->pending(kShared));
  bool answered = false, other = false;
  d.shared->when_released(0, [&] { answered = true; });  // the release's own command waits
  EXPECT_FALSE(answered);
  d.shared->when_released(d.shared->releases_begun(), [&] { other = true; });  // a later one does not
  EXPECT_TRUE(other);
  // The data plane keeps it where it was while the Engine has it released.
  const auto want = desired_dataplane(d.rig.engine.groups(), d.rig.engine.config(), d.shared->kept());
  EXPECT_TRUE(std::any_of(want.addresses.begin(), want.addresses.end(), [&](const PlacedAddress& p) {
    return p.prefix.addr == kShared && p.ifname == holder;
  }));
  d.log.clear();
  ASSERT_TRUE(d.stops_done);
  d.stops_done();
  EXPECT_TRUE(answered);
  EXPECT_FALSE(d.shared->pending(kShared));
  EXPECT_TRUE(d.shared->kept().empty());
  d.after_input();
  EXPECT_EQ(d.log, (Log{"destroy 198.18.1.50", "changed", "reconcile", "unblock 198.18.1.50"}));
  d.log.clear();
  d.stops_done();  // called twice: nothing
  EXPECT_TRUE(d.log.empty());
}

TEST(SharedAddresses, AGroupFailureReleaseIssuesTheStopsButDoesNotWait) {
  Daemonish d;
  ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
  d.after_input();
  d.wait_for_stops = true;
  d.log.clear();
  d.rig.link("m0", false);
  d.rig.link("m1", false);
  d.after_input();
  EXPECT_EQ(d.log, (Log{"block 198.18.1.50", "stop-hooks g0 198.18.1.50", "destroy 198.18.1.50", "reconcile",
                        "unblock 198.18.1.50", "track"}));
  EXPECT_TRUE(d.shared->kept().empty());
  d.log.clear();
  d.stops_done();  // the stops ended later: nothing more to do
  EXPECT_TRUE(d.log.empty());
}

TEST(SharedAddresses, ATakeoverCutsAPendingReleaseShort) {
  Daemonish d;
  ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
  d.after_input();
  d.wait_for_stops = true;
  ASSERT_TRUE(d.rig.engine.release_shared(kShared));
  d.after_input();
  auto first_done = d.stops_done;
  d.log.clear();
  ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
  d.after_input();
  EXPECT_EQ(d.log, (Log{"destroy 198.18.1.50", "unblock 198.18.1.50", "reconcile", "track 198.18.1.50",
                        "tickle 198.18.1.50 0", "start-hooks g0 198.18.1.50"}));
  EXPECT_FALSE(d.shared->pending(kShared));
  d.log.clear();
  first_done();  // the stops of the release cut short end: nothing
  EXPECT_TRUE(d.log.empty());
}

TEST(SharedAddresses, AMoveInsideTheGroupTicklesNobody) {
  Daemonish d;
  ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
  d.after_input();
  d.log.clear();
  d.rig.link(d.rig.g().find_shared(kShared)->holder, false);
  d.after_input();
  EXPECT_EQ(d.log, (Log{"reconcile"}));
}

TEST(SharedAddresses, BadImportChangesNothing) {
  Daemonish d;
  auto r = d.shared->import_json(kShared, "[{\"proto\": \"tcp\"");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_TRUE(d.log.empty());
  EXPECT_EQ(d.shared->level(), "sock-diag");
}

namespace {
// The group as the daemon's SharedAddresses sees it: what it multicasts, decoded.
struct RecordingGroup final : cluster::GroupTransport {
  std::vector<cluster::wire::Message>& sent;
  explicit RecordingGroup(std::vector<cluster::wire::Message>& s) : sent(s) {}
  Result<cluster::GroupMember> open(const std::string&, Handlers) override { return cluster::GroupMember{1, 1}; }
  void close() override {}
  Result<Sent> send(std::span<const std::uint8_t> m) override {
    sent.push_back(*cluster::wire::decode(m));
    return Sent::sent;
  }
};
}  // namespace

TEST(SharedAddresses, ReplicationFollowsTheHeldAddressesAndAnnouncesATakeoverAfterTheTickle) {
  sd_event* ev = nullptr;
  ASSERT_GE(sd_event_new(&ev), 0);
  {
    Daemonish d;
    std::vector<cluster::wire::Message> sent;
    d.shared->start_replication(ev, {}, std::make_unique<RecordingGroup>(sent), "", {});
    // A manual import goes through the replicator, which imports the union.
    ASSERT_TRUE(d.shared->import_json(kShared, R"([{"proto": "tcp", "local": "198.18.1.50", "local_port": 80,
        "remote": "198.18.2.20", "remote_port": 40001, "state": "established", "direction": "incoming"}])"));
    EXPECT_EQ(d.replicated_status().state, "joined");
    ASSERT_TRUE(d.rig.engine.takeover_shared(kShared));
    d.after_input();
    ASSERT_GE(d.log.size(), 3U);
    EXPECT_EQ(d.log[d.log.size() - 3], "tickle 198.18.1.50 1") << "the manual import is tickled";
    EXPECT_EQ(d.log[d.log.size() - 2], "import 198.18.1.50 1") << "then the union again (a manual import stays)";
    EXPECT_EQ(d.log.back(), "start-hooks g0 198.18.1.50") << "and the services start last";
    // The registry's entries are the holder's "local" ones here (the fake has no kernel):
    // the announcement carries them, flagged as a takeover.
    d.registry->known[kShared] = {{cluster::Proto::tcp, kShared, 80, *IpAddress::parse("198.18.2.30"), 5000, 1, false, false}};
    d.shared->association_changed(kShared, d.registry->known[kShared][0]);
    d.shared->replicator_flush();
    ASSERT_FALSE(sent.empty());
    const auto& rec = sent.back().records.at(0);
    EXPECT_EQ(rec.address, kShared);
    EXPECT_EQ(rec.kind, cluster::wire::Kind::full_first);
    EXPECT_EQ(rec.flags, cluster::wire::kTakeover);
    ASSERT_EQ(rec.add.size(), 1U);
    EXPECT_EQ(rec.add[0].remote_port, 5000);
    // Released: nothing is sent (the others keep the table).
    const auto n = sent.size();
    ASSERT_TRUE(d.rig.engine.release_shared(kShared));
    d.after_input();
    d.shared->replicator_flush();
    EXPECT_EQ(sent.size(), n);
  }
  sd_event_unref(ev);
}
