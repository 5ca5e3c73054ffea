// offline, online, failover, move, reload: if_mpadm's verbs and friends.
#include <CLI/CLI.hpp>

#include "core/names.hpp"
#include "core/validate.hpp"
#include "ipmpctl.hpp"

namespace ipmpctl {

namespace {

// The group of `ifname`, best effort (for messages).
std::string group_of(Context& ctx, const std::string& ifname) {
  auto c = ctx.client();
  if (!c) return "";
  auto snap = (*c)->snapshot();
  if (!snap) return "";
  const auto* i = snap->find_interface(ifname);
  return i ? i->group : "";
}

int offline(Context& ctx, const std::string& verb, const std::string& ifname) {
  if (!ctx.no_fields(verb)) return kUsage;
  if (!mpathd::valid_ifname(ifname)) return ctx.usage("invalid interface name " + mpathd::echo(ifname));
  auto c = ctx.client();
  if (!c) return ctx.fail(verb, "offline", ifname, c.error());
  auto r = (*c)->offline(ifname);
  if (!r) {
    if (r.error().failure == client::Failure::daemon &&
        r.error().errc == mpathd::Errc::last_usable_member) {
      auto g = group_of(ctx, ifname);
      if (!g.empty())
        return ctx.fail(verb, "offline", ifname, r.error(),
                        "no other functioning interface is in group " + g);
    }
    return ctx.fail(verb, "offline", ifname, r.error());
  }
  return ctx.done({{"verb", verb}, {"interface", ifname}});
}

int online(Context& ctx, const std::string& ifname) {
  if (!ctx.no_fields("online")) return kUsage;
  if (!mpathd::valid_ifname(ifname)) return ctx.usage("invalid interface name " + mpathd::echo(ifname));
  auto c = ctx.client();
  if (!c) return ctx.fail("online", "online", ifname, c.error());
  if (auto r = (*c)->online(ifname); !r) {
    std::string reason;
    if (r.error().failure == client::Failure::daemon && r.error().errc == mpathd::Errc::hwaddr_duplicate)
      reason = "its hardware address duplicates another member's in its group; it stays offline until "
               "the address is unique, then comes back by itself";
    return ctx.fail("online", "online", ifname, r.error(), reason);
  }
  return ctx.done({{"verb", "online"}, {"interface", ifname}});
}

int move(Context& ctx, std::string addr, const std::string& ifname) {
  if (!ctx.no_fields("move")) return kUsage;
  // A prefix length may be given; then it must be one.
  if (!mpathd::parse_address_maybe_prefix(addr))
    return ctx.usage("invalid address " + mpathd::echo(addr) + " (want ADDRESS or ADDRESS/PREFIXLEN)");
  addr = addr.substr(0, addr.find('/'));
  if (!mpathd::valid_ifname(ifname)) return ctx.usage("invalid interface name " + mpathd::echo(ifname));
  auto c = ctx.client();
  if (!c) return ctx.fail("move", "move", addr, c.error());
  if (auto r = (*c)->move_address(addr, ifname); !r) {
    std::string reason;
    const auto& e = r.error();
    if (e.failure == client::Failure::daemon && e.errc == mpathd::Errc::not_usable)
      reason = "interface " + ifname + " is not an active member of the address' group";
    else if (e.failure == client::Failure::daemon && e.errc == mpathd::Errc::no_such_interface)
      reason = "no such interface " + ifname;
    return ctx.fail("move", "move", addr + " to " + ifname, e, reason);
  }
  return ctx.done({{"verb", "move"}, {"address", addr}, {"interface", ifname}});
}

int reload(Context& ctx) {
  if (!ctx.no_fields("reload")) return kUsage;
  auto c = ctx.client();
  if (!c) return ctx.fail("reload", "reload", "the configuration", c.error());
  if (auto r = (*c)->reload(); !r) return ctx.fail("reload", "reload", "the configuration", r.error());
  return ctx.done({{"verb", "reload"}});
}

}  // namespace

void setup_admin(CLI::App& app, Runner* run) {
  for (const char* verb : {"offline", "failover"}) {
    auto* cmd = add_verb(app, verb,
                         std::string(verb) == "offline"
                             ? "take an interface out of service (if_mpadm -d)"
                             : "move everything off an interface and take it out of service "
                               "(= offline)");
    auto ifname = std::make_shared<std::string>();
    cmd->add_option("interface", *ifname, "interface")->required();
    std::string v = verb;
    cmd->callback([run, ifname, v] {
      *run = [ifname, v](Context& ctx) { return offline(ctx, v, *ifname); };
    });
  }
  {
    auto* cmd = add_verb(app, "online", "bring an offline interface back (if_mpadm -r)");
    auto ifname = std::make_shared<std::string>();
    cmd->add_option("interface", *ifname, "interface")->required();
    cmd->callback([run, ifname] { *run = [ifname](Context& ctx) { return online(ctx, *ifname); }; });
  }
  {
    auto* cmd = add_verb(app, "move", "move a data address to an active member (its new home)");
    auto addr = std::make_shared<std::string>();
    auto ifname = std::make_shared<std::string>();
    cmd->add_option("address", *addr, "data address")->required();
    cmd->add_option("interface", *ifname, "active member")->required();
    cmd->callback([run, addr, ifname] {
      *run = [addr, ifname](Context& ctx) { return move(ctx, *addr, *ifname); };
    });
  }
  {
    auto* cmd = add_verb(app, "reload", "re-read the configuration file and apply the difference");
    cmd->callback([run] { *run = [](Context& ctx) { return reload(ctx); }; });
  }
}

}  // namespace ipmpctl
