// The Engine: the single owner and writer of group/member state. Inputs are plain
// observations (links, addresses), admin commands and the passage of time; outputs are
// Events to subscribers and the model itself. No sockets, no netlink, no sd-*.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/events.hpp"
#include "core/model.hpp"
#include "core/persisted.hpp"
#include "core/probe.hpp"
#include "core/types.hpp"
#include "core/validate.hpp"

namespace mpathd {

// What the kernel edge tells the Engine about one interface.
struct LinkObservation {
  std::string name;
  unsigned ifindex = 0;
  bool exists = true;     // false: the interface was removed
  bool up = false;        // administratively up and carrier present (IFF_UP && IFF_LOWER_UP)
  Mac mac;
  bool loopback = false;  // never tracked, and never a member (IFF_LOOPBACK or the loopback type)
  // The kernel's IFF_* (link_flag::): shown in the views, and IFF_BROADCAST says it is
  // no point-to-point or tunnel device.
  std::uint32_t flags = link_flag::broadcast;
  LinkFacts facts() const { return {loopback, (flags & link_flag::broadcast) != 0, !mac.is_zero()}; }
};

class Engine {
 public:
  using Listener = std::function<void(const Event&)>;

  Engine(const TimeSource& clock, Config config);

  void subscribe(Listener listener) { listeners_.push_back(std::move(listener)); }

  // --- observations from the kernel edge ---------------------------------------
  // Interfaces are known by index: an index seen before under another name is a
  // rename. Membership follows names (the configuration names members): a member
  // whose interface is renamed away loses it as if it had been removed, and an
  // interface renamed to a member's name joins as if it had been created, both with
  // reason interface-renamed.
  void observe_link(const LinkObservation& obs);
  // A data or test address seen in the kernel (initial dump and later events).
  void observe_address(std::string_view ifname, const IpPrefix& prefix, bool present);
  // A member's detector changed its verdict. A failure is an interface failure only
  // if another member of the group is working (up without probing, or a probe success
  // later than this member's first failure); otherwise it is a group failure: every
  // probed member is marked failed and nothing moves.
  void observe_probe(std::string_view ifname, const ProbeVerdict& verdict);
  // The kernel refused a data address on its holder ("" when it took it after all):
  // the address is shown down with the reason until it is placed.
  void observe_address_refused(const IpAddress& address, std::string error);
  // A member's targets for the views: TargetsChanged when the mode or the list
  // changes; the RTTs are kept in place without an event (they change with every probe).
  void observe_targets(std::string_view ifname, TargetMode mode, std::vector<ProbeTargetInfo> targets);
  // One probe acknowledged or lost: published as ProbeCompleted. An ack also moves
  // the member's TLS (observe_probe is only called when the verdict changes), so the
  // Engine knows who answered last without asking the detectors.
  void observe_probe_result(const ProbeResult& result);

  // Ends the start-up phase: decides states and placement from what was observed,
  // adopting data addresses the kernel already has on usable members.
  void start();
  bool started() const { return started_; }

  // --- administrative commands ---------------------------------------------------
  Result<void> offline(std::string_view ifname);
  Result<void> online(std::string_view ifname);
  Result<void> move_address(const IpAddress& address, std::string_view to_member);

  // Shared addresses (DESIGN.md §5). Takeover: a released shared address becomes held
  // on the group's best active member (the least loaded); release: a held (or
  // unserviceable) one becomes released. The daemon does the kernel's part (address,
  // announcements, tickles; the release sequence) from the SharedAddressChanged event.
  // Errors: not_shared (not a configured shared address), already_held, not_held,
  // not_usable (takeover while the group has no active member). Nothing changes on error.
  Result<void> takeover_shared(const IpAddress& address);
  Result<void> release_shared(const IpAddress& address);

  // Runtime changes of the group set (D-Bus, reload). Each validates first and changes
  // nothing when it fails.
  Result<void> create_group(GroupConfig config);
  Result<void> destroy_group(std::string_view name);
  Result<void> add_member(std::string_view group, MemberConfig member);
  Result<void> remove_member(std::string_view ifname);
  Result<void> add_data_address(std::string_view group, const IpPrefix& address);
  Result<void> remove_data_address(std::string_view group, const IpAddress& address);
  // Members of `config` that the kernel has and that cannot be members (the loopback,
  // a tunnel): one line per problem, naming the member. Interfaces the kernel does not
  // have (yet) pass. Used for the configuration at start and on reload.
  Result<void> check_links(const Config& config) const;
  // Reload: applies the difference between the configuration in force and `next`
  // (already validated by the parser). Unchanged groups, members and addresses are not
  // touched; members removed from the file are removed even if they are the last.
  void reconfigure(const Config& next);

