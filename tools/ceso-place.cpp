// ceso-place — choose the host and datastore where each new VM fits best.
//
//   ceso-cloudinit < fleet.ndjson | ceso-place -H all --memory 2G --disk 20 | ceso-mkvm --from g
//   ceso-place -H a -H b --memory 4G --disk 40 --tag web --anti-affinity web web01 web02
//
// Reads every host's capacity first (per endpoint, in parallel: the host
// records and the VMs, one RetrievePropertiesEx each), then places the specs
// one by one in input order, each taking its share. Changes nothing.
// libcore/vm/place.hpp; man/ceso-place.1.scd.
#include <unistd.h>

#include <atomic>
#include <thread>

#include "base/numbers.hpp"
#include "cli/endpoint.hpp"
#include "cli/fanout.hpp"
#include "cli/tool.hpp"
#include "vm/host.hpp"
#include "vm/names.hpp"
#include "vm/place.hpp"
#include "vm/spec.hpp"
#include "vm/vm.hpp"
#include "vsphere/client.hpp"

namespace {

const ceso::ToolSpec kSpec{
    "ceso-place",
    "Choose the host and datastore where each new VM fits best (memory, disk, CPU, "
    "anti-affinity).",
    "[OPTION]... [NAME]...  (or spec records on stdin)",
    {
        {"cpus", 'c', "N", "vCPUs of each VM without a \"cpus\" field (default 1)"},
        {"memory", 'm', "SIZE", "memory of each VM without \"memory_mib\": MiB, or 512M, 2G"},
        {"disk", 0, "SIZE", "disk of each VM without \"disk_gib\": GiB, or with a unit (40G, 1T)"},
        {"tag", 't', "TAG", "tag of each VM without \"tags\"", ceso::kRepeatable},
        {"anti-affinity", 'A', "TAG", "VMs sharing TAG go to different hosts ('*': every tag)",
         ceso::kRepeatable},
        {"force", 0, "", "anti-affinity may be broken when no host keeps it (least broken wins)"},
        {"dry-run", 'n', "",
         "the same records: ceso-place changes nothing (for rehearsed pipelines)"},
    },
    ceso::kConnection | ceso::kHosts | ceso::kOutput,
    {},
    ceso::Complete::none,
};

// Fields ceso-place states in every record it prints.
const std::vector<std::string> kOwned = {"endpoint",   "host",     "host_id", "datastore", "cpus",
                                         "memory_mib", "disk_gib", "tags",    "placement"};

struct Defaults {
  std::optional<int64_t> cpus, memory_mib, disk_mib;
  std::optional<std::vector<std::string>> tags;
};

Defaults parse_defaults(const ceso::Args& args) {
  Defaults d;
  if (args.has("cpus")) d.cpus = args.get_int("cpus", 1, 1, 768);
  if (auto m = args.maybe("memory")) d.memory_mib = ceso::vmspec::parse_memory_mib(*m);
  if (auto s = args.maybe("disk"))
    d.disk_mib =
        ceso::parse_size("disk", *s, ceso::kGiB, ceso::kMiB, ceso::kMaxDiskBytes) / ceso::kMiB;
  if (args.has("tag")) d.tags = ceso::normalize_tags("tag", args.all("tag"));
  return d;
}

// A whole number field of a record, from `min` to `max`; `field` names it.
int64_t whole(const ceso::ordered_json& v, const std::string& where, const char* field, int64_t min,
              int64_t max) {
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max)
    ceso::bad_input(where + ": field \"" + field + "\" must be a whole number from " +
                    std::to_string(min) + " to " + std::to_string(max));
  return v.get<int64_t>();
}

ceso::PlaceSpec spec_of(const ceso::Target& t, const Defaults& d) {
  const auto& r = t.record;
  std::string where = "error (at " + t.origin + ")";
  ceso::PlaceSpec s;
  s.name = t.name;
  s.origin = t.origin;
  ceso::check_vm_name(t.name, r.empty() ? t.origin : where + ": field \"name\"",
                      r.empty() ? ceso::Exit::usage : ceso::Exit::bad_input);
  if (auto it = r.find("cpus"); it != r.end())
    s.cpus = whole(*it, where, "cpus", 1, 768);
  else
    s.cpus = d.cpus.value_or(1);
  if (auto it = r.find("memory_mib"); it != r.end())
    s.memory_mib = whole(*it, where, "memory_mib", 4, ceso::kMaxVmMemoryBytes / ceso::kMiB);
  else if (d.memory_mib)
    s.memory_mib = *d.memory_mib;
  else
    ceso::bad_input((r.empty() ? t.origin : where) + ": " + ceso::quote_name(t.name) +
                    " has no memory size: give --memory or a \"memory_mib\" field");
  if (auto it = r.find("disk_gib"); it != r.end()) {
    if (!it->is_number() || !(it->get<double>() > 0) ||
        it->get<double>() > static_cast<double>(ceso::kMaxDiskBytes / ceso::kGiB))
      ceso::bad_input(where + ": field \"disk_gib\" must be a number above 0 and at most " +
                      std::to_string(ceso::kMaxDiskBytes / ceso::kGiB));
    s.disk_mib = static_cast<int64_t>(std::ceil(it->get<double>() * 1024));
  } else if (d.disk_mib) {
    s.disk_mib = *d.disk_mib;
  } else {
    ceso::bad_input((r.empty() ? t.origin : where) + ": " + ceso::quote_name(t.name) +
                    " has no disk size: give --disk or a \"disk_gib\" field");
  }
  if (auto it = r.find("tags"); it != r.end()) {
    if (!it->is_array()) ceso::bad_input(where + ": field \"tags\" must be an array of strings");
    std::vector<std::string> tags;
    for (const auto& v : *it) {
      if (!v.is_string()) ceso::bad_input(where + ": field \"tags\" must be an array of strings");
      tags.push_back(v.get<std::string>());
    }
    try {
      s.tags = ceso::normalize_tags("tags", tags);
    } catch (const ceso::Error& e) {
      ceso::bad_input(where + ": field " + e.what());
    }
  } else if (d.tags) {
    s.tags = *d.tags;
  }
  return s;
}

