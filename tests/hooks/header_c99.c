/* The installed header is plain C99: compiled with -std=c99 -pedantic -Werror (CTest
 * hooks.header_c99). Uses every type so that a typo in one is an error. */
#include <mpathd/hook.h>

static const struct mpathd_hook_plugin plugin = {sizeof(struct mpathd_hook_plugin), MPATHD_HOOK_VERSION_MAJOR,
                                                 MPATHD_HOOK_VERSION_MINOR, MPATHD_HOOK_ALL_EVENTS, 0, "c99",
                                                 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                                 NULL, NULL, NULL, NULL};

const struct mpathd_hook_plugin *mpathd_hook_init_v1(const struct mpathd_hook_host *host) {
  struct mpathd_hook_args a;
  struct mpathd_hook_member_event m;
  struct mpathd_hook_group_event g;
  struct mpathd_hook_address_event ad;
  struct mpathd_hook_shared_event sh;
  struct mpathd_hook_tcp_info t;
  mpathd_hook_init_fn fn = mpathd_hook_init_v1;
  a.size = sizeof a;
  m.size = sizeof m;
  g.size = sizeof g;
  ad.size = sizeof ad;
  sh.size = sizeof sh;
  t.size = sizeof t;
  (void)fn;
  if (!MPATHD_HOOK_HAS(&a, struct mpathd_hook_args, events_lost) || !MPATHD_HOOK_HAS(&m, struct mpathd_hook_member_event, reason) ||
      !MPATHD_HOOK_HAS(&g, struct mpathd_hook_group_event, reason) || !MPATHD_HOOK_HAS(&ad, struct mpathd_hook_address_event, address) ||
      !MPATHD_HOOK_HAS(&sh, struct mpathd_hook_shared_event, address) || !MPATHD_HOOK_HAS(&t, struct mpathd_hook_tcp_info, remote_port) ||
      !MPATHD_HOOK_HAS(host, struct mpathd_hook_host, tcp_walk))
    return NULL;
  host->log(MPATHD_HOOK_LOG_INFO, "c99");
  return &plugin;
}
