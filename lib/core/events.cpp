#include "core/events.hpp"

namespace mpathd {

namespace {
std::string flags_str(std::uint32_t f) {
  std::string s;
  for (const auto& name : flag_strings(f)) s += (s.empty() ? "" : ",") + name;
  return s.empty() ? "-" : s;
}
std::string who(const std::string& group, const std::string& member) {
  return (group.empty() ? std::string("-") : group) + "/" + member;
}
}  // namespace

std::string describe(const Event& e) {
  struct V {
    std::string operator()(const MemberChanged& c) const {
      std::string s = who(c.group, c.member) + ": ";
      if (c.before.state != c.after.state)
        s += std::string(to_string(c.before.state)) + " -> " + std::string(to_string(c.after.state));
      else
        s += "state " + std::string(to_string(c.after.state));
      if (c.before.flags != c.after.flags) s += " [" + flags_str(c.before.flags) + " -> " + flags_str(c.after.flags) + "]";
      if (c.before.probe != c.after.probe)
        s += " probe " + std::string(to_string(c.before.probe)) + " -> " + std::string(to_string(c.after.probe));
      return s + " (" + std::string(to_string(c.reason)) + ")";
    }
    std::string operator()(const GroupChanged& c) const {
      return "group " + c.group + ": " + std::string(to_string(c.before)) + " -> " +
             std::string(to_string(c.after)) + " (" + std::string(to_string(c.reason)) + ")";
    }
    std::string operator()(const AddressMoved& c) const {
      return "group " + c.group + ": " + c.address.str() + " " + (c.from.empty() ? "--" : c.from) + " -> " +
             (c.to.empty() ? "--" : c.to) + " (" + std::string(to_string(c.reason)) + ")";
    }
    std::string operator()(const ProbeCompleted& c) const {
      return who(c.group, c.member) + ": probe " + std::to_string(c.sequence) + " to " + c.target.str() +
             (c.acked ? " acked" : " lost");
    }
    std::string operator()(const TargetsChanged& c) const {
      std::string s = who(c.group, c.member) + ": probe targets (" + std::string(to_string(c.mode)) + ")";
      for (const auto& t : c.targets) s += " " + t.str();
      return c.targets.empty() ? s + " none" : s;
    }
    std::string operator()(const LinkFlagsChanged& c) const {
      auto names = [](std::uint32_t f) {
        std::string s;
        for (const auto& name : link_flag_strings(f)) s += (s.empty() ? "" : ",") + name;
        return s.empty() ? std::string("none") : s;
      };
      return who(c.group, c.member) + ": link flags " + names(c.before) + " -> " + names(c.after);
    }
    std::string operator()(const DataAddressesChanged& c) const {
      std::string s = "group " + c.group + ": data address " + c.address.str();
      if (c.home.empty())
        s += " removed";
      else
        s += " home " + c.home + (c.refused.empty() ? "" : ", refused by the kernel: " + c.refused);
      return c.reason == Reason::none ? s : s + " (" + std::string(to_string(c.reason)) + ")";
    }
    std::string operator()(const SettingsChanged& c) const {
      const std::string whose = c.group.empty()    ? std::string("daemon")
                                : c.member.empty() ? "group " + c.group + ":"
                                                   : who(c.group, c.member) + ":";
      return whose + " settings changed (" + std::string(to_string(c.reason)) + ")";
    }
    std::string operator()(const FdtChanged& c) const {
      return "group " + c.group + ": failure detection time " + format_duration(c.before) + " -> " +
             format_duration(c.after) + (c.raised ? " (raised: the probe RTTs do not allow less)" : " (restored)");
    }
    std::string operator()(const SharedAddressChanged& c) const {
      std::string s = "group " + c.group + ": shared address " + c.address.str() + " ";
      if (c.before != c.after)
        s += std::string(to_string(c.before)) + " -> " + std::string(to_string(c.after));
      else
        s += std::string(to_string(c.after));
      if (c.from != c.to) s += " [" + (c.from.empty() ? std::string("--") : c.from) + " -> " + (c.to.empty() ? std::string("--") : c.to) + "]";
      s += " (" + std::string(to_string(c.reason)) + ")";
      return c.detail.empty() ? s : s + ": " + c.detail;
    }
    std::string operator()(const TopologyChanged& c) const {
      return std::string(c.added ? "added " : "removed ") + (c.member.empty() ? "group " + c.group : who(c.group, c.member));
    }
  };
  return std::visit(V{}, e);
}

}  // namespace mpathd
