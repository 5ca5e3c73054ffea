/* An mpathd hook plugin that keeps a table of UDP associations (seed 000: a client is
 * registered the first time it is seen) per shared address, drops an address's entries
 * when the address is released, and on a takeover lists them with the TCP associations
 * the host's walk finds. Entries are logged through mpathd's log.
 *   cc -std=c99 -shared -fPIC $(pkg-config --cflags mpathd-hook) udp_table.c -o udp_table.so
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <mpathd/hook.h>

#define MAX_ENTRIES 4096

struct entry {
  uint16_t family;
  uint8_t local[16];
  uint16_t local_port;
  uint8_t remote[16];
  uint16_t remote_port;
};

static const struct mpathd_hook_host *host;
static struct entry table[MAX_ENTRIES];
static size_t count;

static size_t alen(uint16_t family) { return family == AF_INET ? 4 : 16; }

static void log_entry(const char *what, const struct entry *e) {
  char l[64], r[64], line[256];
  inet_ntop(e->family, e->local, l, sizeof l);
  inet_ntop(e->family, e->remote, r, sizeof r);
  snprintf(line, sizeof line, "%s %s:%u <- %s:%u (%lu entries)", what, l, (unsigned)e->local_port, r,
           (unsigned)e->remote_port, (unsigned long)count);
  host->log(MPATHD_HOOK_LOG_INFO, line);
}

static void on_udp(mpathd_netns_id ns, uint16_t family, const uint8_t *laddr, uint16_t lport, const uint8_t *faddr,
                   uint16_t fport, void *args) {
  struct entry e;
  size_t i;
  (void)ns;
  (void)args;
  memset(&e, 0, sizeof e);
  e.family = family;
  memcpy(e.local, laddr, alen(family));
  e.local_port = lport;
  memcpy(e.remote, faddr, alen(family));
  e.remote_port = fport;
  for (i = 0; i < count; ++i)
    if (memcmp(&table[i], &e, sizeof e) == 0) return;
  if (count == MAX_ENTRIES) {
    host->log(MPATHD_HOOK_LOG_WARNING, "UDP association table full");
    return;
  }
  table[count++] = e;
  log_entry("udp association", &e);
}

static int print_tcp(const struct mpathd_hook_tcp_info *t, void *arg) {
  char l[64], r[64], line[256];
  (void)arg;
  inet_ntop(t->family, t->local, l, sizeof l);
  inet_ntop(t->family, t->remote, r, sizeof r);
  snprintf(line, sizeof line, "tcp association %s:%u - %s:%u state %u", l, (unsigned)t->local_port, r,
           (unsigned)t->remote_port, (unsigned)t->state);
  host->log(MPATHD_HOOK_LOG_INFO, line);
  return 0;
}

static void on_shared(mpathd_netns_id ns, const struct mpathd_hook_shared_event *ev, void *args) {
  size_t i, kept = 0;
  (void)args;
  if (ev->type == MPATHD_HOOK_RELEASE_AFTER) {
    for (i = 0; i < count; ++i)
      if (table[i].family != ev->address.family ||
          memcmp(table[i].local, ev->address.bytes, alen(table[i].family)) != 0)
        table[kept++] = table[i];
    count = kept;
  } else if (ev->type == MPATHD_HOOK_TAKEOVER_AFTER) {
    for (i = 0; i < count; ++i)
      if (table[i].family == ev->address.family && memcmp(table[i].local, ev->address.bytes, alen(table[i].family)) == 0)
        log_entry("known udp association", &table[i]);
    if (host->tcp_walk(ns, print_tcp, NULL) != 0) host->log(MPATHD_HOOK_LOG_WARNING, "TCP walk failed");
  }
}

static struct mpathd_hook_plugin plugin;

const struct mpathd_hook_plugin *mpathd_hook_init_v1(const struct mpathd_hook_host *h) {
  host = h;
  plugin.size = sizeof plugin;
  plugin.version_major = MPATHD_HOOK_VERSION_MAJOR;
  plugin.version_minor = MPATHD_HOOK_VERSION_MINOR;
  plugin.event_mask = MPATHD_HOOK_BIT(MPATHD_HOOK_UDP_ASSOCIATION) | MPATHD_HOOK_BIT(MPATHD_HOOK_TAKEOVER_AFTER) |
                      MPATHD_HOOK_BIT(MPATHD_HOOK_RELEASE_AFTER);
  plugin.name = "udp_table";
  plugin.udp_association = on_udp;
  plugin.shared_address = on_shared;
  return &plugin;
}
