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

// The longest input line (one record, without its newline) a reader takes:
// 16 MiB, far above any record ceso writes (a guestinfo record with base64
// cloud-init user-data is tens of KiB) and small enough that a stray binary
// file on stdin cannot make a tool hold gigabytes. Documented in ceso(7).
inline constexpr size_t kMaxRecordLine = size_t{16} << 20;

class NdjsonReader {
 public:
  // Reads from `stream`; `name` is used in messages ("<stdin>").
  // `max_line` is the longest line taken (tests pass a small one).
  NdjsonReader(FILE* stream, std::string name, size_t max_line = kMaxRecordLine);
  ~NdjsonReader();
  NdjsonReader(const NdjsonReader&) = delete;
  NdjsonReader& operator=(const NdjsonReader&) = delete;

  // Next record; std::nullopt at the end of input (a last line without a
  // newline is a record like any other). Blank lines are skipped.
  // A line that is not a JSON object, is longer than `max_line`, holds a NUL
  // byte or is not UTF-8 throws Error(Exit::bad_input) naming the line; the
  // reader stays usable (the rest of a long line is skipped), so callers may
  // report and go on.
  // A failure to read (EIO, EISDIR, out of memory) is never taken for the
  // end of input: it throws Error(Exit::failure) naming the line, and the
  // reader is then at its end (failed() is true): callers must stop.
  std::optional<InputRecord> next();
  size_t line() const { return line_; }
  bool failed() const { return failed_; }
  // Whether next() can go on without waiting for the writer: input is
  // buffered or readable, or the stream is at its end or failed. Waits up
  // to `timeout_ms` for it. So a reader can batch what has arrived and act
  // on it before waiting for more (cli/tool for_each_vm).
  bool wait_ready(int timeout_ms);

 private:
  enum class Read { line, too_long, end };
  Read read_line();
  [[noreturn]] void read_failed(const std::string& reason);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  FILE* stream_;
  std::string name_;
  size_t max_line_;
  size_t line_ = 0;
  bool failed_ = false;
};

// A record as one NDJSON line with its '\n': the bytes of
// record.dump(-1, ' ', false, error_handler_t::replace), written faster for
// strings of printable ASCII (base64 values, names), which go as they are.
std::string record_line(const ordered_json& record);
// Write one record as a line on stdout and flush. Returns false when stdout is
// a closed pipe (EPIPE): the caller should stop quietly (`ceso-ls | head -1`).
bool write_record(const ordered_json& record);
// The same for any text: one write(2) loop, so it reaches a pipe whole.
bool write_stdout(std::string_view text);

// A field of a record by dotted path ("snapshot.name"); null if absent.
const ordered_json* field_at(const ordered_json& record, std::string_view path);

// Render a scalar/array value for a table cell: strings unquoted, arrays
// comma-joined, null as "-".
std::string cell_text(const ordered_json* value);

// The record a tool prints for an input record (docs/design.md "Records",
// ceso(7) RECORDS): unknown upstream fields kept, our fields fresh.
//
//   - Every field of `ours` is in the result with our value, whatever the
//     upstream had under that key (another value, another JSON type, null):
//     so `type`, `endpoint`, `id`, `name` and `uuid` are always the host's,
//     never the input's. Values are replaced whole (shallow): an upstream
//     object under one of our keys is not merged into ours.
//   - A field named in `owned` but absent from `ours` is dropped: it is ours
//     to state and we did not state it this time, so upstream's value would
//     be stale (a vm record's `template` on a VM that is no template, the
//     `forced` of an earlier ceso-power, a ceso-info field a tool did not
//     read). Dropped rather than null: null would state that the VM has no
//     such value, which is known only to a tool that read it; such a tool
//     puts the null in `ours` (`ip` without an address).
//   - Every other upstream field is kept as it was, nested values untouched,
//     whatever the upstream record's type (a tool that consumes fields of
//     another type, like ceso-mkvm the `guestinfo` of a guestinfo record,
//     lists them in `owned`).
//   - Key order: ours first, in our order, then the kept upstream fields in
//     the upstream's order. So a tool prints its fields in one layout whether
//     the VM came as a name or as a record, whatever order the input had.
//   - An upstream that is not an object (an operand's empty record, null)
//     adds nothing. `ours` must be an object (Error otherwise).
ordered_json pass_through(const ordered_json& upstream, const ordered_json& ours,
                          const std::vector<std::string>& owned = {});

// What a VM tool acts on: a name given as an operand, or a record read from
// the pipeline (cli/tool.hpp for_each_target makes them).
struct Target {
  std::string name;     // from an operand, or the record's "name"
  ordered_json record;  // the input record (object); {} for an operand
  std::string origin;   // "<stdin>:3" or "argument 2", for messages
};

}  // namespace ceso
