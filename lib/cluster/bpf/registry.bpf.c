/* The eBPF level of the association registry (issue 10, kernel-hooks-lab §1): sockops and
 * cgroup sock_addr programs, attached through bpf_links to one cgroup, that report the TCP
 * connections and UDP clients of tracked shared addresses, and the sockets bound and
 * listening on them (post_bind, LISTEN_CB, LISTEN -> CLOSE, sock_release), through a ring
 * buffer. Built
 * against the UAPI headers only (no vmlinux.h, no CO-RE reads, no comm/pid), so it needs
 * neither kernel BTF nor CAP_PERFMON: CAP_BPF + CAP_NET_ADMIN load and attach it.
 * Filtered in the kernel: only sockets whose local address is in `tracked` for their
 * network namespace produce events. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/socket.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "registry_events.h"

#define AF_INET 2
#define AF_INET6 10
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define TCP_LISTEN 10

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct mp_addr_key);
  __type(value, __u8);
} tracked SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct mp_udp_key);
  __type(value, __u8);
} udp_seen SEC(".maps");

/* Cookies of TCP sockets that produced events, so that sock_release (which cannot read
 * addresses) reports only those. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, __u8);
} tcp_cookies SEC(".maps");

/* Cookies of sockets bound or listening on a tracked address (post_bind, TCP_LISTEN_CB,
 * and those user space found in a walk), so that sock_release reports their close. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, __u8);
} bound_cookies SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Fills key from a UAPI address (ip4 or ip6[4], network order), folding IPv4-mapped
 * addresses to IPv4. */
static __always_inline void make_key(struct mp_addr_key *k, __u64 netns, __u32 family, __u32 ip4,
                                     const __u32 *ip6) {
  __builtin_memset(k, 0, sizeof(*k));
  k->netns = netns;
  if (family == AF_INET6 && ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff)) {
    family = AF_INET;
    ip4 = ip6[3];
  }
  k->family = family;
  if (family == AF_INET) {
    __builtin_memcpy(k->addr, &ip4, 4);
  } else {
    __builtin_memcpy(k->addr, ip6, 16);
  }
}

static __always_inline void put_addr(__u8 *dst, __u32 family, __u32 ip4, const __u32 *ip6) {
  if (family == AF_INET6 && ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff)) {
    family = AF_INET;
    ip4 = ip6[3];
  }
  if (family == AF_INET)
    __builtin_memcpy(dst, &ip4, 4);
  else
    __builtin_memcpy(dst, ip6, 16);
}

/* A zeroed event in the ring buffer for a socket whose local address is tracked in
 * netns, with netns, family and laddr set; NULL (nothing reserved) when the address is
 * not tracked or the ring buffer is full. The caller fills it in and submits it. */
static __always_inline struct mp_event *tracked_event(__u64 netns, __u32 family, __u32 lip4, const __u32 *lip6) {
  struct mp_addr_key k;
  make_key(&k, netns, family, lip4, lip6);
  if (!bpf_map_lookup_elem(&tracked, &k)) return NULL;
  struct mp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return NULL;
  __builtin_memset(e, 0, sizeof(*e));
  e->netns = netns;
  e->family = (__u8)k.family;
  __builtin_memcpy(e->laddr, k.addr, 16);
  return e;
}

