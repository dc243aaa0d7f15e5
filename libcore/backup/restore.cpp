#include "backup/restore.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>

#include "backup/backup.hpp"
#include "backup/manifest.hpp"
#include "base/cancel.hpp"
#include "base/error.hpp"
#include "base/file.hpp"
#include "base/log.hpp"
#include "cloudinit/netcfg.hpp"
#include "transport/datastore.hpp"
#include "vm/hostcli.hpp"
#include "vm/lifecycle.hpp"
#include "vm/provision.hpp"
#include "vm/spec.hpp"
#include "vm/vm.hpp"
#include "vm/vmx.hpp"
#include "vm/writer.hpp"

namespace ceso {

// ---- descriptors ----

namespace {

// One line of a descriptor, split around the quoted file name.
struct QuotedLine {
  std::string head;  // up to and including the opening '"'
  std::string file;  // up to the last '"' of the line
  std::string tail;  // from the closing '"' on
};

bool is_space(char c) { return c == ' ' || c == '\t'; }

// `ACCESS SECTORS TYPE` at the start of a line: nullopt when the line is
// not an extent line at all; `file` false for one without a file (ZERO).
struct ExtentStart {
  size_t quote = std::string::npos;  // the opening '"', npos: none
};
std::optional<ExtentStart> extent_start(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && is_space(line[i])) ++i;
  auto word = [&](auto ok) {
    size_t b = i;
    while (i < line.size() && ok(line[i])) ++i;
    return line.substr(b, i - b);
  };
  std::string_view access = word([](char c) { return c >= 'A' && c <= 'Z'; });
  if (access != "RW" && access != "RDONLY" && access != "NOACCESS") return std::nullopt;
  if (i == line.size() || !is_space(line[i])) return std::nullopt;
  while (i < line.size() && is_space(line[i])) ++i;
  if (word([](char c) { return c >= '0' && c <= '9'; }).empty()) return std::nullopt;
  ExtentStart s;
  while (i < line.size() && is_space(line[i])) ++i;
  if (word([](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }).empty())
    return s;  // "RW 100": broken, reported by the caller (no file, no type)
  while (i < line.size() && is_space(line[i])) ++i;
  if (i < line.size() && line[i] == '"') s.quote = i;
  return s;
}

// The quoted part from `open` to the last '"'; nullopt when unterminated
// or when what follows is not an optional offset.
std::optional<QuotedLine> split_quoted(std::string_view line, size_t open) {
  size_t close = line.rfind('"');
  if (close == std::string_view::npos || close <= open) return std::nullopt;
  std::string_view rest = line.substr(close + 1);
  size_t i = 0;
  while (i < rest.size() && (is_space(rest[i]) || (rest[i] >= '0' && rest[i] <= '9'))) ++i;
  if (i != rest.size()) return std::nullopt;
  return QuotedLine{std::string(line.substr(0, open + 1)),
                    std::string(line.substr(open + 1, close - open - 1)),
                    std::string(line.substr(close))};
}

std::optional<QuotedLine> parent_hint(std::string_view line) {
  constexpr std::string_view key = "parentFileNameHint";
  size_t i = 0;
  while (i < line.size() && is_space(line[i])) ++i;
  if (line.substr(i, key.size()) != key) return std::nullopt;
  i += key.size();
  while (i < line.size() && is_space(line[i])) ++i;
  if (i == line.size() || line[i] != '=') return std::nullopt;
  ++i;
  while (i < line.size() && is_space(line[i])) ++i;
  if (i == line.size() || line[i] != '"') return std::nullopt;
  return split_quoted(line, i);
}

bool is_descriptor(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a BOM
  return text.substr(0, 21) == "# Disk DescriptorFile";
}

// Calls fn(line without its end, line number) for each line and joins what
// it returns with the original line ends (LF or CRLF).
template <typename Fn>
std::string map_lines(const std::string& text, Fn fn) {
  std::string out;
  size_t pos = 0, number = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl;
    bool cr = end > pos && text[end - 1] == '\r';
    out += fn(std::string_view(text).substr(pos, end - pos - (cr ? 1 : 0)), ++number);
    if (cr) out += '\r';
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
  }
  return out;
}

