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
Retrieved retrieve(const std::string& answer) {
  Retrieved r;
  ceso::xml::StreamParser p("returnval", "objects", [&](ceso::xml::Node&& n) {
    if (auto oc = ceso::vim::object_from_xml(n)) r.objects.push_back(std::move(*oc));
  });
  p.feed(answer);
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
