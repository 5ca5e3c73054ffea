#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mpathd {

// Writes path.tmp, renames it over path, so a reader sees either the old or the new
// content. With durable (the default) the file and the directory are fsynced too, so
// that this also holds after a crash of the machine.
Result<void> write_file_atomically(const std::string& path, std::string_view content, bool durable = true);

// mkdir -p with the given mode for the last component.
Result<void> make_directory(const std::string& path, unsigned mode);

}  // namespace mpathd
