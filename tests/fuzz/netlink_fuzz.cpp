// Fuzz target: rtnetlink messages to plain structs (parse_link/addr/route/rule).
// The input is one message. As from the netlink socket (NLMSG_OK), the header's length
// never exceeds the bytes received: a longer claim is cut to the input size. Each parser
// sees the message with the input's message type and with its own.
#include <linux/rtnetlink.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "net/netlink.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mpathd::net;
  if (size < sizeof(nlmsghdr)) return 0;
  nlmsghdr hdr{};
  std::memcpy(&hdr, data, sizeof hdr);
  const std::size_t len = hdr.nlmsg_len > size ? size : hdr.nlmsg_len;
  auto run = [&](std::uint16_t type, auto parse) {
    // The message alone in an aligned heap block of its size (rounded up to 4), so that
    // ASan catches reads past it.
    std::vector<std::uint32_t> storage((len + 3) / 4 + (len < sizeof hdr ? 4 : 0));
    std::memcpy(storage.data(), data, len < sizeof hdr ? sizeof hdr : len);
    auto* m = reinterpret_cast<nlmsghdr*>(storage.data());
    m->nlmsg_len = static_cast<std::uint32_t>(len);
    m->nlmsg_type = type;
    (void)parse(m);
  };
  run(hdr.nlmsg_type, parse_link);
  run(hdr.nlmsg_type, parse_addr);
  run(hdr.nlmsg_type, parse_route);
  run(hdr.nlmsg_type, parse_rule);
  run(RTM_NEWLINK, parse_link);
  run(RTM_NEWADDR, parse_addr);
  run(RTM_NEWROUTE, parse_route);
  run(RTM_NEWRULE, parse_rule);
  return 0;
}
