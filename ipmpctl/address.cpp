// address add|remove: a group's data addresses.
#include <CLI/CLI.hpp>

#include "core/names.hpp"
#include "core/validate.hpp"
#include "ipmpctl.hpp"

namespace ipmpctl {

namespace {

struct Args {
  std::string group, address;
};

int add(Context& ctx, const Args& a) {
  if (!ctx.no_fields("address add")) return kUsage;
  if (!mpathd::valid_group_name(a.group)) return ctx.usage("invalid group name " + mpathd::echo(a.group));
  // The daemon's own rules: no loopback, multicast, network or broadcast address, ...
  if (auto p = mpathd::parse_managed_address(a.address, mpathd::AddressRole::data); !p)
    return ctx.usage("invalid data address: " + p.error());
  auto c = ctx.client();
  std::string what = a.address + " to group " + a.group;
  if (!c) return ctx.fail("address add", "add", what, c.error());
  if (auto r = (*c)->add_data_address(a.group, a.address); !r) {
    std::string reason;
    if (r.error().failure == client::Failure::daemon && r.error().errc == mpathd::Errc::exists)
      reason = "address already exists";
    return ctx.fail("address add", "add", what, r.error(), reason);
  }
  return ctx.done({{"verb", "address add"}, {"group", a.group}, {"address", a.address}});
}

int remove(Context& ctx, const Args& a) {
  if (!ctx.no_fields("address remove")) return kUsage;
  if (!mpathd::valid_group_name(a.group)) return ctx.usage("invalid group name " + mpathd::echo(a.group));
  if (!mpathd::parse_address_maybe_prefix(a.address))
    return ctx.usage("invalid address " + mpathd::echo(a.address));
  auto c = ctx.client();
  std::string what = a.address + " from group " + a.group;
  if (!c) return ctx.fail("address remove", "remove", what, c.error());
  if (auto r = (*c)->remove_data_address(a.group, a.address); !r)
    return ctx.fail("address remove", "remove", what, r.error());
  return ctx.done({{"verb", "address remove"}, {"group", a.group}, {"address", a.address}});
}

}  // namespace

void setup_address(CLI::App& app, Runner* run) {
  auto* cmd = add_verb(app, "address", "add or remove a group's data addresses");
  cmd->require_subcommand(1);
  auto a = std::make_shared<Args>();
  auto* ad = add_verb(*cmd, "add", "add a data address (ADDRESS/PREFIXLEN) to a group");
  ad->add_option("group", a->group, "group name")->required();
  ad->add_option("address", a->address, "address with prefix length")->required();
  ad->callback([run, a] { *run = [a](Context& ctx) { return add(ctx, *a); }; });
  auto* rm = add_verb(*cmd, "remove", "remove a data address from a group");
  rm->add_option("group", a->group, "group name")->required();
  rm->add_option("address", a->address, "address")->required();
  rm->callback([run, a] { *run = [a](Context& ctx) { return remove(ctx, *a); }; });
}

}  // namespace ipmpctl
