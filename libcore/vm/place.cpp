#include "vm/place.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "base/error.hpp"
#include "base/numbers.hpp"
#include "base/xml.hpp"
#include "vm/names.hpp"
#include "vm/vm.hpp"

namespace ceso {

namespace {

// Larger than any real host or datastore (1 EiB in MiB): a number above it
// is nonsense, and sums of such numbers stay far from overflow.
constexpr int64_t kMaxSaneMiB = int64_t{1} << 40;

// A whole non-negative number of a host record (`scale` MiB per unit:
// 1024 for GiB, which may carry two decimals), or nullopt.
std::optional<int64_t> record_mib(const ordered_json& r, const char* key, double scale = 1) {
  auto it = r.find(key);
  if (it == r.end() || !it->is_number()) return std::nullopt;
  double v = it->get<double>() * scale;
  if (!std::isfinite(v) || v < 0 || v > static_cast<double>(kMaxSaneMiB)) return std::nullopt;
  return static_cast<int64_t>(std::floor(v));
}

// The same for a use figure a host may leave out (vSphere omits a zero
// quickStats value): absent or null is 0, anything else must be sane.
std::optional<int64_t> record_use(const ordered_json& r, const char* key) {
  auto it = r.find(key);
  if (it == r.end() || it->is_null()) return 0;
  return record_mib(r, key);
}

std::string mib_text(int64_t mib) {
  if (mib < 0) return "-" + mib_text(-mib);
  return size_text(mib * kMiB);
}

// "[ds] dir/disk.vmdk" → "ds".
std::string datastore_of_path(const std::string& path) {
  if (path.size() > 2 && path.front() == '[') {
    size_t close = path.find(']');
    if (close != std::string::npos) return path.substr(1, close - 1);
  }
  return {};
}

int64_t to_int(const std::string& text) {
  bool neg = !text.empty() && text[0] == '-';
  std::string_view digits = std::string_view(text).substr(neg ? 1 : 0);
  if (digits.empty() || digits.size() > 18) return 0;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return neg ? -v : v;
}

double round4(double v) { return std::round(v * 10000.0) / 10000.0; }

}  // namespace

// ------------------------------------------------------------------ reading

const std::vector<std::string>& place_vm_paths() {
  static const std::vector<std::string> kPaths = {"name",
                                                  "runtime.host",
                                                  "runtime.powerState",
                                                  "config.hardware.memoryMB",
                                                  "config.memoryAllocation.reservation",
                                                  "config.memoryReservationLockedToMax",
                                                  "config.hardware.device",
                                                  "config.extraConfig"};
  return kPaths;
}

PlaceVm place_vm(const vim::ObjectContent& vm) {
  PlaceVm v;
  v.name = vm.text("name");
  if (const xml::Node* h = vm.prop("runtime.host")) v.host_id = vim::moref_of(*h).value;
  v.powered_on = vm.text("runtime.powerState") == "poweredOn";
  v.memory_mib = std::max<int64_t>(0, to_int(vm.text("config.hardware.memoryMB")));
  v.reservation_mib = std::max<int64_t>(0, to_int(vm.text("config.memoryAllocation.reservation")));
  // "Reserve all guest memory" (passthrough VMs): the reservation follows
  // the memory size, whatever the reservation field says.
  if (vm.text("config.memoryReservationLockedToMax") == "true")
    v.reservation_mib = std::max(v.reservation_mib, v.memory_mib);
  if (const xml::Node* devs = vm.prop("config.hardware.device"))
    for (const auto& d : devs->children) {
      if (d.type() != "VirtualDisk") continue;
      const xml::Node* backing = d.child("backing");
      if (!backing || backing->child_text("thinProvisioned") != "true") continue;
      int64_t bytes = to_int(d.child_text("capacityInBytes"));
      if (bytes <= 0) bytes = to_int(d.child_text("capacityInKB")) * 1024;
      if (bytes <= 0) continue;
      std::string ds = datastore_of_path(backing->child_text("fileName"));
      if (!ds.empty()) v.thin_mib[ds] += (bytes + kMiB - 1) / kMiB;
    }
  auto extra = extra_config_map(vm.prop("config.extraConfig"));
  v.tags = parse_tags(extra["ceso.tags"]);
  return v;
}

std::vector<PlaceVm> read_place_vms(vim::Client& client) {
  // Only what place_vm reads is built: disks with their size and backing
  // file, thin flag; ceso.tags of the ExtraConfig (guestinfo values skipped).
  static const std::vector<vim::ValueFilter> kFilters = {
      {"config.hardware.device",
       [](size_t depth, const xml::Node& parent, std::string_view name, std::string_view type) {
         if (depth == 1) return type == "VirtualDisk";
         if (depth == 2)
           return name == "capacityInBytes" || name == "capacityInKB" || name == "backing";
         (void)parent;
         return depth == 3 && (name == "fileName" || name == "thinProvisioned");
       }},
      {"config.extraConfig",
       [](size_t depth, const xml::Node& parent, std::string_view name, std::string_view) {
         if (depth == 1) return true;
         if (depth == 2 && name == "key") return true;
         return depth == 2 && name == "value" && parent.child_text("key") == "ceso.tags";
       }},
  };
  std::vector<PlaceVm> out;
  client.for_each_vm(
      place_vm_paths(), [&](vim::ObjectContent&& o) { out.push_back(place_vm(o)); }, kFilters);
  return out;
}

// ------------------------------------------------------------------ hosts

int64_t PlaceHost::memory_available_mib() const {
  return memory_mib - std::max(memory_used_mib, memory_reserved_mib) - placed_memory_mib;
}

std::string PlaceHost::label() const {
  return (config_name.empty() ? "" : quote(config_name) + " ") + "host " + quote_name(name);
}

std::vector<std::string> Placer::add_endpoint(const std::string& config_name,
                                              const std::vector<ordered_json>& host_records,
                                              const std::vector<PlaceVm>& vms) {
  std::vector<std::string> warnings;
  size_t first = hosts_.size();
  for (const auto& r : host_records) {
    PlaceHost h;
    h.endpoint = r.value("endpoint", "");
    h.config_name = config_name;
    h.name = r["name"].is_string() ? r["name"].get<std::string>() : "";
    h.id = r["id"].is_string() ? r["id"].get<std::string>() : "";
    auto mem = record_mib(r, "memory_mib");
    auto used = record_use(r, "memory_used_mib");
    auto cores = record_mib(r, "cpu_cores");
    auto cap = record_mib(r, "cpu_capacity_mhz");
    auto cpu_used = record_use(r, "cpu_used_mhz");
    if (!mem || *mem == 0) {
      h.unusable = "reports no memory size";
    } else if (!used) {
      h.unusable = "reports a memory use that is no number";
    } else if (*used > *mem) {
      h.unusable = "reports more memory in use (" + mib_text(*used) + ") than it has (" +
                   mib_text(*mem) + ")";
    } else if (!cores || *cores == 0 || !cap || *cap == 0) {
      h.unusable = "reports no CPU capacity";
    } else if (!cpu_used || *cpu_used > *cap) {
      h.unusable = "reports a CPU use beyond its capacity";
    } else if (r.value("maintenance", false) == true) {
      h.unusable = "is in maintenance mode";
    } else if (r.value("connection", "") != "connected") {
      h.unusable = "is not connected (" + r.value("connection", std::string("state unknown")) + ")";
    }
    h.memory_mib = mem.value_or(0);
    h.memory_used_mib = used.value_or(0);
    h.cpu_cores = cores.value_or(0);
    h.cpu_capacity_mhz = cap.value_or(0);
    h.cpu_used_mhz = cpu_used.value_or(0);
    if (h.unusable.empty() && h.name.empty()) h.unusable = "has no name";
    if (auto ds = r.find("datastores"); ds != r.end() && ds->is_array())
      for (const auto& d : *ds) {
        if (!d.is_object() || !d["name"].is_string()) continue;
        std::string name = d["name"].get<std::string>();
        h.datastores.push_back(name);
        auto key = std::make_pair(h.endpoint, name);
        if (datastores_.count(key)) continue;  // shared by hosts of one vCenter
        PlaceDatastore s;
        s.name = name;
        auto c = record_mib(d, "capacity_gib", 1024);
        auto f = record_mib(d, "free_gib", 1024);
        if (!c || *c == 0)
          s.unusable = "reports no capacity";
        else if (!f)
          s.unusable = "reports no free space";
        else if (*f > *c)
          s.unusable =
              "reports more free space (" + mib_text(*f) + ") than capacity (" + mib_text(*c) + ")";
        s.capacity_mib = c.value_or(0);
        s.free_mib = f.value_or(0);
        datastores_[key] = std::move(s);
      }
    if (!h.unusable.empty()) warnings.push_back(h.label() + " (" + h.endpoint + ") " + h.unusable);
    hosts_.push_back(std::move(h));
  }
  std::string endpoint = host_records.empty() ? "" : host_records.front().value("endpoint", "");
  for (const auto& vm : vms) {
    size_t host = hosts_.size();
    for (size_t i = first; i < hosts_.size(); ++i)
      if (!vm.host_id.empty() && hosts_[i].id == vm.host_id) host = i;
    for (const auto& [ds, mib] : vm.thin_mib)
      if (auto it = datastores_.find({endpoint, ds}); it != datastores_.end())
        it->second.thin_growth_mib += mib;
    if (host == hosts_.size()) continue;  // a VM on no host we know: its disks still count
    PlaceHost& h = hosts_[host];
    if (vm.powered_on) h.memory_reserved_mib += vm.reservation_mib;
    for (const auto& t : vm.tags) h.tagged[t].push_back(vm.name);
    existing_[decoded_vm_name(vm.name)].push_back(host);
  }
  return warnings;
}

const PlaceDatastore* Placer::datastore(const std::string& endpoint,
                                        const std::string& name) const {
  auto it = datastores_.find({endpoint, name});
  return it == datastores_.end() ? nullptr : &it->second;
}

bool Placer::anti_tag(const std::string& tag) const {
  for (const auto& a : options_.anti_affinity)
    if (a == "*" || a == tag) return true;
  return false;
}

// ------------------------------------------------------------------ placing

struct Placer::Candidate {
  size_t host = 0;
  std::string datastore;
  double score = 0;
  ordered_json terms;
  std::vector<std::string> clashes;  // anti-affinity tags broken (only with force)
};

ordered_json Placer::place(const PlaceSpec& spec) {
  std::string key = decoded_vm_name(spec.name);
  if (auto p = placed_.find(key); p != placed_.end())
    bad_input("name " + quote_name(spec.name) + " is placed already in this run (at " + p->second +
              ")");

  // A VM of that name exists: it stays where it is (mkvm --exist-ok accepts
  // it); nothing is counted for it.
  if (auto e = existing_.find(key); e != existing_.end()) {
    std::vector<size_t> where = e->second;
    if (where.size() > 1) {
      std::string list;
      for (size_t i : where) list += (list.empty() ? "" : ", ") + hosts_[i].label();
      fail("VMs named " + quote_name(spec.name) + " exist on " + std::to_string(where.size()) +
           " hosts (" + list + "): cannot say which is meant");
    }
    const PlaceHost& h = hosts_[where.front()];
    placed_[key] = spec.origin;
    ordered_json r;
    r["endpoint"] = h.endpoint;
    r["host"] = h.name;
    r["host_id"] = h.id;
    r["datastore"] = nullptr;
    r["placement"] = {{"existing", true},
                      {"why", "a VM of this name is on " + h.label() + " already"}};
    return r;
  }

  std::vector<std::string> anti;
  for (const auto& t : spec.tags)
    if (anti_tag(t)) anti.push_back(t);

  // Swap: ESXi writes a .vswp of the VM's unreserved memory (all of it for a
  // new VM) beside the .vmx at power-on, so the datastore needs it too.
  const int64_t ds_need = spec.disk_mib + spec.memory_mib;
  std::vector<Candidate> fit, clashing;
  ordered_json rejected = ordered_json::array();
  std::vector<std::string> rejected_text;  // "'a' host 'x' (ep): why; why", for the error
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const PlaceHost& h = hosts_[i];
    std::vector<std::string> why;
    if (!h.unusable.empty()) why.push_back("host " + h.unusable);
    if (why.empty()) {
      int64_t mem_free = h.memory_available_mib();
      if (spec.memory_mib > mem_free)
        why.push_back("memory: needs " + mib_text(spec.memory_mib) + ", " +
                      mib_text(std::max<int64_t>(mem_free, 0)) + " free after reservations");
      if (spec.cpus > h.cpu_cores)
        why.push_back("cpu: " + std::to_string(spec.cpus) + " vCPUs, the host has " +
                      std::to_string(h.cpu_cores) + " cores");
    }
    // The datastore of this host with the most room left after this VM.
    std::string best_ds;
    double best_ds_free = -1;
    std::vector<std::string> ds_why;
    if (why.empty()) {
      for (const auto& name : h.datastores) {
        const PlaceDatastore& d = datastores_.at({h.endpoint, name});
        if (!d.unusable.empty()) {
          ds_why.push_back(quote(name) + " " + d.unusable);
          continue;
        }
        int64_t avail = d.available_mib();
        if (ds_need > avail) {
          ds_why.push_back(quote(name) + " needs " + mib_text(ds_need) + " (disk + swap), " +
                           mib_text(std::max<int64_t>(avail, 0)) + " free after thin growth");
          continue;
        }
        double left = static_cast<double>(avail - ds_need) / static_cast<double>(d.capacity_mib);
        if (left > best_ds_free) best_ds_free = left, best_ds = name;
      }
      if (best_ds.empty()) {
        if (ds_why.empty()) ds_why.push_back("the host has no datastore");
        for (auto& w : ds_why) why.push_back("datastore: " + w);
      }
    }
    std::vector<std::string> clashes, clash_why;
    for (const auto& t : anti)
      if (auto it = h.tagged.find(t); it != h.tagged.end() && !it->second.empty()) {
        clashes.push_back(t);
        size_t more = it->second.size() - 1;
        clash_why.push_back(
            "anti-affinity: tag " + quote(t) + " is on " + quote_name(it->second.front()) +
            (more ? " and " + std::to_string(more) + " more" : std::string()) + " there");
      }
    if (why.empty() && (clashes.empty() || options_.force)) {
      Candidate c;
      c.host = i;
      c.datastore = best_ds;
      int64_t mem_left = h.memory_available_mib() - spec.memory_mib;
      double mem = static_cast<double>(mem_left) / static_cast<double>(h.memory_mib);
      double load = static_cast<double>(h.cpu_used_mhz) / static_cast<double>(h.cpu_capacity_mhz);
      double cpu = (1.0 - load) * static_cast<double>(h.cpu_cores) /
                   static_cast<double>(h.cpu_cores + h.placed_cpus + spec.cpus);
      c.terms = {
          {"memory", round4(mem)}, {"datastore", round4(best_ds_free)}, {"cpu", round4(cpu)}};
      c.score = round4(0.4 * mem + 0.3 * best_ds_free + 0.3 * cpu);
      c.clashes = clashes;
      (clashes.empty() ? fit : clashing).push_back(std::move(c));
      if (clashes.empty()) continue;
    }
    for (auto& w : clash_why) why.push_back(std::move(w));
    std::string whys;
    for (const auto& w : why) whys += (whys.empty() ? "" : "; ") + w;
    rejected_text.push_back(h.label() + " (" + h.endpoint + "): " + whys);
    rejected.push_back({{"endpoint", h.endpoint}, {"host", h.name}, {"why", why}});
  }

