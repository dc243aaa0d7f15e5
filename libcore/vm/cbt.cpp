#include "vm/cbt.hpp"

#include <cctype>
#include <charconv>
#include <cstdlib>

namespace ceso {

namespace {

// A decimal xsd:long of the host's answer; false when it is not one.
bool parse_long(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

bool change_tracking_enabled(vim::Client& c, const vim::MoRef& vm) {
  auto objs = c.retrieve({vm}, {"config.changeTrackingEnabled"});
  if (objs.empty()) fail("the VM disappeared while reading it");
  return objs.front().text("config.changeTrackingEnabled") == "true";
}

void enable_change_tracking(vim::Client& c, const vim::MoRef& vm) {
  xml::Node resp = c.call("ReconfigVM_Task", vm,
                          "<spec><changeTrackingEnabled>true</changeTrackingEnabled></spec>");
  const xml::Node* rv = resp.child("returnval");
  if (!rv) fail("the host answered ReconfigVM_Task without a task");
  c.wait_for_task(vim::moref_of(*rv));
}

std::map<int, std::string> snapshot_change_ids(vim::Client& c, const vim::MoRef& snapshot) {
  auto objs = c.retrieve({snapshot}, {"config.hardware.device"});
  std::map<int, std::string> out;
  if (objs.empty()) return out;
  const xml::Node* devices = objs.front().prop("config.hardware.device");
  if (!devices) return out;
  for (const auto& d : devices->children) {
    if (d.type() != "VirtualDisk") continue;
    out[std::atoi(d.child_text("key").c_str())] = d.find_text("backing/changeId");
  }
  return out;
}

bool parse_change_id(const std::string& id, std::string& uuid, uint64_t& seq) {
  size_t slash = id.rfind('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == id.size() || id.size() > 256)
    return false;
  for (char ch : id.substr(0, slash))
    if (!std::isxdigit(static_cast<unsigned char>(ch)) && ch != ' ' && ch != '-') return false;
  auto [p, ec] = std::from_chars(id.data() + slash + 1, id.data() + id.size(), seq);
  if (ec != std::errc() || p != id.data() + id.size()) return false;
  uuid = id.substr(0, slash);
  return true;
}

uint64_t take_change_info(const xml::Node& rv, uint64_t offset, uint64_t capacity,
                          std::vector<DiskArea>& out) {
  auto bad = [&](const std::string& why) {
    fail("QueryChangedDiskAreas at offset " + std::to_string(offset) + ": " + why);
  };
  int64_t start = 0, length = 0;
  if (!parse_long(rv.child_text("startOffset"), start) ||
      !parse_long(rv.child_text("length"), length))
    bad("startOffset or length is not a number");
  if (start != static_cast<int64_t>(offset))
    bad("the answer starts at " + std::to_string(start) + ", not where it was asked to");
  if (length <= 0) bad("the answer covers " + std::to_string(length) + " bytes (no progress)");
  if (static_cast<uint64_t>(length) > capacity - offset)
    bad("the answer covers " + std::to_string(length) + " bytes, beyond the disk's end (" +
        std::to_string(capacity) + " bytes)");
  const uint64_t end = offset + static_cast<uint64_t>(length);
  uint64_t prev_end = offset;
  for (const xml::Node* a : rv.all("changedArea")) {
    int64_t s = 0, l = 0;
    if (!parse_long(a->child_text("start"), s) || !parse_long(a->child_text("length"), l))
      bad("a changed area's start or length is not a number");
    if (s < 0 || l <= 0)
      bad("changed area " + std::to_string(s) + "+" + std::to_string(l) + " is negative or empty");
    const uint64_t us = static_cast<uint64_t>(s), ul = static_cast<uint64_t>(l);
    if (us < prev_end)
      bad("changed area at " + std::to_string(s) + " overlaps or precedes the one before it");
    if (us >= end || ul > end - us)
      bad("changed area " + std::to_string(s) + "+" + std::to_string(l) +
          " lies beyond the answer's span (up to " + std::to_string(end) + ") or the disk's end (" +
          std::to_string(capacity) + ")");
    out.push_back({us, ul});
    prev_end = us + ul;
  }
  return end;
}

std::vector<DiskArea> query_changed_areas(vim::Client& c, const vim::MoRef& vm,
                                          const vim::MoRef& snapshot, int device_key,
                                          uint64_t capacity, const std::string& change_id) {
  std::vector<DiskArea> out;
  uint64_t offset = 0;
  while (offset < capacity) {
    xml::Node resp =
        c.call("QueryChangedDiskAreas", vm,
               vim::moref_xml("snapshot", snapshot) + "<deviceKey>" + std::to_string(device_key) +
                   "</deviceKey><startOffset>" + std::to_string(offset) +
                   "</startOffset><changeId>" + xml::escape(change_id) + "</changeId>");
    const xml::Node* rv = resp.child("returnval");
    if (!rv) fail("QueryChangedDiskAreas: no DiskChangeInfo in the answer");
    offset = take_change_info(*rv, offset, capacity, out);  // always moves on
  }
  return out;
}

}  // namespace ceso
