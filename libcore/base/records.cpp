#include "base/records.hpp"

#include <poll.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "base/error.hpp"
#include "base/file.hpp"

namespace ceso {

namespace {

ordered_json convert(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::OBJECT: {
      ordered_json o = ordered_json::object();
      for (auto field : simdjson::dom::object(e)) o[std::string(field.key)] = convert(field.value);
      return o;
    }
    case element_type::ARRAY: {
      ordered_json a = ordered_json::array();
      for (auto v : simdjson::dom::array(e)) a.push_back(convert(v));
      return a;
    }
    case element_type::STRING:
      return std::string(std::string_view(e));
    case element_type::INT64:
      return int64_t(e);
    case element_type::UINT64:
      return uint64_t(e);
    case element_type::DOUBLE:
      return double(e);
    case element_type::BOOL:
      return bool(e);
    case element_type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

ordered_json parse_with(simdjson::dom::parser& parser, std::string_view text) {
  simdjson::dom::element doc;
  auto err = parser.parse(text.data(), text.size(), true).get(doc);
  if (err) bad_input(simdjson::error_message(err));
  return convert(doc);
}

}  // namespace

struct NdjsonReader::Impl {
  simdjson::dom::parser parser;
  std::string line;
};

NdjsonReader::NdjsonReader(FILE* stream, std::string name, size_t max_line)
    : impl_(std::make_unique<Impl>()),
      stream_(stream),
      name_(std::move(name)),
      max_line_(max_line) {}

NdjsonReader::~NdjsonReader() = default;

void NdjsonReader::read_failed(const std::string& reason) {
  failed_ = true;
  fail("cannot read " + name_ + " at line " + std::to_string(line_ + 1) + ": " + reason +
       " (the records after it were not read)");
}

// One line into impl_->line, without its newline. getc_unlocked, not
// getline(3): getline grows its buffer without bound and reports a failed
// read or allocation like the end of input, so records after a huge line
// were dropped with exit status 0. stdio hands on what each read(2) returned,
// so records are still taken one by one as they arrive through a pipe.
NdjsonReader::Read NdjsonReader::read_line() {
  std::string& line = impl_->line;
  line.clear();
  bool too_long = false;
  bool any = false;
  for (;;) {
    int c = getc_unlocked(stream_);
    if (c == EOF) {
      if (std::ferror(stream_)) {
        int err = errno;
        read_failed(std::strerror(err != 0 ? err : EIO));
      }
      if (!any) return Read::end;
      break;
    }
    any = true;
    if (c == '\n') break;
    if (too_long) continue;  // skip the rest of an over-long line
    if (line.size() >= max_line_) {
      too_long = true;
      line.clear();
      line.shrink_to_fit();
      continue;
    }
    try {
      line.push_back(static_cast<char>(c));
    } catch (const std::bad_alloc&) {
      size_t size = line.size();
      line.clear();
      line.shrink_to_fit();
      read_failed("out of memory for a line of more than " + std::to_string(size) + " bytes");
    }
  }
  ++line_;
  return too_long ? Read::too_long : Read::line;
}

bool NdjsonReader::wait_ready(int timeout_ms) {
  if (failed_ || std::feof(stream_) || std::ferror(stream_)) return true;
#ifdef __GLIBC__
  // Bytes stdio has read but not handed out yet (what gnulib's freadahead
  // reads): poll(2) cannot see them.
  if (stream_->_IO_read_ptr < stream_->_IO_read_end) return true;
#endif
  int fd = fileno(stream_);
  if (fd < 0) return true;  // a memory stream: never waits
  struct pollfd p {};
  p.fd = fd;
  p.events = POLLIN;
  // Readable, hung up, an error, or EINTR (the caller checks interrupted()):
  // next() finds out which.
  return ::poll(&p, 1, std::max(timeout_ms, 0)) != 0;
}

std::optional<InputRecord> NdjsonReader::next() {
  if (failed_) return std::nullopt;
  for (;;) {
    errno = 0;
    Read r = read_line();
    if (r == Read::end) return std::nullopt;
    std::string origin = name_ + ":" + std::to_string(line_);
    if (r == Read::too_long)
      bad_input("error (at " + origin + "): line longer than " + std::to_string(max_line_) +
                " bytes, the limit for one record");
    std::string_view text = impl_->line;
    while (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    size_t first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;  // blank line
    if (size_t nul = text.find('\0'); nul != std::string_view::npos)
      bad_input("error (at " + origin + "): a NUL byte at column " + std::to_string(nul + 1) +
                " (binary data, not a JSON record)");
    ordered_json value;
    try {
      value = parse_with(impl_->parser, text);
    } catch (const Error& e) {
      bad_input("error (at " + origin + "): not a JSON record: " + e.what());
    } catch (const std::bad_alloc&) {
      failed_ = true;  // memory is short: stop reading, like a failed read
      fail("out of memory parsing " + origin + " (" + std::to_string(text.size()) +
           " bytes); the records after it were not read");
    }
    if (!value.is_object()) bad_input("error (at " + origin + "): a record must be a JSON object");
    return InputRecord{std::move(value), std::move(origin), line_};
  }
}

namespace {

std::string dump_one(const ordered_json& v) {
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// nlohmann's serializer checks every byte for UTF-8 and escapes; a string of
// printable ASCII without '"' and '\\' needs neither, whatever its length.
void put_json_string(std::string& out, const std::string& s) {
  for (char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      out += dump_one(ordered_json(s));
      return;
    }
  }
  out += '"';
  out += s;
  out += '"';
}

void put_json(std::string& out, const ordered_json& v) {
  switch (v.type()) {
    case ordered_json::value_t::object: {
      out += '{';
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it != v.begin()) out += ',';
        put_json_string(out, it.key());
        out += ':';
        put_json(out, it.value());
      }
      out += '}';
      break;
    }
    case ordered_json::value_t::array: {
      out += '[';
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it != v.begin()) out += ',';
        put_json(out, *it);
      }
      out += ']';
      break;
    }
    case ordered_json::value_t::string:
      put_json_string(out, v.get_ref<const std::string&>());
      break;
    // Written here as nlohmann writes them, without a serializer per value;
    // floating-point numbers (its own shortest form) are left to it.
    case ordered_json::value_t::number_integer:
    case ordered_json::value_t::number_unsigned: {
      char buf[24];
      auto r = v.is_number_unsigned() ? std::to_chars(buf, buf + sizeof buf, v.get<uint64_t>())
                                      : std::to_chars(buf, buf + sizeof buf, v.get<int64_t>());
      out.append(buf, r.ptr);
      break;
    }
    case ordered_json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case ordered_json::value_t::null:
      out += "null";
      break;
    default:
      out += dump_one(v);
      break;
  }
}

}  // namespace

