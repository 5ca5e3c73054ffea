#include "daemon/member_sysctls.hpp"

#include <linux/ip.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <utility>

namespace mpathd {

MemberSysctls::MemberSysctls(net::Sysctl sysctl, const std::string& saved, std::string source, Save save)
    : sysctl_(std::move(sysctl)), source_(std::move(source)), save_(std::move(save)) {
  load(saved);
}

void MemberSysctls::load(const std::string& text) {
  if (text.empty()) return;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    spdlog::warn("{}: not valid JSON; saved sysctl originals ignored", source_);
    return;
  }
  for (auto& [ifname, keys] : j.items()) {
    if (!keys.is_object()) continue;
    for (auto& [k, v] : keys.items())
      if (v.is_string()) saved_[ifname][k] = v.get<std::string>();
  }
}

void MemberSysctls::save() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [ifname, keys] : saved_) j[ifname] = keys;
  if (save_) save_(j.dump(2) + "\n");
}

void MemberSysctls::retry_renamed() {
  std::vector<std::pair<std::string, std::string>> todo;
  for (const auto& [old, r] : renamed_) todo.emplace_back(old, r.now_named);
  for (const auto& [old, now] : todo) restore(old, now);
}

void MemberSysctls::flush() {
  if (!dirty_) return;
  save();
  dirty_ = false;
}

namespace {
// The kernel's index (IPV4_DEVCONF_*) of each of MemberSysctls::kSettings.
constexpr int kDevconf[] = {IPV4_DEVCONF_ARP_IGNORE, IPV4_DEVCONF_ARP_ANNOUNCE, IPV4_DEVCONF_RP_FILTER,
                            IPV4_DEVCONF_PROMOTE_SECONDARIES};
static_assert(std::size(kDevconf) == std::size(MemberSysctls::kSettings));
}  // namespace

void MemberSysctls::apply(const std::string& ifname, unsigned ifindex, std::span<const std::int32_t> ipv4_conf) {
  // The interface that had this name before was renamed: its directory has moved by
  // now (the name is free again), so its restore is done first.
  if (auto r = renamed_.find(ifname); r != renamed_.end()) restore(ifname, std::string(r->second.now_named));
  if (auto it = applied_.find(ifname); it != applied_.end() && it->second == ifindex) return;
  // The value the kernel has now, as /proc/sys shows it (an int), if the dump said.
  auto dumped = [&](std::size_t i) -> std::optional<std::string> {
    const auto at = static_cast<std::size_t>(kDevconf[i] - 1);
    if (at < ipv4_conf.size()) return std::to_string(ipv4_conf[at]);
    return std::nullopt;
  };
  // The originals are on disk before the first value changes (a saved original
  // survives restarts: it is kept).
  auto& originals = saved_[ifname];
  bool recorded = false;
  unsigned write = kAll;
  for (std::size_t i = 0; i < std::size(kSettings); ++i) {
    const auto& [key, value] = kSettings[i];
    const auto now = dumped(i);
    if (originals.contains(key)) {
      // Saved by an earlier run, which wrote the value: at start-up, a value that is
      // set already is left alone.
      if (holding_ && now == value) write &= ~(1U << i);
      continue;
    }
    auto cur = now ? Result<std::string>(*now) : sysctl_.read(net::Sysctl::ipv4_conf_key(ifname, key));
    if (!cur) {
      spdlog::warn("{}", cur.error().message);
      continue;
    }
    originals[key] = *cur;
    recorded = true;
  }
  applied_[ifname] = ifindex;
  if (holding_) {
    held_save_ = held_save_ || recorded;
    auto h = std::find_if(held_.begin(), held_.end(), [&](const auto& x) { return x.first == ifname; });
    if (h == held_.end())
      held_.emplace_back(ifname, write);
    else
      h->second = write;
    return;
  }
  if (recorded) save();
  write_values(ifname);
}

void MemberSysctls::write_values(const std::string& ifname, unsigned which) {
  if (which == 0) {
    spdlog::debug("{}: arp_ignore, arp_announce, rp_filter, promote_secondaries set already", ifname);
    return;
  }
  for (std::size_t i = 0; i < std::size(kSettings); ++i)
    if (which & (1U << i))
      if (auto r = sysctl_.write(net::Sysctl::ipv4_conf_key(ifname, kSettings[i].first), kSettings[i].second); !r)
        spdlog::warn("{}", r.error().message);
  spdlog::debug("{}: arp_ignore=1 arp_announce=2 rp_filter=2 promote_secondaries=1", ifname);
}

void MemberSysctls::release() {
  holding_ = false;
  if (std::exchange(held_save_, false)) save();
  for (const auto& [ifname, which] : std::exchange(held_, {})) write_values(ifname, which);
}

void MemberSysctls::restore(const std::string& ifname, const std::string& now_named) {
  auto it = saved_.find(ifname);
  if (it == saved_.end()) return;
  const std::string& on = now_named.empty() ? ifname : now_named;
  bool written = true;
  for (const auto& [key, value] : it->second) {
    auto r = sysctl_.write(net::Sysctl::ipv4_conf_key(on, key), value);
    if (!r) {
      spdlog::debug("{}", r.error().message);  // the interface may be gone
      written = false;
    }
  }
  constexpr unsigned kRenameTries = 50;
  if (on != ifname && !written) {
    auto& pending = renamed_[ifname];
    if (pending.now_named != on) pending = Renamed{on, 0};
    if (++pending.tries < kRenameTries) return;  // tried again after the next input
    spdlog::warn("{}: renamed to {}; its member sysctls could not be restored", ifname, on);
  } else if (on == ifname) {
    spdlog::info("{}: left its group; member sysctls restored", ifname);
  } else {
    spdlog::info("{}: renamed to {}, which is not that member; member sysctls restored on {}", ifname, on, on);
  }
  renamed_.erase(ifname);
  std::erase_if(held_, [&](const auto& h) { return h.first == ifname; });  // restored: its values are not to be written
  saved_.erase(it);
  applied_.erase(ifname);
  dirty_ = true;
}

}  // namespace mpathd
