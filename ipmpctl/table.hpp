// ipmpstat-style output (libofmt): fixed-width columns with "--" for empty values,
// the 80-column default field selection, and the parsable (-P) form.
#pragma once

#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ipmpctl {

struct Field {
  std::string_view name;  // header, upper case; -o accepts any case
  std::size_t width;      // column width including the separating space
};

using Row = std::vector<std::string>;  // one value per field of the view, in field order

enum class OutputMode { human, parsable, json };

// What -o/-P asked for. `fields` is empty for the default selection.
struct OutputOptions {
  OutputMode mode = OutputMode::human;
  std::vector<std::string> fields;  // lower-cased
  bool all = false;                 // -o all
};

// Parses the global -o and -P options. Errors are usage errors (exit 2).
std::expected<OutputOptions, std::string> parse_output_options(const std::string& o, bool parsable);

// Indices of the fields to print: the requested ones (case-insensitive, "all" for every
// field), else fields in order until their widths sum past 80 columns.
std::expected<std::vector<std::size_t>, std::string> select_fields(std::span<const Field> fields,
                                                                   const OutputOptions& opts);

// Escapes ':' and '\' with '\' (parsable output with more than one field).
std::string escape_parsable(std::string_view value);

// Renders rows for the selection: human mode has a header line; parsable mode has no
// header, prints nothing for empty values and separates fields with ':'.
class Table {
 public:
  Table(std::span<const Field> fields, std::vector<std::size_t> selection, OutputMode mode);
  std::string header() const;  // "" in parsable mode
  std::string line(const Row& row) const;

 private:
  std::span<const Field> fields_;
  std::vector<std::size_t> sel_;
  OutputMode mode_;
};

}  // namespace ipmpctl
