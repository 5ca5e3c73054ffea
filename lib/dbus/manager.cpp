// The Manager object: daemon-wide properties and the admin methods. Each method checks
// the caller's privilege first (the bus policy is the first layer, this the second),
// then its arguments, then calls the Engine; Engine errors become D-Bus error names.

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "core/validate.hpp"
#include "core/version.hpp"
#include "dbus/bus.hpp"

namespace mpathd::dbus {

namespace {

Service::Impl& impl_of(void* userdata) { return *static_cast<Service::Impl*>(userdata); }

int set_error(sd_bus_error* error, const Error& e) {
  return sd_bus_error_set(error, dbus_error_name(e.code).c_str(), e.message.c_str());
}

int invalid_address(sd_bus_error* error, const char* text, const char* expected) {
  return sd_bus_error_setf(error, dbus_error_name(Errc::invalid_argument).c_str(), "invalid address %s (expected %s)",
                           echo(text).c_str(), expected);
}

// Root (uid 0) only; otherwise AccessDenied and nothing happens. > 0 = allowed.
// The uid is the one the bus daemon vouches for (never read racily from /proc).
// Capabilities are not consulted: the bus policy, which refuses everyone but root
// first, cannot test them, and a rule that held only with a bus that lets every caller
// through would be a promise the default installation does not keep.
int check_privilege(sd_bus_message* m, sd_bus_error* error) {
  const char* member = sd_bus_message_get_member(m);
  sd_bus_creds* creds = nullptr;
  int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID, &creds);
  uid_t uid = 1;
  if (r >= 0) {
    if (sd_bus_creds_get_augmented_mask(creds) & (SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID))
      r = -EPERM;  // only from /proc: not trusted
    else if (r = sd_bus_creds_get_euid(creds, &uid); r < 0)
      r = sd_bus_creds_get_uid(creds, &uid);
  }
  sd_bus_creds_unref(creds);
  if (r < 0)
    return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                             "%s requires root (the caller's credentials are unavailable: %s)", member,
                             std::strerror(-r));
  if (uid == 0) return 1;
  return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                           "%s requires root (uid 0); capabilities such as CAP_NET_ADMIN do not suffice", member);
}

// The shape of every Manager method: privilege, then body(impl), all guarded.
template <typename F>
int admin(sd_bus_message* m, void* userdata, sd_bus_error* error, F&& body) {
  return guarded(error, [&]() -> int {
    if (int r = check_privilege(m, error); r <= 0) return r;
    return body(impl_of(userdata));
  });
}

// The reply to an admin method, sent once the change is saved (ServiceHooks): the
// hook's outcome may come before the method has finished its checks, or long after the
// method returned (the loop does not wait for the disk).
class DeferredReply : public std::enable_shared_from_this<DeferredReply> {
 public:
  // object: the method's out-argument ("o"), "" for none.
  DeferredReply(sd_bus_message* m, std::string object) : m_(sd_bus_message_ref(m)), object_(std::move(object)) {}
  ~DeferredReply() { sd_bus_message_unref(m_); }
  DeferredReply(const DeferredReply&) = delete;
  DeferredReply& operator=(const DeferredReply&) = delete;

  ServiceHooks::Reply callback() {
    return [self = shared_from_this()](Result<void> r) {
      if (!self->outcome_) self->outcome_ = std::move(r);
      if (self->armed_) self->send();
    };
  }
  // The method's checks are done: the reply goes out when the outcome is known (now,
  // if it is). `instead`: an error reply of the method's own, sent now.
  int arm(std::optional<Error> instead = std::nullopt) {
    armed_ = true;
    if (instead) outcome_ = std::unexpected(*instead);
    if (outcome_) send();
    return 1;
  }

 private:
  void send() {
    if (sent_) return;
    sent_ = true;
    int r = 0;
    if (!*outcome_) {
      sd_bus_error e = SD_BUS_ERROR_NULL;
      sd_bus_error_set(&e, dbus_error_name(outcome_->error().code).c_str(), outcome_->error().message.c_str());
      r = sd_bus_reply_method_error(m_, &e);
      sd_bus_error_free(&e);
    } else if (object_.empty()) {
      r = sd_bus_reply_method_return(m_, nullptr);
    } else {
      r = sd_bus_reply_method_return(m_, "o", object_.c_str());
    }
    if (r < 0) spdlog::debug("D-Bus: cannot reply to {}: {}", sd_bus_message_get_member(m_), std::strerror(-r));
  }

