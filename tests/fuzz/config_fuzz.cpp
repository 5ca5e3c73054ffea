// Fuzz target: the configuration parser, main file and drop-ins (parse_config).
// The input is one or more files separated by a line "#%%" (a TOML comment, so the
// separator is harmless when mutated); the first is mpathd.conf, the rest its drop-ins.
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/config_file.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mpathd;
  const auto text = fuzz::as_text(data, size);
  const auto parts = fuzz::split(text, "\n#%%\n", 8);
  // Each input is parsed once (docs/fuzzing.md, speed). A one-file input through the
  // one-file overload, which makes the one-element list; several files as the list.
  // Parsing a multi-file input also as one file (its separators being comments) would
  // add nothing the mutator cannot reach by changing one byte of a separator.
  if (parts.size() == 1) {
    (void)parse_config(text, "mpathd.conf");
    return 0;
  }
  std::vector<ConfigText> files;
  for (auto part : parts)
    files.push_back({files.empty() ? "mpathd.conf" : "mpathd.conf.d/" + std::to_string(files.size()) + ".conf",
                     std::string(part)});
  (void)parse_config(files);
  return 0;
}