std::string record_line(const ordered_json& record) {
  std::string line;
  line.reserve(512);
  put_json(line, record);
  line += '\n';
  return line;
}

bool write_record(const ordered_json& record) { return write_stdout(record_line(record)); }

bool write_stdout(std::string_view text) {
  // Plain write(2): one record reaches the pipe whole, and we see EPIPE.
  int err = write_all(STDOUT_FILENO, text);
  if (err == EPIPE) return false;
  if (err) fail(std::string("cannot write to standard output: ") + std::strerror(err));
  return true;
}

ordered_json pass_through(const ordered_json& upstream, const ordered_json& ours,
                          const std::vector<std::string>& owned) {
  if (!ours.is_object()) fail("internal error: a record to print is not a JSON object");
  ordered_json out = ours;
  if (!upstream.is_object()) return out;
  for (const auto& [key, value] : upstream.items()) {
    if (ours.contains(key)) continue;
    if (std::find(owned.begin(), owned.end(), key) != owned.end()) continue;
    out[key] = value;
  }
  return out;
}

const ordered_json* field_at(const ordered_json& record, std::string_view path) {
  const ordered_json* cur = &record;
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string key(path.substr(0, dot));
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  }
  return cur;
}

std::string cell_text(const ordered_json* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_boolean()) return v->get<bool>() ? "yes" : "no";
  if (v->is_array()) {
    std::string s;
    for (const auto& e : *v) {
      if (!s.empty()) s += ',';
      s += cell_text(&e);
    }
    return s.empty() ? "-" : s;
  }
  return v->dump();
}

}  // namespace ceso