  sd_bus_message* m_;
  std::string object_;
  std::optional<Result<void>> outcome_;
  bool armed_ = false;
  bool sent_ = false;
};

// After a change: saves and applies it, and replies once it is saved (a state that
// could not be saved is the reply).
int reply_when_saved(Service::Impl& s, sd_bus_message* m, std::string object = {}) {
  auto d = std::make_shared<DeferredReply>(m, std::move(object));
  s.changed(d->callback());
  return d->arm();
}

// Replies to a command without out-arguments.
int finish(Service::Impl& s, sd_bus_message* m, const Result<void>& result, sd_bus_error* error) {
  if (!result) return set_error(error, result.error());
  return reply_when_saved(s, m);
}

int create_group(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* name = nullptr;
    const char* ifname = nullptr;
    if (int r = sd_bus_message_read(m, "ss", &name, &ifname); r < 0) return r;
    GroupConfig gc;
    gc.name = name;
    gc.interface = ifname;  // "" = the group's name
    if (auto r = s.engine.create_group(std::move(gc)); !r) return set_error(error, r.error());
    return reply_when_saved(s, m, group_path(name));
  });
}

int destroy_group(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* name = nullptr;
    if (int r = sd_bus_message_read(m, "s", &name); r < 0) return r;
    return finish(s, m, s.engine.destroy_group(name), error);
  });
}

int add_member(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* group = nullptr;
    const char* ifname = nullptr;
    int standby = 0;
    if (int r = sd_bus_message_read(m, "ssb", &group, &ifname, &standby); r < 0) return r;
    MemberConfig mc;
    mc.name = ifname;
    mc.standby = standby != 0;
    if (auto r = s.engine.add_member(group, std::move(mc)); !r) return set_error(error, r.error());
    return reply_when_saved(s, m, interface_path(ifname));
  });
}

int remove_member(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* ifname = nullptr;
    if (int r = sd_bus_message_read(m, "s", &ifname); r < 0) return r;
    return finish(s, m, s.engine.remove_member(ifname), error);
  });
}

int add_data_address(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* group = nullptr;
    const char* text = nullptr;
    if (int r = sd_bus_message_read(m, "ss", &group, &text); r < 0) return r;
    auto prefix = parse_managed_address(text, AddressRole::data);
    if (!prefix) return set_error(error, Error{Errc::invalid_argument, prefix.error()});
    if (auto r = s.engine.add_data_address(group, *prefix); !r) return set_error(error, r.error());
    auto reply = std::make_shared<DeferredReply>(m, "");
    s.changed(reply->callback());  // the kernel has been asked by the time this returns
    // Placed, but the kernel refused it: the caller is told, and the address goes.
    for (const auto& a : s.engine.find_group(group)->data)
      if (a.prefix == *prefix && !a.refused.empty()) {
        Error refused{Errc::system, "the kernel refused the address (" + a.refused + "); it was not added"};
        (void)s.engine.remove_data_address(group, a.prefix.addr);  // `a` is gone from here on
        s.changed({});
        return reply->arm(refused);
      }
    return reply->arm();
  });
}

int remove_data_address(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* group = nullptr;
    const char* text = nullptr;
    if (int r = sd_bus_message_read(m, "ss", &group, &text); r < 0) return r;
    auto address = parse_address_maybe_prefix(text);
    if (!address) return invalid_address(error, text, "an IPv4 or IPv6 address");
    return finish(s, m, s.engine.remove_data_address(group, *address), error);
  });
}

int offline(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* ifname = nullptr;
    if (int r = sd_bus_message_read(m, "s", &ifname); r < 0) return r;
    return finish(s, m, s.engine.offline(ifname), error);
  });
}

int online(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* ifname = nullptr;
    if (int r = sd_bus_message_read(m, "s", &ifname); r < 0) return r;
    return finish(s, m, s.engine.online(ifname), error);
  });
}

int move_address(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* text = nullptr;
    const char* ifname = nullptr;
    if (int r = sd_bus_message_read(m, "ss", &text, &ifname); r < 0) return r;
    auto address = parse_address_maybe_prefix(text);
    if (!address) return invalid_address(error, text, "an IPv4 or IPv6 address");
    return finish(s, m, s.engine.move_address(*address, ifname), error);
  });
}

