// VMDK descriptors as a backup stores them and restore rewrites them
// (restore.cpp: descriptor_extents, rewrite_descriptor), and the datastore
// paths ("[ds] dir/file.vmdk") the host reports for disk files (transport/datastore.hpp,
// vm/spec.hpp). A descriptor comes from the host at backup time and from the
// target at restore time: both can be hostile.
#include <algorithm>

#include "backup/restore.hpp"
#include "fuzz.hpp"
#include "transport/datastore.hpp"
#include "vm/spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ceso;
  std::string text(ceso_fuzz::as_text(data, size));

  std::vector<std::string> old_names;
  ceso_fuzz::expect_ok_or_error([&] { old_names = descriptor_extents(text); });
  std::vector<std::string> names;
  for (size_t i = 0; i < old_names.size(); ++i)
    names.push_back("web01b-flat" + (i ? std::to_string(i) : std::string()) + ".vmdk");
  ceso_fuzz::expect_ok_or_error([&] {
    std::string out = rewrite_descriptor(text, names, "web01b-000001.vmdk");
    // The rewritten descriptor names exactly the new extents, line for line.
    CESO_FUZZ_CHECK(descriptor_extents(out) == names, "rewritten extents are the new names");
    CESO_FUZZ_CHECK(
        std::count(out.begin(), out.end(), '\n') == std::count(text.begin(), text.end(), '\n'),
        "rewriting keeps the line count");
  });
  // More names than extent lines is refused, never half done.
  names.push_back("extra-flat.vmdk");
  bool refused = false;
  try {
    (void)rewrite_descriptor(text, names, "");
  } catch (const Error& e) {
    ceso_fuzz::check_message(e);
    refused = true;
  }
  CESO_FUZZ_CHECK(refused, "a descriptor with too few extent lines is refused");

  // Each line as a datastore path, both parsers; a parsed path prints back
  // to something that parses to the same parts.
  size_t pos = 0;
  for (int lines = 0; pos <= text.size() && lines < 64; ++lines) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    ceso_fuzz::expect_ok_or_error([&] {
      DatastorePath p = parse_datastore_path(line);
      DatastorePath q = parse_datastore_path(p.str());
      CESO_FUZZ_CHECK(p.datastore == q.datastore && p.path == q.path,
                      "datastore path round trip (transport/datastore.hpp)");
    });
    ceso_fuzz::expect_ok_or_error([&] {
      vmspec::DatastorePath p = vmspec::parse_datastore_path(line);
      vmspec::DatastorePath q = vmspec::parse_datastore_path(p.text());
      CESO_FUZZ_CHECK(p.datastore == q.datastore && p.path == q.path,
                      "datastore path round trip (vm/spec.hpp)");
      (void)vmspec::dir_name(p.path);
    });
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return 0;
}
