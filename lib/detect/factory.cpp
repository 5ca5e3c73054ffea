#include "detect/factory.hpp"

#include <unistd.h>

#include "detect/arp.hpp"
#include "detect/icmp.hpp"

namespace mpathd::detect {

namespace {
template <typename T>
Result<std::unique_ptr<ProbeStrategy>> widen(Result<std::unique_ptr<T>> r) {
  if (!r) return std::unexpected(r.error());
  return std::unique_ptr<ProbeStrategy>(std::move(*r));
}
}  // namespace

Result<std::unique_ptr<ProbeStrategy>> open_strategy(sd_event* event, ProbeKind kind, const ProbeSource& src) {
  const std::uint16_t id = probe_icmp_id(static_cast<unsigned>(getpid()), src.ifindex);
  switch (kind) {
    case ProbeKind::icmp:
      if (!src.test_v4) return fail(Errc::invalid_argument, src.ifname + ": icmp probing needs an IPv4 test address");
      return widen(IcmpProber::open(event, src.ifindex, src.ifname, *src.test_v4, id));
    case ProbeKind::icmp6:
      if (!src.link_local) return fail(Errc::invalid_argument, src.ifname + ": icmp6 probing needs a link-local address");
      return widen(Icmp6Prober::open(event, src.ifindex, src.ifname, *src.link_local, id));
    case ProbeKind::arp: return widen(ArpProber::open(event, src.ifindex, src.mac));
    case ProbeKind::none: break;
  }
  return fail(Errc::invalid_argument, src.ifname + ": probing disabled");
}

}  // namespace mpathd::detect