  // Best score; ties: fewer broken tags (forced), then the host given first.
  auto better = [](const Candidate& a, const Candidate& b) {
    return std::make_tuple(-a.score, a.host) < std::make_tuple(-b.score, b.host);
  };
  std::vector<Candidate>* pool = &fit;
  if (fit.empty() && options_.force && !clashing.empty()) {
    pool = &clashing;
    std::stable_sort(clashing.begin(), clashing.end(), [&](const auto& a, const auto& b) {
      return std::make_tuple(a.clashes.size(), -a.score, a.host) <
             std::make_tuple(b.clashes.size(), -b.score, b.host);
    });
  } else {
    std::sort(fit.begin(), fit.end(), better);
  }
  if (pool->empty()) {
    std::string msg = "fits on no host (" + mib_text(spec.memory_mib) + " memory, " +
                      mib_text(spec.disk_mib) + " disk, " + std::to_string(spec.cpus) +
                      (spec.cpus == 1 ? " vCPU)" : " vCPUs)");
    if (hosts_.empty()) msg += ": no host was read";
    for (const auto& r : rejected_text) msg += "; " + r;
    throw Error(msg, Exit::partial);
  }

  const Candidate& c = pool->front();
  PlaceHost& h = hosts_[c.host];
  if (!c.clashes.empty()) {  // forced: the chosen host is no longer a rejected one
    ordered_json kept = ordered_json::array();
    for (auto& r : rejected)
      if (!(r["endpoint"] == h.endpoint && r["host"] == h.name)) kept.push_back(std::move(r));
    rejected = std::move(kept);
  }
  PlaceDatastore& d = datastores_.at({h.endpoint, c.datastore});
  ordered_json others = ordered_json::array();
  for (size_t k = 1; k < pool->size(); ++k) {
    const Candidate& o = (*pool)[k];
    others.push_back({{"endpoint", hosts_[o.host].endpoint},
                      {"host", hosts_[o.host].name},
                      {"datastore", o.datastore},
                      {"score", o.score}});
  }
  h.placed_memory_mib += spec.memory_mib;
  h.placed_cpus += spec.cpus;
  d.placed_mib += ds_need;
  for (const auto& t : spec.tags) h.tagged[t].push_back(spec.name);
  placed_[key] = spec.origin;

  ordered_json r;
  r["endpoint"] = h.endpoint;
  r["host"] = h.name;
  r["host_id"] = h.id;
  r["datastore"] = c.datastore;
  ordered_json p;
  p["score"] = c.score;
  p["terms"] = c.terms;
  p["memory_free_mib"] = h.memory_available_mib();
  p["datastore_free_mib"] = d.available_mib();
  if (!c.clashes.empty()) p["forced"] = c.clashes;
  p["others"] = std::move(others);
  p["rejected"] = std::move(rejected);
  r["placement"] = std::move(p);
  return r;
}

}  // namespace ceso
