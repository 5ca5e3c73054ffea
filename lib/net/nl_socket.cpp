#include "net/nl_socket.hpp"

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <cerrno>
#include <cstring>

namespace mpathd::net::detail {

void NlSockDeleter::operator()(nl_sock* sk) const { nl_socket_free(sk); }

Result<NlSock> connect_route() {
  NlSock sk(nl_socket_alloc());
  if (!sk) return std::unexpected(errno_error(ENOMEM, "netlink socket"));
  nl_socket_disable_auto_ack(sk.get());
  if (int r = nl_connect(sk.get(), NETLINK_ROUTE); r < 0)
    return std::unexpected(nl_error(r, "netlink connect"));
  return sk;
}

Error errno_error(int err, std::string_view what) {
  Errc code = Errc::system;
  switch (err) {
    case EEXIST:
      code = Errc::exists;
      break;
    case ENODEV:
      code = Errc::no_such_interface;
      break;
    case EINVAL:
      code = Errc::invalid_argument;
      break;
    case EBUSY:
      code = Errc::busy;
      break;
    default:
      break;
  }
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Error{code, std::move(msg)};
}

Error nl_error(int nlerr, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += nl_geterror(nlerr);
  return Error{Errc::system, std::move(msg)};
}

}  // namespace mpathd::net::detail
