// A C++ hook plugin whose callback throws across the C boundary (the hooks tier): the
// host catches it, reports the call as failed and goes on with the next event.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <mpathd/hook.h>

namespace {
FILE* out = nullptr;
mpathd_hook_plugin plugin{};

void member_changed(mpathd_netns_id, const mpathd_hook_member_event* ev, void* args) {
  const auto* a = static_cast<const mpathd_hook_args*>(args);
  if (out) {
    std::fprintf(out, "seq=%llu member-changed %s\n", static_cast<unsigned long long>(a->sequence), ev->member);
    std::fflush(out);
  }
  if (std::string(ev->state_after) == "failed") throw std::runtime_error("thrown on purpose for " + std::string(ev->member));
}

void address_moved(mpathd_netns_id, const mpathd_hook_address_event* ev, void* args) {
  const auto* a = static_cast<const mpathd_hook_args*>(args);
  if (out) {
    std::fprintf(out, "seq=%llu address-moved %s\n", static_cast<unsigned long long>(a->sequence), ev->to);
    std::fflush(out);
  }
}
}  // namespace

extern "C" const mpathd_hook_plugin* mpathd_hook_init_v1(const mpathd_hook_host* h) {
  if (h->argc > 0) out = std::fopen(h->argv[0], "a");
  plugin.size = sizeof plugin;
  plugin.version_major = MPATHD_HOOK_VERSION_MAJOR;
  plugin.version_minor = MPATHD_HOOK_VERSION_MINOR;
  plugin.event_mask = MPATHD_HOOK_BIT(MPATHD_HOOK_MEMBER_CHANGED) | MPATHD_HOOK_BIT(MPATHD_HOOK_ADDRESS_MOVED);
  plugin.name = "throws";
  plugin.member_changed = member_changed;
  plugin.address_moved = address_moved;
  return &plugin;
}