// Extent lines with a file, in order; `broken` gets the lines that start
// like an extent line but do not parse.
std::vector<QuotedLine> extent_lines(const std::string& text, std::vector<std::string>* broken) {
  std::vector<QuotedLine> out;
  map_lines(text, [&](std::string_view line, size_t number) {
    auto start = extent_start(line);
    if (!start) return std::string();
    std::optional<QuotedLine> q;
    if (start->quote != std::string::npos) q = split_quoted(line, start->quote);
    bool zero = start->quote == std::string::npos && line.find('"') == std::string::npos &&
                line.find("ZERO") != std::string::npos;
    if (q)
      out.push_back(*q);
    else if (!zero && broken)
      broken->push_back("line " + std::to_string(number) + " is a broken extent line");
    return std::string();
  });
  return out;
}

}  // namespace

std::vector<std::string> descriptor_extents(const std::string& text) {
  std::vector<std::string> names;
  for (auto& q : extent_lines(text, nullptr)) names.push_back(std::move(q.file));
  return names;
}

std::vector<std::string> descriptor_problems(const std::string& text, size_t extents) {
  if (text.size() > (1u << 20)) return {"larger than 1 MiB: not a descriptor"};
  if (!is_descriptor(text)) return {"not a VMDK descriptor (no \"# Disk DescriptorFile\" line)"};
  std::vector<std::string> problems;
  auto files = extent_lines(text, &problems);
  if (problems.empty() && files.size() != extents)
    problems.push_back("names " + std::to_string(files.size()) +
                       " extent file(s), the backup holds " + std::to_string(extents));
  for (const auto& f : files)
    if (f.file.empty()) problems.push_back("an extent line with an empty file name");
  return problems;
}

std::string rewrite_descriptor(const std::string& text, const std::vector<std::string>& extents,
                               const std::string& parent) {
  if (!is_descriptor(text)) bad_input("not a VMDK descriptor (no \"# Disk DescriptorFile\" line)");
  std::vector<std::string> broken;
  extent_lines(text, &broken);
  if (!broken.empty()) bad_input("VMDK descriptor: " + broken.front());
  size_t k = 0;
  std::string out = map_lines(text, [&](std::string_view line, size_t) {
    if (auto start = extent_start(line); start && start->quote != std::string::npos)
      if (auto q = split_quoted(line, start->quote)) {
        if (k >= extents.size()) return std::string(line);
        return q->head + extents[k++] + q->tail;
      }
    if (!parent.empty())
      if (auto q = parent_hint(line)) return q->head + parent + q->tail;
    return std::string(line);
  });
  if (k < extents.size())
    bad_input("the descriptor has " + std::to_string(k) + " extent line(s), expected " +
              std::to_string(extents.size()));
  return out;
}

// ---- restore ----

