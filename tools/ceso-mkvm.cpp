// ceso-mkvm — create VMs from a powered-off golden-image VM, with cloud-init
// guestinfo, on a standalone ESXi host (disk copies + CreateVM_Task) or through
// vCenter (CloneVM_Task). See libcore/vm/provision.hpp and
// docs/provisioning.md.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "base/numbers.hpp"
#include "base/progress.hpp"
#include "cli/cloudinit_options.hpp"
#include "cli/endpoint.hpp"
#include "cli/tool.hpp"
#include "cli/vm_options.hpp"
#include "cloudinit/cloudinit.hpp"
#include "cloudinit/netcfg.hpp"
#include "config/config.hpp"
#include "safety/policy.hpp"
#include "vm/hostcli.hpp"
#include "vm/lifecycle.hpp"
#include "vm/names.hpp"
#include "vm/pci.hpp"
#include "vm/pool.hpp"
#include "vm/provision.hpp"
#include "vm/spec.hpp"
#include "vm/vm.hpp"
#include "vm/writer.hpp"
#include "vsphere/client.hpp"

namespace {

// A golden image's tags are its own: the new VM gets only --tag.
constexpr ceso::VmShapeDefaults kShape{
    .copies_disks = true, .keeps_tags = false, .powers_on = true};

ceso::ToolSpec make_spec() {
  ceso::ToolSpec spec{
      "ceso-mkvm",
      "Create VMs from a powered-off golden-image VM, with cloud-init guestinfo.",
      "[OPTION]... --from SOURCE NAME...  (or guestinfo records on stdin)",
      {
          {"from", 'F', "SOURCE", "the golden-image VM (powered off) to copy", 0,
           ceso::Complete::vm},
          {"exist-ok", 0, "", "an existing VM of that name is not an error (changed: false)"},
          {"gpu", 0, "VENDOR:DEVICE", "attach any free GPU with these ids (PCI passthrough)"},
          {"pci", 0, "ADDRESS", "attach this PCI device of the host (passthrough)"},
          {"mmio-gb", 0, "N", "with a GPU: pciPassthru.64bitMMIOSizeGB (default 64)"},
          {"pool", 0, "PATH",
           "resource pool of the new VMs, as ceso-host pool ls prints it (default: the source's)"},
      },
      ceso::kConnection | ceso::kOutput | ceso::kDryRun | ceso::kJobs | ceso::kTransport,
      {},
      ceso::Complete::none,
  };
  for (const auto& o : ceso::vm_shape_options(kShape)) spec.options.push_back(o);
  for (const auto& o : ceso::cloudinit_flag_options()) spec.options.push_back(o);
  return spec;
}

const ceso::ToolSpec kSpec = make_spec();

// What one worker thread keeps per endpoint: its own connection and the
// source, read once.
struct Connection {
  std::unique_ptr<ceso::vim::Client> client;
  std::optional<ceso::SourceVm> source;
  std::vector<ceso::Pool> pools;  // read once, with --pool
};
struct Worker {
  std::map<std::string, Connection> by_endpoint;  // endpoint id → connection
};

struct Settings {
  std::optional<ceso::Endpoint> endpoint;  // --url/-H/environment; records may name their own
  std::string source;
  ceso::VmShape shape;  // its vm: everything but name, guestinfo and MACs
  ceso::ordered_json ci_fields;
  ceso::GuestInfoEncoding encoding = ceso::GuestInfoEncoding::gzip_base64;
  bool exist_ok = false;
  size_t jobs = 1;
  std::optional<ceso::PassthroughRequest> pci;  // --gpu / --pci
  std::string pool;                             // --pool PATH
};

Settings parse_settings(const ceso::Args& args) {
  Settings s;
  s.source = args.get("from");
  if (s.source.empty()) ceso::usage_error("--from SOURCE is required (the golden-image VM)");
  s.shape = ceso::vm_shape(args, kShape);
  s.ci_fields = ceso::cloudinit_flag_fields(args);
  if (auto e = args.maybe("encoding")) s.encoding = *ceso::parse_encoding(*e);
  if (!s.ci_fields.empty()) ceso::SpecReader().check(s.ci_fields, ceso::FieldStyle::flag);
  if (s.ci_fields.contains("mac"))
    s.shape.vm.macs.push_back(ceso::normalize_mac(s.ci_fields["mac"].get<std::string>()));
  s.exist_ok = args.has("exist-ok");
  if (args.has("gpu") && args.has("pci")) ceso::usage_error("--gpu and --pci exclude each other");
  if (args.has("gpu") || args.has("pci")) {
    ceso::PassthroughRequest q;
    if (auto g = args.maybe("gpu")) q.gpu = ceso::parse_pci_ids(*g), q.gpu_text = *g;
    if (auto a = args.maybe("pci")) q.address = ceso::parse_pci_address(*a, "--pci");
    if (args.has("mmio-gb"))
      q.mmio_gb = ceso::check_mmio_gb(args.get_int("mmio-gb", ceso::kDefaultMmioGiB, 1, 4096));
    s.pci = q;
  } else if (args.has("mmio-gb")) {
    ceso::usage_error("--mmio-gb goes with --gpu or --pci");
  }
  if (args.has("pool")) {
    s.pool = args.get("pool");
    ceso::split_pool_path(s.pool, "--pool", ceso::Exit::usage);  // checked before any call
  }
  s.jobs = static_cast<size_t>(args.get_int("jobs", 1, 1, 64));
  // Every new name is checked before any VM is made.
  for (size_t i = 0; i < args.operands.size(); ++i)
    ceso::check_vm_name(args.operands[i], "argument " + std::to_string(i + 1), ceso::Exit::usage);
  s.endpoint = ceso::resolve_endpoint_if_given(args);
  if (!s.endpoint && !args.operands.empty()) s.endpoint = ceso::resolve_endpoint(args);
  return s;
}

// The endpoint of a target: its record's `endpoint` (ceso-place writes it,
// see ceso-place(1)), resolved once per id, else the run's host.
class Endpoints {
 public:
  explicit Endpoints(const std::optional<ceso::Endpoint>& given) : given_(given) {}
  ceso::Endpoint for_target(const ceso::Target& t) {
    auto it = t.record.find("endpoint");
    if (it == t.record.end() || it->is_null()) {
      if (!given_)
        ceso::usage_error("no host for " + ceso::quote_name(t.name) + " (at " + t.origin +
                          "): give -H or --url, or records with an \"endpoint\" field");
      return *given_;
    }
    if (!it->is_string())
      ceso::bad_input("error (at " + t.origin + "): field \"endpoint\" is not a string");
    std::string id = it->get<std::string>();
    std::lock_guard lock(mutex_);
    auto found = resolved_.find(id);
    if (found == resolved_.end())
      found = resolved_.emplace(id, ceso::endpoint_for_record(id, given_)).first;
    return found->second;
  }

