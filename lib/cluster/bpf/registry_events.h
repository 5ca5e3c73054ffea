/* The records the eBPF registry programs (registry.bpf.c) send to user space through the
 * ring buffer, and the keys of their maps. Shared by the BPF C program and lib/cluster's
 * C++ reader: plain C, UAPI types only. */
#ifndef MPATHD_REGISTRY_EVENTS_H
#define MPATHD_REGISTRY_EVENTS_H

#include <linux/types.h>

enum mp_event_type {
  MP_EV_TCP = 1,       /* a TCP connection on a tracked address: established or a new state */
  MP_EV_TCP_GONE = 2,  /* ... reached CLOSE */
  MP_EV_UDP_NEW = 3,   /* the first datagram/connect between a tracked address and this client */
  MP_EV_RELEASE = 4,   /* the last close of a socket that produced events (cookie only:
                          addresses are not readable in sock_release) */
  MP_EV_BIND = 5,      /* an explicit bind() to a tracked address succeeded (post_bind) */
  MP_EV_LISTEN = 6,    /* listen() on a tracked address (sockops TCP_LISTEN_CB) */
  MP_EV_UNLISTEN = 7,  /* a listener on a tracked address left LISTEN (sockops STATE_CB) */
};

enum mp_direction { MP_DIR_UNKNOWN = 0, MP_DIR_IN = 1, MP_DIR_OUT = 2 };

/* A tracked shared address in one network namespace (key of the `tracked` map). IPv4 is
 * family 2 with the address in addr[0..3]; an IPv4-mapped IPv6 socket counts as IPv4. */
struct mp_addr_key {
  __u64 netns;
  __u32 family; /* AF_INET or AF_INET6 */
  __u8 addr[16];
};

/* The UDP dedup key: <netns, shared address, client address>. */
struct mp_udp_key {
  __u64 netns;
  __u32 family;
  __u8 local[16];
  __u8 remote[16];
};

struct mp_event {
  __u64 netns;
  __u64 cookie;
  __u32 type;
  __u8 family;
  __u8 state; /* linux TCP_* numbering */
  __u8 direction;
  __u8 protocol; /* IPPROTO_TCP or IPPROTO_UDP (bind, listen, unlisten) */
  __u16 lport; /* host order */
  __u16 rport; /* host order */
  __u8 laddr[16];
  __u8 raddr[16];
};

#endif
