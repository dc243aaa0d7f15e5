// Changed Block Tracking (CBT) of a VM's disks through the API
// (docs/esxi.md "Changed Block Tracking", docs/backup.md "Incremental with CBT").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vsphere/client.hpp"

namespace ceso {

// config.changeTrackingEnabled of a VM.
bool change_tracking_enabled(vim::Client& c, const vim::MoRef& vm);
// ReconfigVM_Task(changeTrackingEnabled=true), waited for. On ESXi it takes
// effect at the next stun (snapshot create/remove, power on).
void enable_change_tracking(vim::Client& c, const vim::MoRef& vm);

// Device key → backing changeId of each virtual disk in a snapshot's config
// ("" when the host reports none).
std::map<int, std::string> snapshot_change_ids(vim::Client& c, const vim::MoRef& snapshot);

// "52 4f … 9f/42" → {"52 4f … 9f", 42}; false for anything else.
bool parse_change_id(const std::string& id, std::string& uuid, uint64_t& seq);

struct DiskArea {
  uint64_t start = 0, length = 0;
};

// One DiskChangeInfo (`returnval`) asked from `offset` of a disk of
// `capacity` bytes: appends its areas to `out` and returns where the next
// question starts. Error(failure) naming what is wrong with it (below).
uint64_t take_change_info(const xml::Node& returnval, uint64_t offset, uint64_t capacity,
                          std::vector<DiskArea>& out);

// QueryChangedDiskAreas from offset 0 until the answers cover `capacity`
// bytes: the areas changed since `change_id` ("*": all areas holding data).
// Every answer is checked (hostile input): it starts where it was asked to,
// makes progress and stays within the disk; its areas are non-negative,
// non-empty, ordered, non-overlapping and within the answer's span.
// Error(failure) naming the problem; a host fault is a vim::Fault.
std::vector<DiskArea> query_changed_areas(vim::Client& c, const vim::MoRef& vm,
                                          const vim::MoRef& snapshot, int device_key,
                                          uint64_t capacity, const std::string& change_id);

}  // namespace ceso
