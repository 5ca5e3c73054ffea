/* mpathd hook ABI: plugins that mpathd loads to learn about failovers and about the
 * sockets on cluster (shared) addresses. The one installed header of mpathd; plain C99.
 * Reference: mpathd-hooks(7). pkg-config: mpathd-hook.
 *
 * The contract (after the Solaris/Sun Cluster TCP/IP cluster hooks, PSARC 1997/314 and
 * 2008's netstack revision, and OpenVPN's plugin v3):
 *   - A plugin is a shared object exporting one symbol, MPATHD_HOOK_INIT_SYMBOL
 *     ("mpathd_hook_init_v1"): the major version is in the name.
 *   - Every struct starts with its size (uint32_t). Fields are only ever added at the
 *     end, with a minor version bump; read a field only when MPATHD_HOOK_HAS() says the
 *     struct is large enough. A plugin built for the same major and a newer minor loads
 *     (the host ignores what it does not know); another major is refused.
 *   - The plugin chooses its events with a mask (MPATHD_HOOK_BIT()).
 *   - Every callback gets the network namespace id (the seed's netstack id) first and a
 *     `void *args` last: a `const struct mpathd_hook_args *` (its plugin_data is what
 *     init stored; later minors add fields there, never to the signatures).
 *   - Callbacks run in mpathd-hookhost, a process of the plugin's own, one call at a
 *     time, in the daemon's event order, each within the hook's time budget. A callback
 *     that crashes, hangs or throws costs the plugin its process (it is restarted with
 *     back-off, and disabled when it keeps failing), never a failover.
 */
#ifndef MPATHD_HOOK_H
#define MPATHD_HOOK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPATHD_HOOK_VERSION_MAJOR 1
#define MPATHD_HOOK_VERSION_MINOR 0
#define MPATHD_HOOK_INIT_SYMBOL "mpathd_hook_init_v1"

/* The network namespace id: the inode number of the namespace (as in
 * `stat -L -c %i /proc/self/ns/net`, `lsns -t net`), the namespace mpathd runs in. */
typedef uint64_t mpathd_netns_id;

