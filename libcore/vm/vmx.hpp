// The .vmx of a VM made over SSH on a free-licensed host (ceso-mkvm,
// ceso-clone, ceso-restore), and the shell paths of datastore files there.
// Pure functions: what the host's `vim-cmd solo/registervm` reads
// (docs/esxi.md "Free-licensed hosts over SSH").
#pragma once

#include <string>
#include <string_view>

#include "vm/provision.hpp"
#include "vm/spec.hpp"

namespace ceso {

// "[ds] dir/f.vmdk" → "/vmfs/volumes/ds/dir/f.vmdk", the path the host's
// shell and local clients take. Throws Error(bad_input) naming `what` for a
// datastore name that is empty, "." or "..", or holds '/'; for a path that
// is empty, absolute, or has an empty, "." or ".." component; and for
// control characters in either (they never reach the shell).
std::string vmfs_path(const vmspec::DatastorePath& path, std::string_view what);

// The .vmx guestOS key of an API guest id, as hostd writes it:
// "ubuntu64Guest" → "ubuntu-64", "debian11_64Guest" → "debian11-64",
// "otherGuest64" → "other-64", "windows9Guest" → "windows9".
std::string vmx_guest_os(std::string_view guest_id);

// A uuid as the .vmx writes it: "56 4d 2b 1c 8e 3f 4a 5b-9c 0d 1e 2f 3a 4b 5c 6d".
// Throws Error(bad_input) for anything but 32 hex digits (dashes allowed).
std::string vmx_uuid(std::string_view uuid);

// The text of the new VM's .vmx: the shape of `src` (guest OS, firmware,
// hardware version, controllers, disks named as in `ids.disks`, NICs with
// `ids.macs` on the request's or the source's portgroup) with the request's
// name, CPUs, memory, annotation and the ExtraConfig of new_extra_config()
// (guestinfo, tags). One `key = "value"` line each, values escaped with
// vmx_quote. Throws Error(bad_input) for an ExtraConfig key that is not a
// plain .vmx key ([A-Za-z0-9._:-]), and Error(failure) for hardware a .vmx
// written here cannot describe (a distributed-portgroup NIC, a disk whose
// controller is unknown).
std::string new_vmx(const SourceVm& src, const NewVm& req, const Provisioned& ids,
                    const std::string& network);

}  // namespace ceso
