// manifest.json (manifest.hpp) as read back from a target by verify, reindex
// and restore: a damaged or hostile target must give Error(bad_input), and
// what we write must read back.
#include "backup/manifest.hpp"
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ceso;
  std::string text(ceso_fuzz::as_text(data, size));
  ceso_fuzz::expect_ok_or_error([&] {
    Manifest m = manifest_from_json(text);
    (void)m.bytes_raw();
    (void)m.bytes_stored();
    CatalogEntry e = catalog_entry(m, "file:///srv/backups");
    (void)e;
    // A manifest we accepted, written out again, reads back the same.
    std::string again = manifest_json(m).dump();
    Manifest m2;
    try {
      m2 = manifest_from_json(again);
    } catch (const Error& err) {
      std::fprintf(stderr, "manifest written from an accepted one is refused: %s\n", err.what());
      CESO_FUZZ_CHECK(false, "manifest round trip");
    }
    CESO_FUZZ_CHECK(manifest_json(m2) == manifest_json(m), "manifest round trip is stable");
  });
  return 0;
}
