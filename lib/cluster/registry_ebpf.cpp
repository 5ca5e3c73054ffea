// The eBPF level of the association registry: the programs of bpf/registry.bpf.c, loaded
// from the skeleton built at build time, attached through bpf_links to the configured
// cgroup only, filtered in the kernel by a map of the tracked shared addresses of this
// network namespace, and read from their ring buffer on an sd-event io source. Besides
// the associations it reports the sockets bound and listening on tracked addresses
// (post_bind4/6, sockops LISTEN_CB and LISTEN -> CLOSE, sock_release by cookie). The
// sock_diag machinery below it (DiagRegistry) still walks at track() — sockops cannot see
// sockets from before the attach — and still follows the destroy notifications; it no
// longer walks periodically. Any failure leaves the caller on the sock_diag level with
// the reason.
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <unordered_map>

#include "cluster/registry_impl.hpp"
#include "guard/guard.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "registry.skel.h"
#pragma GCC diagnostic pop

extern "C" {
#include "cluster/bpf/registry_events.h"
}

namespace mpathd::cluster::detail {
namespace {

// libbpf's messages (the verifier log among them) are kept, not printed: the last lines
// go into the reason when loading fails. libbpf's print hook is process-wide.
std::string& libbpf_log() {
  static std::string log;
  return log;
}

int keep_libbpf_message(libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"  // libbpf's own format strings
  const int n = std::vsnprintf(line, sizeof line, fmt, args);
#pragma GCC diagnostic pop
  auto& log = libbpf_log();
  log += line;
  if (log.size() > 4096) log.erase(0, log.size() - 4096);
  return n;
}

// The first message libbpf gave (the one naming the failing step), on one line.
std::string first_message(const std::string& log) {
  std::string s = log.substr(0, log.find('\n'));
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

IpAddress addr_of(std::uint8_t family, const std::uint8_t* bytes) {
  IpAddress a;
  a.family = family == AF_INET ? Family::v4 : Family::v6;
  std::memcpy(a.bytes.data(), bytes, a.size());
  return a;
}

mp_addr_key key_for(std::uint64_t netns, const IpAddress& a) {
  mp_addr_key k{};
  k.netns = netns;
  k.family = a.is_v4() ? AF_INET : AF_INET6;
  std::memcpy(k.addr, a.bytes.data(), a.size());
  return k;
}

class EbpfRegistry final : public DiagRegistry {
 public:
  EbpfRegistry(sd_event* event, RegistryOptions opts, Registry::Changed changed, Registry::SocketsChanged sockets)
      : DiagRegistry(event, std::move(opts), std::move(changed), "", std::move(sockets)) {}

  ~EbpfRegistry() override {
    sd_event_source_disable_unref(source_);
    if (rb_) ring_buffer__free(rb_);
    for (auto* l : links_) bpf_link__destroy(l);
    if (skel_) mpathd_registry__destroy(skel_);
    if (cgroup_fd_ >= 0) close(cgroup_fd_);
  }

  // Returns "" on success, else why the eBPF level cannot be used.
  std::string start(const std::string& cgroup) {
    cgroup_fd_ = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd_ < 0) return "cannot open cgroup " + cgroup + ": " + std::strerror(errno);
    struct statfs fs{};
    if (fstatfs(cgroup_fd_, &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
      return cgroup + " is not a cgroup2 directory";
    if (auto r = netns_cookie(); !r.empty()) return r;
    libbpf_set_print(keep_libbpf_message);
    libbpf_log().clear();
    skel_ = mpathd_registry__open();
    if (!skel_) return std::string("eBPF open: ") + std::strerror(errno);
    if (int r = mpathd_registry__load(skel_); r != 0)
      return std::string("eBPF load: ") + std::strerror(-r) + " (" + first_message(libbpf_log()) + ")";
    for (bpf_program* p : {skel_->progs.mp_sockops, skel_->progs.mp_connect4, skel_->progs.mp_connect6,
                           skel_->progs.mp_sendmsg4, skel_->progs.mp_sendmsg6, skel_->progs.mp_sock_release,
                           skel_->progs.mp_post_bind4, skel_->progs.mp_post_bind6}) {
      bpf_link* l = bpf_program__attach_cgroup(p, cgroup_fd_);
      if (!l)
        return std::string("eBPF attach of ") + bpf_program__name(p) + " to " + cgroup + ": " +
               std::strerror(errno);
      links_.push_back(l);
    }
    rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &on_sample, this, nullptr);
    if (!rb_) return std::string("eBPF ring buffer: ") + std::strerror(errno);
    if (int r = sd_event_add_io(event(), &source_, ring_buffer__epoll_fd(rb_), EPOLLIN, &on_io, this); r < 0)
      return std::string("eBPF ring buffer io source: ") + std::strerror(-r);
    return "";
  }

  RegistryLevel level() const override { return RegistryLevel::ebpf; }
  std::string level_reason() const override { return ""; }

 protected:
  bool periodic_walks() const override { return false; }
  bool walk_keeps_udp() const override { return true; }

  void tracked(const IpAddress& a) override {
    const auto k = key_for(netns_, a);
    const std::uint8_t one = 1;
    bpf_map_update_elem(bpf_map__fd(skel_->maps.tracked), &k, &one, BPF_ANY);
  }

  void bound_changed(const BoundSocket& b, bool present) override {
    const int fd = bpf_map__fd(skel_->maps.bound_cookies);
    const std::uint8_t one = 1;
    if (present)
      bpf_map_update_elem(fd, &b.cookie, &one, BPF_ANY);
    else
      bpf_map_delete_elem(fd, &b.cookie);
  }

  void untracked(const IpAddress& a) override {
    const auto k = key_for(netns_, a);
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.tracked), &k);
    // Forget its UDP clients in the kernel too, so that they register again if the
    // address comes back.
    const int fd = bpf_map__fd(skel_->maps.udp_seen);
    std::vector<mp_udp_key> drop;
    mp_udp_key cur{}, next{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      if (next.netns == netns_ && next.family == k.family && std::memcmp(next.local, k.addr, 16) == 0)
        drop.push_back(next);
      cur = next;
      prev = &cur;
    }
    for (const auto& d : drop) bpf_map_delete_elem(fd, &d);
    for (auto it = cookies_.begin(); it != cookies_.end();)
      it = it->second.first == a ? cookies_.erase(it) : std::next(it);
  }