namespace {

using xml::tag;

// Where a restored VM goes on this host: the datastore's datacenter, its VM
// folder, and the root resource pool of a host that mounts the datastore.
struct Placement {
  std::string datacenter;  // name, for /folder URLs (dcPath)
  vim::MoRef folder, pool, host;
};

Placement find_placement(vim::Client& c, const std::string& datastore) {
  auto roots = c.retrieve({c.content().root_folder}, {"childEntity"});
  std::vector<vim::MoRef> dcs;
  if (!roots.empty())
    if (const xml::Node* kids = roots.front().prop("childEntity"))
      for (const auto& k : kids->children)
        if (vim::moref_of(k).type == "Datacenter") dcs.push_back(vim::moref_of(k));
  std::vector<std::string> seen;
  for (const auto& dc : c.retrieve(dcs, {"name", "datastore", "vmFolder"})) {
    std::vector<vim::MoRef> stores;
    if (const xml::Node* list = dc.prop("datastore"))
      for (const auto& d : list->children) stores.push_back(vim::moref_of(d));
    for (const auto& ds : c.retrieve(stores, {"name", "host"})) {
      seen.push_back(ds.text("name"));
      if (ds.text("name") != datastore) continue;
      Placement p;
      p.datacenter = dc.text("name");
      if (const xml::Node* f = dc.prop("vmFolder")) p.folder = vim::moref_of(*f);
      if (const xml::Node* mounts = ds.prop("host"))
        for (const auto& m : mounts->children)
          if (const xml::Node* key = m.child("key")) {
            p.host = vim::moref_of(*key);
            break;
          }
      if (p.host.empty()) fail("no host mounts datastore " + quote(datastore));
      auto host = c.retrieve({p.host}, {"parent"});
      const xml::Node* parent = host.empty() ? nullptr : host.front().prop("parent");
      if (!parent) fail("cannot find the compute resource of the host of " + quote(datastore));
      auto cr = c.retrieve({vim::moref_of(*parent)}, {"resourcePool"});
      const xml::Node* pool = cr.empty() ? nullptr : cr.front().prop("resourcePool");
      if (!pool) fail("cannot find the resource pool of the host of " + quote(datastore));
      p.pool = vim::moref_of(*pool);
      return p;
    }
  }
  std::string list;
  for (const auto& s : seen) list += (list.empty() ? "" : ", ") + s;
  fail("no datastore named " + quote(datastore) + " on " + c.endpoint().id +
       (list.empty() ? std::string() : " (there are: " + list + "); give --datastore"));
}

// A whole small stored file (config, descriptors, nvram), checked.
std::string read_stored(BackupTarget& target, const std::string& id, const ManifestFile& f) {
  StoredFileReader r(target, id, f);
  std::string out;
  std::vector<char> buf(size_t{64} * 1024);
  while (size_t n = r.read(buf.data(), buf.size())) {
    out.append(buf.data(), n);
    if (out.size() > (64u << 20)) fail(f.name + ": too large for a " + f.kind + " file");
  }
  auto problems = r.problems();
  if (!problems.empty())
    fail("backup " + quote(id) + " is damaged (" + problems.front() +
         "); nothing was restored — try an older backup (ceso-backup ls)");
  return out;
}

const ManifestFile* find_kind(const Manifest& m, const std::string& kind) {
  for (const auto& f : m.files)
    if (f.kind == kind) return &f;
  return nullptr;
}

// One unit of a disk's chain: a descriptor and its extents, as stored.
struct Unit {
  const ManifestFile* descriptor = nullptr;
  std::vector<const ManifestFile*> extents;
};

// "disk0.vmdk.zst", "disk0-s1.vmdk.zst" → unit 0, 1; extents by name prefix.
std::map<int, std::vector<Unit>> disk_units(const Manifest& m) {
  std::map<int, std::vector<Unit>> disks;
  auto unit_of = [](const std::string& name, int disk) {
    std::string base = "disk" + std::to_string(disk);
    if (name.compare(0, base.size() + 2, base + "-s") == 0)
      return std::atoi(name.c_str() + base.size() + 2);
    return 0;
  };
  for (const auto& f : m.files) {
    if (f.kind != "descriptor" && f.kind != "extent") continue;
    if (f.disk < 0) bad_input("manifest: " + f.name + " belongs to no disk");
    auto& units = disks[f.disk];
    size_t u = static_cast<size_t>(unit_of(f.name, f.disk));
    if (units.size() <= u) units.resize(u + 1);
    if (f.kind == "descriptor")
      units[u].descriptor = &f;
    else
      units[u].extents.push_back(&f);
  }
  for (const auto& [d, units] : disks)
    for (size_t u = 0; u < units.size(); ++u)
      if (!units[u].descriptor || units[u].extents.empty())
        bad_input("manifest: disk " + std::to_string(d) + " unit " + std::to_string(u) +
                  " lacks its descriptor or data file");
  return disks;
}

// The new name of an extent: the unit's name with the original's suffix
// ("-flat", "-delta", "-sesparse").
std::string extent_name(const std::string& unit, const std::string& original, size_t k) {
  std::string suffix = "-flat.vmdk";
  for (const char* s : {"-delta.vmdk", "-sesparse.vmdk", "-flat.vmdk"}) {
    std::string_view o(original), sv(s);
    if (o.size() >= sv.size() && o.substr(o.size() - sv.size()) == sv) {
      suffix = s;
      break;
    }
  }
  return unit + (k ? "-" + std::to_string(k) : "") + suffix;
}

class Restore {
 public:
  Restore(vim::Client& c, BackupTarget& t, const RestoreRequest& r, Gate& g, Progress& p,
          VmWriter* w)
      : c_(c), target_(t), req_(r), gate_(g), progress_(p), writer_(w) {}
  ordered_json run();

 private:
  vim::Client& c_;
  BackupTarget& target_;
  const RestoreRequest& req_;
  Gate& gate_;
  Progress& progress_;
  Manifest m_;
  Placement place_;
  std::string name_;
  std::unique_ptr<DatastoreFiles> files_;
  VmWriter* writer_ = nullptr;  // the tool's writer for c_; SSH on a free host
  bool ssh() const { return writer_ && writer_->transport() == Transport::ssh; }

