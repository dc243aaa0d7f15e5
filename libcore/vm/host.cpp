#include "vm/host.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "base/error.hpp"
#include "base/log.hpp"
#include "base/xml.hpp"
#include "vsphere/client.hpp"

namespace ceso {

namespace {

// A non-negative whole number from the answer, or null.
ordered_json number(const std::string& text, uint64_t divisor = 1) {
  if (text.empty() || text.size() > 20 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return nullptr;
  try {
    return static_cast<uint64_t>(std::stoull(text) / divisor);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// GiB: whole when exact, else two decimals (as vm records' disks_gib).
ordered_json gib(const std::string& bytes_text) {
  ordered_json b = number(bytes_text);
  if (b.is_null()) return b;
  uint64_t bytes = b.get<uint64_t>();
  if (bytes % (1ull << 30) == 0) return bytes >> 30;
  return std::round(static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0) * 100.0) / 100.0;
}

ordered_json text_or_null(const std::string& s) {
  return s.empty() ? ordered_json(nullptr) : ordered_json(s);
}

std::string key(const vim::MoRef& r) { return r.type + ":" + r.value; }

}  // namespace

std::string host_spec(const vim::MoRef& root_folder, const vim::MoRef& license_manager) {
  std::string s = "<specSet>";
  s += vim::prop_set_xml(
      "HostSystem", {"name", "parent", "datastore", "summary.config.product", "summary.hardware",
                     "summary.quickStats", "runtime.inMaintenanceMode", "runtime.connectionState"});
  s += vim::prop_set_xml("Datastore", {"name", "summary.capacity", "summary.freeSpace"});
  s += vim::prop_set_xml("ComputeResource", {"name"});
  s += vim::prop_set_xml("ResourcePool", {"name", "parent", "owner"});
  if (!license_manager.empty()) s += vim::prop_set_xml("LicenseManager", {"licenses"});
  // Folders and datacenters are passed through (skip); compute resources,
  // hosts, datastores and pools are reported.
  s += "<objectSet>" + vim::moref_xml("obj", root_folder) + "<skip>true</skip>";
  s += vim::traversal_xml("folder", "Folder", "childEntity", false,
                          {"folder", "dc", "crHost", "crPool"});
  s += vim::traversal_xml("dc", "Datacenter", "hostFolder", true, {"folder"});
  s += vim::traversal_xml("crHost", "ComputeResource", "host", false, {"hostDs"});
  s += vim::traversal_xml("crPool", "ComputeResource", "resourcePool", false, {"pool"});
  s += vim::traversal_xml("pool", "ResourcePool", "resourcePool", false, {"pool"});
  s += vim::traversal_xml("hostDs", "HostSystem", "datastore", false, {});
  s += "</objectSet>";
  if (!license_manager.empty())
    s += "<objectSet>" + vim::moref_xml("obj", license_manager) + "</objectSet>";
  return s + "</specSet>";
}

std::string host_systems_spec(const vim::MoRef& root_folder,
                              std::initializer_list<const char*> paths) {
  return "<specSet>" + vim::prop_set_xml("HostSystem", paths) + "<objectSet>" +
         vim::moref_xml("obj", root_folder) + "<skip>true</skip>" +
         vim::traversal_xml("folder", "Folder", "childEntity", false, {"folder", "dc", "crHost"}) +
         vim::traversal_xml("dc", "Datacenter", "hostFolder", true, {"folder"}) +
         vim::traversal_xml("crHost", "ComputeResource", "host", false, {}) +
         "</objectSet></specSet>";
}

std::vector<ordered_json> host_records(const std::vector<vim::ObjectContent>& objects,
                                       const std::string& endpoint_id, bool vcenter) {
  std::map<std::string, const vim::ObjectContent*> by_ref;
  std::vector<const vim::ObjectContent*> hosts, pools;
  std::string editions;
  for (const auto& o : objects) {
    by_ref[key(o.obj)] = &o;
    if (o.obj.type == "HostSystem") hosts.push_back(&o);
    if (o.obj.type == "ResourcePool" || o.obj.type == "VirtualApp") pools.push_back(&o);
    if (o.obj.type == "LicenseManager")
      if (const xml::Node* val = o.prop("licenses"))
        for (const xml::Node* l : val->all("LicenseManagerLicenseInfo"))
          editions += (editions.empty() ? "" : ",") + l->child_text("editionKey");
  }
  auto find = [&](const vim::MoRef& r) -> const vim::ObjectContent* {
    auto it = by_ref.find(key(r));
    return it == by_ref.end() ? nullptr : it->second;
  };
  // A pool's path below its compute resource's root pool ("web/front"); ""
  // for the root pool itself. The depth is bounded: a looping answer stops.
  auto pool_path = [&](const vim::ObjectContent& p) {
    std::string path;
    const vim::ObjectContent* cur = &p;
    for (int depth = 0; cur && depth < 64; ++depth) {
      const xml::Node* parent = cur->prop("parent");
      if (!parent) return std::string();
      vim::MoRef up = vim::moref_of(*parent);
      if (up.type != "ResourcePool" && up.type != "VirtualApp") return path;  // cur is the root
      path = cur->text("name") + (path.empty() ? "" : "/" + path);
      cur = find(up);
    }
    return std::string();  // an unknown parent or a loop: not listed
  };

  std::vector<ordered_json> out;
  for (const auto* h : hosts) {
    ordered_json r;
    r["type"] = "host";
    r["endpoint"] = endpoint_id;
    r["id"] = h->obj.value;
    r["name"] = h->text("name");
    const xml::Node* product = h->prop("summary.config.product");
    r["product"] = text_or_null(product ? product->child_text("fullName") : "");
    r["version"] = text_or_null(product ? product->child_text("version") : "");
    r["build"] = text_or_null(product ? product->child_text("build") : "");
    if (vcenter) {
      r["edition"] = nullptr;
      r["free"] = false;
    } else {
      r["edition"] = text_or_null(editions);
      r["free"] = vim::free_license_editions(editions);
    }
    const xml::Node* hw = h->prop("summary.hardware");
    const xml::Node* qs = h->prop("summary.quickStats");
    ordered_json cores = number(hw ? hw->child_text("numCpuCores") : "");
    ordered_json mhz = number(hw ? hw->child_text("cpuMhz") : "");
    r["cpu_cores"] = cores;
    r["cpu_mhz"] = mhz;
    r["cpu_capacity_mhz"] = cores.is_null() || mhz.is_null()
                                ? ordered_json(nullptr)
                                : ordered_json(cores.get<uint64_t>() * mhz.get<uint64_t>());
    r["cpu_used_mhz"] = number(qs ? qs->child_text("overallCpuUsage") : "");
    r["memory_mib"] = number(hw ? hw->child_text("memorySize") : "", 1024 * 1024);
    r["memory_used_mib"] = number(qs ? qs->child_text("overallMemoryUsage") : "");
    ordered_json stores = ordered_json::array();
    std::vector<const vim::ObjectContent*> ds;
    if (const xml::Node* list = h->prop("datastore"))
      for (const xml::Node* ref : list->all("ManagedObjectReference"))
        if (const auto* d = find(vim::moref_of(*ref)); d && d->obj.type == "Datastore")
          ds.push_back(d);
    std::sort(ds.begin(), ds.end(), [](const auto* a, const auto* b) {
      return std::make_tuple(a->text("name"), a->obj.value) <
             std::make_tuple(b->text("name"), b->obj.value);
    });
    for (const auto* d : ds)
      stores.push_back({{"name", d->text("name")},
                        {"capacity_gib", gib(d->text("summary.capacity"))},
                        {"free_gib", gib(d->text("summary.freeSpace"))}});
    r["datastores"] = std::move(stores);
    std::string maint = h->text("runtime.inMaintenanceMode");
    r["maintenance"] = maint.empty() ? ordered_json(nullptr) : ordered_json(maint == "true");
    r["connection"] = text_or_null(h->text("runtime.connectionState"));
    // The compute resource the host is in: a cluster on vCenter.
    const vim::ObjectContent* cr = nullptr;
    if (const xml::Node* parent = h->prop("parent")) {
      vim::MoRef ref = vim::moref_of(*parent);
      cr = find(ref);
      r["cluster"] = cr && ref.type == "ClusterComputeResource" ? ordered_json(cr->text("name"))
                                                                : ordered_json(nullptr);
    } else {
      r["cluster"] = nullptr;
    }
    std::vector<std::string> names;
    if (cr)
      for (const auto* p : pools)
        if (const xml::Node* owner = p->prop("owner"); owner && vim::moref_of(*owner) == cr->obj)
          if (std::string path = pool_path(*p); !path.empty()) names.push_back(path);
    std::sort(names.begin(), names.end());
    r["pools"] = names;
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a["name"].template get_ref<const std::string&>(),
                    a["id"].template get_ref<const std::string&>()) <
           std::tie(b["name"].template get_ref<const std::string&>(),
                    b["id"].template get_ref<const std::string&>());
  });
  return out;
}

std::vector<ordered_json> read_host_records(vim::Client& client) {
  const vim::ServiceContent& sc = client.content();
  std::vector<vim::ObjectContent> objects;
  client.for_each_object(
      host_spec(sc.root_folder, sc.is_vcenter() ? vim::MoRef{} : sc.license_manager),
      [&](vim::ObjectContent&& o) { objects.push_back(std::move(o)); });
  return host_records(objects, client.endpoint().id, sc.is_vcenter());
}

const std::vector<std::string>& host_columns() {
  static const std::vector<std::string> kColumns = {
      "name",         "version",          "build",           "free",
      "cpu_used_mhz", "cpu_capacity_mhz", "memory_used_mib", "memory_mib",
      "maintenance",  "connection"};
  return kColumns;
}

std::vector<vim::MoRef> host_systems(vim::Client& c) {
  const auto& sc = c.content();
  xml::Node resp = c.call("CreateContainerView", sc.view_manager,
                          vim::moref_xml("container", sc.root_folder) +
                              "<type>HostSystem</type><recursive>true</recursive>");
  vim::MoRef view{"ContainerView", resp.child_text("returnval")};
  if (view.empty()) fail("CreateContainerView returned no view");
  std::vector<vim::MoRef> hosts;
  try {
    for (const auto& o : c.retrieve({view}, {"view"}))
      if (const xml::Node* v = o.prop("view"))
        for (const auto& h : v->children) hosts.push_back(vim::moref_of(h));
  } catch (...) {
    try {
      c.call("DestroyView", view);
    } catch (const Error&) {
    }
    throw;
  }
  try {
    c.call("DestroyView", view);
  } catch (const Error& e) {
    note("could not destroy a container view: " + std::string(e.what()));
  }
  return hosts;
}

}  // namespace ceso