// The capacity of every endpoint, read in parallel. A host that cannot be
// read is a warning; its specs go elsewhere and the exit status is 4.
struct Read {
  std::vector<ceso::ordered_json> hosts;
  std::vector<ceso::PlaceVm> vms;
  std::optional<ceso::Error> error;
};

std::vector<Read> read_all(const std::vector<ceso::Endpoint>& eps) {
  std::vector<Read> out(eps.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < eps.size();) {
      try {
        ceso::vim::Client client(eps[i]);
        out[i].hosts = ceso::read_host_records(client);
        out[i].vms = ceso::read_place_vms(client);
      } catch (const ceso::Error& e) {
        out[i].error = e;
      } catch (const std::exception& e) {
        out[i].error = ceso::Error(e.what());
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::min(eps.size(), ceso::kFanOutThreads); ++t)
    threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return out;
}

ceso::Exit run(const ceso::Args& args) {
  ceso::ReadOnlyRun read_only;  // nothing is changed: Ctrl-C cuts a call at once
  Defaults defaults = parse_defaults(args);
  ceso::PlaceOptions opts;
  for (const auto& a : args.all("anti-affinity"))
    opts.anti_affinity.push_back(a == "*" ? a : ceso::normalize_tag("anti-affinity", a));
  opts.force = args.has("force");
  if (opts.force && opts.anti_affinity.empty())
    ceso::usage_error("--force only loosens --anti-affinity; give --anti-affinity TAG");
  for (size_t i = 0; i < args.operands.size(); ++i)
    ceso::check_vm_name(args.operands[i], "argument " + std::to_string(i + 1), ceso::Exit::usage);
  if (!args.operands.empty() && !defaults.memory_mib)
    ceso::usage_error("VMs named as arguments need --memory");
  if (!args.operands.empty() && !defaults.disk_mib)
    ceso::usage_error("VMs named as arguments need --disk");
  if (args.operands.empty() && isatty(STDIN_FILENO))
    ceso::usage_error("no VM named and no spec records on standard input");

  std::vector<ceso::Endpoint> eps;
  if (auto many = ceso::fan_out_endpoints(args))
    eps = std::move(*many);
  else
    eps.push_back(ceso::resolve_endpoint(args));
  std::vector<Read> reads = read_all(eps);

  ceso::Outcome outcome;
  bool host_missing = false;
  ceso::Placer placer(opts);
  for (size_t i = 0; i < eps.size(); ++i) {
    const ceso::Endpoint& ep = eps[i];
    std::string who =
        "host " + ceso::quote(ep.config_name.empty() ? ep.id : ep.config_name) + " (" + ep.id + ")";
    if (reads[i].error) {
      if (reads[i].error->code() == ceso::Exit::interrupted) throw *reads[i].error;
      ceso::warn(who + ": " + reads[i].error->what() +
                 "; its capacity is unknown, no VM is placed there");
      host_missing = true;
      continue;
    }
    for (const auto& w : placer.add_endpoint(ep.config_name, reads[i].hosts, reads[i].vms))
      ceso::warn(w + "; no VM is placed there");
  }
  if (host_missing && eps.size() == 1) throw *reads.front().error;

  ceso::Output out(args, {"name", "endpoint", "host", "datastore", "placement.score"},
                   [](const ceso::ordered_json& r) {
                     return r.value("name", "") + ": " + r.value("endpoint", "") + " " +
                            r.value("host", "") + " [" +
                            (r["datastore"].is_string() ? r["datastore"].get<std::string>()
                                                        : std::string("existing")) +
                            "]";
                   });
  std::string default_type = "spec";
  ceso::for_each_target(
      args, outcome,
      [&](const ceso::Target& t) {
        ceso::PlaceSpec spec = spec_of(t, defaults);
        ceso::ordered_json ours;
        ours["type"] = t.record.empty() ? default_type : t.record.value("type", default_type);
        ours["name"] = t.name;
        ceso::ordered_json where = placer.place(spec);
        for (auto& [k, v] : where.items()) {
          if (k == "placement") continue;
          ours[k] = v;
        }
        ours["cpus"] = spec.cpus;
        ours["memory_mib"] = spec.memory_mib;
        ours["disk_gib"] = spec.disk_mib % 1024 == 0
                               ? ceso::ordered_json(spec.disk_mib / 1024)
                               : ceso::ordered_json(static_cast<double>(spec.disk_mib) / 1024.0);
        ours["tags"] = spec.tags;
        ours["placement"] = where["placement"];
        out.emit(ceso::pass_through(t.record, ours, kOwned));
        outcome.succeeded();
      },
      {"guestinfo", "spec"});
  out.finish();
  ceso::Exit code = outcome.exit_code();
  if (host_missing && code == ceso::Exit::ok) code = ceso::Exit::partial;
  return code;
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
