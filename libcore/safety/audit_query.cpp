#include "safety/audit_query.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/duration.hpp"
#include "base/error.hpp"
#include "base/util.hpp"
#include "safety/audit.hpp"

namespace ceso {

namespace {

// As in audit.cpp: no audit record is this long.
constexpr size_t kMaxLine = 16u << 20;

[[noreturn]] void fail_on(std::string_view what, const std::string& path, int err) {
  fail("cannot " + std::string(what) + " " + quote(path) + ": " + std::strerror(err));
}

bool glob_matches(const std::string& pattern, const ordered_json& record, const char* field) {
  if (pattern.empty()) return true;
  auto it = record.find(field);
  if (it == record.end() || !it->is_string()) return false;
  return ::fnmatch(pattern.c_str(), it->get_ref<const std::string&>().c_str(), 0) == 0;
}

std::string string_field(const ordered_json& record, const char* field) {
  auto it = record.find(field);
  return it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "2026-11-22[THH:MM[:SS[.fff]]][Z|±HH:MM]" (a blank for the T too) → seconds
// since the epoch; nullopt when it is not that.
std::optional<int64_t> parse_utc(std::string_view text) {
  std::string s(text);
  struct tm tm {};
  const char* rest = ::strptime(s.c_str(), "%Y-%m-%d", &tm);
  if (!rest) return std::nullopt;
  if (*rest == 'T' || *rest == ' ') {
    const char* t = ::strptime(rest + 1, "%H:%M", &tm);
    if (!t) return std::nullopt;
    rest = t;
    if (*rest == ':') {
      if (!std::isdigit(static_cast<unsigned char>(rest[1])) ||
          !std::isdigit(static_cast<unsigned char>(rest[2])))
        return std::nullopt;
      tm.tm_sec = (rest[1] - '0') * 10 + (rest[2] - '0');
      if (tm.tm_sec > 60) return std::nullopt;
      rest += 3;
      if (*rest == '.') {
        ++rest;
        if (!std::isdigit(static_cast<unsigned char>(*rest))) return std::nullopt;
        while (std::isdigit(static_cast<unsigned char>(*rest))) ++rest;  // below a second: dropped
      }
    }
  }
  int64_t offset = 0;
  if (*rest == 'Z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    int hh = 0, mm = 0, used = 0;
    if (std::sscanf(rest + 1, "%2d:%2d%n", &hh, &mm, &used) != 2 || used != 5 || hh > 23 || mm > 59)
      return std::nullopt;
    offset = (*rest == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
    rest += 1 + used;
  }
  if (*rest != '\0') return std::nullopt;
  time_t t = ::timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(t) - offset;
}

}  // namespace

AuditReader::AuditReader(std::string path) : path_(std::move(path)) { reopen(); }

AuditReader::~AuditReader() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditReader::reopen() {
  // Open the new file first: when that fails, the old one stays readable.
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_on("open audit log", path_, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int err = errno;
    ::close(fd);
    if (!S_ISREG(st.st_mode)) fail("audit log " + quote(path_) + " is not a regular file");
    fail_on("stat", path_, err);
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  offset_ = 0;
  pending_.clear();
  line_ = 0;
  skipping_ = false;
}

bool AuditReader::replaced() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return true;
  if (st.st_dev != dev_ || st.st_ino != ino_) return true;
  return st.st_size < offset_;
}

size_t AuditReader::read(const std::function<void(const AuditLine&)>& fn) {
  size_t count = 0;
  std::string buf(1 << 16, '\0');
  for (;;) {
    ssize_t r = ::pread(fd_, buf.data(), buf.size(), offset_);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_on("read", path_, errno);
    }
    if (r == 0) return count;
    offset_ += r;
    std::string_view chunk(buf.data(), static_cast<size_t>(r));
    for (size_t nl; (nl = chunk.find('\n')) != std::string_view::npos;
         chunk.remove_prefix(nl + 1)) {
      ++line_;
      ++count;
      // Too long, whether found while it came (skipping_) or only now.
      if (skipping_ || pending_.size() + nl > kMaxLine) {
        skipping_ = false;
        pending_.clear();
        fn({line_, {}, true});
        continue;
      }
      pending_.append(chunk.substr(0, nl));
      fn({line_, pending_, false});
      pending_.clear();
    }
    if (!skipping_) pending_.append(chunk);
    if (pending_.size() > kMaxLine) {  // never buffer a line no record can be
      skipping_ = true;
      pending_.clear();
    }
  }
}

bool AuditFilter::matches(const ordered_json& record) const {
  if (!since.empty() || !until.empty()) {
    std::string time = string_field(record, "time");
    if (time.empty()) return false;
    if (!since.empty() && time < since) return false;
    if (!until.empty() && time >= until) return false;
  }
  if (!glob_matches(tool, record, "tool") || !glob_matches(vm, record, "vm") ||
      !glob_matches(actor, record, "user"))
    return false;
  if (!correlation.empty() && string_field(record, "correlation_id") != correlation) return false;
  if (failed && string_field(record, "result") == "ok") return false;
  return true;
}

std::string parse_time_bound(std::string_view text, std::string_view what,
                             std::chrono::system_clock::time_point now) {
  // A time has a '-' after its year; a duration ("2h", "1y6mo") never does.
  if (text.find('-') == std::string_view::npos) {
    Duration d = parse_duration(text, what);
    time_t secs = std::chrono::system_clock::to_time_t(now);
    return utc_timestamp(std::chrono::system_clock::from_time_t(subtract(secs, d)));
  }
  auto t = parse_utc(text);
  if (!t)
    usage_error(std::string(what) + ": bad time " + quote(text) +
                ": expected a duration (90min, 2h, 7d) or a UTC time (2026-11-22, "
                "2026-11-22T03:04:05Z, 2026-11-22T04:04+01:00)");
  return utc_timestamp(std::chrono::system_clock::from_time_t(static_cast<time_t>(*t)));
}

std::string csv_cell(std::string_view text) {
  std::string cell;
  // A spreadsheet runs a cell that starts like a formula (OWASP "CSV injection").
  if (!text.empty() && std::strchr("=+-@\t\r", text.front())) cell += '\'';
  cell.append(text);
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

namespace {
constexpr const char* kCsvColumns[] = {
    "line",        "time",           "user",      "tool",   "endpoint",
    "vm",          "vm_id",          "operation", "result", "error",
    "duration_ms", "correlation_id", "pid",       "params", "tail_unverified",
    "prev",
};
}  // namespace

std::string audit_csv_header() {
  std::string row;
  for (const char* c : kCsvColumns) {
    if (!row.empty()) row += ',';
    row += c;
  }
  return row + "\r\n";
}

std::string audit_csv_row(const ordered_json& record, size_t line) {
  std::string row;
  bool first = true;
  for (const char* c : kCsvColumns) {
    if (!first) row += ',';
    first = false;
    if (std::string_view(c) == "line") {
      row += std::to_string(line);
      continue;
    }
    auto it = record.find(c);
    if (it == record.end() || it->is_null()) continue;
    row += csv_cell(it->is_string()
                        ? it->get<std::string>()
                        : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return row + "\r\n";
}

}  // namespace ceso
