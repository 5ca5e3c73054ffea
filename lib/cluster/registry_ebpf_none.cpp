// Built when the eBPF programs are not (no clang/bpftool at configure time): the
// registry stays at the sock_diag level and says why.
#include "cluster/registry_impl.hpp"

namespace mpathd::cluster::detail {

std::unique_ptr<Registry> create_ebpf_registry(sd_event*, const RegistryOptions&, const Registry::Changed&,
                                               const Registry::SocketsChanged&,
                                               std::string& reason) {
  reason = "built without the eBPF programs (clang, bpftool or libbpf missing at build time)";
  return nullptr;
}

}  // namespace mpathd::cluster::detail
