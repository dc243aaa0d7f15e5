#include "backup/manifest.hpp"

#include "base/error.hpp"

namespace ceso {

uint64_t Manifest::bytes_raw() const {
  uint64_t n = 0;
  for (const auto& f : files) n += f.size;
  return n;
}

uint64_t Manifest::bytes_stored() const {
  uint64_t n = 0;
  for (const auto& f : files) n += f.stored_size;
  if (chunk_stats.is_object()) n += chunk_stats.value("bytes_uploaded", uint64_t{0});
  return n;
}

ordered_json manifest_json(const Manifest& m) {
  ordered_json files = ordered_json::array();
  for (const auto& f : m.files) {
    ordered_json j = {{"name", f.name}, {"source", f.source}, {"kind", f.kind}};
    if (f.disk >= 0) j["disk"] = f.disk;
    j["size"] = f.size;
    j["stored_size"] = f.stored_size;
    if (!f.sha256.empty() || f.chunks_sha256.empty()) j["sha256"] = f.sha256;
    if (!f.chunks_sha256.empty()) j["chunks_sha256"] = f.chunks_sha256;
    if (!f.stored_xxh128.empty())
      j["stored_xxh128"] = f.stored_xxh128;
    else
      j["stored_sha256"] = f.stored_sha256;
    j["compression"] = f.compression;
    files.push_back(std::move(j));
  }
  ordered_json j = {{"format", m.format},
                    {"id", m.id},
                    {"tool_version", m.tool_version},
                    {"mode", m.mode},
                    {"started", m.started},
                    {"finished", m.finished},
                    {"vm", m.vm},
                    {"config", m.config},
                    {"guestinfo", m.guestinfo},
                    {"tags", m.tags},
                    {"disks", m.disks},
                    {"files", files},
                    {"bytes_raw", m.bytes_raw()},
                    {"bytes_stored", m.bytes_stored()},
                    {"timings", m.timings}};
  if (!m.warnings.empty()) j["warnings"] = m.warnings;
  if (m.chunk_stats.is_object()) j["chunk_stats"] = m.chunk_stats;
  return j;
}

namespace {

template <class T>
T field(const ordered_json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) bad_input(std::string("manifest: missing field ") + quote(name));
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    bad_input(std::string("manifest: field ") + quote(name) + " has the wrong type");
  }
}

}  // namespace

Manifest manifest_from_json(const std::string& text) {
  ordered_json j;
  try {
    j = ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    bad_input(std::string("manifest: not JSON: ") + printable(e.what()));
  }
  if (!j.is_object()) bad_input("manifest: not a JSON object");
  Manifest m;
  m.format = field<int>(j, "format");
  if (m.format < 1) bad_input("manifest: format " + std::to_string(m.format) + " does not exist");
  if (m.format > kManifestFormat)
    bad_input("manifest format " + std::to_string(m.format) +
              " is newer than this ceso-backup reads (" + std::to_string(kManifestFormat) + ")");
  m.id = field<std::string>(j, "id");
  m.tool_version = j.value("tool_version", "");
  m.mode = field<std::string>(j, "mode");
  m.started = field<int64_t>(j, "started");
  m.finished = field<int64_t>(j, "finished");
  m.vm = field<ordered_json>(j, "vm");
  if (!m.vm.is_object()) bad_input("manifest: field 'vm' is not an object");
  m.config = j.value("config", ordered_json::object());
  m.guestinfo = j.value("guestinfo", ordered_json::object());
  m.tags = j.value("tags", std::vector<std::string>{});
  m.disks = j.value("disks", ordered_json::array());
  m.timings = j.value("timings", ordered_json::object());
  if (j.contains("warnings")) m.warnings = field<std::vector<std::string>>(j, "warnings");
  if (j.contains("chunk_stats")) {
    m.chunk_stats = j["chunk_stats"];
    if (!m.chunk_stats.is_object() ||
        !m.chunk_stats.value("bytes_uploaded", ordered_json(0u)).is_number_unsigned())
      bad_input("manifest: field 'chunk_stats' is malformed");
  }
  for (const auto& f : field<ordered_json>(j, "files")) {
    ManifestFile mf;
    mf.name = field<std::string>(f, "name");
    if (mf.name.empty() || mf.name.find('/') != std::string::npos || mf.name[0] == '.')
      bad_input("manifest: bad file name " + quote(mf.name));
    mf.source = f.value("source", "");
    mf.kind = field<std::string>(f, "kind");
    mf.disk = f.value("disk", -1);
    mf.size = field<uint64_t>(f, "size");
    mf.stored_size = field<uint64_t>(f, "stored_size");
    mf.compression = f.value("compression", "zstd");
    // A chunked file written with CBT has no whole-file SHA-256; then its
    // chunks' digest is the end-to-end check, and one of the two must be there.
    if (f.contains("chunks_sha256")) {
      mf.chunks_sha256 = field<std::string>(f, "chunks_sha256");
      const std::string& d = mf.chunks_sha256;
      bool hex64 = d.size() == 64 && d.find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!hex64 || mf.compression != "chunks")
        bad_input("manifest: " + quote(mf.name) + " has a malformed 'chunks_sha256'");
    }
    if (mf.chunks_sha256.empty() || f.contains("sha256"))
      mf.sha256 = field<std::string>(f, "sha256");
    if (mf.compression != "zstd" && mf.compression != "chunks")
      bad_input("manifest: " + quote(mf.name) + " has an unknown compression " +
                quote(mf.compression));
    // One hash of the stored stream: SHA-256 (older manifests, indexes) or
    // XXH3-128 (zstd files since); never both, never neither.
    bool sha = f.contains("stored_sha256"), xxh = f.contains("stored_xxh128");
    if (sha == xxh)
      bad_input("manifest: " + quote(mf.name) + " needs exactly one of 'stored_sha256' and " +
                "'stored_xxh128'");
    if (xxh && mf.compression != "zstd")
      bad_input("manifest: " + quote(mf.name) + " is chunked: its index has a 'stored_sha256'");
    if (sha)
      mf.stored_sha256 = field<std::string>(f, "stored_sha256");
    else
      mf.stored_xxh128 = field<std::string>(f, "stored_xxh128");
    if (mf.compression == "chunks" && (m.format < 2 || mf.kind != "extent"))
      bad_input("manifest: " + quote(mf.name) + " is chunked, which only format 2 data files are");
    m.files.push_back(std::move(mf));
  }
  return m;
}

CatalogEntry catalog_entry(const Manifest& m, const std::string& target_url) {
  CatalogEntry e;
  e.id = m.id;
  e.target = target_url;
  e.endpoint = m.vm.value("endpoint", "");
  e.vm_id = m.vm.value("id", "");
  e.vm_name = m.vm.value("name", "");
  e.vm_uuid = m.vm.value("uuid", "");
  e.created = m.started;
  e.status = "complete";
  e.mode = m.mode;
  e.bytes_raw = m.bytes_raw();
  e.bytes_stored = m.bytes_stored();
  return e;
}

}  // namespace ceso
