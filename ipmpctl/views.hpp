// The ipmpstat views as pure functions of a client::Snapshot: fields, rows and the
// JSON objects of `-o json` (keys: the contract's property names in snake_case).
#pragma once

#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/client.hpp"
#include "table.hpp"

namespace ipmpctl {

namespace client = mpathd::client;

// Fields and widths of ipmpstat -g, -i, -a, -t and -p.
inline constexpr std::array<Field, 5> kGroupFields{{
    {"GROUP", 12}, {"GROUPNAME", 12}, {"STATE", 10}, {"FDT", 10}, {"INTERFACES", 30}}};
inline constexpr std::array<Field, 7> kInterfaceFields{{{"INTERFACE", 12},
                                                        {"ACTIVE", 8},
                                                        {"GROUP", 12},
                                                        {"FLAGS", 10},
                                                        {"LINK", 10},
                                                        {"PROBE", 10},
                                                        {"STATE", 10}}};
inline constexpr std::array<Field, 5> kAddressFields{{
    {"ADDRESS", 26}, {"STATE", 7}, {"GROUP", 12}, {"INBOUND", 12}, {"OUTBOUND", 23}}};
inline constexpr std::array<Field, 6> kSharedFields{{
    {"ADDRESS", 26}, {"STATE", 14}, {"GROUP", 12}, {"HOLDER", 12}, {"REASON", 16}, {"DETAIL", 40}}};
inline constexpr std::array<Field, 4> kRegistryFields{
    {{"LEVEL", 10}, {"REASON", 40}, {"REPLICATION", 12}, {"REPLICATION_REASON", 40}}};
inline constexpr std::array<Field, 7> kAssociationFields{{{"PROTO", 6},
                                                          {"LOCAL", 28},
                                                          {"REMOTE", 28},
                                                          {"STATE", 12},
                                                          {"DIRECTION", 10},
                                                          {"ORIGIN", 9},
                                                          {"ADDRESS", 20}}};
inline constexpr std::array<Field, 4> kTargetFields{{
    {"INTERFACE", 12}, {"MODE", 10}, {"TESTADDR", 20}, {"TARGETS", 38}}};
inline constexpr std::array<Field, 8> kProbeFields{{{"TIME", 10},
                                                    {"INTERFACE", 12},
                                                    {"PROBE", 7},
                                                    {"NETRTT", 10},
                                                    {"RTT", 10},
                                                    {"RTTAVG", 10},
                                                    {"TARGET", 20},
                                                    {"RTTDEV", 10}}};

// "%.2fs" of a duration in milliseconds (FDT).
std::string format_seconds_ms(std::uint64_t ms);
// "%.2fs" of seconds (probe TIME; may be negative).
std::string format_seconds(double s);
// "%.2fms" of microseconds; "" for 0 (unknown).
std::string format_usec_ms(std::uint64_t usec);
// An address without its "/len".
std::string strip_prefix(const std::string& addr);

// A member can carry traffic unless it failed or is offline.
bool usable(const client::InterfaceView& i);
// ipmpstat's 7 FLAGS positions: i s m b M d h ('-' where unset or unknown to us).
std::string flags_string(const client::InterfaceView& i);
// "active (inactive) [unusable]", e.g. "m0 m1 (m2) [m3]".
std::string interfaces_column(const client::GroupView& g, const client::Snapshot& s);
// FDT column: "" when no member probes.
std::string fdt_column(const client::GroupView& g, const client::Snapshot& s);

// Interfaces in ipmpstat's order: each group's members, then ungrouped interfaces.
std::vector<const client::InterfaceView*> ordered_interfaces(const client::Snapshot& s);

std::vector<Row> group_rows(const client::Snapshot& s);
std::vector<Row> interface_rows(const client::Snapshot& s);
std::vector<Row> address_rows(const client::Snapshot& s);
std::vector<Row> target_rows(const client::Snapshot& s);
std::vector<Row> shared_rows(const client::Snapshot& s);
std::vector<Row> registry_rows(const client::Snapshot& s);
// The rows of an association list (cluster/association_json.hpp's JSON array).
std::vector<Row> association_rows(const nlohmann::json& list);
Row probe_row(const client::ProbeResult& p, double seconds_since_start);

nlohmann::json group_json(const client::GroupView& g);
nlohmann::json interface_json(const client::InterfaceView& i);
nlohmann::json manager_json(const client::ManagerView& m);
nlohmann::json groups_json(const client::Snapshot& s);
nlohmann::json interfaces_json(const client::Snapshot& s);
nlohmann::json addresses_json(const client::Snapshot& s);
nlohmann::json targets_json(const client::Snapshot& s);
nlohmann::json shared_json(const client::Snapshot& s);
nlohmann::json registry_json(const client::Snapshot& s);
nlohmann::json probe_json(const client::ProbeResult& p, double seconds_since_start);

// monitor: one event per line, human or JSON.
std::string event_line(const client::InterfaceStateChanged& e);
std::string event_line(const client::GroupStateChanged& e);
std::string event_line(const client::AddressMoved& e);
std::string event_line(const client::SharedAddressChanged& e);
std::string event_line(const client::ProbeResult& e);
std::string event_line(const client::ObjectChange& e, bool added);
nlohmann::json event_json(const client::InterfaceStateChanged& e);
nlohmann::json event_json(const client::GroupStateChanged& e);
nlohmann::json event_json(const client::AddressMoved& e);
nlohmann::json event_json(const client::SharedAddressChanged& e);
nlohmann::json event_json(const client::ProbeResult& e);
nlohmann::json event_json(const client::ObjectChange& e, bool added);

}  // namespace ipmpctl