  bool perform(const std::string& vm, const std::string& vm_id, const std::string& op,
               const ordered_json& params, const std::function<void()>& action) {
    Mutation m{c_.endpoint().id, vm, vm_id, op, params};
    if (writer_) m.transport = std::string(to_string(writer_->transport()));
    return gate_.perform(m, action);
  }
  void ssh_upload_file(const std::string& dest, const ManifestFile& f, const std::string* content);
  std::vector<std::string> upload_disks(const std::string& dir, const std::string& base);
  void upload_file(const std::string& dest, const ManifestFile& f, const std::string* content);
  void rename(const vim::MoRef& vm, const std::string& from, const std::string& to);
};

void Restore::rename(const vim::MoRef& vm, const std::string& from, const std::string& to) {
  perform(from, vm.value, "Rename_Task", {{"new_name", to}}, [&] {
    xml::Node r = c_.call("Rename_Task", vm, tag("newName", to));
    const xml::Node* task = r.child("returnval");
    if (!task) fail("the host answered Rename_Task without a task");
    c_.wait_for_task(vim::moref_of(*task));
  });
}

// Puts one file at `dest` ("[ds] dir/name"): `content` when given (a
// rewritten descriptor), else the stored file streamed and checked. A cut
// connection starts the file again, up to req_.retries times.
// Over SSH (free host): the file streamed into a temporary name in the
// folder and renamed once all of it arrived and its hashes matched; a short,
// long or damaged stream, a failing command or an interruption leaves only
// the temporary file, which the folder's rollback removes. No restarts: a
// cut connection fails the run (its rollback runs on a new connection).
void Restore::ssh_upload_file(const std::string& dest, const ManifestFile& f,
                              const std::string* content) {
  SshFileWrite file =
      ssh_file_write(vmfs_path(vmspec::parse_datastore_path(dest), "restored file"));
  uint64_t size = content ? content->size() : f.size;
  ordered_json params = {
      {"file", dest}, {"bytes", size}, {"from", m_.id + "/" + f.name}, {"command", file.command()}};
  perform(name_, "", "UploadDatastoreFile", params, [&] {
    int task = progress_.start(name_ + ": " + parse_datastore_path(dest).path, size);
    std::optional<StoredFileReader> reader;
    if (!content) reader.emplace(target_, m_.id, f);
    size_t off = 0;
    auto input = [&](char* buf, size_t n) -> size_t {
      if (content) {
        n = std::min(n, content->size() - off);
        std::copy_n(content->data() + off, n, buf);
        off += n;
      } else {
        n = reader->read(buf, n);
        if (n == 0) {  // the end: the whole stream must have checked out
          char extra = 0;
          auto problems = reader->problems();
          if (!problems.empty())
            fail("backup " + quote(m_.id) + " is damaged: " + problems.front());
          if (off != size)
            fail("backup " + quote(m_.id) + " is damaged: " + f.name + " ends at byte " +
                 std::to_string(off) + " of " + std::to_string(size));
          if (reader->read(&extra, 1) != 0)
            fail("backup " + quote(m_.id) + " is damaged: " + f.name +
                 " holds more data than its manifest says");
        }
        off += n;
        if (off > size)
          fail("backup " + quote(m_.id) + " is damaged: " + f.name +
               " holds more data than its manifest says");
      }
      progress_.advance(task, n);
      return n;
    };
    try {
      run_ssh_file_write(*writer_, file, input, interrupt_requested);
    } catch (...) {
      progress_.finish(task);
      throw;
    }
    progress_.finish(task);
  });
}

void Restore::upload_file(const std::string& dest, const ManifestFile& f,
                          const std::string* content) {
  if (ssh()) return ssh_upload_file(dest, f, content);
  auto p = parse_datastore_path(dest);
  std::string url = vim::datastore_file_url(c_.endpoint(), place_.datacenter, p.datastore, p.path);
  uint64_t size = content ? content->size() : f.size;
  ordered_json params = {{"file", dest}, {"bytes", size}, {"from", m_.id + "/" + f.name}};
  perform(name_, "", "UploadDatastoreFile", params, [&] {
    if (!files_) files_ = std::make_unique<DatastoreFiles>(c_.endpoint(), c_.http().cookie());
    for (int attempt = 0;; ++attempt) {
      int task = progress_.start(name_ + ": " + p.path, size);
      try {
        if (content) {
          size_t off = 0;
          files_->upload(
              url, size,
              [&](char* buf, size_t n) {
                n = std::min(n, content->size() - off);
                std::copy_n(content->data() + off, n, buf);
                off += n;
                progress_.advance(task, n);
                return n;
              },
              interrupt_requested);
        } else {
          StoredFileReader reader(target_, m_.id, f);
          files_->upload(
              url, size,
              [&](char* buf, size_t n) {
                size_t got = reader.read(buf, n);
                progress_.advance(task, got);
                if (got == 0) {
                  // Short data: say why (the reader knows) instead of "ends at byte N".
                  auto problems = reader.problems();
                  if (!problems.empty())
                    fail("backup " + quote(m_.id) + " is damaged: " + problems.front());
                }
                return got;
              },
              interrupt_requested);
          char extra = 0;  // the host has its bytes; the stream must end here too
          if (reader.read(&extra, 1) != 0)
            fail("backup " + quote(m_.id) + " is damaged: " + f.name +
                 " holds more data than its manifest says");
          auto problems = reader.problems();
          if (!problems.empty())
            fail("backup " + quote(m_.id) + " is damaged: " + problems.front());
        }
        progress_.finish(task);
        return;
      } catch (const Error& e) {
        progress_.finish(task);
        if (e.code() != Exit::connection || attempt >= req_.retries) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(500) * (1 << attempt));
      }
    }
  });
}

