// NDJSON reader (records.hpp): the first thing every tool does with its stdin.
#include <cstdio>

#include "base/records.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ceso;
  // The stream as a tool reads it: line by line, a bad line reported and
  // skipped (the reader stays usable, records.hpp).
  if (size > 0) {
    FILE* f = fmemopen(const_cast<uint8_t*>(data), size, "r");
    if (!f) return 0;
    NdjsonReader reader(f, "<stdin>");
    size_t last_line = 0;
    for (int guard = 0; guard < 100000; ++guard) {
      std::optional<InputRecord> rec;
      bool failed = false;
      try {
        rec = reader.next();
      } catch (const Error& e) {
        ceso_fuzz::check_message(e);
        failed = true;
      }
      CESO_FUZZ_CHECK(reader.line() >= last_line, "line numbers never go back");
      if (!failed && !rec) break;
      if (failed) {
        // A failed line must still advance the reader, or a tool loops forever.
        CESO_FUZZ_CHECK(reader.line() > last_line, "a bad line is consumed");
        last_line = reader.line();
        continue;
      }
      last_line = reader.line();
      CESO_FUZZ_CHECK(rec->value.is_object(), "a record is an object");
      // What tools do with a record: dotted fields, table cells, writing it on.
      for (auto it = rec->value.begin(); it != rec->value.end(); ++it) {
        (void)cell_text(field_at(rec->value, it.key()));
        std::string dotted = it.key() + "." + it.key();
        (void)cell_text(field_at(rec->value, dotted));
      }
      std::string line = rec->value.dump();
      // A record we read must read back the same (tools pass records on).
      auto again = ceso_fuzz::first_record(line);
      CESO_FUZZ_CHECK(again && *again == rec->value, "a record reads back as it was written");
    }
    std::fclose(f);
  }
  return 0;
}
