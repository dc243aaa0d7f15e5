// The SOAP layer against responses captured from the simulator
// (tests/unit/data/soap/, vcsim with the ESX model).
#include "vsphere/client.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/file.hpp"
#include "vm/vm.hpp"

namespace {

std::string read_data(const std::string& name) {
  return *ceso::read_file(std::string(CESO_TEST_DATA) + "/soap/" + name);
}

const ceso::xml::Node& body_first(const ceso::xml::Node& doc) {
  return doc.child("Body")->children.front();
}

// A PropertyCollector answer as vim::Client::stream_spec reads it: each
// <objects> handed on as it closes, the paging token from what is left.
struct Retrieved {
  std::vector<ceso::vim::ObjectContent> objects;
  std::string token;
};
Retrieved retrieve(const std::string& answer,
                   const std::vector<ceso::vim::ValueFilter>& filters = {}) {
  Retrieved r;
  ceso::xml::StreamParser p("returnval", "objects",
                            [&](ceso::xml::Node&& n) {
                              if (auto oc = ceso::vim::object_from_xml(std::move(n)))
                                r.objects.push_back(std::move(*oc));
                            },
                            0, ceso::vim::value_filter_keep(filters), {"propSet", "val"});
  // In curl-sized chunks, cut anywhere, as the skimmer sees them.
  for (size_t at = 0; at < answer.size(); at += 997) p.feed(answer.substr(at, 997));
  r.token = body_first(p.finish()).find_text("returnval/token");
  return r;
}

ceso::vim::Fault fault_of(const std::string& file, const char* method) {
  auto doc = ceso::xml::parse(read_data(file));
  const auto& f = body_first(doc);
  EXPECT_EQ(f.name, "Fault");
  return ceso::vim::fault_from_xml(f, method, "esx1:443");
}

TEST(VimFault, InvalidLoginIsConnectionError) {
  auto f = fault_of("fault_invalid_login.xml", "Login");
  EXPECT_EQ(f.fault_type(), "InvalidLogin");
  EXPECT_EQ(f.code(), ceso::Exit::connection);
  EXPECT_NE(std::string(f.what()).find("incorrect user name or password"), std::string::npos);
}

TEST(VimFault, NotSupportedExplainsStandaloneHost) {
  auto f = fault_of("fault_not_supported.xml", "CloneVM_Task");
  EXPECT_EQ(f.fault_type(), "NotSupported");
  EXPECT_EQ(f.code(), ceso::Exit::failure);
  std::string msg = f.what();
  EXPECT_NE(msg.find("CloneVM_Task on esx1:443"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vCenter"), std::string::npos) << msg;
}

TEST(VimFault, ManagedObjectNotFound) {
  auto f = fault_of("fault_mo_not_found.xml", "PowerOnVM_Task");
  EXPECT_EQ(f.fault_type(), "ManagedObjectNotFound");
  EXPECT_NE(std::string(f.what()).find("no longer exists"), std::string::npos);
}

TEST(VimFault, RestrictedVersionExplainsLicense) {
  auto doc = ceso::xml::parse(
      "<Fault><faultcode>ServerFaultCode</faultcode><faultstring>Current license or ESXi "
      "version prohibits execution of the requested operation.</faultstring><detail>"
      "<RestrictedVersionFault xsi:type=\"RestrictedVersion\"/></detail></Fault>");
  auto f = ceso::vim::fault_from_xml(doc, "PowerOnVM_Task", "esx1:443");
  EXPECT_EQ(f.fault_type(), "RestrictedVersion");
  EXPECT_NE(std::string(f.what()).find("read-only"), std::string::npos);
}

TEST(VimFault, FaultTypeFromElementNameWhenNoXsiType) {
  auto doc = ceso::xml::parse(
      "<Fault><faultstring>File [ds] a/b.vmdk was not found</faultstring><detail>"
      "<FileNotFoundFault><file>[ds] a/b.vmdk</file></FileNotFoundFault></detail></Fault>");
  auto f = ceso::vim::fault_from_xml(doc, "CopyVirtualDisk_Task", "h:443");
  EXPECT_EQ(f.fault_type(), "FileNotFound");
}

TEST(VimFault, TaskErrorFromTaskInfo) {
  auto objs = retrieve(read_data("task_info_error.xml")).objects;
  ASSERT_EQ(objs.size(), 1u);
  const auto* info = objs[0].prop("info");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->child_text("state"), "error");
  auto f = ceso::vim::fault_from_xml(*info->child("error"), "PowerOnVM_Task", "h:443");
  EXPECT_EQ(f.fault_type(), "InvalidPowerState");
}

TEST(VimServiceContent, EsxHostAgent) {
  auto doc = ceso::xml::parse(read_data("service_content.xml"));
  auto c = ceso::vim::service_content_from_xml(*body_first(doc).child("returnval"));
  EXPECT_EQ(c.api_type, "HostAgent");
  EXPECT_FALSE(c.is_vcenter());
  EXPECT_EQ(c.property_collector, (ceso::vim::MoRef{"PropertyCollector", "ha-property-collector"}));
  EXPECT_EQ(c.session_manager.value, "ha-sessionmgr");
  EXPECT_EQ(c.root_folder.value, "ha-folder-root");
  EXPECT_EQ(c.virtual_disk_manager.value, "ha-vdiskmanager");
  EXPECT_FALSE(c.api_version.empty());
}

TEST(VimRetrieve, VmRecordsFromContainerViewResponse) {
  auto [objs, token] = retrieve(read_data("retrieve_vms.xml"));
  EXPECT_EQ(token, "");
  ASSERT_EQ(objs.size(), 2u);
  ceso::Endpoint ep;
  ep.id = "esx1:443";
  auto rec = ceso::vm_record(objs[0], ep);
  EXPECT_EQ(rec["type"], "vm");
  EXPECT_EQ(rec["endpoint"], "esx1:443");
  EXPECT_EQ(rec["id"], objs[0].obj.value);
  EXPECT_EQ(objs[0].obj.type, "VirtualMachine");
  EXPECT_FALSE(rec["name"].get<std::string>().empty());
  EXPECT_TRUE(rec["power"] == "on" || rec["power"] == "off");
  EXPECT_EQ(rec["disks_gib"].size(), 1u);
  EXPECT_TRUE(rec["ip"].is_null());
  EXPECT_EQ(rec["tags"], ceso::ordered_json::array());
}

// ceso-ls parses the device list and ExtraConfig through vm_record_filters:
// the records must be the same as from the whole values, and the values must
// hold only what the record reads.
TEST(VimRetrieve, FilteredValuesGiveTheSameRecords) {
  const std::string ns =
      " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
      " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"";
  auto prop = [](const std::string& name, const std::string& type, const std::string& val) {
    return "<propSet><name>" + name + "</name><val xsi:type=\"" + type + "\">" + val +
           "</val></propSet>";
  };
  auto option = [](const std::string& k, const std::string& v) {
    return "<OptionValue xsi:type=\"OptionValue\"><key>" + k +
           "</key><value xsi:type=\"xsd:string\">" + v + "</value></OptionValue>";
  };
  std::string devices =
      "<VirtualDevice xsi:type=\"ParaVirtualSCSIController\"><key>1000</key><deviceInfo>"
      "<label>SCSI controller 0</label></deviceInfo><device>2000</device><device>2001</device>"
      "</VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualDisk\"><key>2000</key><backing "
      "xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><fileName>[ds] a/a.vmdk</fileName><parent "
      "xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><fileName>[ds] a/base.vmdk</fileName>"
      "</parent></backing><capacityInKB>16777216</capacityInKB>"
      "<capacityInBytes>17179869184</capacityInBytes></VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualVmxnet3\"><key>4000</key><macAddress>00:50:56:00:00:01"
      "</macAddress><capacityInBytes>1</capacityInBytes></VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualDisk\"><key>2001</key><capacityInKB>1572864"
      "</capacityInKB></VirtualDevice>";
  std::string extra = option("guestinfo.userdata", std::string(100000, 'u')) +
                      option("ceso.tags", "web, DB") + option("ceso.tagsx", "no");
  auto object = [&](const std::string& id, const std::string& name) {
    return "<objects><obj type=\"VirtualMachine\">" + id + "</obj>" +
           prop("name", "xsd:string", name) +
           prop("config.hardware.device", "ArrayOfVirtualDevice", devices) +
           prop("config.extraConfig", "ArrayOfOptionValue", extra) +
           prop("runtime.powerState", "VirtualMachinePowerState", "poweredOff") + "</objects>";
  };
  std::string answer =
      "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
      "envelope/\"" +
      ns + "><soapenv:Body><RetrievePropertiesExResponse><returnval>" + object("vm-1", "a") +
      object("vm-2", "b") +
      "</returnval></RetrievePropertiesExResponse></soapenv:Body>"
      "</soapenv:Envelope>";
  ceso::Endpoint ep;
  ep.id = "esx1:443";
  auto whole = retrieve(answer);
  auto trimmed = retrieve(answer, ceso::vm_record_filters());
  ASSERT_EQ(whole.objects.size(), 2u);
  ASSERT_EQ(trimmed.objects.size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_EQ(ceso::vm_record(trimmed.objects[i], ep), ceso::vm_record(whole.objects[i], ep));
  auto rec = ceso::vm_record(trimmed.objects[0], ep);
  EXPECT_EQ(rec["disks_gib"], ceso::ordered_json::parse("[16, 1.5]"));
  EXPECT_EQ(rec["tags"], ceso::ordered_json::parse(R"(["web", "db"])"));
  // Only the disks and their capacities were built; of ExtraConfig, every
  // key and the value of ceso.tags.
  const ceso::xml::Node* dev = trimmed.objects[0].prop("config.hardware.device");
  ASSERT_NE(dev, nullptr);
  ASSERT_EQ(dev->children.size(), 2u);
  for (const auto& d : dev->children) {
    EXPECT_EQ(d.type(), "VirtualDisk");
    for (const auto& f : d.children)
      EXPECT_TRUE(f.name == "capacityInBytes" || f.name == "capacityInKB") << f.name;
  }
  const ceso::xml::Node* ec = trimmed.objects[0].prop("config.extraConfig");
  ASSERT_NE(ec, nullptr);
  ASSERT_EQ(ec->children.size(), 3u);
  EXPECT_EQ(ec->children[0].child_text("key"), "guestinfo.userdata");
  EXPECT_EQ(ec->children[0].child("value"), nullptr);
  EXPECT_EQ(ec->children[1].child_text("value"), "web, DB");
  EXPECT_EQ(ec->children[2].child("value"), nullptr);
  // The other properties are whole.
  EXPECT_EQ(trimmed.objects[0].text("runtime.powerState"), "poweredOff");
  // The captured simulator answer, too.
  auto sim_whole = retrieve(read_data("retrieve_vms.xml"));
  auto sim_trimmed = retrieve(read_data("retrieve_vms.xml"), ceso::vm_record_filters());
  ASSERT_EQ(sim_trimmed.objects.size(), sim_whole.objects.size());
  for (size_t i = 0; i < sim_whole.objects.size(); ++i)
    EXPECT_EQ(ceso::vm_record(sim_trimmed.objects[i], ep),
              ceso::vm_record(sim_whole.objects[i], ep));
}

// ceso-info parses the device list through vm_detail_filters: the detailed
// records must be the same as from the whole list.
TEST(VimRetrieve, DetailFiltersGiveTheSameDetails) {
  auto prop = [](const std::string& name, const std::string& type, const std::string& val) {
    return "<propSet><name>" + name + "</name><val xsi:type=\"" + type + "\">" + val +
           "</val></propSet>";
  };
  const std::string label =
      "<deviceInfo xsi:type=\"Description\"><label>L</label>"
      "<summary>S</summary></deviceInfo>";
  const std::string connectable =
      "<connectable><startConnected>true</startConnected><allowGuestControl>true"
      "</allowGuestControl><connected>true</connected><status>ok</status></connectable>";
  std::string devices =
      "<VirtualDevice xsi:type=\"VirtualIDEController\"><key>200</key>" + label +
      "<busNumber>0</busNumber></VirtualDevice>"
      "<VirtualDevice xsi:type=\"ParaVirtualSCSIController\"><key>1000</key>" +
      label +
      "<slotInfo xsi:type=\"VirtualDevicePciBusSlotInfo\"><pciSlotNumber>160</pciSlotNumber>"
      "</slotInfo><device>2000</device></VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualDisk\"><key>2000</key>" +
      label +
      "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><fileName>[ds] a/a.vmdk</fileName>"
      "<diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned><uuid>u</uuid>"
      "</backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber>"
      "<capacityInKB>16777216</capacityInKB><capacityInBytes>17179869184</capacityInBytes>"
      "</VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualVmxnet3\"><key>4000</key>" +
      label +
      "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\"><port>"
      "<switchUuid>s</switchUuid><portgroupKey>dvportgroup-1</portgroupKey></port></backing>" +
      connectable +
      "<addressType>assigned</addressType><macAddress>00:50:56:00:00:01</macAddress>"
      "<wakeOnLanEnabled>true</wakeOnLanEnabled></VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualCdrom\"><key>3000</key>" +
      label +
      "<backing xsi:type=\"VirtualCdromIsoBackingInfo\"><fileName>[ds] i.iso</fileName>"
      "</backing>" +
      connectable +
      "</VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualPCIPassthrough\"><key>13000</key>" +
      label +
      "<backing xsi:type=\"VirtualPCIPassthroughDynamicBackingInfo\"><deviceName>d</deviceName>"
      "<allowedDevice><vendorId>4318</vendorId><deviceId>7864</deviceId><subVendorId>1"
      "</subVendorId></allowedDevice><assignedId>0000:3b:00.0</assignedId></backing>"
      "</VirtualDevice>"
      "<VirtualDevice xsi:type=\"VirtualMachineVideoCard\"><key>500</key>" +
      label + "<videoRamSizeInKB>4096</videoRamSizeInKB></VirtualDevice>";
  std::string answer =
      "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>"
      "<RetrievePropertiesExResponse><returnval><objects><obj type=\"VirtualMachine\">vm-1"
      "</obj>" +
      prop("name", "xsd:string", "a") +
      prop("config.hardware.device", "ArrayOfVirtualDevice", devices) +
      "</objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>";
  ceso::Endpoint ep;
  ep.id = "esx1:443";
  auto whole = retrieve(answer);
  auto trimmed = retrieve(answer, ceso::vm_detail_filters());
  ASSERT_EQ(trimmed.objects.size(), 1u);
  auto rec = ceso::vm_details(trimmed.objects[0], ep, false);
  EXPECT_EQ(rec, ceso::vm_details(whole.objects[0], ep, false));
  EXPECT_EQ(rec["disks"].size(), 1u);
  EXPECT_EQ(rec["nics"][0]["network"], "dvportgroup-1");
  EXPECT_EQ(rec["cdroms"][0]["iso"], "[ds] i.iso");
  EXPECT_EQ(rec["controllers"].size(), 1u);
  EXPECT_EQ(rec["pci"].size(), 1u);
  // What no record field reads was never built.
  const ceso::xml::Node* dev = trimmed.objects[0].prop("config.hardware.device");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->children.size(), 5u);  // not the IDE controller, not the video card
  for (const auto& d : dev->children) {
    EXPECT_EQ(d.find("deviceInfo/summary"), nullptr);
    EXPECT_EQ(d.child("slotInfo"), nullptr);
    EXPECT_EQ(d.find("connectable/status"), nullptr);
    EXPECT_EQ(d.find("backing/uuid"), nullptr);
  }
  // The captured simulator answer, too.
  auto sim_whole = retrieve(read_data("retrieve_vms.xml"));
  auto sim_trimmed = retrieve(read_data("retrieve_vms.xml"), ceso::vm_detail_filters());
  ASSERT_EQ(sim_trimmed.objects.size(), sim_whole.objects.size());
  for (size_t i = 0; i < sim_whole.objects.size(); ++i)
    EXPECT_EQ(ceso::vm_details(sim_trimmed.objects[i], ep, false),
              ceso::vm_details(sim_whole.objects[i], ep, false));
}

TEST(VimXml, MorefIsEscaped) {
  EXPECT_EQ(ceso::vim::moref_xml("obj", {"VirtualMachine", "a<b&c"}),
            "<obj type=\"VirtualMachine\">a&lt;b&amp;c</obj>");
}

TEST(VimUrl, DatastoreFileUrlEscapesPathAndQuery) {
  ceso::Endpoint ep;
  ep.url = "https://esx1:443/sdk";
  EXPECT_EQ(
      ceso::vim::datastore_file_url(ep, "ha-datacenter", "datastore 1", "web 01/a&b.vmdk"),
      "https://esx1:443/folder/web%2001/a%26b.vmdk?dcPath=ha-datacenter&dsName=datastore%201");
}

TEST(VmRecord, TagsParsing) {
  EXPECT_EQ(ceso::parse_tags(" web, db,,web ,x"), (std::vector<std::string>{"web", "db", "x"}));
  EXPECT_TRUE(ceso::parse_tags("").empty());
}

// ------------------------------------------------ hostile service content

// The simulator's service content with one element taken out.
std::string content_without(const std::string& element) {
  std::string xml = read_data("service_content.xml");
  size_t a = xml.find("<" + element);
  EXPECT_NE(a, std::string::npos) << element;
  std::string close = "</" + element + ">";
  size_t b = xml.find(close, a);
  EXPECT_NE(b, std::string::npos) << element;
  return xml.erase(a, b + close.size() - a);
}

TEST(VimServiceContent, IncompleteContentIsRefused) {
  for (std::string element :
       {"propertyCollector", "rootFolder", "about", "sessionManager", "viewManager", "apiType"}) {
    auto doc = ceso::xml::parse(content_without(element));
    try {
      ceso::vim::service_content_from_xml(*body_first(doc).child("returnval"));
      ADD_FAILURE() << "accepted without " << element;
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), ceso::Exit::connection);
      std::string msg = e.what();
      EXPECT_NE(msg.find(element == "about" ? "about/apiType" : element), std::string::npos) << msg;
    }
  }
}

