// ceso-cloudinit: build VMware guestinfo for cloud-init, offline.
//
// One VM from flags (--hostname or --fqdn given), or a stream of spec records
// on stdin, one output per spec; flags then act as defaults for every record.
// See man/ceso-cloudinit.1.scd and docs/cloudinit.md.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "base/file.hpp"
#include "cli/cloudinit_options.hpp"
#include "cli/tool.hpp"
#include "cloudinit/cloudinit.hpp"
#include "cloudinit/fields.hpp"

namespace {

// The spec field options and --encoding come from the one cloud-init field
// table (cloudinit/fields.hpp); only the output options are this tool's.
ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec{
      "ceso-cloudinit",
      "build VMware guestinfo for cloud-init, offline",
      "[OPTION]...  (one VM from --hostname/--fqdn, or spec records on stdin)",
      ceso::cloudinit_tool_options(),
      0,
      {},
  };
  spec.options.push_back({"format", 'f', "FORMAT", "ndjson (default), vmx, kv, govc or dir=PATH"});
  spec.options.push_back({"verbose", 'v', "", "ndjson: add the decoded documents to each record"});
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

enum class Format { ndjson, vmx, kv, govc, dir };

struct Settings {
  Format format = Format::ndjson;
  std::string dir;
  ceso::GuestInfoEncoding encoding = ceso::GuestInfoEncoding::gzip_base64;
  bool verbose = false;
  bool stream = false;  // specs from stdin
};

Settings parse_settings(const ceso::Args& args) {
  Settings s;
  std::string f = args.get("format", "ndjson");
  if (f == "ndjson") {
    s.format = Format::ndjson;
  } else if (f == "vmx") {
    s.format = Format::vmx;
  } else if (f == "kv") {
    s.format = Format::kv;
  } else if (f == "govc") {
    s.format = Format::govc;
  } else if (f.rfind("dir=", 0) == 0 && f.size() > 4) {
    s.format = Format::dir;
    s.dir = f.substr(4);
  } else {
    ceso::usage_error("--format: " + ceso::quote(f) + " is not ndjson, vmx, kv, govc or dir=PATH");
  }
  s.encoding = *ceso::parse_encoding(args.get("encoding", "gzip+base64"));
  if (s.format == Format::kv && s.encoding == ceso::GuestInfoEncoding::none)
    ceso::usage_error(
        "--format kv cannot carry multi-line values; use --encoding base64 or gzip+base64, or "
        "--format vmx, govc or ndjson");
  s.verbose = args.has("verbose");
  s.stream = !args.has("hostname") && !args.has("fqdn");
  return s;
}

[[noreturn]] void cannot_write(const std::filesystem::path& path) {
  ceso::fail("cannot write " + ceso::quote(path.string()) + ": " + std::strerror(errno));
}

void write_file_0600(const std::filesystem::path& path, const std::string& content) {
  ceso::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) cannot_write(path);
  if (int err = ceso::write_all(fd.get(), content)) {
    errno = err;
    cannot_write(path);
  }
  if (fd.close() != 0) cannot_write(path);
}

class Emitter {
 public:
  explicit Emitter(const Settings& s) : s_(s) {}

  // Returns false when stdout was closed by the reader.
  bool emit(const ceso::CloudInitSpec& spec, const ceso::GuestInfo& gi) {
    switch (s_.format) {
      case Format::ndjson:
        return ceso::write_record(record(spec, gi));
      case Format::vmx:
        return ceso::write_stdout(header(spec) + vmx(gi));
      case Format::kv:
        return ceso::write_stdout(header(spec) + kv(gi));
      case Format::govc:
        return ceso::write_stdout(govc(gi));
      case Format::dir:
        write_dir(spec, gi);
        return true;
    }
    return true;
  }

