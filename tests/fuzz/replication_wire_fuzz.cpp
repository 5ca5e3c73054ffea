// Fuzz target: the association replication wire format (cluster/replication.hpp,
// wire::decode), which reads what other nodes multicast. The input is one message. A
// message that decodes must encode back to the same bytes (the format has one encoding).
#include <cstdint>
#include <cstdlib>
#include <span>

#include "cluster/replication.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mpathd::cluster;
  const std::span<const std::uint8_t> in(data, size);
  auto m = wire::decode(in);
  if (!m) return 0;
  const auto again = wire::encode(*m);
  if (again.size() != size || !std::equal(again.begin(), again.end(), in.begin())) std::abort();
  return 0;
}
