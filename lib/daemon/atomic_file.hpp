#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mpathd {

// Writes path.tmp, fsyncs it, renames it over path and fsyncs the directory, so a
// reader sees either the old or the new content, also after a crash.
Result<void> write_file_atomically(const std::string& path, std::string_view content);

// mkdir -p with the given mode for the last component.
Result<void> make_directory(const std::string& path, unsigned mode);

}  // namespace mpathd
