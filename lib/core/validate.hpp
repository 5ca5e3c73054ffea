// The rules for what users hand mpathd, in one place: every way in (the configuration
// file and its drop-ins, D-Bus, reload, ipmpctl) applies these, and only adds where the
// value came from. Pure: no kernel, no I/O. Messages name the offending value (quoted
// and truncated with echo()) and say what is wrong; callers prefix the location.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/types.hpp"

namespace mpathd {

// What an address is for: data and shared addresses move between members, test
// addresses stay on one.
enum class AddressRole : std::uint8_t { data, shared, test };
std::string_view to_string(AddressRole role);

// Why `p` cannot be a managed address of `role`, or nullopt when it can:
//  - not unspecified (0.0.0.0/8, ::), loopback (127/8, ::1), multicast (224/4, ff00::/8),
//    the limited broadcast 255.255.255.255, or IPv4-mapped (::ffff:0:0/96);
//  - IPv6 link-local (fe80::/10) only as a test address (a moving address cannot be
//    bound to one link's scope);
//  - prefix length at least 1 (/0 would make every destination on-link);
//  - for IPv4 prefixes shorter than /31, not the network or broadcast address of its
//    own subnet.
std::optional<std::string> address_problem(const IpPrefix& p, AddressRole role);

// "ADDRESS/LENGTH" as users write a managed address: the length is required, decimal
// and in range for the family, and address_problem() must have nothing to say.
std::expected<IpPrefix, std::string> parse_managed_address(std::string_view text, AddressRole role);

// An address as a command names one, with or without a prefix length. A length that is
// given must be valid (it is otherwise ignored): "198.18.1.10/abc" is refused.
std::optional<IpAddress> parse_address_maybe_prefix(std::string_view text);

// Names: the rules of names.hpp, as messages.
std::optional<std::string> group_name_problem(std::string_view name);
std::optional<std::string> ifname_problem(std::string_view name);

// What the kernel says about an interface that is to become a member. Members must be
// broadcast-capable, Ethernet-like interfaces (ARP, gratuitous ARP, a MAC address):
// not the loopback, not point-to-point or tunnel devices.
struct LinkFacts {
  bool loopback = false;
  bool broadcast = true;     // IFF_BROADCAST
  bool has_hwaddr = true;    // a 6-byte hardware address
};
std::optional<std::string> member_link_problem(std::string_view name, const LinkFacts& link);

// The rules between groups. A configuration (a file, or the running one) makes claims
// that no other part of it may make again: group names; interface names, one namespace
// for group interfaces and members; managed addresses (data, shared and test alike),
// whatever their prefix length. The configuration file parser and the Engine's runtime
// changes (create a group, add a member or an address) check each new claim against
// the ones made before it with claim_conflict(); they only add where a claim was made.
struct Claim {
  enum class Kind : std::uint8_t { group_name, group_interface, member, address };
  Kind kind = Kind::group_name;
  std::string value;   // the name, or the address without its prefix length (IpAddress::str)
  std::string group;   // the group that makes the claim
  std::string member;  // the member a test address belongs to
  AddressRole role = AddressRole::data;  // of an address
};
Claim address_claim(const IpPrefix& address, AddressRole role, std::string group, std::string member = {});
// Why `next` cannot be claimed when `taken` was claimed before it, or nullopt when the
// two do not collide.
std::optional<std::string> claim_conflict(const Claim& taken, const Claim& next);
// What one group claims, in the order of its configuration: its name, its interface (the
// name when none is set), its members, its data and shared addresses, its members' test
// addresses.
std::vector<Claim> claims_of(const GroupConfig& group);
// The first conflict of `fresh` (in order) with `taken` or with a claim before it in
// `fresh`, or nullopt.
std::optional<std::string> first_conflict(const std::vector<Claim>& taken, const std::vector<Claim>& fresh);

// A value from outside, safe to put in a message: in double quotes, control bytes as
// \xNN, cut after kEchoLimit bytes (at a UTF-8 boundary) with the full length noted.
inline constexpr std::size_t kEchoLimit = 64;
std::string echo(std::string_view value);

// Limits on input that is read whole (documented in mpathd.conf(5) and mpathd(8)).
inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;  // one configuration file
inline constexpr std::size_t kMaxReportedErrors = 20;        // problems listed per file

}  // namespace mpathd
