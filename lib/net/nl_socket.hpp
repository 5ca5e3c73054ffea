// Internal to lib/net: owning handles for libnl sockets and error translation.
// Do not include from outside this folder.
#pragma once

#include <memory>
#include <string>

#include "core/error.hpp"

struct nl_sock;

namespace mpathd::net::detail {

struct NlSockDeleter {
  void operator()(nl_sock* sk) const;
};
using NlSock = std::unique_ptr<nl_sock, NlSockDeleter>;

// A connected NETLINK_ROUTE socket with auto-ACK off (requests ask for ACKs).
Result<NlSock> connect_route();

// "<what>: <strerror(err)>", with the code chosen from the errno.
Error errno_error(int err, std::string_view what);
// The same for a negative libnl return code.
Error nl_error(int nlerr, std::string_view what);

}  // namespace mpathd::net::detail
