/* Deliberately broken hook plugins for the hooks tier (tests/hooks/test_hooks.py), one
 * per BROKEN_* define (tests/hooks/CMakeLists.txt), after Kea's broken fixture
 * libraries. All but the refused ones record the events they get to the file in args[0],
 * like examples/hooks/log_events.c, and misbehave on a member-changed event. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mpathd/hook.h>

static const struct mpathd_hook_host *host;
static FILE *out;

static void record(const char *what, const char *detail, void *args) {
  const struct mpathd_hook_args *a = args;
  if (!out) return;
  fprintf(out, "seq=%llu %s %s\n", (unsigned long long)a->sequence, what, detail);
  fflush(out);
}

static void member_changed(mpathd_netns_id ns, const struct mpathd_hook_member_event *ev, void *args) {
  (void)ns;
  record("member-changed", ev->member, args);
#if defined(BROKEN_CRASHLOOP)
  raise(SIGSEGV); /* on every member event: keeps failing */
#elif defined(BROKEN_SEGV)
  if (strcmp(ev->state_after, "failed") == 0) raise(SIGSEGV); /* as a NULL dereference would */
#elif defined(BROKEN_LOOP)
  if (strcmp(ev->state_after, "failed") == 0) {
    volatile unsigned long spin = 0;
    for (;;) ++spin;
  }
#elif defined(BROKEN_SLOW)
  {
    struct timespec t = {0, 200000000}; /* 200 ms a call: within its budget, but slow */
    nanosleep(&t, NULL);
  }
#elif defined(BROKEN_FLOOD)
  {
    long i;
    for (i = 0; i < 200000; ++i) host->log(MPATHD_HOOK_LOG_INFO, "flood");
  }
#endif
}

static void address_moved(mpathd_netns_id ns, const struct mpathd_hook_address_event *ev, void *args) {
  (void)ns;
  record("address-moved", ev->to, args);
}

/* A plugin struct of a newer minor: the 1.0 fields, then one the host does not know. */
static struct {
  struct mpathd_hook_plugin base;
  void (*from_the_future)(void);
} plugin;

#if defined(BROKEN_NO_SYMBOL)
const struct mpathd_hook_plugin *mpathd_hook_init(const struct mpathd_hook_host *h);
const struct mpathd_hook_plugin *mpathd_hook_init(const struct mpathd_hook_host *h) {
#elif defined(BROKEN_WRONG_MAJOR)
const struct mpathd_hook_plugin *mpathd_hook_init_v2(const struct mpathd_hook_host *h);
const struct mpathd_hook_plugin *mpathd_hook_init_v2(const struct mpathd_hook_host *h) {
#else
const struct mpathd_hook_plugin *mpathd_hook_init_v1(const struct mpathd_hook_host *h) {
#endif
  host = h;
#if defined(BROKEN_INIT_FAILS)
  h->log(MPATHD_HOOK_LOG_ERROR, "init refuses on purpose");
  return NULL;
#endif
  if (h->argc > 0) out = fopen(h->argv[0], "a");
  plugin.base.size = sizeof plugin.base;
  plugin.base.version_major = MPATHD_HOOK_VERSION_MAJOR;
  plugin.base.version_minor = MPATHD_HOOK_VERSION_MINOR;
#if defined(BROKEN_NEWER_MINOR)
  plugin.base.size = sizeof plugin;
  plugin.base.version_minor = MPATHD_HOOK_VERSION_MINOR + 1;
#endif
  plugin.base.event_mask = MPATHD_HOOK_BIT(MPATHD_HOOK_MEMBER_CHANGED) | MPATHD_HOOK_BIT(MPATHD_HOOK_ADDRESS_MOVED);
  plugin.base.name = "broken";
  plugin.base.member_changed = member_changed;
  plugin.base.address_moved = address_moved;
  return &plugin.base;
}