SEC("sockops")
int mp_sockops(struct bpf_sock_ops *ctx) {
  /* Everything is read into locals before branching (clang 14 otherwise emits ctx
   * pointer arithmetic the verifier refuses). */
  const __u32 op = ctx->op;
  const __u32 family = ctx->family;
  const __u32 lip4 = ctx->local_ip4;
  const __u32 rip4 = ctx->remote_ip4;
  __u32 lip6[4], rip6[4];
  lip6[0] = ctx->local_ip6[0];
  lip6[1] = ctx->local_ip6[1];
  lip6[2] = ctx->local_ip6[2];
  lip6[3] = ctx->local_ip6[3];
  rip6[0] = ctx->remote_ip6[0];
  rip6[1] = ctx->remote_ip6[1];
  rip6[2] = ctx->remote_ip6[2];
  rip6[3] = ctx->remote_ip6[3];
  const __u32 lport = ctx->local_port;
  const __u32 rport = bpf_ntohl(ctx->remote_port);
  const __u32 arg0 = ctx->args[0];
  const __u32 arg1 = ctx->args[1];

  if (family != AF_INET && family != AF_INET6) return 1;
  __u32 type = MP_EV_TCP;
  __u8 state = 0, direction = MP_DIR_UNKNOWN;
  switch (op) {
    case BPF_SOCK_OPS_TCP_LISTEN_CB:
      /* accepted children inherit the flag; the listener's own LISTEN -> CLOSE is the
       * unlisten */
      bpf_sock_ops_cb_flags_set(ctx, BPF_SOCK_OPS_STATE_CB_FLAG);
      type = MP_EV_LISTEN;
      state = TCP_LISTEN;
      break;
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
      bpf_sock_ops_cb_flags_set(ctx, BPF_SOCK_OPS_STATE_CB_FLAG);
      state = TCP_SYN_SENT;
      direction = MP_DIR_OUT;
      break;
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
      bpf_sock_ops_cb_flags_set(ctx, BPF_SOCK_OPS_STATE_CB_FLAG);
      state = TCP_ESTABLISHED;
      direction = MP_DIR_OUT;
      break;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
      bpf_sock_ops_cb_flags_set(ctx, BPF_SOCK_OPS_STATE_CB_FLAG);
      state = TCP_ESTABLISHED;
      direction = MP_DIR_IN;
      break;
    case BPF_SOCK_OPS_STATE_CB:
      state = (__u8)arg1;
      if (arg0 == TCP_LISTEN)
        type = MP_EV_UNLISTEN;
      else if (state == TCP_CLOSE)
        type = MP_EV_TCP_GONE;
      break;
    default:
      return 1;
  }
  /* Other transitions without a peer (SYN_SENT before the connect's route, ...) are not
   * associations. */
  if (rport == 0 && type != MP_EV_LISTEN && type != MP_EV_UNLISTEN) return 1;

  struct mp_event *e = tracked_event(bpf_get_netns_cookie(ctx), family, lip4, lip6);
  if (!e) return 1;
  e->cookie = bpf_get_socket_cookie(ctx);
  e->type = type;
  e->state = state;
  e->direction = direction;
  e->protocol = IPPROTO_TCP;
  e->lport = (__u16)lport;
  e->rport = (__u16)rport;
  put_addr(e->raddr, family, rip4, rip6);
  __u8 one = 1;
  if (type == MP_EV_LISTEN) {
    bpf_map_update_elem(&bound_cookies, &e->cookie, &one, BPF_ANY);
  } else if (type == MP_EV_UNLISTEN) {
    /* still bound: sock_release reports the close */
  } else if (type == MP_EV_TCP_GONE) {
    bpf_map_delete_elem(&tcp_cookies, &e->cookie);
  } else {
    bpf_map_update_elem(&tcp_cookies, &e->cookie, &one, BPF_ANY);
  }
  bpf_ringbuf_submit(e, 0);
  return 1;
}

/* UDP: a datagram or connect() from a tracked address to a client registers that client
 * once per <netns, address, client> (the LRU insert with BPF_NOEXIST is the dedup). The
 * local address is the socket's bound one, or the IP_PKTINFO source of sendmsg. */
static __always_inline int udp_new(struct bpf_sock_addr *ctx, __u32 family, __u32 lip4, const __u32 *lip6,
                                   __u32 rip4, const __u32 *rip6, __u32 rport_be) {
  const __u64 netns = bpf_get_netns_cookie(ctx);
  struct mp_addr_key k;
  make_key(&k, netns, family, lip4, lip6);
  if (!bpf_map_lookup_elem(&tracked, &k)) return 1;
  struct mp_udp_key u;
  __builtin_memset(&u, 0, sizeof(u));
  u.netns = netns;
  u.family = k.family;
  __builtin_memcpy(u.local, k.addr, 16);
  put_addr(u.remote, family, rip4, rip6);
  __u8 one = 1;
  if (bpf_map_update_elem(&udp_seen, &u, &one, BPF_NOEXIST) != 0) return 1; /* known client */
  struct mp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    bpf_map_delete_elem(&udp_seen, &u); /* not reported: let the next datagram try again */
    return 1;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->netns = netns;
  e->type = MP_EV_UDP_NEW;
  e->family = (__u8)k.family;
  e->direction = MP_DIR_OUT;
  e->rport = bpf_ntohs((__u16)rport_be);
  __builtin_memcpy(e->laddr, k.addr, 16);
  __builtin_memcpy(e->raddr, u.remote, 16);
  bpf_ringbuf_submit(e, 0);
  return 1;
}

static __always_inline int udp4(struct bpf_sock_addr *ctx, int use_msg_src) {
  if (ctx->protocol != IPPROTO_UDP) return 1;
  const __u32 rip4 = ctx->user_ip4;
  const __u32 rport = ctx->user_port;
  __u32 lip4 = use_msg_src ? ctx->msg_src_ip4 : 0;
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return 1;
  if (lip4 == 0) lip4 = sk->src_ip4;
  const __u32 none[4] = {0, 0, 0, 0};
  return udp_new(ctx, AF_INET, lip4, none, rip4, none, rport);
}

