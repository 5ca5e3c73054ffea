// shared takeover|release|import, and show associations: shared (cluster-wide)
// addresses and the association registry's hand-over API (DESIGN.md §5).
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <ostream>
#include <sstream>

#include "core/validate.hpp"
#include "ipmpctl.hpp"
#include "views.hpp"

namespace ipmpctl {

namespace {

struct Args {
  std::string address;
  std::string file;  // import: a path, or "-" for standard input
};

// The address argument: an address with or without its prefix length (usage error
// before any bus traffic otherwise).
bool check_address(Context& ctx, const std::string& address) {
  if (mpathd::parse_address_maybe_prefix(address)) return true;
  ctx.usage("invalid address " + mpathd::echo(address) + " (expected an IPv4 or IPv6 address)");
  return false;
}

int command(Context& ctx, const Args& a, bool takeover) {
  const char* verb = takeover ? "shared takeover" : "shared release";
  if (!ctx.no_fields(verb)) return kUsage;
  if (!check_address(ctx, a.address)) return kUsage;
  auto c = ctx.client();
  const char* action = takeover ? "take over" : "release";
  if (!c) return ctx.fail(verb, action, a.address, c.error());
  auto r = takeover ? (*c)->takeover_shared(a.address) : (*c)->release_shared(a.address);
  if (!r) return ctx.fail(verb, action, a.address, r.error());
  return ctx.done({{"verb", verb}, {"address", a.address}});
}

int import(Context& ctx, const Args& a) {
  if (!ctx.no_fields("shared import")) return kUsage;
  if (!check_address(ctx, a.address)) return kUsage;
  std::string text;
  if (a.file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(a.file);
    if (!in) return ctx.fail(kFailure, "cannot read " + a.file + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto c = ctx.client();
  const std::string what = "associations of " + a.address;
  if (!c) return ctx.fail("shared import", "import", what, c.error());
  auto n = (*c)->import_associations(a.address, text);
  if (!n) return ctx.fail("shared import", "import", what, n.error());
  if (ctx.output.mode != OutputMode::json) ctx.out() << *n << " association(s) held for " << a.address << '\n';
  return ctx.done({{"verb", "shared import"}, {"address", a.address}, {"entries", *n}});
}

int associations(Context& ctx, const Args& a) {
  std::vector<std::size_t> sel;
  if (ctx.output.mode != OutputMode::json) {
    auto s = select_fields(kAssociationFields, ctx.output);
    if (!s) return ctx.usage(s.error());
    sel = std::move(*s);
  }
  if (!check_address(ctx, a.address)) return kUsage;
  auto c = ctx.client();
  const std::string what = "associations of " + a.address;
  if (!c) return ctx.fail("show associations", "read", what, c.error());
  auto text = (*c)->export_associations(a.address);
  if (!text) return ctx.fail("show associations", "read", what, text.error());
  auto list = nlohmann::json::parse(*text, nullptr, false);
  if (list.is_discarded() || !list.is_array()) return ctx.fail(kFailure, "mpathd sent associations that are not a JSON array");
  if (ctx.output.mode == OutputMode::json) {
    ctx.out() << list.dump() << '\n';  // the hand-over format: `ipmpctl shared import` reads it
    return kOk;
  }
  Table t(kAssociationFields, std::move(sel), ctx.output.mode);
  if (auto h = t.header(); !h.empty()) ctx.out() << h << '\n';
  for (const auto& row : association_rows(list)) ctx.out() << t.line(row) << '\n';
  return kOk;
}

}  // namespace

void setup_shared(CLI::App& app, Runner* run) {
  auto* cmd = add_verb(app, "shared", "take over, release shared (cluster-wide) addresses; import associations");
  cmd->require_subcommand(1);
  auto a = std::make_shared<Args>();
  auto* to = add_verb(*cmd, "takeover", "hold a shared address here (on the group's best active member)");
  to->add_option("address", a->address, "shared address")->required();
  to->callback([run, a] { *run = [a](Context& ctx) { return command(ctx, *a, true); }; });
  auto* rel = add_verb(*cmd, "release", "release a shared address (drop, destroy its sockets, remove it)");
  rel->add_option("address", a->address, "shared address")->required();
  rel->callback([run, a] { *run = [a](Context& ctx) { return command(ctx, *a, false); }; });
  auto* imp = add_verb(*cmd, "import",
                       "import the associations of a shared address (JSON of 'show associations -o json')");
  imp->add_option("address", a->address, "shared address")->required();
  imp->add_option("file", a->file, "file with the JSON list, or - for standard input")->required();
  imp->callback([run, a] { *run = [a](Context& ctx) { return import(ctx, *a); }; });
}

void setup_show_associations(CLI::App& show, Runner* run) {
  auto a = std::make_shared<Args>();
  auto* sub = add_verb(show, "associations", "the TCP connections and UDP clients of a shared address");
  sub->add_option("address", a->address, "shared address")->required();
  sub->callback([run, a] { *run = [a](Context& ctx) { return associations(ctx, *a); }; });
}

}  // namespace ipmpctl
