// Test doubles for the unit tier: a clock the test moves, and an event recorder.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/engine.hpp"

namespace mpathd::test {

class FakeClock final : public TimeSource {
 public:
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }

 private:
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
};

inline Config make_config(std::vector<std::pair<std::string, bool>> members,
                          std::vector<std::string> addresses = {"198.18.1.10/24"}, bool failback = true) {
  Config c;
  c.failback = failback;
  GroupConfig g;
  g.name = "g0";
  g.interface = "ipmp0";
  for (auto& [name, standby] : members) g.members.push_back({name, standby, {}});
  for (auto& a : addresses) g.data_addresses.push_back(*IpPrefix::parse(a));
  g.routes.push_back({*IpPrefix::parse("0.0.0.0/0"), *IpAddress::parse("198.18.1.1")});
  c.groups.push_back(g);
  return c;
}

inline Mac mac_n(int n) {
  Mac m;
  m.bytes = {0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(n)};
  return m;
}

struct Rig {
  FakeClock clock;
  Engine engine;
  std::vector<Event> events;

  explicit Rig(Config c) : engine(clock, std::move(c)) {
    engine.subscribe([this](const Event& e) { events.push_back(e); });
  }
  void link(const std::string& name, bool up, int index = 0) {
    int idx = index ? index : 10 + (name.back() - '0');
    engine.observe_link({name, static_cast<unsigned>(idx), true, up, mac_n(idx), false});
  }
  void start_all_up(std::initializer_list<const char*> names) {
    for (auto* n : names) link(n, true);
    engine.start();
  }
  const Group& g() const { return *engine.find_group("g0"); }
  const Member& m(const std::string& n) const { return *engine.find_member(n); }
  std::string holder(const std::string& addr) const {
    for (auto& a : g().data)
      if (a.prefix.addr == *IpAddress::parse(addr)) return a.holder;
    return "?";
  }
  template <typename T>
  std::vector<T> of() const {
    std::vector<T> out;
    for (auto& e : events)
      if (auto* p = std::get_if<T>(&e)) out.push_back(*p);
    return out;
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (auto& e : events) out.push_back(describe(e));
    return out;
  }
};

}  // namespace mpathd::test
