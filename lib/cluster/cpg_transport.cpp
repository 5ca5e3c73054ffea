// GroupTransport over Corosync CPG (libcpg): a thin adapter. The CPG fd is on the
// daemon's sd-event loop and every wake-up runs cpg_dispatch(CS_DISPATCH_ALL), so no
// callback of libcpg ever waits; sends are cpg_mcast_joined(CPG_TYPE_AGREED), and
// CS_ERR_TRY_AGAIN (flow control) is returned to the Replicator, which retries later.
// Everything above this file is tested with a fake (tests/unit/replication_test.cpp);
// this file with a real corosync (tests/integration/test_replication.py).
#include <corosync/cpg.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "cluster/replication.hpp"
#include "guard/guard.hpp"

namespace mpathd::cluster {
namespace {

std::string cs_str(cs_error_t e) {
  switch (e) {
    case CS_ERR_LIBRARY: return "cannot connect to corosync (CS_ERR_LIBRARY: is corosync running here?)";
    case CS_ERR_TRY_AGAIN: return "CS_ERR_TRY_AGAIN";
    case CS_ERR_BAD_HANDLE: return "connection to corosync closed (CS_ERR_BAD_HANDLE)";
    case CS_ERR_ACCESS: return "access denied by corosync (CS_ERR_ACCESS)";
    case CS_ERR_NOT_EXIST: return "CS_ERR_NOT_EXIST";
    case CS_ERR_EXIST: return "already a member (CS_ERR_EXIST)";
    case CS_ERR_TOO_BIG: return "message too big (CS_ERR_TOO_BIG)";
    default: return "corosync error " + std::to_string(static_cast<int>(e));
  }
}

std::vector<GroupMember> members_of(const cpg_address* list, std::size_t n) {
  std::vector<GroupMember> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back({list[i].nodeid, list[i].pid});
  return out;
}

class CpgTransport final : public GroupTransport {
 public:
  explicit CpgTransport(sd_event* event) : event_(sd_event_ref(event)) {}
  ~CpgTransport() override {
    close();
    sd_event_unref(event_);
  }

  Result<GroupMember> open(const std::string& group, Handlers handlers) override {
    close();
    handlers_ = std::move(handlers);
    if (group.empty() || group.size() >= CPG_MAX_NAME_LENGTH)
      return fail(Errc::invalid_argument, "process group name \"" + group + "\" is empty or too long");
    cpg_callbacks_t cb{};
    cb.cpg_deliver_fn = &on_deliver;
    cb.cpg_confchg_fn = &on_confchg;
    cs_error_t e = cpg_initialize(&handle_, &cb);
    if (e != CS_OK) {
      handle_ = 0;
      return fail(Errc::system, "cpg_initialize: " + cs_str(e));
    }
    cpg_context_set(handle_, this);
    std::memset(&name_, 0, sizeof name_);
    std::memcpy(name_.value, group.data(), group.size());
    name_.length = static_cast<std::uint32_t>(group.size());
    unsigned int nodeid = 0;
    if (e = cpg_local_get(handle_, &nodeid); e != CS_OK) {
      close();
      return fail(Errc::system, "cpg_local_get: " + cs_str(e));
    }
    // A join answered TRY_AGAIN is not retried here (no spinning): the Replicator's
    // back-off retries the whole open.
    if (e = cpg_join(handle_, &name_); e != CS_OK) {
      close();
      return fail(Errc::system, "cpg_join " + group + ": " + cs_str(e));
    }
    int fd = -1;
    if (e = cpg_fd_get(handle_, &fd); e != CS_OK) {
      close();
      return fail(Errc::system, "cpg_fd_get: " + cs_str(e));
    }
    if (int r = sd_event_add_io(event_, &io_, fd, EPOLLIN, &on_io, this); r < 0) {
      close();
      return fail(Errc::system, std::string("sd_event_add_io: ") + std::strerror(-r));
    }
    return GroupMember{nodeid, static_cast<std::uint32_t>(getpid())};
  }

  void close() override {
    if (io_) {
      sd_event_source_disable_unref(io_);
      io_ = nullptr;
    }
    if (handle_) {
      cpg_finalize(handle_);  // also leaves the group
      handle_ = 0;
    }
  }

  Result<Sent> send(std::span<const std::uint8_t> message) override {
    if (!handle_) return fail(Errc::system, "not connected");
    iovec iov{const_cast<std::uint8_t*>(message.data()), message.size()};
    const cs_error_t e = cpg_mcast_joined(handle_, CPG_TYPE_AGREED, &iov, 1);
    if (e == CS_OK) return Sent::sent;
    if (e == CS_ERR_TRY_AGAIN) return Sent::try_again;
    return fail(Errc::system, "cpg_mcast_joined: " + cs_str(e));
  }

 private:
  static CpgTransport* self_of(cpg_handle_t h) {
    void* ctx = nullptr;
    cpg_context_get(h, &ctx);
    return static_cast<CpgTransport*>(ctx);
  }
  static void on_deliver(cpg_handle_t h, const cpg_name*, uint32_t nodeid, uint32_t pid, void* msg, size_t len) {
    auto* self = self_of(h);
    if (self && self->handlers_.message)
      self->handlers_.message({nodeid, pid}, std::span(static_cast<const std::uint8_t*>(msg), len));
  }
  static void on_confchg(cpg_handle_t h, const cpg_name*, const cpg_address* members, size_t nm,
                         const cpg_address* left, size_t nl, const cpg_address* joined, size_t nj) {
    auto* self = self_of(h);
    if (self && self->handlers_.membership)
      self->handlers_.membership(members_of(members, nm), members_of(joined, nj), members_of(left, nl));
  }
  static int on_io(sd_event_source*, int, std::uint32_t revents, void* user) {
    auto* self = static_cast<CpgTransport*>(user);
    return guard_void_callback("corosync cpg", [self, revents] {
      const cs_error_t e = cpg_dispatch(self->handle_, CS_DISPATCH_ALL);
      if (e == CS_OK || e == CS_ERR_TRY_AGAIN) {
        if (!(revents & (EPOLLHUP | EPOLLERR))) return;
      }
      // Corosync went away: stop watching; the Replicator reconnects with back-off.
      const std::string why = e == CS_OK ? std::string("corosync closed the connection") : "cpg_dispatch: " + cs_str(e);
      self->close();
      if (self->handlers_.lost) self->handlers_.lost(why);
    });
  }

  sd_event* event_;
  Handlers handlers_;
  cpg_handle_t handle_ = 0;
  cpg_name name_{};
  sd_event_source* io_ = nullptr;
};

}  // namespace

std::unique_ptr<GroupTransport> GroupTransport::create_cpg(sd_event* event) {
  return std::make_unique<CpgTransport>(event);
}

}  // namespace mpathd::cluster