 private:
  std::optional<ceso::Endpoint> given_;
  std::mutex mutex_;
  std::map<std::string, ceso::Endpoint> resolved_;
};

// The datastore a record asks for (ceso-place's choice): it wins over
// --datastore, as record fields win over flags. Null or absent: none.
std::string record_datastore(const ceso::Target& t, const std::string& flag) {
  auto it = t.record.find("datastore");
  if (it == t.record.end() || it->is_null()) return flag;
  if (!it->is_string() || it->get<std::string>().empty())
    ceso::bad_input("error (at " + t.origin + "): field \"datastore\" must be a datastore name");
  return it->get<std::string>();
}

// The host a placed record names (ceso-place's `host_id`), used on a vCenter
// where the pool alone would let vCenter choose; a standalone host has one.
ceso::vim::MoRef record_host(const ceso::Target& t, ceso::vim::Client& c) {
  auto it = t.record.find("host_id");
  if (it == t.record.end() || it->is_null()) return {};
  const std::string bad = "error (at " + t.origin + "): field \"host_id\" must be a host id";
  if (!it->is_string()) ceso::bad_input(bad);
  const std::string id = it->get<std::string>();
  if (id.empty() || id.size() > 80 || !std::all_of(id.begin(), id.end(), [](unsigned char ch) {
        return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
      }))
    ceso::bad_input(bad + " (like host-21)");
  if (!c.content().is_vcenter()) return {};
  return {"HostSystem", id};
}

// The shape a spec record states (ceso-place writes `cpus`, `memory_mib` and
// `tags`): each wins over its flag. Checked as the flags are.
void record_shape(const ceso::Target& t, ceso::NewVm& req) {
  std::string where = "error (at " + t.origin + "): field ";
  try {
    if (auto it = t.record.find("cpus"); it != t.record.end() && !it->is_null()) {
      if (!it->is_number_integer()) ceso::bad_input(where + "\"cpus\" is not a whole number");
      req.cpus =
          static_cast<int>(ceso::parse_count("cpus", std::to_string(it->get<int64_t>()), 1, 768));
    }
    if (auto it = t.record.find("memory_mib"); it != t.record.end() && !it->is_null()) {
      if (!it->is_number_integer()) ceso::bad_input(where + "\"memory_mib\" is not a whole number");
      req.memory_mib = ceso::vmspec::parse_memory_mib(std::to_string(it->get<int64_t>()));
    }
    if (auto it = t.record.find("tags"); it != t.record.end() && !it->is_null()) {
      if (!it->is_array()) ceso::bad_input(where + "\"tags\" is not an array of strings");
      std::vector<std::string> tags;
      for (const auto& v : *it) {
        if (!v.is_string()) ceso::bad_input(where + "\"tags\" is not an array of strings");
        tags.push_back(v.get<std::string>());
      }
      req.tags = ceso::normalize_tags("tags", tags);
    }
  } catch (const ceso::Error& e) {
    if (e.code() == ceso::Exit::bad_input) throw;
    ceso::bad_input(where + e.what());
  }
}

// The guestinfo for one new VM: from its guestinfo record, or built from the
// cloud-init flags (host name defaulting to the VM name) with a fresh instance-id.
std::vector<std::pair<std::string, std::string>> guestinfo_for(const ceso::Target& t,
                                                               const Settings& s,
                                                               std::string* instance_id) {
  std::vector<std::pair<std::string, std::string>> out;
  if (auto gi = t.record.find("guestinfo"); gi != t.record.end()) {
    if (!s.ci_fields.empty())
      ceso::bad_input(t.origin + ": a guestinfo record and cloud-init flags cannot be combined");
    out = ceso::guestinfo_pairs(*gi, t.origin);
    *instance_id = t.record.value("instance_id", "");
    return out;
  }
  ceso::ordered_json fields = s.ci_fields;
  if (!fields.contains("hostname") && !fields.contains("fqdn")) {
    if (!ceso::is_host_label(t.name)) {
      if (!fields.empty())
        ceso::usage_error("VM name " + ceso::quote(t.name) +
                          " is not a valid host name; give --hostname");
      return out;  // no cloud-init wanted and no name to give the guest
    }
    fields["hostname"] = t.name;
  }
  ceso::GuestInfo gi =
      ceso::build_guestinfo(ceso::SpecReader().read(fields, ceso::FieldStyle::flag), s.encoding);
  *instance_id = gi.instance_id;
  return gi.values;
}

std::optional<std::string> existing_vm(ceso::vim::Client& c, const std::string& name,
                                       std::string* source_id, const std::string& source) {
  std::optional<std::string> found;
  int sources = 0;
  for (const auto& vm : c.retrieve_all_vms({"name"})) {
    std::string n = vm.text("name");
    if (ceso::same_vm_name(n, name)) found = vm.obj.value;
    if (ceso::same_vm_name(n, source)) {
      *source_id = vm.obj.value;
      ++sources;
    }
  }
  if (sources == 0) ceso::fail("no VM named " + ceso::quote(source) + " on " + c.endpoint().id);
  if (sources > 1)
    ceso::fail(std::to_string(sources) + " VMs are named " + ceso::quote(source) + " on " +
               c.endpoint().id);
  return found;
}

// What ceso-mkvm states in the records it prints; the guestinfo and
// documents of a guestinfo record were consumed (written to the new VM).
const std::vector<std::string> kOwned =
    ceso::vm_owned_fields({"changed", "source", "macs", "instance_id", "guestinfo", "documents"});

ceso::ordered_json record_of(ceso::vim::Client& c, const ceso::vim::MoRef& vm) {
  auto objs = c.retrieve({vm}, ceso::vm_record_paths());
  if (objs.empty()) ceso::fail("the new VM disappeared");
  return ceso::vm_record(objs.front(), c.endpoint());
}

ceso::Exit run(const ceso::Args& args) {
  Settings s = parse_settings(args);
  ceso::Output out(args, {"name", "changed", "power", "ip", "id"}, [](const ceso::ordered_json& r) {
    return r.value("name", "") + ": " + (r.value("changed", false) ? "created" : "exists") +
           (r.contains("ip") ? ", ip " + r.value("ip", "") : "");
  });
  ceso::Gate gate =
      ceso::tool_gate(args.has("dry-run"), [&](const ceso::ordered_json& plan) { out.emit(plan); });
  ceso::Progress progress(s.jobs == 1 && ceso::Progress::wanted());
  std::vector<Worker> workers(s.jobs);
  Endpoints endpoints(s.endpoint);
  auto writers = ceso::vm_writers(args);  // API, or SSH on a free-licensed host
  ceso::Outcome outcome;
  ceso::for_each_target_parallel(
      args, outcome, s.jobs,
      [&](const ceso::Target& t, size_t w) {
        if (!t.record.empty())
          ceso::check_vm_name(t.name, "error (at " + t.origin + "): field \"name\"",
                              ceso::Exit::bad_input);
        ceso::Endpoint ep = endpoints.for_target(t);
        Connection& wk = workers[w].by_endpoint[ep.id];
        if (!wk.client) wk.client = std::make_unique<ceso::vim::Client>(ep);
        ceso::vim::Client& c = *wk.client;
        std::string instance_id;
        ceso::NewVm req = s.shape.vm;
        req.name = t.name;
        req.datastore = record_datastore(t, req.datastore);
        record_shape(t, req);
        req.host = record_host(t, c);
        req.extra_config = guestinfo_for(t, s, &instance_id);
        std::string source_id;
        // Finding the source changes nothing: Ctrl-C cuts these calls at once.
        std::optional<ceso::ReadOnlyPhase> reading(std::in_place);
        if (auto id = existing_vm(c, t.name, &source_id, s.source)) {
          if (!s.exist_ok)
            ceso::fail("a VM named " + ceso::quote(t.name) + " already exists on " +
                       c.endpoint().id + " (--exist-ok accepts it)");
          auto rec = record_of(c, {"VirtualMachine", *id});
          rec["changed"] = false;
          out.emit(ceso::pass_through(t.record, rec, kOwned));
          outcome.succeeded();
          return;
        }
        if (!wk.source || wk.source->ref.value != source_id)
          wk.source = ceso::read_source_vm(c, {"VirtualMachine", source_id});
        // The device must be there and free before anything is made (checked
        // against the source's host; the new VM's is checked again).
        ceso::VmWriter& writer = writers->for_client(c);
        // Over SSH (a free host) the device goes into the .vmx: a static
        // backing, --gpu picks a free device (vm/hostcli).
        std::optional<ceso::PassthroughRequest> pci_req = s.pci;
        if (pci_req) pci_req->static_only = writer.transport() == ceso::Transport::ssh;
        std::optional<ceso::AttachPlan> pci_plan;
        if (pci_req) pci_plan = ceso::plan_attach(c, wk.source->ref, *pci_req);
        if (!s.pool.empty()) {
          // The pool must be there before anything is made.
          req.pool = ceso::new_vm_pool(c, wk.pools, s.pool, wk.source->pool, wk.source->host,
                                       writer.transport() == ceso::Transport::ssh);
        }
        reading.reset();  // from here on, calls change things: they run to the end
        ceso::Provisioned ids = ceso::plan_identity(*wk.source, req);
        ceso::StepGate step = [&](const std::string& op, const ceso::ordered_json& params,
                                  const std::function<void()>& action) {
          ceso::Mutation m{c.endpoint().id, t.name, "", op, params};
          m.transport = ceso::to_string(writer.transport());
          return gate.perform(m, action);
        };
        ceso::ProgressFn prog = [&](const std::string& label, int pct) {
          progress.percent(t.name + ": " + label, pct);
        };
        ceso::Provisioner p(c, writer, step, prog);
        ceso::Provisioned made = p.create(*wk.source, req, ids);
        if (pci_plan)
          p.step("attaching PCI passthrough", "ReconfigVM_Task", pci_plan->params, [&] {
            ceso::AttachPlan plan = ceso::plan_attach(c, made.vm, *pci_req);
            if (writer.transport() != ceso::Transport::ssh)
              return ceso::apply_attach(c, made.vm, plan);
            writer.edit_vmx_file(made.vm, [&](std::string_view vmx) {
              return ceso::vmx_attach_changes(vmx, plan.device, plan.system_id, plan.gpu,
                                              pci_req->mmio_gb);
            });
          });
        std::string ip;
        if (s.shape.power_on)
          p.step("powering on", "PowerOnVM_Task", ceso::ordered_json::object(),
                 [&] { p.power_on(made.vm, s.shape.timeout); });
        if (s.shape.wait_ip && !gate.dry_run())
          p.step("waiting for an IP address", "", {},
                 [&] { ip = ceso::wait_for(c, made.vm, "ip", s.shape.timeout); });
        p.commit();
        if (gate.dry_run()) {
          outcome.succeeded();
          return;
        }
        auto rec = record_of(c, made.vm);
        if (!ip.empty()) rec["ip"] = ip;
        if (pci_plan)
          for (auto& o : c.retrieve({made.vm}, {"config.hardware.device"}))
            if (const auto* dev = o.prop("config.hardware.device"))
              rec["pci"] = ceso::vm_pci_json(ceso::vm_pci_devices(*dev));
        rec["changed"] = true;
        rec["source"] = wk.source->name;
        rec["macs"] = made.macs;
        if (!instance_id.empty()) rec["instance_id"] = instance_id;
        out.emit(ceso::pass_through(t.record, rec, kOwned));
        outcome.succeeded();
      },
      {"guestinfo", "spec"});
  out.finish();
  return outcome.exit_code();  // run_tool makes an unaudited change exit 1
}

}  // namespace

int main(int argc, char** argv) { return ceso::run_tool(kSpec, argc, argv, run); }
