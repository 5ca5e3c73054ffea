// Fuzz target: the arguments of the D-Bus admin methods (lib/dbus/manager.cpp), without
// a bus: each line of the input is one call, "Method|arg|arg...", and goes through what
// the method handler does with its arguments (core/validate.hpp parsing, then the
// Engine command) on an Engine with one group of two members. sd-bus's own message
// decoding is not fuzzed here. Every argument also goes through each validator.
#include <cstdint>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/validate.hpp"
#include "fuzz_util.hpp"

namespace {

using namespace mpathd;

class FixedClock final : public TimeSource {
 public:
  TimePoint now() const override { return TimePoint{} + std::chrono::hours(1); }
};

Config initial_config() {
  Config c;
  GroupConfig g;
  g.name = "g0";
  g.interface = "ipmp0";
  g.members.push_back({"m0", false, {}});
  g.members.push_back({"m1", true, {}});
  g.data_addresses.push_back(*IpPrefix::parse("198.18.1.10/24"));
  c.groups.push_back(g);
  return c;
}

Mac mac_n(std::uint8_t n) {
  Mac m;
  m.bytes = {0x02, 0, 0, 0, 0, n};
  return m;
}

void validate_all(std::string_view arg) {
  (void)group_name_problem(arg);
  (void)ifname_problem(arg);
  (void)echo(arg);
  for (auto role : {AddressRole::data, AddressRole::shared, AddressRole::test}) (void)parse_managed_address(arg, role);
  (void)parse_address_maybe_prefix(arg);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FixedClock clock;
  Engine engine(clock, initial_config());
  for (std::uint8_t i = 0; i < 4; ++i)
    engine.observe_link({"m" + std::to_string(i), 10u + i, true, i != 3, mac_n(i), false});
  engine.start();

  for (auto line : fuzz::split(fuzz::as_text(data, size), "\n", 64)) {
    auto f = fuzz::split(line, "|", 4);
    for (auto arg : f) validate_all(arg);
    f.resize(4);
    const std::string_view method = f[0];
    const std::string a(f[1]), b(f[2]);
    if (method == "CreateGroup") {
      GroupConfig gc;
      gc.name = a;
      gc.interface = b;
      (void)engine.create_group(std::move(gc));
    } else if (method == "DestroyGroup") {
      (void)engine.destroy_group(a);
    } else if (method == "AddMember") {
      MemberConfig mc;
      mc.name = b;
      mc.standby = f[3] == "true";
      (void)engine.add_member(a, std::move(mc));
    } else if (method == "RemoveMember") {
      (void)engine.remove_member(a);
    } else if (method == "AddDataAddress") {
      if (auto p = parse_managed_address(b, AddressRole::data)) (void)engine.add_data_address(a, *p);
    } else if (method == "RemoveDataAddress") {
      if (auto addr = parse_address_maybe_prefix(b)) (void)engine.remove_data_address(a, *addr);
    } else if (method == "Offline") {
      (void)engine.offline(a);
    } else if (method == "Online") {
      (void)engine.online(a);
    } else if (method == "MoveAddress") {
      if (auto addr = parse_address_maybe_prefix(a)) (void)engine.move_address(*addr, b);
    }
  }
  return 0;
}
