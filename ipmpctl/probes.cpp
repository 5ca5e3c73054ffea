// probes: ipmpstat -p, one row per acknowledged or lost probe, until Ctrl-C or --count.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ostream>

#include "ipmpctl.hpp"
#include "views.hpp"

namespace ipmpctl {

namespace {

struct Args {
  long count = -1;
  long header_every = -1;  // -1: terminal height on a terminal, else never
};

int probes(Context& ctx, const Args& a) {
  std::vector<std::size_t> sel;
  if (ctx.output.mode != OutputMode::json) {
    auto s = select_fields(kProbeFields, ctx.output);
    if (!s) return ctx.usage(s.error());
    sel = std::move(*s);
  }
  auto c = ctx.client(true);
  if (!c) return ctx.fail("probes", "watch", "probes", c.error());
  client::Client& cl = **c;

  const auto start = std::chrono::steady_clock::now();
  Table table(kProbeFields, sel, ctx.output.mode);
  LiveHeader header(table.header(), header_interval(a.header_every, ctx.terminal_rows()));
  long seen = 0;
  client::Callbacks cb;
  cb.probe_result = [&](const client::ProbeResult& p) {
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (ctx.output.mode == OutputMode::json)
      ctx.out() << probe_json(p, t).dump() << std::endl;
    else
      ctx.out() << header.before_row() << table.line(probe_row(p, t)) << std::endl;
    if (a.count >= 0 && ++seen >= a.count) cl.stop();
  };
  if (auto r = cl.subscribe(std::move(cb)); !r) return ctx.fail("probes", "watch", "probes", r.error());
  auto snap = cl.snapshot();
  if (!snap) return ctx.fail("probes", "watch", "probes", snap.error());
  bool probing = false;
  for (const auto& i : snap->interfaces) probing = probing || (!i.probe.empty() && i.probe != "disabled");
  if (!probing) return ctx.fail(kFailure, "probe-based failure detection is disabled");

  ctx.out() << header.start() << std::flush;
  int sfd = stop_signal_fd();
  int code = kOk;
  for (;;) {
    auto w = cl.run(std::chrono::milliseconds(-1), sfd);
    if (!w) {
      code = ctx.fail("probes", "watch", "probes", w.error());
      break;
    }
    if (*w != client::Wake::timeout) break;
  }
  if (sfd >= 0) close(sfd);
  return code;
}

}  // namespace

void setup_probes(CLI::App& app, Runner* run) {
  auto* cmd = add_verb(app, "probes", "show probes as they are acknowledged or lost (ipmpstat -p)");
  auto a = std::make_shared<Args>();
  cmd->add_option("--count", a->count, "exit after N probes")->check(positive_count());
  cmd->add_option("--header-every", a->header_every,
                  "repeat the header every N rows, 0 never (default: every screenful on a terminal, "
                  "else never)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([run, a] { *run = [a](Context& ctx) { return probes(ctx, *a); }; });
}

}  // namespace ipmpctl