  // --- persistence -------------------------------------------------------------------
  // What must survive a restart (OFFLINE marks, FAILED members, placement and homes).
  std::vector<PersistedGroup> export_state() const;
  // Before start(): re-applies saved marks to the configured groups. A FAILED member
  // stays failed until its link goes down and up again or, when probed, probes repair
  // it; saved holders are only hints (the kernel's placement is adopted).
  void import_state(const std::vector<PersistedGroup>& state);

  // --- time ------------------------------------------------------------------------
  std::optional<TimePoint> next_deadline() const;
  void on_timer();

  // --- queries ---------------------------------------------------------------------
  const Config& config() const { return config_; }
  const std::vector<Group>& groups() const { return groups_; }
  const Group* find_group(std::string_view name) const;
  const Member* find_member(std::string_view ifname) const;
  const Group* group_of(std::string_view ifname) const;
  // The group that has `address` as a shared address, or nullptr.
  const Group* group_of_shared(const IpAddress& address) const;
  const Group& anonymous() const { return anonymous_; }


 private:
  enum class Transition { repair, online, initial };

  // The writers of a member's published fields (state, inactive, link, probe: its
  // MemberSnapshot), the only code that assigns them. commit() publishes what changed
  // since the last one as one MemberChanged (no-op when nothing did) and bumps the
  // counters; set_state and set_inactive commit at once; set_link and set_probe record
  // an input that the next commit (refresh) publishes.
  void commit(Group& g, Member& m, Reason reason);
  void set_state(Group& g, Member& m, MemberState state, Reason reason);
  void set_inactive(Group& g, Member& m, bool inactive, Reason reason);
  // The state derive_state() gives, with INACTIVE decided when the member becomes usable.
  void apply_state(Group& g, Member& m, Reason reason, Transition t);
  void set_link(Member& m, LinkState link);
  void set_probe(Member& m, ProbeState probe);
  void set_group_state(Group& g, GroupState state, Reason reason);
  void move(Group& g, DataAddress& a, const std::string& to, Reason reason);
  // The one writer of a shared address: no-op when nothing changes, else one
  // SharedAddressChanged.
  void set_shared(Group& g, SharedAddress& s, SharedState state, const std::string& holder, Reason reason,
                  std::string detail = {});
  void sync_shared(Group& g, Reason reason);
  void place_shared(Group& g, Reason reason);
  void adopt_shared(Group& g);
  void publish(const Event& e);

  Member* member_by_name(std::string_view ifname, Group** group = nullptr);
  MemberState derive_state(const Member& m) const;
  void note_link_up(Member& m, TimePoint now) const;
  void check_hwaddr(Group& g);
  void release_ifindex(const LinkObservation& obs);
  bool decide_inactive(const Group& g, const Member& m, Transition t) const;
  // Re-derive one member's state after an input, then run the group policy.
  void refresh(Group& g, Member& m, Reason reason, Transition t = Transition::repair);
  void run_policy(Group& g, Reason reason, bool lost_active);
  void normalize_active(Group& g, bool lost_active);
  void place_addresses(Group& g, Reason reason);
  void refresh_group_state(Group& g, Reason reason);
  void init_member(Group& g, Member& m);
  Result<void> check_member(const MemberConfig& mc) const;
  Result<void> check_claims(const std::vector<Claim>& fresh) const;
  Result<void> check_link(std::string_view ifname) const;
  std::size_t others_for_offline(const Group& g, const Member& m) const;
  void reconfigure_group(Group& g, const GroupConfig& next, const DaemonSettings& before);
  void drop_member(Group& g, const std::string& name);
  bool another_working(const Group& g, const Member& m) const;
  void group_failure(Group& g);
  void refresh_fdt(Group& g);

  const TimeSource& clock_;
  Config config_;
  std::vector<Group> groups_;
  Group anonymous_;  // interfaces tracked without a group (track-interfaces-only-with-groups = false)
  std::vector<Listener> listeners_;
  bool started_ = false;
  // The last observation of every interface, so a member added later starts from it.
  std::vector<LinkObservation> links_;
  // Addresses seen in the kernel before start(): ifname -> prefixes.
  std::vector<std::pair<std::string, IpPrefix>> kernel_addresses_;
  std::vector<IpAddress> restored_homes_;  // data addresses whose home came from saved state
  std::vector<PersistedShared> restored_shared_;  // shared addresses saved as held
};

}  // namespace mpathd
