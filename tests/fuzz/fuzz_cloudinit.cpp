// cloud-init spec records (cloudinit.hpp): record → CloudInitSpec →
// guestinfo, and back (decode_guestinfo, as ceso-clone reads a VM's
// guestinfo: hostile host input). Fields that name local files (user_data,
// network_config, ssh_key_file, write_file) are not opened: their value is
// fed as the file's text to the same loaders instead, so the fuzzer never
// reads the machine's files. .vmx values: vmx_quote (libcore has no .vmx
// file parser; .vmx files are copied as bytes).
#include <map>

#include "base/records.hpp"
#include "cloudinit/cloudinit.hpp"
#include "fuzz.hpp"

namespace {

using namespace ceso;

std::string text_of(const ordered_json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void load_file_fields(ordered_json& rec) {
  if (auto it = rec.find("user_data"); it != rec.end()) {
    ceso_fuzz::expect_ok_or_error([&] { (void)load_user_data(text_of(*it), "user-data"); });
    rec.erase(it);
  }
  if (auto it = rec.find("network_config"); it != rec.end()) {
    ceso_fuzz::expect_ok_or_error([&] { (void)load_network_config(text_of(*it), "net.yaml"); });
    rec.erase(it);
  }
  if (auto it = rec.find("ssh_key_file"); it != rec.end()) {
    ceso_fuzz::expect_ok_or_error([&] { (void)ssh_keys_from_text(text_of(*it), "keys"); });
    rec.erase(it);
  }
  rec.erase("write_file");
}

bool upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

// What VMware's dictionary reader needs of a quoted value: quotes only at the
// ends, tab the only raw control character, each '|' starting a |XX escape
// of the byte in its place (so the value reads back as it was).
void vmx_round_trip(const std::string& s) {
  std::string q = vmx_quote(s);
  CESO_FUZZ_CHECK(q.size() >= 2 && q.front() == '"' && q.back() == '"', "a quoted .vmx value");
  size_t i = 1;
  for (unsigned char c : s) {
    CESO_FUZZ_CHECK(i < q.size() - 1, "every byte of the value is in the quoted text");
    if (q[i] == '|') {
      CESO_FUZZ_CHECK(i + 2 < q.size() - 1 && upper_hex(q[i + 1]) && upper_hex(q[i + 2]) &&
                          std::stoi(q.substr(i + 1, 2), nullptr, 16) == c,
                      "|XX escapes the byte it stands for");
      i += 3;
    } else {
      // VMware's dictionary writer keeps tab raw and escapes the other controls.
      CESO_FUZZ_CHECK(static_cast<unsigned char>(q[i]) == c && c != '"' &&
                          ((c >= 0x20 && c != 0x7f) || c == '\t'),
                      "a byte kept raw is itself, and neither a quote nor a control");
      ++i;
    }
  }
  CESO_FUZZ_CHECK(i == q.size() - 1, "nothing follows the value");
}

void spec_to_guestinfo(const ordered_json& rec) {
  CloudInitSpec spec = SpecReader().read(rec);
  GuestInfoDocuments docs = render_documents(spec);
  for (auto enc :
       {GuestInfoEncoding::gzip_base64, GuestInfoEncoding::base64, GuestInfoEncoding::none}) {
    ceso_fuzz::expect_ok_or_error([&] {
      GuestInfo gi = encode_guestinfo(docs, enc);
      for (const auto& [k, v] : gi.values)
        CESO_FUZZ_CHECK(v.size() < kGuestInfoValueLimit, "encoded values stay under 64 KiB");
      // What we write into a VM, read back as ceso-clone reads it.
      std::map<std::string, std::string, std::less<>> values(gi.values.begin(), gi.values.end());
      GuestInfo back;
      try {
        back = decode_guestinfo(values);
      } catch (const Error& e) {
        std::fprintf(stderr, "guestinfo we wrote does not decode: %s\n", e.what());
        CESO_FUZZ_CHECK(false, "guestinfo round trip");
      }
      CESO_FUZZ_CHECK(back.instance_id == gi.instance_id, "instance-id round trip");
      CESO_FUZZ_CHECK(back.hostname == gi.hostname, "hostname round trip");
      CESO_FUZZ_CHECK(back.documents.userdata == docs.userdata, "user-data round trip");
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = ceso_fuzz::as_text(data, size);
  ordered_json rec;
  try {
    auto first = ceso_fuzz::first_record(text);
    if (!first) return 0;
    rec = std::move(*first);
  } catch (const Error& e) {
    ceso_fuzz::check_message(e);
    vmx_round_trip(std::string(text));
    return 0;
  }
  // A guestinfo field as a VM (or ceso-cloudinit's output) carries it.
  if (auto it = rec.find("guestinfo"); it != rec.end()) {
    ceso_fuzz::expect_ok_or_error([&] {
      auto pairs = guestinfo_pairs(*it, "<stdin>:1");
      std::map<std::string, std::string, std::less<>> values(pairs.begin(), pairs.end());
      for (const auto& [k, v] : pairs) vmx_round_trip(v);
      (void)decode_guestinfo(values);
    });
    rec.erase(it);
  }
  load_file_fields(rec);
  ceso_fuzz::expect_ok_or_error([&] { spec_to_guestinfo(rec); });
  ceso_fuzz::expect_ok_or_error([&] {
    ordered_json merged = merge_spec_fields(rec, ordered_json{{"hostname", "web02"}});
    (void)SpecReader().read(merged);
  });
  return 0;
}