std::vector<std::string> Restore::upload_disks(const std::string& dir, const std::string& base) {
  auto disks = disk_units(m_);
  std::vector<std::string> tops;
  auto ds = parse_datastore_path(dir);
  auto path_in_dir = [&](const std::string& file) {
    return DatastorePath{ds.datastore, ds.path + "/" + file}.str();
  };
  for (const auto& [index, units] : disks) {
    std::string disk_base = base + (index ? "_" + std::to_string(index) : "");
    std::string parent;
    for (size_t u = 0; u < units.size(); ++u) {
      std::string seq = std::to_string(u);  // ESXi's delta naming: NAME-000001.vmdk
      std::string unit =
          disk_base + (u ? "-" + std::string(6 - std::min<size_t>(6, seq.size()), '0') + seq : "");
      std::string text = read_stored(target_, m_.id, *units[u].descriptor);
      auto old_extents = descriptor_extents(text);
      if (old_extents.size() != units[u].extents.size())
        fail("backup " + quote(m_.id) + ": descriptor " + units[u].descriptor->name + " names " +
             std::to_string(old_extents.size()) + " extent(s), the backup holds " +
             std::to_string(units[u].extents.size()));
      std::vector<std::string> names;
      for (size_t k = 0; k < old_extents.size(); ++k)
        names.push_back(extent_name(unit, old_extents[k], k));
      std::string desc = rewrite_descriptor(text, names, parent);
      for (size_t k = 0; k < names.size(); ++k)
        upload_file(path_in_dir(names[k]), *units[u].extents[k], nullptr);
      upload_file(path_in_dir(unit + ".vmdk"), *units[u].descriptor, &desc);
      parent = unit + ".vmdk";
    }
    tops.push_back(path_in_dir(parent));
  }
  return tops;
}

