/* An mpathd hook plugin that logs every event with its network namespace id: through
 * mpathd's log, and, when mpathd.conf gives it a file (args = ["/path"]), one line per
 * event appended to that file. Build:
 *   cc -std=c99 -shared -fPIC $(pkg-config --cflags mpathd-hook) log_events.c -o log_events.so
 * mpathd.conf:
 *   [[hook]]
 *   name = "log"
 *   type = "plugin"
 *   path = "/usr/local/lib/mpathd/log_events.so"
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <mpathd/hook.h>

static const struct mpathd_hook_host *host;
static FILE *out;

static void emit(mpathd_netns_id ns, const char *line, void *args) {
  const struct mpathd_hook_args *a = args;
  char text[600];
  snprintf(text, sizeof text, "netns=%llu seq=%llu lost=%llu %s", (unsigned long long)ns,
           (unsigned long long)a->sequence, (unsigned long long)a->events_lost, line);
  host->log(MPATHD_HOOK_LOG_INFO, text);
  if (out) {
    fprintf(out, "%s\n", text);
    fflush(out);
  }
}

static const char *addr(char *buf, size_t len, uint16_t family, const uint8_t *bytes) {
  if (!inet_ntop(family, bytes, buf, (socklen_t)len)) snprintf(buf, len, "?");
  return buf;
}

static void member_changed(mpathd_netns_id ns, const struct mpathd_hook_member_event *ev, void *args) {
  char line[400];
  snprintf(line, sizeof line, "member-changed %s/%s %s->%s reason=%s flags=%#x->%#x", ev->group, ev->member,
           ev->state_before, ev->state_after, ev->reason, (unsigned)ev->flags_before, (unsigned)ev->flags_after);
  emit(ns, line, args);
}

static void group_changed(mpathd_netns_id ns, const struct mpathd_hook_group_event *ev, void *args) {
  char line[400];
  snprintf(line, sizeof line, "group-changed %s %s->%s reason=%s", ev->group, ev->state_before, ev->state_after,
           ev->reason);
  emit(ns, line, args);
}

static void address_moved(mpathd_netns_id ns, const struct mpathd_hook_address_event *ev, void *args) {
  char line[400], a[64];
  snprintf(line, sizeof line, "address-moved %s %s/%u %s->%s reason=%s", ev->group,
           addr(a, sizeof a, ev->address.family, ev->address.bytes), (unsigned)ev->address.prefix_length,
           ev->from[0] ? ev->from : "-", ev->to[0] ? ev->to : "-", ev->reason);
  emit(ns, line, args);
}

static void shared_address(mpathd_netns_id ns, const struct mpathd_hook_shared_event *ev, void *args) {
  static const char *const names[] = {"takeover-before", "takeover-after", "release-before", "release-after"};
  char line[400], a[64];
  snprintf(line, sizeof line, "%s %s %s reason=%s",
           ev->type >= MPATHD_HOOK_TAKEOVER_BEFORE && ev->type <= MPATHD_HOOK_RELEASE_AFTER
               ? names[ev->type - MPATHD_HOOK_TAKEOVER_BEFORE]
               : "shared?",
           ev->group, addr(a, sizeof a, ev->address.family, ev->address.bytes), ev->reason);
  emit(ns, line, args);
}

static void sock(mpathd_netns_id ns, const char *what, uint8_t proto, uint16_t family, const uint8_t *laddr,
                 uint16_t lport, void *args) {
  char line[400], a[64];
  snprintf(line, sizeof line, "%s %s %s:%u shared=%d", what, proto == 17 ? "udp" : "tcp",
           addr(a, sizeof a, family, laddr), (unsigned)lport, host->is_shared_address(ns, proto, family, laddr, args));
  emit(ns, line, args);
}
static void on_bind(mpathd_netns_id ns, uint8_t p, uint16_t f, const uint8_t *l, uint16_t lp, void *args) {
  sock(ns, "bind", p, f, l, lp, args);
}
static void on_unbind(mpathd_netns_id ns, uint8_t p, uint16_t f, const uint8_t *l, uint16_t lp, void *args) {
  sock(ns, "unbind", p, f, l, lp, args);
}
static void on_listen(mpathd_netns_id ns, uint8_t p, uint16_t f, const uint8_t *l, uint16_t lp, void *args) {
  sock(ns, "listen", p, f, l, lp, args);
}
static void on_unlisten(mpathd_netns_id ns, uint8_t p, uint16_t f, const uint8_t *l, uint16_t lp, void *args) {
  sock(ns, "unlisten", p, f, l, lp, args);
}

static void on_connect(mpathd_netns_id ns, uint8_t p, int is_outgoing, uint16_t f, const uint8_t *l, uint16_t lp,
                       const uint8_t *r, uint16_t rp, void *args) {
  char line[400], a[64], b[64];
  snprintf(line, sizeof line, "connect %s %s:%u %s %s:%u", p == 17 ? "udp" : "tcp", addr(a, sizeof a, f, l),
           (unsigned)lp, is_outgoing ? "->" : "<-", addr(b, sizeof b, f, r), (unsigned)rp);
  emit(ns, line, args);
}

static void on_disconnect(mpathd_netns_id ns, uint8_t p, uint16_t f, const uint8_t *l, uint16_t lp,
                          const uint8_t *r, uint16_t rp, void *args) {
  char line[400], a[64], b[64];
  snprintf(line, sizeof line, "disconnect %s %s:%u %s:%u", p == 17 ? "udp" : "tcp", addr(a, sizeof a, f, l),
           (unsigned)lp, addr(b, sizeof b, f, r), (unsigned)rp);
  emit(ns, line, args);
}

static void on_udp(mpathd_netns_id ns, uint16_t f, const uint8_t *l, uint16_t lp, const uint8_t *r, uint16_t rp,
                   void *args) {
  char line[400], a[64], b[64];
  snprintf(line, sizeof line, "udp-association %s:%u %s:%u", addr(a, sizeof a, f, l), (unsigned)lp,
           addr(b, sizeof b, f, r), (unsigned)rp);
  emit(ns, line, args);
}

static void fini(void *data) {
  (void)data;
  if (out) fclose(out);
  out = NULL;
}

static struct mpathd_hook_plugin plugin;

const struct mpathd_hook_plugin *mpathd_hook_init_v1(const struct mpathd_hook_host *h) {
  char line[200];
  host = h;
  if (h->argc > 0 && !(out = fopen(h->argv[0], "a"))) {
    snprintf(line, sizeof line, "cannot open %s", h->argv[0]);
    h->log(MPATHD_HOOK_LOG_ERROR, line);
    return NULL;
  }
  plugin.size = sizeof plugin;
  plugin.version_major = MPATHD_HOOK_VERSION_MAJOR;
  plugin.version_minor = MPATHD_HOOK_VERSION_MINOR;
  plugin.event_mask = MPATHD_HOOK_ALL_EVENTS;
  plugin.name = "log_events";
  plugin.member_changed = member_changed;
  plugin.group_changed = group_changed;
  plugin.address_moved = address_moved;
  plugin.shared_address = shared_address;
  plugin.bind = on_bind;
  plugin.unbind = on_unbind;
  plugin.listen = on_listen;
  plugin.unlisten = on_unlisten;
  plugin.connect = on_connect;
  plugin.disconnect = on_disconnect;
  plugin.udp_association = on_udp;
  plugin.fini = fini;
  snprintf(line, sizeof line, "loaded in netns %llu (netns id = inode of /proc/self/ns/net)",
           (unsigned long long)h->netns);
  h->log(MPATHD_HOOK_LOG_INFO, line);
  return &plugin;
}