TEST(VimServiceContent, EmptyContentIsRefused) {
  auto doc = ceso::xml::parse("<returnval></returnval>");
  EXPECT_THROW(ceso::vim::service_content_from_xml(doc), ceso::Error);
  auto junk = ceso::xml::parse("<returnval><n><n><n/></n></n></returnval>");
  EXPECT_THROW(ceso::vim::service_content_from_xml(junk), ceso::Error);
}

// ------------------------------------------------ host text in fault messages

ceso::vim::Fault fault_with(const std::string& faultstring,
                            const std::string& type = "SystemError") {
  auto doc =
      ceso::xml::parse("<Fault><faultcode>ServerFaultCode</faultcode><faultstring>" +
                       ceso::xml::escape(faultstring) + "</faultstring><detail><X xsi:type=\"" +
                       ceso::xml::escape(type) + "\"/></detail></Fault>");
  return ceso::vim::fault_from_xml(doc, "Login", "h:443");
}

bool has_control(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

TEST(VimFault, TerminalControlsAndNewlinesInFaultStringAreShownEscaped) {
  // XML cannot carry ESC itself, but it carries newlines, tabs and the 8-bit
  // CSI (U+009B), which terminals take for ESC [.
  auto f = fault_with("\u009b2J\u009b1;31mroot\tpassword ok\nceso-ls: all good\r\n");
  std::string msg = f.what();
  EXPECT_FALSE(has_control(msg)) << msg;
  EXPECT_EQ(msg.find("\u009b"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\\xc2\\x9b2J\\xc2\\x9b1;31mroot\\tpassword ok\\nceso-ls: all good\\r\\n"),
            std::string::npos)
      << msg;
}

TEST(VimFault, HugeFaultStringIsShortened) {
  auto f = fault_with(std::string(10 * 1024 * 1024, 'A'));
  std::string msg = f.what();
  EXPECT_LT(msg.size(), 1000u);
  EXPECT_NE(msg.find(std::string(300, 'A') + "…"), std::string::npos);
  EXPECT_EQ(msg.find(std::string(301, 'A')), std::string::npos);
}

TEST(VimFault, HostileFaultTypeAndFileAreEscaped) {
  auto doc = ceso::xml::parse(
      "<Fault><faultstring>x</faultstring><detail><FileFaultFault xsi:type=\"File&#10;&#x9b;2J\">"
      "<file>[ds] a&#x9d;0;title&#13;.vmdk</file></FileFaultFault></detail></Fault>");
  std::string msg = ceso::vim::fault_from_xml(doc, "CopyVirtualDisk_Task", "h:443").what();
  EXPECT_FALSE(has_control(msg)) << msg;
  EXPECT_NE(msg.find("File\\n\\xc2\\x9b2J"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a\\xc2\\x9d0;title\\r.vmdk"), std::string::npos) << msg;
}

TEST(VimFault, TaskErrorMessageAndMethodAreEscaped) {
  auto doc = ceso::xml::parse(
      "<error><fault xsi:type=\"InvalidState\"/><localizedMessage>line1&#10;&#x9b;31mred"
      "</localizedMessage></error>");
  std::string msg = ceso::vim::fault_from_xml(doc, "Power\x1b[2JOn", "h:443").what();
  EXPECT_FALSE(has_control(msg)) << msg;
  EXPECT_NE(msg.find("Power\\x1b[2JOn on h:443 failed: InvalidState: line1\\n\\xc2\\x9b31mred"),
            std::string::npos)
      << msg;
}

}  // namespace

TEST(FreeLicense, OnlyTheFreeEditionMakesTheApiReadOnly) {
  EXPECT_TRUE(ceso::vim::free_license_editions("esxBasic"));
  EXPECT_TRUE(ceso::vim::free_license_editions("esxBasic.vram"));
  EXPECT_FALSE(ceso::vim::free_license_editions("esxEnterprisePlus"));
  EXPECT_FALSE(ceso::vim::free_license_editions("esxBasic,esxEnterprisePlus"));
  EXPECT_FALSE(ceso::vim::free_license_editions("-"));  // read: no licence listed
  EXPECT_FALSE(ceso::vim::free_license_editions(""));
  EXPECT_FALSE(ceso::vim::free_license_editions("eval"));
}
