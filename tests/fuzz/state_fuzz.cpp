// Fuzz target: state.json (parse_state). What parses must serialize and parse back to
// the same state.
#include <cstdint>
#include <cstdlib>

#include "daemon/state_file.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mpathd;
  auto state = parse_state(fuzz::as_text(data, size), "state.json");
  if (!state) return 0;
  const std::string once = serialize_state(*state);
  auto again = parse_state(once, "state.json");
  if (!again || serialize_state(*again) != once) std::abort();  // the round trip must be exact
  return 0;
}
