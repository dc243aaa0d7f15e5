// NDJSON records: one JSON object per line (docs/design.md "Records").
//
// Reading uses simdjson (fast, strict UTF-8 check) and hands each record on
// as an nlohmann::json so a tool can add its result and pass unknown fields
// through untouched. Writing prints one line and flushes it so the next tool
// in a pipe can start at once.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ceso {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// A record read from input, with where it came from for messages.
struct InputRecord {
  ordered_json value;
  std::string origin;  // "<stdin>:3"
  size_t line = 0;
};

class NdjsonReader {
 public:
  // Reads from `stream`; `name` is used in messages ("<stdin>").
  NdjsonReader(FILE* stream, std::string name);
  ~NdjsonReader();
  NdjsonReader(const NdjsonReader&) = delete;
  NdjsonReader& operator=(const NdjsonReader&) = delete;

  // Next record; std::nullopt at end of input. Blank lines are skipped.
  // A line that is not a JSON object throws Error(Exit::bad_input) naming
  // the line; the reader stays usable, so callers may report and go on.
  std::optional<InputRecord> next();
  size_t line() const { return line_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  FILE* stream_;
  std::string name_;
  size_t line_ = 0;
};

// Parse one JSON text with simdjson into an ordered_json (key order kept).
// Throws Error(bad_input) with simdjson's reason.
ordered_json parse_json_text(std::string_view text);

// Write one record as a line on stdout and flush. Returns false when stdout is
// a closed pipe (EPIPE): the caller should stop quietly (`ceso-ls | head -1`).
bool write_record(const ordered_json& record);

// A field of a record by dotted path ("snapshot.name"); null if absent.
const ordered_json* field_at(const ordered_json& record, std::string_view path);

// Render a scalar/array value for a table cell: strings unquoted, arrays
// comma-joined, null as "-".
std::string cell_text(const ordered_json* value);

}  // namespace ceso
