// ipmpstat-style output (libofmt): fixed-width columns with "--" for empty values,
// the 80-column default field selection, and the parsable (-P) form.
#pragma once

#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <utility>
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

// The header of a live view (probes), repeated like vmstat's so that it stays in sight:
// printed at the start, then again before every `interval`-th row (0: never again).
class LiveHeader {
 public:
  LiveHeader(std::string header, long interval) : header_(std::move(header)), interval_(interval) {}
  // The header line(s) to print now, at the start or before a row ("" when none is due;
  // always "" for an empty header, as in parsable mode).
  std::string start() const { return header_.empty() ? "" : header_ + "\n"; }
  std::string before_row();

 private:
  std::string header_;
  long interval_;
  long rows_ = 0;
};

// How often a live view repeats its header: `requested` when it is >= 0 (--header-every;
// 0 never repeats); otherwise, on a terminal of `terminal_rows` rows, one less (each
// screenful shows a header), and never when the output is not a terminal (0 rows).
long header_interval(long requested, int terminal_rows);
// The rows of the terminal fd is, 0 when it is not a terminal; 24 when it does not say.
int terminal_rows(int fd);

}  // namespace ipmpctl
