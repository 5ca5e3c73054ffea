#include "daemon/log.hpp"

namespace mpathd::log {

spdlog::level::level_enum level_of(const Event& e) {
  using spdlog::level::level_enum;
  if (std::holds_alternative<ProbeCompleted>(e)) return level_enum::trace;
  // Flags change with every link change, which is logged at info already.
  if (std::holds_alternative<LinkFlagsChanged>(e)) return level_enum::debug;
  if (const auto* m = std::get_if<MemberChanged>(&e))
    return m->after.state == MemberState::failed && m->before.state != MemberState::failed ? level_enum::warn
                                                                                            : level_enum::info;
  if (const auto* g = std::get_if<GroupChanged>(&e)) {
    if (g->after == GroupState::failed) return level_enum::err;
    if (g->after == GroupState::degraded && g->before == GroupState::ok) return level_enum::warn;
  }
  // A shared address given up or kept without service by mpathd itself.
  if (const auto* s = std::get_if<SharedAddressChanged>(&e); s && s->reason == Reason::group_failure)
    return level_enum::warn;
  // Probes that cannot meet the configured time are a problem to look at.
  if (const auto* f = std::get_if<FdtChanged>(&e); f && f->raised && f->after > f->before) return level_enum::warn;
  return level_enum::info;
}

Fields fields_of(const Event& e) {
  struct V {
    Fields operator()(const MemberChanged& c) const {
      return {c.group, c.member, {}, std::string(to_string(c.reason)), message_id::member_changed, {}};
    }
    Fields operator()(const GroupChanged& c) const {
      return {c.group, {}, {}, std::string(to_string(c.reason)), message_id::group_changed, {}};
    }
    Fields operator()(const AddressMoved& c) const {
      return {c.group,
              c.to.empty() ? c.from : c.to,
              c.address.addr.str(),
              std::string(to_string(c.reason)),
              message_id::address_moved,
              {{"MPATHD_FROM", c.from}, {"MPATHD_TO", c.to}}};
    }
    Fields operator()(const TopologyChanged& c) const { return {c.group, c.member, {}, {}, {}, {}}; }
    Fields operator()(const ProbeCompleted& c) const { return {c.group, c.member, {}, {}, {}, {}}; }
    Fields operator()(const TargetsChanged& c) const { return {c.group, c.member, {}, {}, {}, {}}; }
    Fields operator()(const LinkFlagsChanged& c) const { return {c.group, c.member, {}, {}, {}, {}}; }
    Fields operator()(const DataAddressesChanged& c) const {
      return {c.group, c.home, c.address.addr.str(), std::string(to_string(c.reason)), {}, {}};
    }
    Fields operator()(const SettingsChanged& c) const {
      return {c.group, c.member, {}, std::string(to_string(c.reason)), {}, {}};
    }
    Fields operator()(const FdtChanged& c) const { return {c.group, {}, {}, {}, {}, {}}; }
    Fields operator()(const SharedAddressChanged& c) const {
      return {c.group,
              c.to.empty() ? c.from : c.to,
              c.address.addr.str(),
              std::string(to_string(c.reason)),
              message_id::shared_changed,
              {{"MPATHD_SHARED_STATE", std::string(to_string(c.after))}, {"MPATHD_FROM", c.from}, {"MPATHD_TO", c.to}}};
    }
  };
  return std::visit(V{}, e);
}

void event(const Event& e) {
  const auto level = level_of(e);
  if (spdlog::should_log(level)) write(level, fields_of(e), "{}", describe(e));
}

}  // namespace mpathd::log
