#include "table.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace ipmpctl {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

constexpr std::size_t kMaxDefaultWidth = 80;

}  // namespace

std::expected<OutputOptions, std::string> parse_output_options(const std::string& o,
                                                               bool parsable) {
  OutputOptions opts;
  std::string lo = lower(o);
  if (lo == "json") {
    if (parsable) return std::unexpected("-P cannot be combined with -o json");
    opts.mode = OutputMode::json;
    return opts;
  }
  opts.mode = parsable ? OutputMode::parsable : OutputMode::human;
  if (lo.empty()) {
    if (parsable) return std::unexpected("-P requires an explicit -o field list");
    return opts;
  }
  std::size_t start = 0;
  while (start <= lo.size()) {
    auto comma = lo.find(',', start);
    auto f = lo.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (f.empty()) return std::unexpected("empty field name in -o '" + o + "'");
    if (f == "all") {
      opts.all = true;
    } else {
      opts.fields.push_back(f);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (opts.all && parsable) return std::unexpected("-P requires an explicit -o field list, not 'all'");
  if (opts.all && !opts.fields.empty()) return std::unexpected("-o all cannot be combined with field names");
  return opts;
}

std::expected<std::vector<std::size_t>, std::string> select_fields(std::span<const Field> fields,
                                                                   const OutputOptions& opts) {
  std::vector<std::size_t> sel;
  if (opts.all) {
    for (std::size_t i = 0; i < fields.size(); ++i) sel.push_back(i);
    return sel;
  }
  if (opts.fields.empty()) {
    std::size_t width = 0;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      width += fields[i].width;
      if (width > kMaxDefaultWidth && !sel.empty()) break;
      sel.push_back(i);
    }
    return sel;
  }
  for (const auto& want : opts.fields) {
    auto it = std::find_if(fields.begin(), fields.end(),
                           [&](const Field& f) { return lower(f.name) == want; });
    if (it == fields.end()) {
      std::string valid;
      for (const auto& f : fields) valid += (valid.empty() ? "" : ",") + lower(f.name);
      return std::unexpected("unknown field '" + want + "' (fields: " + valid + ")");
    }
    sel.push_back(static_cast<std::size_t>(it - fields.begin()));
  }
  return sel;
}

std::string escape_parsable(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == ':' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

Table::Table(std::span<const Field> fields, std::vector<std::size_t> selection, OutputMode mode)
    : fields_(fields), sel_(std::move(selection)), mode_(mode) {}

std::string Table::header() const {
  if (mode_ != OutputMode::human) return "";
  Row names;
  for (const auto& f : fields_) names.emplace_back(f.name);
  return line(names);
}

std::string Table::line(const Row& row) const {
  std::string out;
  if (mode_ == OutputMode::parsable) {
    const bool escape = sel_.size() > 1;
    for (std::size_t k = 0; k < sel_.size(); ++k) {
      if (k) out += ':';
      const std::string& v = sel_[k] < row.size() ? row[sel_[k]] : std::string();
      out += escape ? escape_parsable(v) : v;
    }
    return out;
  }
  // Human: each value padded to its column; a value longer than its column pushes the
  // rest right, and the following columns give back that overflow from their padding
  // (always keeping one space between values). The last value is not padded.
  std::size_t overflow = 0;
  for (std::size_t k = 0; k < sel_.size(); ++k) {
    std::string v = sel_[k] < row.size() ? row[sel_[k]] : std::string();
    if (v.empty()) v = "--";
    out += v;
    if (k + 1 == sel_.size()) break;
    std::size_t width = fields_[sel_[k]].width;
    std::size_t used = v.size() + 1;  // at least one space
    if (used + overflow <= width) {
      out.append(width - used - overflow + 1, ' ');
      overflow = 0;
    } else {
      out += ' ';
      overflow = used + overflow - width;
    }
  }
  return out;
}

std::string LiveHeader::before_row() {
  const bool due = interval_ > 0 && rows_ > 0 && rows_ % interval_ == 0;
  ++rows_;
  return due ? start() : "";
}

long header_interval(long requested, int terminal_rows) {
  if (requested >= 0) return requested;
  if (terminal_rows <= 0) return 0;
  return std::max(terminal_rows - 1, 2);  // at least one row between two headers
}

int terminal_rows(int fd) {
  if (!isatty(fd)) return 0;
  struct winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0) return 24;
  return ws.ws_row;
}

}  // namespace ipmpctl