 private:
  ceso::ordered_json record(const ceso::CloudInitSpec& spec, const ceso::GuestInfo& gi) {
    ceso::ordered_json r;
    r["type"] = "guestinfo";
    r["name"] = spec.name;
    r["instance_id"] = gi.instance_id;
    r["guestinfo"] = ceso::ordered_json::object();
    for (const auto& [k, v] : gi.values) r["guestinfo"][k] = v;
    if (s_.verbose) {
      auto& d = r["documents"];
      d["metadata"] = gi.documents.metadata;
      if (!gi.documents.network.empty()) d["network"] = gi.documents.network;
      d["userdata"] = gi.documents.userdata;
    }
    return r;
  }
  // Specs from a stream are told apart by a comment line (vmx and kv).
  std::string header(const ceso::CloudInitSpec& spec) const {
    return s_.stream ? "# " + ceso::quote(spec.name) + "\n" : std::string();
  }
  static std::string vmx(const ceso::GuestInfo& gi) {
    std::string out;
    for (const auto& [k, v] : gi.values) out += k + " = " + ceso::vmx_quote(v) + "\n";
    return out;
  }
  static std::string kv(const ceso::GuestInfo& gi) {
    std::string out;
    for (const auto& [k, v] : gi.values) out += k + "=" + v + "\n";
    return out;
  }
  static std::string govc(const ceso::GuestInfo& gi) {
    std::string out;
    for (const auto& [k, v] : gi.values) {
      if (!out.empty()) out += ' ';
      out += "-e " + ceso::shell_quote(k + "=" + v);
    }
    return out + "\n";
  }
  void write_dir(const ceso::CloudInitSpec& spec, const ceso::GuestInfo& gi) {
    namespace fs = std::filesystem;
    fs::path dir = s_.dir;
    if (s_.stream) {
      // One sub-directory per spec, named after the VM.
      if (spec.name == "." || spec.name == ".." || spec.name.find('/') != std::string::npos)
        ceso::bad_input("name " + ceso::quote(spec.name) +
                        " cannot be a directory name for --format dir");
      if (!names_.insert(spec.name).second)
        ceso::bad_input("name " + ceso::quote(spec.name) + " appears twice; --format dir " +
                        "would overwrite its files");
      dir /= spec.name;
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) ceso::fail("cannot create " + ceso::quote(dir.string()) + ": " + ec.message());
    write_file_0600(dir / "meta-data", gi.documents.metadata);
    write_file_0600(dir / "user-data", gi.documents.userdata);
    if (!gi.documents.network.empty())
      write_file_0600(dir / "network-config", gi.documents.network);
    else
      fs::remove(dir / "network-config", ec);  // no stale file from an earlier run
  }

  const Settings& s_;
  std::set<std::string> names_;
};

ceso::Exit run(const ceso::Args& args) {
  if (!args.operands.empty())
    ceso::usage_error("unexpected argument " + ceso::quote(args.operands.front()) +
                      " (specs come from options or from records on standard input)");
  Settings settings = parse_settings(args);
  ceso::ordered_json flags = ceso::cloudinit_flag_fields(args);
  ceso::SpecReader reader;
  Emitter emitter(settings);

  if (!settings.stream) {
    ceso::CloudInitSpec spec = reader.read(flags, ceso::FieldStyle::flag);
    ceso::GuestInfo gi = ceso::build_guestinfo(spec, settings.encoding);
    emitter.emit(spec, gi);
    return ceso::Exit::ok;
  }

  if (isatty(STDIN_FILENO))
    ceso::usage_error("no --hostname and no spec records on standard input");
  // Flags are defaults for every record: check them once, up front, so a bad
  // flag is reported as such and not once per record.
  reader.check(flags, ceso::FieldStyle::flag);

  ceso::Outcome outcome;
  ceso::NdjsonReader input(stdin, "<stdin>");
  for (;;) {
    if (ceso::interrupted()) break;
    std::optional<ceso::InputRecord> rec;
    try {
      rec = input.next();
    } catch (const ceso::Error& e) {
      if (input.failed()) throw;  // a read error is not the end of input
      outcome.failed(e);
      continue;
    }
    if (!rec) break;
    try {
      ceso::CloudInitSpec spec = reader.read(ceso::merge_spec_fields(flags, rec->value));
      ceso::GuestInfo gi = ceso::build_guestinfo(spec, settings.encoding);
      if (!emitter.emit(spec, gi)) break;  // `| head`: stop quietly
      outcome.succeeded();
    } catch (const ceso::Error& e) {
      outcome.failed(ceso::Error("error (at " + rec->origin + "): " + e.what(), e.code()));
    }
  }
  if (ceso::interrupted() && outcome.failures() == 0)
    throw ceso::Error("interrupted", ceso::Exit::interrupted);
  return outcome.exit_code();
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