 private:
  std::string netns_cookie() {
    const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return std::string("socket: ") + std::strerror(errno);
    socklen_t len = sizeof netns_;
    const int r = getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &netns_, &len);
    const int err = errno;
    close(s);
    if (r != 0) return std::string("SO_NETNS_COOKIE: ") + std::strerror(err);
    return "";
  }

  static int on_io(sd_event_source*, int, std::uint32_t, void* user) {
    auto* self = static_cast<EbpfRegistry*>(user);
    return guard_void_callback("eBPF registry ring buffer", [self] { ring_buffer__consume(self->rb_); });
  }

  static int on_sample(void* ctx, void* data, std::size_t size) {
    if (size < sizeof(mp_event)) return 0;
    mp_event e;
    std::memcpy(&e, data, sizeof e);
    auto* self = static_cast<EbpfRegistry*>(ctx);
    return guard_callback("eBPF registry event", 0, [&] {
      self->handle(e);
      return 0;
    });
  }

  void handle(const mp_event& e) {
    if (e.netns != netns_) return;
    if (e.type == MP_EV_RELEASE) {
      if (auto it = cookies_.find(e.cookie); it != cookies_.end()) {
        store().erase_local(it->second.first, it->second.second);
        cookies_.erase(it);
      }
      if (auto b = bound().find(e.cookie); b != bound().end()) {
        // sock_release runs before the protocol's close: a listener is still listening.
        const BoundSocket gone = b->second;
        if (gone.listening) report_bound(SocketEvent::unlisten, gone);
        report_bound(SocketEvent::unbind, gone);
      }
      return;
    }
    const IpAddress shared = addr_of(e.family, e.laddr);
    if (!store().is_tracked(shared)) return;
    if (e.type == MP_EV_BIND || e.type == MP_EV_LISTEN || e.type == MP_EV_UNLISTEN) {
      handle_bound(e, shared);
      return;
    }
    Association a;
    a.local = shared;
    a.remote = addr_of(e.family, e.raddr);
    if (e.type == MP_EV_UDP_NEW) {
      a.proto = Proto::udp;
      if (const auto* cur = store().local(shared); cur && cur->contains(key_of(a))) return;
      store().set_local(shared, a);
      return;
    }
    a.proto = Proto::tcp;
    a.local_port = e.lport;
    a.remote_port = e.rport;
    a.tcp_state = e.state;
    const Key k = key_of(a);
    if (e.type == MP_EV_TCP_GONE) {
      store().erase_local(shared, k);
      cookies_.erase(e.cookie);
      return;
    }
    const auto* cur = store().local(shared);
    const auto known = cur ? cur->find(k) : decltype(cur->end()){};
    if (e.direction == MP_DIR_UNKNOWN) {
      if (!cur || known == cur->end()) return;  // the established callback adds it
      a.outgoing = known->second.outgoing;
    } else {
      a.outgoing = e.direction == MP_DIR_OUT;
    }
    cookies_[e.cookie] = {shared, k};
    store().set_local(shared, a);
  }

  void handle_bound(const mp_event& e, const IpAddress& shared) {
    const auto known = bound().find(e.cookie);
    BoundSocket b{.proto = e.protocol == IPPROTO_UDP ? Proto::udp : Proto::tcp,
                  .local = shared, .local_port = e.lport, .cookie = e.cookie};
    if (e.type == MP_EV_UNLISTEN) {
      if (known != bound().end() && known->second.listening) report_bound(SocketEvent::unlisten, known->second);
      return;
    }
    if (known == bound().end()) report_bound(SocketEvent::bind, b);  // for a listen: bound before the attach
    if (e.type == MP_EV_LISTEN && !bound().at(e.cookie).listening) {
      b.listening = true;
      report_bound(SocketEvent::listen, b);
    }
  }

  int cgroup_fd_ = -1;
  std::uint64_t netns_ = 0;
  mpathd_registry* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  ring_buffer* rb_ = nullptr;
  sd_event_source* source_ = nullptr;
  std::unordered_map<std::uint64_t, std::pair<IpAddress, Key>> cookies_;
};

}  // namespace

std::unique_ptr<Registry> create_ebpf_registry(sd_event* event, const RegistryOptions& opts,
                                               const Registry::Changed& changed,
                                               const Registry::SocketsChanged& sockets, std::string& reason) {
  auto r = std::make_unique<EbpfRegistry>(event, opts, changed, sockets);
  reason = r->start(opts.cgroup);
  if (!reason.empty()) return nullptr;
  return r;
}

}  // namespace mpathd::cluster::detail