ordered_json Restore::run() {
  check_backup_id(req_.id);
  m_ = manifest_from_json(target_.read_file(req_.id + "/" + kManifestName));
  if (m_.id != req_.id)
    bad_input("backup " + quote(req_.id) + ": its manifest names " + quote(m_.id));
  const ManifestFile* cfg = find_kind(m_, "config");
  if (!cfg) fail("backup " + quote(m_.id) + " holds no VM configuration (config.xml)");
  // Check every stored file before anything is made on the host: a damaged
  // backup fails here, in seconds for the small files; the disks are
  // re-hashed while they upload (a mismatch there rolls everything back).
  for (const auto& f : m_.files) {
    auto size = target_.file_size(m_.id + "/" + f.name);
    if (!size || *size != f.stored_size)
      fail("backup " + quote(m_.id) + " is damaged (" + f.name +
           (size ? " has " + std::to_string(*size) + " bytes, the manifest says " +
                       std::to_string(f.stored_size)
                 : " is missing") +
           "); nothing was restored");
  }
  // What would stop the restore half-way (a descriptor it cannot parse)
  // stops it here, before any change; verify reports the same.
  auto blockers =
      restore_blockers(m_, [&](const ManifestFile& f) { return read_stored(target_, m_.id, f); });
  if (!blockers.empty())
    fail("backup " + quote(m_.id) + " cannot be restored (" + blockers.front() +
         "); nothing was restored");
  xml::Node doc = xml::parse(read_stored(target_, m_.id, *cfg));
  // The `config` property's <val> (VirtualMachineConfigInfo).
  const xml::Node* config = doc.child("hardware") ? &doc : doc.child("config");
  if (!config || !config->child("hardware"))
    bad_input("backup " + quote(m_.id) + ": config.xml holds no VM configuration");
  SourceVm src = source_vm_from_config(*config);
  std::string original = m_.vm.value("name", src.name);
  name_ = req_.name.empty() ? original : req_.name;
  if (req_.name.empty())
    check_vm_name(name_, "backup " + quote(m_.id) + ": vm.name", Exit::bad_input);
  if (src.hardware.disks.size() != m_.disks.size())
    fail("backup " + quote(m_.id) + ": the config has " +
         std::to_string(src.hardware.disks.size()) + " disk(s), the backup " +
         std::to_string(m_.disks.size()));

  NewVm nv = req_.shape.vm;
  nv.name = name_;
  if (nv.datastore.empty()) nv.datastore = src.datastore();
  if (!nv.tags) nv.tags = m_.tags;
  nv.macs = req_.macs;
  place_ = find_placement(c_, nv.datastore);
  src.folder = place_.folder;
  src.pool = place_.pool;
  src.host = place_.host;

  // The name: free, or --replace of a powered-off VM.
  std::optional<vim::ObjectContent> existing;
  for (auto& vm : c_.retrieve_all_vms({"name", "runtime.powerState", "config.uuid"}))
    if (vm.text("name") == name_) existing = std::move(vm);
  if (existing && !req_.replace)
    fail("a VM named " + quote(name_) + " already exists on " + c_.endpoint().id +
         "; give --replace to replace it, or --as NEWNAME");
  if (existing && ssh())
    fail(
        "--replace is not supported over SSH (free ESXi: renaming the VM aside is an API "
        "write); restore with --as NEWNAME, then remove " +
        quote(name_) + " with ceso-rm");
  if (existing && existing->text("runtime.powerState") != "poweredOff")
    fail("the VM " + quote(name_) + " to replace is not powered off; stop it first (ceso-power " +
         "off) — a restore never powers off a running VM");
  // --replace replaces the VM that was backed up (same endpoint and uuid);
  // another VM of that name only when the user named the backup by its id.
  VmOrigin backed_up{m_.vm.value("endpoint", ""), m_.vm.value("uuid", "")};
  std::vector<std::string> warnings;  // for the record (libcore does not print)
  if (existing) {
    VmOrigin there{c_.endpoint().id, existing->text("config.uuid")};
    if (!(there == backed_up)) {
      std::string what = "the VM " + quote(name_) + " on " + there.endpoint + " (uuid " +
                         there.uuid + ") is not the VM backup " + quote(m_.id) + " was made of (" +
                         backed_up.endpoint + ", uuid " + backed_up.uuid + ")";
      if (!req_.by_id)
        throw Error(what + "; refusing to replace it: give the backup id to replace it anyway",
                    Exit::policy);
      warnings.push_back("replaced " + what + ", as the backup id was given");
    }
  }

  // Identity: new uuids and MACs; guestinfo with a new instance-id.
  Provisioned ids = plan_identity(src, nv);
  std::vector<std::pair<std::string, std::string>> mac_changes;
  for (size_t i = 0; i < src.hardware.nics.size() && i < ids.macs.size(); ++i)
    mac_changes.emplace_back(src.hardware.nics[i].mac, ids.macs[i]);
  std::map<std::string, std::string, std::less<>> old_gi;
  for (const auto& [k, v] : src.extra_config)
    if (k.rfind("guestinfo.", 0) == 0) old_gi.emplace(k, v);
  std::string instance_id;
  bool cloud_init = old_gi.count("guestinfo.metadata") || !req_.cloudinit.empty();
  if (cloud_init) {
    ordered_json fields = req_.cloudinit;
    if (!fields.contains("hostname") && !fields.contains("fqdn")) {
      std::string old_host;
      if (old_gi.count("guestinfo.metadata")) old_host = decode_guestinfo(old_gi).hostname;
      if (name_ == original && !old_host.empty()) {
        fields["hostname"] = old_host;
      } else {
        if (!is_host_label(name_))
          usage_error("VM name " + quote(name_) + " is not a valid host name; give --hostname");
        fields["hostname"] = name_;
      }
    }
    GuestInfo gi = reidentified_guestinfo(src.extra_config, fields, req_.encoding, mac_changes);
    instance_id = gi.instance_id;
    nv.extra_config = gi.values;
  }

  // --replace: the old VM steps aside (renamed) until the new one exists.
  std::string aside = name_ + " (before restore " + m_.id + ")";
  bool renamed = false;
  if (existing) {
    rename(existing->obj, name_, aside);
    renamed = !gate_.dry_run();
  }
  auto gated = [&](const std::string& op, const ordered_json& params,
                   const std::function<void()>& action) {
    return perform(name_, "", op, params, action);
  };
  Provisioned made;
  std::string ip;  // with --wait ip
  try {
    std::optional<Provisioner> over_ssh;
    if (ssh()) over_ssh.emplace(c_, *writer_, gated);
    Provisioner plain(c_, gated);
    Provisioner& p = over_ssh ? *over_ssh : plain;
    made = p.create_from_disks(src, nv, ids, [&](const std::string& dir, const std::string& vmx) {
      std::string file = vmspec::parse_datastore_path(vmx).path;
      file = file.substr(file.rfind('/') + 1);
      return upload_disks(dir, file.substr(0, file.size() - 4));  // "web01.vmx" → "web01"
    });
    // The NVRAM (EFI boot entries) once the VM exists: CreateVM_Task may
    // refuse a folder that already holds one; a powered-off VM's is safe to
    // overwrite.
    if (const ManifestFile* nvram = find_kind(m_, "nvram"); nvram && !gate_.dry_run()) {
      std::string vmx = vmspec::parse_datastore_path(made.vmx).path;
      std::string path = vmx.substr(0, vmx.size() - 4) + ".nvram";
      p.step("restoring the NVRAM", "", {}, [&] {
        upload_file(DatastorePath{vmspec::parse_datastore_path(made.vmx).datastore, path}.str(),
                    *nvram, nullptr);
      });
    }
    if (req_.shape.power_on)
      p.step("powering on", "PowerOnVM_Task", ordered_json::object(), [&] {
        if (ssh())
          p.power_on(made.vm, req_.shape.timeout);
        else
          set_power(c_, made.vm, PowerOp::on, req_.shape.timeout, false);
      });
    if (req_.shape.wait_ip && !gate_.dry_run())
      p.step("waiting for an IP address", "", {},
             [&] { ip = wait_for(c_, made.vm, "ip", req_.shape.timeout); });
    p.commit();
  } catch (const Error&) {
    CleanupScope cleanup;
    if (renamed) try {
        rename(existing->obj, aside, name_);
      } catch (const Error& e) {
        throw Error(std::string("the restore failed and the old VM keeps the name ") +
                        quote(aside) + " (renaming it back failed: " + e.what() + ")",
                    Exit::failure);
      }
    throw;
  }
  if (gate_.dry_run()) return nullptr;
  ordered_json replaced = nullptr;
  if (existing) {
    perform(aside, existing->obj.value, "Destroy_Task", ordered_json::object(),
            [&] { destroy_vm(c_, existing->obj); });
    replaced = existing->obj.value;
  }
  auto objs = c_.retrieve({made.vm}, vm_record_paths());
  if (objs.empty()) fail("the restored VM disappeared");
  ordered_json rec = vm_record(objs.front(), c_.endpoint());
  if (!ip.empty()) rec["ip"] = ip;
  rec["changed"] = true;
  rec["restored_from"] = m_.id;
  rec["backup_of"] = {{"endpoint", backed_up.endpoint},
                      {"id", m_.vm.value("id", "")},
                      {"name", original},
                      {"uuid", backed_up.uuid}};
  rec["macs"] = made.macs;
  rec["instance_id"] = instance_id.empty() ? ordered_json(nullptr) : ordered_json(instance_id);
  rec["replaced"] = replaced;
  if (!warnings.empty()) rec["warnings"] = warnings;
  return rec;
}

}  // namespace

