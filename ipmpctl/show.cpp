// show groups|interfaces|addresses|targets (ipmpstat -g, -i, -a, -t), shared|registry, from one snapshot
// (registry also reads the replication properties).
#include <CLI/CLI.hpp>
#include <ostream>
#include <span>

#include "ipmpctl.hpp"
#include "views.hpp"

namespace ipmpctl {

namespace {

struct View {
  const char* name;
  const char* help;
  std::span<const Field> fields;
  std::vector<Row> (*rows)(const client::Snapshot&);
  nlohmann::json (*json)(const client::Snapshot&);
  bool replication = false;  // also reads the Manager's Replication properties (not in GetState)
};

const View kViews[] = {
    {"groups", "groups (ipmpstat -g)", kGroupFields, group_rows, groups_json},
    {"interfaces", "interfaces (ipmpstat -i)", kInterfaceFields, interface_rows, interfaces_json},
    {"addresses", "data addresses (ipmpstat -a)", kAddressFields, address_rows, addresses_json},
    {"targets", "probe targets (ipmpstat -t)", kTargetFields, target_rows, targets_json},
    {"shared", "shared (cluster-wide) addresses and their state", kSharedFields, shared_rows, shared_json},
    {"registry", "the association registry's level (ebpf or sock-diag) and association replication, and why",
     kRegistryFields, registry_rows, registry_json, true},
};

int show(Context& ctx, const View& v) {
  std::vector<std::size_t> sel;
  if (ctx.output.mode != OutputMode::json) {
    auto s = select_fields(v.fields, ctx.output);
    if (!s) return ctx.usage(s.error());
    sel = std::move(*s);
  }
  auto c = ctx.client();
  if (!c) return ctx.fail("show", "read", "mpathd's state", c.error());
  auto snap = (*c)->snapshot();
  if (!snap) return ctx.fail("show", "read", "mpathd's state", snap.error());
  if (v.replication)
    if (auto r = (*c)->read_replication(snap->manager); !r) return ctx.fail("show", "read", "mpathd's state", r.error());

  if (ctx.output.mode == OutputMode::json) {
    ctx.out() << v.json(*snap).dump() << '\n';
    return kOk;
  }
  Table t(v.fields, std::move(sel), ctx.output.mode);
  if (auto h = t.header(); !h.empty()) ctx.out() << h << '\n';
  for (const auto& row : v.rows(*snap)) ctx.out() << t.line(row) << '\n';
  return kOk;
}

}  // namespace

void setup_show(CLI::App& app, Runner* run) {
  auto* cmd = add_verb(app, "show", "show groups, interfaces, addresses, targets (ipmpstat), shared addresses, registry, associations");
  cmd->require_subcommand(1);
  for (const View& v : kViews) {
    auto* sub = add_verb(*cmd, v.name, v.help);
    sub->callback([run, &v] { *run = [&v](Context& ctx) { return show(ctx, v); }; });
  }
  setup_show_associations(*cmd, run);  // shared.cpp
}

}  // namespace ipmpctl
