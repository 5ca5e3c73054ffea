#include "net/nft_block.hpp"

#include <nftables/libnftables.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

namespace mpathd::net {
namespace {

const std::string kTable = std::string("inet ") + kNftTable;

std::string set_of(const IpAddress& a) { return a.is_v4() ? "blocked4" : "blocked6"; }

// The whole table; created in one transaction when the first address is blocked.
std::string table_definition() {
  return "add table " + kTable + "\n" +                                  //
         "add set " + kTable + " blocked4 { type ipv4_addr; }\n" +       //
         "add set " + kTable + " blocked6 { type ipv6_addr; }\n" +       //
         "add chain " + kTable +
         " input { type filter hook input priority filter - 10; policy accept; }\n" +
         "add rule " + kTable + " input ip daddr @blocked4 tcp flags & (syn | ack) == syn drop\n" +
         "add rule " + kTable + " input ip6 daddr @blocked6 tcp flags & (syn | ack) == syn drop\n" +
         "add rule " + kTable + " input ip daddr @blocked4 meta l4proto udp drop\n" +
         "add rule " + kTable + " input ip6 daddr @blocked6 meta l4proto udp drop\n";
}

}  // namespace

struct AddressBlock::Ctx {
  nft_ctx* nft = nullptr;
  ~Ctx() {
    if (nft) nft_ctx_free(nft);
  }
};

AddressBlock::AddressBlock(std::unique_ptr<Ctx> c) : c_(std::move(c)) {}
AddressBlock::AddressBlock(AddressBlock&&) noexcept = default;
AddressBlock& AddressBlock::operator=(AddressBlock&&) noexcept = default;
AddressBlock::~AddressBlock() = default;

Result<AddressBlock> AddressBlock::open() {
  auto c = std::make_unique<Ctx>();
  c->nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!c->nft) return fail(Errc::system, "nftables: cannot create a context");
  nft_ctx_buffer_output(c->nft);
  nft_ctx_buffer_error(c->nft);
  return AddressBlock(std::move(c));
}

Result<std::string> AddressBlock::run(const std::string& cmds, bool json_output) {
  nft_ctx_output_set_flags(c_->nft, json_output ? NFT_CTX_OUTPUT_JSON : 0);
  const int r = nft_run_cmd_from_buffer(c_->nft, cmds.c_str());
  std::string out = nft_ctx_get_output_buffer(c_->nft);
  std::string err = nft_ctx_get_error_buffer(c_->nft);
  if (r != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return fail(Errc::system, "nftables: " + (err.empty() ? std::string("command failed") : err));
  }
  return out;
}

Result<std::vector<IpAddress>> AddressBlock::blocked() {
  std::vector<IpAddress> out;
  auto listing = run("list table " + kTable, true);
  if (!listing) return out;  // no table: nothing blocked
  const auto j = nlohmann::json::parse(*listing, nullptr, false);
  if (j.is_discarded() || !j.contains("nftables"))
    return fail(Errc::system, "nftables: unreadable JSON listing of " + kTable);
  for (const auto& item : j["nftables"]) {
    if (!item.contains("set")) continue;
    const auto& set = item["set"];
    if (!set.contains("elem")) continue;
    for (const auto& e : set["elem"])
      if (e.is_string())
        if (auto a = IpAddress::parse(e.get<std::string>())) out.push_back(*a);
  }
  return out;
}

Result<void> AddressBlock::block(const IpAddress& addr) {
  std::string cmds;
  if (!run("list table " + kTable)) cmds = table_definition();
  cmds += "add element " + kTable + " " + set_of(addr) + " { " + addr.str() + " }\n";
  if (auto r = run(cmds); !r) return std::unexpected(r.error());
  return {};
}

Result<void> AddressBlock::unblock(const IpAddress& addr) {
  auto now = blocked();
  if (!now) return std::unexpected(now.error());
  const bool present = std::find(now->begin(), now->end(), addr) != now->end();
  const std::size_t others = now->size() - (present ? 1 : 0);
  if (!present) {
    if (now->empty()) (void)run("delete table " + kTable);  // an empty leftover table
    return {};
  }
  const std::string cmd = others == 0
                              ? "delete table " + kTable + "\n"
                              : "delete element " + kTable + " " + set_of(addr) + " { " + addr.str() + " }\n";
  if (auto r = run(cmd); !r) return std::unexpected(r.error());
  return {};
}

}  // namespace mpathd::net
