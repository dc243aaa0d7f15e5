// VM names: what ceso accepts for a VM it creates, and how names are compared.
//
// vSphere stores a name with '/', '\' and '%' escaped as %2f, %5c and %25
// (a '%' that already starts one of these escapes is kept), and returns the
// escaped form. Names are therefore compared in their decoded form, so 'a/b',
// 'a%2fb' and 'a%2Fb' name the same VM; and a name ceso creates a VM with must
// be one vSphere stores unchanged, so the record printed afterwards carries
// exactly the name asked for.
#pragma once

#include <string>
#include <string_view>

#include "base/error.hpp"

namespace ceso {

// vSphere's limit for the name of an inventory object, in characters.
inline constexpr size_t kMaxVmNameChars = 80;

// Throws Error(`code`) unless `name` is fit for a new VM: not empty, valid
// UTF-8, at most 80 characters, no control characters (C0, DEL, C1, U+2028,
// U+2029), no bidirectional formatting characters (U+200E, U+200F,
// U+202A-U+202E, U+2066-U+2069), no '/' or '\', and '%' only as the start of
// %2f, %5c or %25. The message starts with `field` (e.g. "--as", "<stdin>:3:
// field \"name\"") and names the offending character's position (1-based, in
// characters) and code point (or byte, for invalid UTF-8).
void check_vm_name(std::string_view name, std::string_view field, Exit code);

// Throws Error(`code`) unless `name` is fit as the name of a host object
// that is not an inventory entity (a portgroup): not empty, valid UTF-8, at
// most `max_bytes` bytes, no control, line separator or bidirectional
// formatting characters (as check_vm_name), no space at either end. The
// message starts with `field` and names the object as `what` ("portgroup name").
void check_object_label(std::string_view name, std::string_view field, std::string_view what,
                        size_t max_bytes, Exit code);

// The name with vSphere's escapes %2f, %5c and %25 (either case) decoded.
std::string decoded_vm_name(std::string_view name);

// A name for a message: quoted like quote(), with invalid UTF-8 and every
// character check_vm_name refuses as control or formatting (C1 too: U+009B
// is a terminal's CSI) shown as \xNN or \u{XXXX}; long names cut short.
std::string quote_name(std::string_view name);

// Whether two names, each as given or as vSphere returns it, name the same VM.
bool same_vm_name(std::string_view a, std::string_view b);

}  // namespace ceso
