// Built without libcpg: the transport exists and says so, and replication is off.
#include "cluster/replication.hpp"

namespace mpathd::cluster {
namespace {
class NoCpg final : public GroupTransport {
 public:
  Result<GroupMember> open(const std::string&, Handlers) override {
    return fail(Errc::system, "mpathd was built without libcpg (Corosync CPG)");
  }
  void close() override {}
  Result<Sent> send(std::span<const std::uint8_t>) override { return fail(Errc::system, "built without libcpg"); }
};
}  // namespace
std::unique_ptr<GroupTransport> GroupTransport::create_cpg(sd_event*) { return std::make_unique<NoCpg>(); }
}  // namespace mpathd::cluster