// A shared address argument: an address, with or without its prefix length.
template <typename F>
int with_shared_address(sd_bus_message* m, sd_bus_error* error, F&& body) {
  const char* text = nullptr;
  if (int r = sd_bus_message_read(m, "s", &text); r < 0) return r;
  auto address = parse_address_maybe_prefix(text);
  if (!address) return invalid_address(error, text, "an IPv4 or IPv6 address");
  return body(*address);
}

int takeover_shared(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    return with_shared_address(m, error, [&](const IpAddress& a) { return finish(s, m, s.engine.takeover_shared(a), error); });
  });
}

int release_shared(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    return with_shared_address(m, error, [&](const IpAddress& a) { return finish(s, m, s.engine.release_shared(a), error); });
  });
}

// The registry of an address must be one of a configured shared address.
Result<void> check_shared(const Engine& engine, const IpAddress& a) {
  if (!engine.group_of_shared(a)) return fail(Errc::not_shared, a.str() + " is not a shared address of any group");
  return {};
}

int export_associations(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    return with_shared_address(m, error, [&](const IpAddress& a) -> int {
      if (auto r = check_shared(s.engine, a); !r) return set_error(error, r.error());
      if (!s.hooks.export_associations) return sd_bus_error_set(error, kErrorFailed, "the association registry is not available");
      auto json = s.hooks.export_associations(a);
      if (!json) return set_error(error, json.error());
      return sd_bus_reply_method_return(m, "s", json->c_str());
    });
  });
}

int import_associations(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    const char* text = nullptr;
    const char* json = nullptr;
    if (int r = sd_bus_message_read(m, "ss", &text, &json); r < 0) return r;
    auto address = parse_address_maybe_prefix(text);
    if (!address) return invalid_address(error, text, "an IPv4 or IPv6 address");
    if (auto r = check_shared(s.engine, *address); !r) return set_error(error, r.error());
    if (!s.hooks.import_associations) return sd_bus_error_set(error, kErrorFailed, "the association registry is not available");
    auto n = s.hooks.import_associations(*address, json);
    if (!n) return set_error(error, n.error());
    return sd_bus_reply_method_return(m, "u", static_cast<std::uint32_t>(*n));
  });
}

int reload(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  return admin(m, userdata, error, [&](Service::Impl& s) -> int {
    if (!s.hooks.reload) return sd_bus_error_set(error, kErrorFailed, "reload is not available");
    // What the reload changed is announced from the Engine's events, as for SIGHUP.
    if (auto r = s.hooks.reload(); !r) return set_error(error, r.error());
    return reply_when_saved(s, m);
  });
}

std::uint64_t to_ms(Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms < 0 ? 0 : static_cast<std::uint64_t>(ms);
}

int get_manager(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply, void* userdata,
                sd_bus_error* error) {
  return guarded(error, [&]() -> int { return manager_property(reply, impl_of(userdata), property); });
}

constexpr auto kChange = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;
// sd-bus would otherwise demand CAP_SYS_ADMIN itself; check_privilege() asks for
// root and says so in its error.
constexpr auto kOwnCheck = SD_BUS_VTABLE_UNPRIVILEGED;

}  // namespace

int manager_property(sd_bus_message* reply, const Service::Impl& impl, std::string_view p) {
  const Engine& engine = impl.engine;
  const Config& c = engine.config();
  if (p == "Version") return sd_bus_message_append(reply, "s", kVersion);
  if (p == "FailureDetectionTime") return sd_bus_message_append(reply, "t", to_ms(c.failure_detection_time));
  if (p == "Failback") return sd_bus_message_append(reply, "b", static_cast<int>(c.failback));
  if (p == "TrackInterfacesOnlyWithGroups")
    return sd_bus_message_append(reply, "b", static_cast<int>(c.track_interfaces_only_with_groups));
  if (p == "NotificationCount")
    return sd_bus_message_append(reply, "u", static_cast<std::uint32_t>(c.notification_count));
  if (p == "NotificationInterval") return sd_bus_message_append(reply, "t", to_ms(c.notification_interval));
  if (p == "Groups") return append_strings(reply, 'o', all_group_paths(engine));
  if (p == "Interfaces") return append_strings(reply, 'o', all_interface_paths(engine));
  const ServiceHooks& hooks = impl.hooks;
  if (p == "StateProblem")
    return sd_bus_message_append(reply, "s", hooks.state_problem ? hooks.state_problem().c_str() : "");
  if (p == "RegistryLevel" || p == "RegistryLevelReason") {
    const auto level =
        hooks.registry_level ? hooks.registry_level() : std::pair<std::string, std::string>{"none", "no registry"};
    return sd_bus_message_append(reply, "s", (p == "RegistryLevel" ? level.first : level.second).c_str());
  }
  if (p == "Replication" || p == "ReplicationReason") {
    const auto rep = hooks.replication ? hooks.replication()
                                       : std::pair<std::string, std::string>{"off", "no replication"};
    return sd_bus_message_append(reply, "s", (p == "Replication" ? rep.first : rep.second).c_str());
  }
  if (p == "Hooks") {
    int r = sd_bus_message_open_container(reply, 'a', "(ssstts)");
    if (r < 0) return r;
    for (const auto& h : hooks.hook_states ? hooks.hook_states() : std::vector<HookState>{}) {
      r = sd_bus_message_append(reply, "(ssstts)", h.name.c_str(), h.type.c_str(), h.state.c_str(), h.restarts,
                                h.lost, h.last_error.c_str());
      if (r < 0) return r;
    }
    return sd_bus_message_close_container(reply);
  }
  return -ENOENT;
}