ordered_json restore_backup(vim::Client& client, BackupTarget& target, const RestoreRequest& req,
                            Gate& gate, Progress& progress, VmWriters* writers) {
  Restore r(client, target, req, gate, progress, writers ? &writers->for_client(client) : nullptr);
  return r.run();
}

std::vector<std::string> restore_blockers(
    const Manifest& m, const std::function<std::string(const ManifestFile&)>& read) {
  std::vector<std::string> problems;
  if (!find_kind(m, "config")) problems.push_back("holds no VM configuration (config.xml)");
  std::map<int, std::vector<Unit>> disks;
  try {
    disks = disk_units(m);
  } catch (const Error& e) {
    problems.push_back(e.what());
    return problems;
  }
  for (const auto& [index, units] : disks)
    for (const auto& u : units)
      for (const auto& p : descriptor_problems(read(*u.descriptor), u.extents.size()))
        problems.push_back(u.descriptor->name + ": " + p + "; restore cannot use it");
  return problems;
}

std::optional<CatalogEntry> backup_for_name(const std::vector<CatalogEntry>& entries,
                                            const std::string& name,
                                            const std::vector<VmOrigin>& live) {
  // Newest per identity; ties by id, so the choice never depends on order.
  std::map<std::pair<std::string, std::string>, CatalogEntry> newest;
  for (const auto& e : entries) {
    if (e.vm_name != name || e.status != "complete" || e.verify == "failed") continue;
    auto& n = newest[{e.endpoint, e.vm_uuid}];
    if (n.id.empty() || std::tie(e.created, e.id) > std::tie(n.created, n.id)) n = e;
  }
  if (newest.empty()) return std::nullopt;
  auto list = [&] {
    std::string s;
    for (const auto& [who, e] : newest)
      s += (s.empty() ? "" : "; ") + who.first + " uuid " +
           (who.second.empty() ? "?" : who.second) + " (newest " + e.id + ")";
    return s;
  };
  if (!live.empty()) {
    std::optional<CatalogEntry> pick;
    for (const auto& v : live)
      if (auto it = newest.find({v.endpoint, v.uuid}); it != newest.end()) {
        if (pick && pick->vm_uuid != it->second.vm_uuid)
          bad_input("several VMs named " + quote(name) + " have backups: " + list() +
                    "; give the backup id");
        pick = it->second;
      }
    if (!pick)
      bad_input("the VM named " + quote(name) + " on " + live.front().endpoint + " (uuid " +
                live.front().uuid + ") has no backup; backups named " + quote(name) +
                " are of other VMs: " + list() + "; give the backup id to restore one of them");
    return pick;
  }
  if (newest.size() > 1)
    bad_input("backups named " + quote(name) + " come from more than one VM: " + list() +
              "; give the backup id");
  return newest.begin()->second;
}

