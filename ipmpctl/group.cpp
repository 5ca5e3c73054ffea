// group create|destroy|add|remove
#include <CLI/CLI.hpp>

#include "core/names.hpp"
#include "core/validate.hpp"
#include "ipmpctl.hpp"

namespace ipmpctl {

namespace {

struct Args {
  std::string name, ifname, group_interface;
  bool standby = false;
};

int check_group(Context& ctx, const std::string& g) {
  return mpathd::valid_group_name(g) ? kOk : ctx.usage("invalid group name " + mpathd::echo(g));
}
int check_if(Context& ctx, const std::string& i) {
  return mpathd::valid_ifname(i) ? kOk : ctx.usage("invalid interface name " + mpathd::echo(i));
}

int create(Context& ctx, const Args& a) {
  if (!ctx.no_fields("group create")) return kUsage;
  if (int r = check_group(ctx, a.name)) return r;
  if (!a.group_interface.empty())
    if (int r = check_if(ctx, a.group_interface)) return r;
  auto c = ctx.client();
  if (!c) return ctx.fail("group create", "create group", a.name, c.error());
  auto r = (*c)->create_group(a.name, a.group_interface);
  if (!r) {
    // "already exists" would hide which name clashes: the daemon's message says.
    std::string reason;
    if (r.error().failure == client::Failure::daemon && r.error().errc == mpathd::Errc::exists)
      reason = r.error().message;
    return ctx.fail("group create", "create group", a.name, r.error(), reason);
  }
  return ctx.done({{"verb", "group create"}, {"group", a.name}, {"path", *r}});
}

int destroy(Context& ctx, const Args& a) {
  if (!ctx.no_fields("group destroy")) return kUsage;
  if (int r = check_group(ctx, a.name)) return r;
  auto c = ctx.client();
  if (!c) return ctx.fail("group destroy", "destroy group", a.name, c.error());
  if (auto r = (*c)->destroy_group(a.name); !r)
    return ctx.fail("group destroy", "destroy group", a.name, r.error());
  return ctx.done({{"verb", "group destroy"}, {"group", a.name}});
}

int add(Context& ctx, const Args& a) {
  if (!ctx.no_fields("group add")) return kUsage;
  if (int r = check_group(ctx, a.name)) return r;
  if (int r = check_if(ctx, a.ifname)) return r;
  auto c = ctx.client();
  std::string what = a.ifname + " to group " + a.name;
  if (!c) return ctx.fail("group add", "add", what, c.error());
  auto r = (*c)->add_member(a.name, a.ifname, a.standby);
  if (!r) {
    std::string reason;
    if (r.error().failure == client::Failure::daemon && r.error().errc == mpathd::Errc::exists)
      reason = r.error().message;  // already a member, or a group interface's name
    return ctx.fail("group add", "add", what, r.error(), reason);
  }
  return ctx.done({{"verb", "group add"}, {"group", a.name}, {"interface", a.ifname},
                   {"standby", a.standby}, {"path", *r}});
}

int remove(Context& ctx, const Args& a) {
  if (!ctx.no_fields("group remove")) return kUsage;
  if (int r = check_if(ctx, a.ifname)) return r;
  auto c = ctx.client();
  if (!c) return ctx.fail("group remove", "remove", a.ifname, c.error());
  if (auto r = (*c)->remove_member(a.ifname); !r)
    return ctx.fail("group remove", "remove", a.ifname + " from its group", r.error());
  return ctx.done({{"verb", "group remove"}, {"interface", a.ifname}});
}

}  // namespace

void setup_group(CLI::App& app, Runner* run) {
  auto* cmd = add_verb(app, "group", "create, destroy and populate groups");
  cmd->require_subcommand(1);
  auto a = std::make_shared<Args>();

  auto* c = add_verb(*cmd, "create", "create a group");
  c->add_option("name", a->name, "group name")->required();
  c->add_option("--interface", a->group_interface,
                "group interface name (ipmpstat's GROUP column; default: the group's name)");
  c->callback([run, a] { *run = [a](Context& ctx) { return create(ctx, *a); }; });

  auto* d = add_verb(*cmd, "destroy", "destroy a group (its members become ungrouped)");
  d->add_option("name", a->name, "group name")->required();
  d->callback([run, a] { *run = [a](Context& ctx) { return destroy(ctx, *a); }; });

  auto* ad = add_verb(*cmd, "add", "add an interface to a group");
  ad->add_option("group", a->name, "group name")->required();
  ad->add_option("interface", a->ifname, "interface")->required();
  ad->add_flag("--standby", a->standby, "as a standby member");
  ad->callback([run, a] { *run = [a](Context& ctx) { return add(ctx, *a); }; });

  auto* rm = add_verb(*cmd, "remove", "remove an interface from its group");
  rm->add_option("interface", a->ifname, "interface")->required();
  rm->callback([run, a] { *run = [a](Context& ctx) { return remove(ctx, *a); }; });
}

}  // namespace ipmpctl