// clang-format off
const sd_bus_vtable kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", get_manager, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("FailureDetectionTime", "t", get_manager, 0, kChange),
    SD_BUS_PROPERTY("Failback", "b", get_manager, 0, kChange),
    SD_BUS_PROPERTY("TrackInterfacesOnlyWithGroups", "b", get_manager, 0, kChange),
    SD_BUS_PROPERTY("NotificationCount", "u", get_manager, 0, kChange),
    SD_BUS_PROPERTY("NotificationInterval", "t", get_manager, 0, kChange),
    SD_BUS_PROPERTY("RegistryLevel", "s", get_manager, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("RegistryLevelReason", "s", get_manager, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Replication", "s", get_manager, 0, 0),        // read when wanted: no signal
    SD_BUS_PROPERTY("ReplicationReason", "s", get_manager, 0, 0),  // read when wanted: no signal
    SD_BUS_PROPERTY("Hooks", "a(ssstts)", get_manager, 0, 0),  // read when wanted: no signal
    SD_BUS_PROPERTY("Groups", "ao", get_manager, 0, kChange),
    SD_BUS_PROPERTY("Interfaces", "ao", get_manager, 0, kChange),
    SD_BUS_PROPERTY("StateProblem", "s", get_manager, 0, kChange),
    SD_BUS_METHOD_WITH_NAMES("CreateGroup", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(group_interface),
                             "o", SD_BUS_PARAM(group), create_group, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("DestroyGroup", "s", SD_BUS_PARAM(name), "", "", destroy_group, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("AddMember", "ssb", SD_BUS_PARAM(group) SD_BUS_PARAM(interface) SD_BUS_PARAM(standby),
                             "o", SD_BUS_PARAM(member), add_member, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("RemoveMember", "s", SD_BUS_PARAM(interface), "", "", remove_member, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("AddDataAddress", "ss", SD_BUS_PARAM(group) SD_BUS_PARAM(address), "", "",
                             add_data_address, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("RemoveDataAddress", "ss", SD_BUS_PARAM(group) SD_BUS_PARAM(address), "", "",
                             remove_data_address, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("Offline", "s", SD_BUS_PARAM(interface), "", "", offline, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("Online", "s", SD_BUS_PARAM(interface), "", "", online, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("MoveAddress", "ss", SD_BUS_PARAM(address) SD_BUS_PARAM(interface), "", "",
                             move_address, kOwnCheck),
    SD_BUS_METHOD("Reload", "", "", reload, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("TakeoverShared", "s", SD_BUS_PARAM(address), "", "", takeover_shared, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("ReleaseShared", "s", SD_BUS_PARAM(address), "", "", release_shared, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("ExportAssociations", "s", SD_BUS_PARAM(address), "s", SD_BUS_PARAM(associations),
                             export_associations, kOwnCheck),
    SD_BUS_METHOD_WITH_NAMES("ImportAssociations", "ss", SD_BUS_PARAM(address) SD_BUS_PARAM(associations), "u",
                             SD_BUS_PARAM(entries), import_associations, kOwnCheck),
    // Open to every caller, like the properties it reads (no privilege check).
    SD_BUS_METHOD_WITH_NAMES("GetState", "", "", kStateSignature,
                             SD_BUS_PARAM(manager) SD_BUS_PARAM(groups) SD_BUS_PARAM(interfaces), get_state,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};
// clang-format on

}  // namespace mpathd::dbus
