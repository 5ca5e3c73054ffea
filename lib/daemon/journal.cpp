#include "daemon/journal.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <syslog.h>
// CODE_FILE= and friends would name this sink, not the line's origin.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

namespace mpathd {

bool stderr_is_journal() {
  const char* e = std::getenv("JOURNAL_STREAM");
  if (!e) return false;
  std::string_view s(e);
  auto colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0, ino = 0;
  auto [p1, ec1] = std::from_chars(s.data(), s.data() + colon, dev);
  auto [p2, ec2] = std::from_chars(s.data() + colon + 1, s.data() + s.size(), ino);
  if (ec1 != std::errc{} || p1 != s.data() + colon || ec2 != std::errc{} || p2 != s.data() + s.size()) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) < 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

int journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return LOG_DEBUG;
    case spdlog::level::info: return LOG_INFO;
    case spdlog::level::warn: return LOG_WARNING;
    case spdlog::level::err: return LOG_ERR;
    case spdlog::level::critical: return LOG_CRIT;
    default: return LOG_INFO;
  }
}

std::vector<std::string> journal_record(std::string_view identifier, spdlog::level::level_enum level,
                                        std::string_view message, const log::Fields* fields) {
  std::vector<std::string> r;
  auto add = [&r](std::string_view key, std::string_view value) {
    if (!value.empty()) r.push_back(std::string(key) + "=" + std::string(value));
  };
  add("MESSAGE", message);
  add("PRIORITY", std::to_string(journal_priority(level)));
  add("SYSLOG_IDENTIFIER", identifier);
  if (fields) {
    add("MESSAGE_ID", fields->message_id);
    add("MPATHD_GROUP", fields->group);
    add("INTERFACE", fields->interface);
    add("MPATHD_ADDRESS", fields->address);
    add("MPATHD_REASON", fields->reason);
    for (const auto& [k, v] : fields->extra) add(k, v);
  }
  return r;
}

namespace {
// sd_journal_sendv() silently drops a record when the socket is missing (ENOENT), so
// whether journald listens is checked once, as systemd's own log code does.
bool journal_reachable() {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, "/run/systemd/journal/socket", sizeof sa.sun_path - 1);
  const bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  close(fd);
  return ok;
}

class JournalSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit JournalSink(std::string identifier) : identifier_(std::move(identifier)), native_(journal_reachable()) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (native_ && send(msg, text) >= 0) return;
    // The journal is not reachable: stderr is its stream, which understands "<N>".
    std::fprintf(stderr, "<%d>%.*s\n", journal_priority(msg.level), static_cast<int>(text.size()), text.data());
  }
  void flush_() override { std::fflush(stderr); }

 private:
  int send(const spdlog::details::log_msg& msg, std::string_view text) const {
    const auto items = journal_record(identifier_, msg.level, text, log::current);
    std::vector<iovec> iov;
    iov.reserve(items.size());
    for (const auto& i : items) iov.push_back({const_cast<char*>(i.data()), i.size()});
    return sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }

  std::string identifier_;
  bool native_;
};
}  // namespace

std::shared_ptr<spdlog::sinks::sink> make_journal_sink(std::string identifier) {
  return std::make_shared<JournalSink>(std::move(identifier));
}

}  // namespace mpathd
