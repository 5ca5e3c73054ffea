// Internal to mpathd_client (and its tests): D-Bus property values as plain C++
// values, and the pure conversion of GetManagedObjects' answer into a Snapshot.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "client/client.hpp"

namespace mpathd::client::detail {

// Manager.GetState's reply: (manager) a(group) a(interface), each object its path and
// its properties in the contract's order (dbus/org.ipmp.Mpathd1.xml; the Manager's
// without Groups and Interfaces, which are the arrays' order). A daemon whose reply has
// another signature (a newer contract) is read through GetManagedObjects instead.
// Counters is a struct of its values, in kCounterNames' order.
inline constexpr std::string_view kStateSignature =
    "(stbbutssa(ssstts)s)"
    "a(osssstbaoa(ssss)a(sssss))"
    "a(osussbasbssstsasassa(stt)(ttttttt))";
inline constexpr const char* kCounterNames[] = {"state_changes", "failures",     "repairs",      "link_ups",
                                                "link_downs",    "addresses_in", "addresses_out"};

// One property value, for the signatures the contract uses. Properties of other
// signatures (added later) are kept as monostate and ignored.
using Value = std::variant<std::monostate, std::string, bool, std::uint32_t, std::uint64_t,
                           std::vector<std::string>, std::vector<DataAddress>,
                           std::vector<Target>, std::map<std::string, std::uint64_t>,
                           std::vector<SharedAddress>>;
using Properties = std::map<std::string, Value, std::less<>>;
using InterfaceProps = std::map<std::string, Properties, std::less<>>;  // by D-Bus interface
using ObjectMap = std::map<std::string, InterfaceProps, std::less<>>;     // by object path

// Copies the properties present in `p` into the view (absent ones keep their value).
void apply(ManagerView& v, const Properties& p);
void apply(GroupView& v, const Properties& p);
void apply(InterfaceView& v, const Properties& p);

// Groups and interfaces ordered as the Manager lists them, then the rest by name.
// Member paths become interface names.
Snapshot build_snapshot(const ObjectMap& objects, const Properties& manager);

}  // namespace mpathd::client::detail