ordered_json restore_disk_to_file(BackupTarget& target, const std::string& id, int disk,
                                  const std::string& path, Gate& gate, Progress& progress) {
  check_backup_id(id);
  if (path.empty()) usage_error("--to-file: an empty path");
  Manifest m = manifest_from_json(target.read_file(id + "/" + kManifestName));
  if (m.id != id) bad_input("backup " + quote(id) + ": its manifest names " + quote(m.id));
  auto disks = disk_units(m);
  auto it = disks.find(disk);
  if (it == disks.end())
    fail("backup " + quote(id) + " has no disk " + std::to_string(disk) + " (it has " +
         std::to_string(disks.size()) + ", numbered from 0)");
  if (it->second.size() != 1)
    fail("disk " + std::to_string(disk) + " of backup " + quote(id) + " is a chain of " +
         std::to_string(it->second.size()) +
         " units (snapshot deltas): a raw file is made of a flat disk only; restore it as a VM");
  const Unit& unit = it->second.front();
  uint64_t total = 0;
  for (const ManifestFile* f : unit.extents) {
    if (f->name.find("-flat") == std::string::npos)
      fail(f->name + " is not a flat extent: a raw file is made of a flat disk only");
    total += f->size;
  }
  if (::access(path.c_str(), F_OK) == 0 || errno != ENOENT)
    fail(quote(path) + " exists already; nothing was written");
  ordered_json params = {{"id", id}, {"disk", disk}, {"file", path}, {"bytes", total}};
  ordered_json rec = nullptr;
  gate.perform({"local", m.vm.value("name", ""), m.vm.value("id", ""), "RestoreDiskToFile", params},
               [&] {
                 const std::string tmp = path + ".ceso-tmp-" + std::to_string(::getpid());
                 Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
                 if (!fd) fail("cannot create " + quote(tmp) + ": " + std::strerror(errno));
                 try {
                   std::vector<char> buf(size_t{1} << 20);
                   int task = progress.start(path, total);
                   for (const ManifestFile* f : unit.extents) {
                     StoredFileReader r(target, id, *f);
                     while (size_t n = r.read(buf.data(), buf.size())) {
                       if (int err = write_all(fd.get(), {buf.data(), n}))
                         fail("cannot write " + quote(tmp) + ": " + std::strerror(err));
                       progress.advance(task, n);
                     }
                     auto problems = r.problems();
                     if (!problems.empty())
                       fail("backup " + quote(id) + " is damaged (" + problems.front() +
                            "); nothing was restored");
                   }
                   progress.finish(task);
                   if (::fsync(fd.get()) != 0 || fd.close() != 0)
                     fail("cannot write " + quote(tmp) + ": " + std::strerror(errno));
                   if (::link(tmp.c_str(), path.c_str()) != 0)  // never over a file made meanwhile
                     fail("cannot create " + quote(path) + ": " + std::strerror(errno));
                   ::unlink(tmp.c_str());
                 } catch (...) {
                   ::unlink(tmp.c_str());
                   throw;
                 }
                 rec = {{"type", "file"}, {"path", path},   {"restored_from", id},
                        {"disk", disk},   {"bytes", total}, {"vm", m.vm.value("name", "")},
                        {"changed", true}};
               });
  return rec;
}

}  // namespace ceso