static __always_inline int udp6(struct bpf_sock_addr *ctx, int use_msg_src) {
  if (ctx->protocol != IPPROTO_UDP) return 1;
  __u32 rip6[4], lip6[4];
  rip6[0] = ctx->user_ip6[0];
  rip6[1] = ctx->user_ip6[1];
  rip6[2] = ctx->user_ip6[2];
  rip6[3] = ctx->user_ip6[3];
  const __u32 rport = ctx->user_port;
  if (use_msg_src) {
    lip6[0] = ctx->msg_src_ip6[0];
    lip6[1] = ctx->msg_src_ip6[1];
    lip6[2] = ctx->msg_src_ip6[2];
    lip6[3] = ctx->msg_src_ip6[3];
  } else {
    lip6[0] = lip6[1] = lip6[2] = lip6[3] = 0;
  }
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return 1;
  if ((lip6[0] | lip6[1] | lip6[2] | lip6[3]) == 0) {
    lip6[0] = sk->src_ip6[0];
    lip6[1] = sk->src_ip6[1];
    lip6[2] = sk->src_ip6[2];
    lip6[3] = sk->src_ip6[3];
  }
  return udp_new(ctx, AF_INET6, 0, lip6, 0, rip6, rport);
}

SEC("cgroup/connect4")
int mp_connect4(struct bpf_sock_addr *ctx) { return udp4(ctx, 0); }
SEC("cgroup/connect6")
int mp_connect6(struct bpf_sock_addr *ctx) { return udp6(ctx, 0); }
SEC("cgroup/sendmsg4")
int mp_sendmsg4(struct bpf_sock_addr *ctx) { return udp4(ctx, 1); }
SEC("cgroup/sendmsg6")
int mp_sendmsg6(struct bpf_sock_addr *ctx) { return udp6(ctx, 1); }

/* bind: after a successful explicit bind() (TCP or UDP) to a tracked address, with the
 * port the kernel chose. The implicit bind of connect()/sendto() does not run this (the
 * socket is then an association, not a bound socket). */
static __always_inline int post_bind(struct bpf_sock *sk, __u32 family) {
  const __u32 protocol = sk->protocol;
  const __u32 lport = sk->src_port;
  const __u32 lip4 = sk->src_ip4;
  __u32 lip6[4];
  lip6[0] = sk->src_ip6[0];
  lip6[1] = sk->src_ip6[1];
  lip6[2] = sk->src_ip6[2];
  lip6[3] = sk->src_ip6[3];
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) return 1;
  struct mp_event *e = tracked_event(bpf_get_netns_cookie(sk), family, lip4, lip6);
  if (!e) return 1;
  e->cookie = bpf_get_socket_cookie(sk);
  e->type = MP_EV_BIND;
  e->protocol = (__u8)protocol;
  e->lport = (__u16)lport;
  __u8 one = 1;
  bpf_map_update_elem(&bound_cookies, &e->cookie, &one, BPF_ANY);
  bpf_ringbuf_submit(e, 0);
  return 1;
}

SEC("cgroup/post_bind4")
int mp_post_bind4(struct bpf_sock *sk) { return post_bind(sk, AF_INET); }
SEC("cgroup/post_bind6")
int mp_post_bind6(struct bpf_sock *sk) { return post_bind(sk, AF_INET6); }

/* The last close of a socket that produced events: a TCP association, or a socket bound
 * or listening on a tracked address (cookie only). It runs before the protocol's close,
 * so a listener's release comes before its LISTEN -> CLOSE: user space reports unlisten
 * then unbind from it. */
SEC("cgroup/sock_release")
int mp_sock_release(struct bpf_sock *sk) {
  const __u32 protocol = sk->protocol;
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) return 1;
  __u64 cookie = bpf_get_socket_cookie(sk);
  /* A delete that succeeds says the cookie was there (scalars only: the verifier refuses
   * arithmetic on two lookup results). */
  const long assoc = protocol == IPPROTO_TCP ? bpf_map_delete_elem(&tcp_cookies, &cookie) : -1;
  const long bound = bpf_map_delete_elem(&bound_cookies, &cookie);
  if (assoc != 0 && bound != 0) return 1;
  struct mp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 1;
  __builtin_memset(e, 0, sizeof(*e));
  e->netns = bpf_get_netns_cookie(sk);
  e->cookie = cookie;
  e->type = MP_EV_RELEASE;
  e->protocol = (__u8)protocol;
  bpf_ringbuf_submit(e, 0);
  return 1;
}