/* True when the struct at p (which starts with its size) holds field. */
#define MPATHD_HOOK_HAS(p, type, field) \
  ((p)->size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* Event types; the mask bit of type t is MPATHD_HOOK_BIT(t). The names in brackets
 * are those of mpathd.conf's `events` and of MPATHD_EVENT for exec hooks. */
enum mpathd_hook_event_type {
  MPATHD_HOOK_MEMBER_CHANGED = 1,   /* [member-changed] state or flags of a member */
  MPATHD_HOOK_GROUP_CHANGED = 2,    /* [group-changed] ok / degraded / failed */
  MPATHD_HOOK_ADDRESS_MOVED = 3,    /* [address-moved] a data address changed holder */
  MPATHD_HOOK_TAKEOVER_BEFORE = 4,  /* [takeover-before] a shared address is about to be added */
  MPATHD_HOOK_TAKEOVER_AFTER = 5,   /* [takeover-after] added and announced */
  MPATHD_HOOK_RELEASE_BEFORE = 6,   /* [release-before] about to be removed (stop services now) */
  MPATHD_HOOK_RELEASE_AFTER = 7,    /* [release-after] removed */
  MPATHD_HOOK_BIND = 8,             /* [bind] a socket bound to a shared address */
  MPATHD_HOOK_UNBIND = 9,           /* [unbind] */
  MPATHD_HOOK_LISTEN = 10,          /* [listen] */
  MPATHD_HOOK_UNLISTEN = 11,        /* [unlisten] */
  MPATHD_HOOK_CONNECT = 12,         /* [connect] a TCP association (is_outgoing) */
  MPATHD_HOOK_DISCONNECT = 13,      /* [disconnect] */
  MPATHD_HOOK_UDP_ASSOCIATION = 14  /* [udp-association] a UDP client seen for the first time */
};
#define MPATHD_HOOK_EVENT_MAX 14
#define MPATHD_HOOK_BIT(t) (UINT32_C(1) << (t))
#define MPATHD_HOOK_ALL_EVENTS (((UINT32_C(1) << (MPATHD_HOOK_EVENT_MAX + 1)) - 1) & ~UINT32_C(1))

enum mpathd_hook_log_level {
  MPATHD_HOOK_LOG_ERROR = 3,
  MPATHD_HOOK_LOG_WARNING = 4,
  MPATHD_HOOK_LOG_INFO = 6,
  MPATHD_HOOK_LOG_DEBUG = 7
};

/* An address: family AF_INET (4 bytes used) or AF_INET6 (16), network byte order. */
struct mpathd_hook_address {
  uint16_t family;
  uint8_t prefix_length; /* 0 where no prefix is meant */
  uint8_t reserved;
  uint8_t bytes[16];
};

/* The `void *args` of every callback. */
struct mpathd_hook_args {
  uint32_t size;
  uint32_t reserved;
  void *plugin_data;       /* what init stored in mpathd_hook_plugin.plugin_data */
  uint64_t sequence;       /* of the event, from 1, per hook; gaps = events lost */
  uint64_t events_lost;    /* events this hook lost so far (queue overflow, crashes) */
};

/* Member, group and data-address events. Strings are never NULL ("" = none) and valid
 * only during the call. States and reasons are those of status.json and ipmpctl. */
struct mpathd_hook_member_event {
  uint32_t size;
  uint32_t flags_before;   /* FAILED 1, RUNNING 2, STANDBY 4, INACTIVE 8, OFFLINE 16, HWADDRDUP 32 */
  uint32_t flags_after;
  uint32_t reserved;
  const char *group;
  const char *member;
  const char *state_before; /* ok, failed, offline, unknown */
  const char *state_after;
  const char *reason;       /* link-down, probe-loss, ... */
};

struct mpathd_hook_group_event {
  uint32_t size;
  uint32_t reserved;
  const char *group;
  const char *state_before; /* ok, degraded, failed */
  const char *state_after;
  const char *reason;
};

struct mpathd_hook_address_event {
  uint32_t size;
  uint32_t reserved;
  const char *group;
  const char *from;   /* member that held it, "" = nowhere */
  const char *to;     /* member that holds it now, "" = nowhere */
  const char *reason;
  struct mpathd_hook_address address;
};

/* Shared-address takeover and release, before and after (seed 003's start_net and
 * stop_net points). "before" is queued before mpathd touches the kernel (for a release:
 * before the address is blocked and its sockets destroyed), "after" once the kernel is
 * in line. Delivery is asynchronous like every event: a plugin cannot hold a release
 * up. */
struct mpathd_hook_shared_event {
  uint32_t size;
  uint32_t type; /* MPATHD_HOOK_TAKEOVER_BEFORE .. MPATHD_HOOK_RELEASE_AFTER */
  const char *group;
  const char *reason;
  struct mpathd_hook_address address;
};

/* One TCP association for the walk (seed 000's cl_tcp_info_t). */
struct mpathd_hook_tcp_info {
  uint32_t size;
  uint16_t family;
  uint8_t state;       /* Linux TCP_* numbering: 1 = ESTABLISHED */
  uint8_t reserved;
  uint8_t local[16];
  uint8_t remote[16];
  uint16_t local_port; /* host byte order */
  uint16_t remote_port;
};

/* What the plugin returns from init. Callbacks it does not want may stay NULL; the mask
 * decides what is delivered. Addresses (laddr, faddr) point to 4 or 16 bytes in network
 * byte order; ports are in host byte order. */
struct mpathd_hook_plugin {
  uint32_t size;          /* sizeof(struct mpathd_hook_plugin) as the plugin was built */
  uint16_t version_major; /* MPATHD_HOOK_VERSION_MAJOR */
  uint16_t version_minor; /* MPATHD_HOOK_VERSION_MINOR */
  uint32_t event_mask;    /* MPATHD_HOOK_BIT() of the events wanted */
  uint32_t reserved;
  const char *name;       /* for logs; may be NULL */
  void *plugin_data;      /* handed back in mpathd_hook_args.plugin_data */

  void (*member_changed)(mpathd_netns_id ns, const struct mpathd_hook_member_event *ev, void *args);
  void (*group_changed)(mpathd_netns_id ns, const struct mpathd_hook_group_event *ev, void *args);
  void (*address_moved)(mpathd_netns_id ns, const struct mpathd_hook_address_event *ev, void *args);
  void (*shared_address)(mpathd_netns_id ns, const struct mpathd_hook_shared_event *ev, void *args);
  /* Seed 000's socket-level hooks, for sockets on shared addresses (not the wildcard:
   * mpathd-hooks(7), WHAT IS FED). protocol is IPPROTO_TCP or IPPROTO_UDP, family
   * AF_INET or AF_INET6. A socket's events come in the order of its life: bind, listen,
   * unlisten, unbind. */
  void (*bind)(mpathd_netns_id ns, uint8_t protocol, uint16_t family, const uint8_t *laddr, uint16_t lport,
               void *args);
  void (*unbind)(mpathd_netns_id ns, uint8_t protocol, uint16_t family, const uint8_t *laddr, uint16_t lport,
                 void *args);
  void (*listen)(mpathd_netns_id ns, uint8_t protocol, uint16_t family, const uint8_t *laddr, uint16_t lport,
                 void *args);
  void (*unlisten)(mpathd_netns_id ns, uint8_t protocol, uint16_t family, const uint8_t *laddr, uint16_t lport,
                   void *args);
  void (*connect)(mpathd_netns_id ns, uint8_t protocol, int is_outgoing, uint16_t family, const uint8_t *laddr,
                  uint16_t lport, const uint8_t *faddr, uint16_t fport, void *args);
  void (*disconnect)(mpathd_netns_id ns, uint8_t protocol, uint16_t family, const uint8_t *laddr, uint16_t lport,
                     const uint8_t *faddr, uint16_t fport, void *args);
  /* A UDP client new to this address (seed 000: registered at connect/sendto only
   * when the destination is new). fport is 0 when unknown. */
  void (*udp_association)(mpathd_netns_id ns, uint16_t family, const uint8_t *laddr, uint16_t lport,
                          const uint8_t *faddr, uint16_t fport, void *args);
  /* Called once when the host stops cleanly (mpathd stops, the hook is removed). */
  void (*fini)(void *plugin_data);
};

/* What the host offers; valid until fini returns. */
struct mpathd_hook_host {
  uint32_t size;
  uint16_t version_major; /* of the host */
  uint16_t version_minor;
  mpathd_netns_id netns;
  const char *hook_name;      /* the [[hook]] name in mpathd.conf */
  int argc;                   /* the hook's `args` from mpathd.conf */
  const char *const *argv;
  /* Logs one line to mpathd's log (rate-limited per hook: a flood is summarised). */
  void (*log)(int level, const char *message);
  /* Seed 000's isclusterwide: 1 when laddr is a shared address configured on this
   * node, else 0. protocol is informational (IPPROTO_TCP/UDP). */
  int (*is_shared_address)(mpathd_netns_id ns, uint8_t protocol, uint16_t family, const uint8_t *laddr,
                           void *args);
  /* Seed 000's cl_tcp_walk_list: calls callback for each TCP association whose local
   * address is a shared address, until it returns non-zero. Returns 0, or -1 with errno
   * when the kernel could not be asked. */
  int (*tcp_walk)(mpathd_netns_id ns, int (*callback)(const struct mpathd_hook_tcp_info *info, void *arg),
                  void *arg);
};

/* The one symbol a plugin exports. Returns the plugin's description (it stays the
 * plugin's and must live until fini), or NULL to refuse the load (say why with
 * host->log first). The host reads as much of it as its size says and it knows. */
typedef const struct mpathd_hook_plugin *(*mpathd_hook_init_fn)(const struct mpathd_hook_host *host);
const struct mpathd_hook_plugin *mpathd_hook_init_v1(const struct mpathd_hook_host *host);

#ifdef __cplusplus
}
#endif

#endif /* MPATHD_HOOK_H */
