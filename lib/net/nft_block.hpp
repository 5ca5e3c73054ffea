// mpathd's own nftables table (`inet mpathd`, in the caller's network namespace) that
// drops new inbound traffic to shared addresses while they are released: TCP segments
// opening a connection (SYN without ACK) and every UDP datagram. Stateless rules, so no
// conntrack is switched on in the namespace. The table exists only while an address is
// blocked. Through libnftables (CAP_NET_ADMIN); nothing of it leaves this file.
#pragma once

#include <memory>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"

namespace mpathd::net {

inline constexpr const char* kNftTable = "mpathd";  // family inet

class AddressBlock {
 public:
  static Result<AddressBlock> open();
  AddressBlock(AddressBlock&&) noexcept;
  AddressBlock& operator=(AddressBlock&&) noexcept;
  ~AddressBlock();

  // Idempotent: blocking a blocked address or unblocking one that is not blocked
  // succeeds and changes nothing. The last unblock deletes the table.
  Result<void> block(const IpAddress& addr);
  Result<void> unblock(const IpAddress& addr);
  // What the kernel's table holds now (also entries of an earlier mpathd run).
  Result<std::vector<IpAddress>> blocked();

 private:
  struct Ctx;
  explicit AddressBlock(std::unique_ptr<Ctx> c);
  Result<std::string> run(const std::string& cmds, bool json_output = false);
  std::unique_ptr<Ctx> c_;
};

}  // namespace mpathd::net
