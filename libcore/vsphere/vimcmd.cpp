#include "vsphere/vimcmd.hpp"

#include <algorithm>
#include <unordered_set>

#include "base/error.hpp"

namespace ceso::vim {

namespace {

// The lines of `text` without their line ends ("\n", "\r\n").
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  return out;
}

bool blank(char c) { return c == ' ' || c == '\t'; }
bool digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// A getallvms row: the vmid (digits at the start, then blanks) and the text
// after it; nullopt for the header, continuation lines of annotations,
// "Skipping invalid VM" notes. The vmid is the VM's moref value: digits on
// ESXi; "vm-" and digits is taken too, the form the test bed's hosts use
// (tests/sim README, "Known differences").
std::optional<std::pair<std::string_view, std::string_view>> row_of(std::string_view line) {
  size_t start = line.compare(0, 3, "vm-") == 0 ? 3 : 0;
  size_t n = start;
  while (n < line.size() && digit(line[n])) ++n;
  if (n == start || n - start > 10 || n == line.size() || !blank(line[n])) return std::nullopt;
  return std::make_pair(line.substr(0, n), line.substr(n));
}

// The .vmx path of a row's text: "[ds] path.vmx" where "[" follows a blank,
// "ds" has no "]", one space follows "]" and then a character that is not
// blank, and ".vmx" is followed by a blank or the end of the line. Only the
// first 8 KiB are searched (a name, a path and padding), in linear time:
// the next "]" and the next ".vmx" end are computed once from the right.
GetAllVmsRow path_of(std::string_view vmid, std::string_view rest) {
  GetAllVmsRow row{std::string(vmid), "", false};
  constexpr size_t kWindow = 8192;
  const bool whole = rest.size() <= kWindow;
  std::string_view w = rest.substr(0, kWindow);
  const size_t none = w.size();
  std::vector<uint32_t> next_close(w.size() + 1, static_cast<uint32_t>(none));
  std::vector<uint32_t> next_end(w.size() + 1, static_cast<uint32_t>(none));
  for (size_t i = w.size(); i-- > 0;) {
    next_close[i] = w[i] == ']' ? static_cast<uint32_t>(i) : next_close[i + 1];
    bool end = w.compare(i, 4, ".vmx") == 0 &&
               (i + 4 < w.size() ? blank(w[i + 4]) : (i + 4 == w.size() && whole));
    next_end[i] = end ? static_cast<uint32_t>(i) : next_end[i + 1];
  }
  int candidates = 0;
  for (size_t s = 1; s < w.size(); ++s) {
    if (w[s] != '[' || !blank(w[s - 1])) continue;
    size_t c = next_close[s + 1];
    if (c == none || c == s + 1 || c + 2 >= w.size() || w[c + 1] != ' ' || blank(w[c + 2]))
      continue;
    size_t e = next_end[c + 2];
    if (e == none) continue;
    if (++candidates == 1) row.vmx_path = std::string(w.substr(s, e + 4 - s));
  }
  row.ambiguous = candidates > 1;
  return row;
}

[[noreturn]] void unexpected(std::string_view command, std::string_view output, size_t line_no,
                             std::string_view line, std::string_view why) {
  std::string msg = "unexpected output of " + std::string(command);
  if (line_no) msg += ", line " + std::to_string(line_no);
  msg += ": " + std::string(why);
  if (!trim(line).empty()) msg += ": " + quote(line);
  if (output.empty()) msg += " (no output)";
  fail(msg);
}

// "--" pairs at the start of a snapshot.get line.
size_t depth_marks(std::string_view line) {
  size_t n = 0;
  while (line.size() >= 2 * (n + 1) && line.compare(2 * n, 2, "--") == 0) ++n;
  return n;
}

}  // namespace

std::vector<GetAllVmsRow> parse_getallvms(std::string_view output) {
  std::vector<GetAllVmsRow> rows;
  for (std::string_view line : split_lines(output)) {
    auto row = row_of(line);
    if (!row) continue;
    GetAllVmsRow r = path_of(row->first, row->second);
    if (!r.vmx_path.empty()) rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<std::string> vmids_for_vmx(std::string_view output, std::string_view vmx_path) {
  std::vector<std::string> out;
  if (vmx_path.empty() || vmx_path.front() != '[') return out;  // "[ds] path" only
  for (std::string_view line : split_lines(output)) {
    auto row = row_of(line);
    if (!row) continue;
    std::string_view rest = row->second;
    for (size_t at = rest.find(vmx_path); at != std::string_view::npos;
         at = rest.find(vmx_path, at + 1)) {
      size_t end = at + vmx_path.size();
      if (at > 0 && blank(rest[at - 1]) && (end == rest.size() || blank(rest[end]))) {
        out.emplace_back(row->first);
        break;
      }
    }
  }
  return out;
}

PowerState parse_power_state(std::string_view output) {
  constexpr std::string_view kCommand = "vim-cmd vmsvc/power.getstate";
  auto lines = split_lines(output);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]) != "Retrieved runtime info") continue;
    for (size_t j = i + 1; j < lines.size(); ++j) {
      std::string_view state = trim(lines[j]);
      if (state.empty()) continue;
      if (state == "Powered on") return PowerState::powered_on;
      if (state == "Powered off") return PowerState::powered_off;
      if (state == "Suspended") return PowerState::suspended;
      unexpected(kCommand, output, j + 1, lines[j], "not a power state");
    }
    unexpected(kCommand, output, 0, "", "no power state after \"Retrieved runtime info\"");
  }
  unexpected(kCommand, output, lines.empty() ? 0 : 1, lines.empty() ? "" : lines[0],
             "no \"Retrieved runtime info\"");
}

std::string parse_hostsummary_uuid(std::string_view output) {
  constexpr std::string_view kCommand = "vim-cmd hostsvc/hostsummary";
  constexpr std::string_view kHardware = "hardware = (vim.host.Summary.HardwareSummary) {";
  constexpr size_t kMaxUuid = 64;
  auto lines = split_lines(output);
  size_t i = 0;
  while (i < lines.size() && trim(lines[i]).empty()) ++i;
  if (i == lines.size() || trim(lines[i]) != "(vim.host.Summary) {")
    unexpected(kCommand, output, i < lines.size() ? i + 1 : 0,
               i < lines.size() ? lines[i] : std::string_view(), "no \"(vim.host.Summary) {\"");
  // Nesting as vim-cmd prints it: a line ending in '{' or '[' opens a level,
  // a line starting with '}' or ']' closes one. The summary's own fields are
  // at depth 1, the hardware block's at depth 2.
  size_t depth = 1, hardware_blocks = 0, uuid_line = 0;
  bool in_hardware = false;
  std::string_view uuid;
  for (++i; i < lines.size(); ++i) {
    std::string_view t = trim(lines[i]);
    if (depth == 0) {
      if (!t.empty()) unexpected(kCommand, output, i + 1, lines[i], "text after the summary");
      continue;
    }
    if (!t.empty() && (t.front() == '}' || t.front() == ']')) {
      --depth;
      if (depth < 2) in_hardware = false;
    }
    if (depth == 1 && t == kHardware) {
      if (++hardware_blocks > 1)
        unexpected(kCommand, output, i + 1, lines[i], "a second hardware block");
      in_hardware = true;
    } else if (in_hardware && depth == 2 && t.substr(0, 4) == "uuid" &&
               (t.size() == 4 || blank(t[4]) || t[4] == '=')) {
      if (uuid_line) unexpected(kCommand, output, i + 1, lines[i], "a second uuid line");
      uuid_line = i + 1;
      std::string_view v = t.substr(4);
      v = trim(v);
      if (v.empty() || v.front() != '=')
        unexpected(kCommand, output, i + 1, lines[i], "not `uuid = \"...\"`");
      v = trim(v.substr(1));
      if (!v.empty() && v.back() == ',') v = trim(v.substr(0, v.size() - 1));
      if (v == "<unset>")
        unexpected(kCommand, output, i + 1, lines[i], "the host reports no hardware uuid");
      if (v.size() < 2 || v.front() != '"' || v.back() != '"')
        unexpected(kCommand, output, i + 1, lines[i], "the uuid is not a quoted value");
      uuid = trim(v.substr(1, v.size() - 2));
      bool hex = !uuid.empty() && uuid.size() <= kMaxUuid &&
                 std::all_of(uuid.begin(), uuid.end(),
                             [](char c) {
                               return digit(c) || (c >= 'a' && c <= 'f') ||
                                      (c >= 'A' && c <= 'F') || c == '-';
                             }) &&
                 uuid.find_first_not_of('-') != std::string_view::npos;
      if (!hex)
        unexpected(kCommand, output, i + 1, lines[i],
                   "the uuid is not hex digits and '-' (at most 64)");
    }
    if (!t.empty() && (t.back() == '{' || t.back() == '[')) ++depth;
  }
  if (depth != 0) unexpected(kCommand, output, 0, "", "the summary does not end");
  if (!hardware_blocks) unexpected(kCommand, output, 0, "", "no hardware block");
  if (!uuid_line) unexpected(kCommand, output, 0, "", "no uuid in the hardware block");
  return std::string(uuid);
}

bool hardware_uuids_equal(std::string_view a, std::string_view b) {
  a = trim(a);
  b = trim(b);
  if (a.empty() || a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::vector<Snapshot> parse_snapshot_get(std::string_view output) {
  constexpr std::string_view kCommand = "vim-cmd vmsvc/snapshot.get";
  std::vector<Snapshot> out;
  auto lines = split_lines(output);
  size_t i = 0;
  while (i < lines.size() && trim(lines[i]).empty()) ++i;
  if (i == lines.size() || trim(lines[i]) != "Get Snapshot:")
    unexpected(kCommand, output, i < lines.size() ? i + 1 : 0,
               i < lines.size() ? lines[i] : std::string_view{}, "no \"Get Snapshot:\"");
  std::unordered_set<std::string> ids;
  std::vector<int> path;        // the current node's ancestors and itself, by depth
  std::string* last = nullptr;  // the field a continuation line belongs to
  auto check_done = [&](size_t line_no) {
    if (out.empty()) return;
    const Snapshot& s = out.back();
    if (s.id.empty())
      unexpected(kCommand, output, line_no, lines[line_no - 1],
                 "the snapshot before this line has no Snapshot Id");
    if (!ids.insert(s.id).second)
      unexpected(kCommand, output, line_no, lines[line_no - 1],
                 "snapshot id " + quote(s.id) + " appears twice");
  };
  for (++i; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t marks = depth_marks(line);
    std::string_view body = line.substr(2 * marks);
    if (body == "|-ROOT" || body == "|-CHILD") {
      check_done(i + 1);
      int depth = static_cast<int>(marks);
      if ((body == "|-ROOT") != (depth == 0))
        unexpected(kCommand, output, i + 1, line, "a ROOT below the top or a CHILD at it");
      if (depth > static_cast<int>(path.size()))
        unexpected(kCommand, output, i + 1, line, "a snapshot deeper than its parent's child");
      path.resize(static_cast<size_t>(depth));
      Snapshot s;
      s.depth = depth;
      s.parent = depth == 0 ? -1 : path.back();
      out.push_back(std::move(s));
      path.push_back(static_cast<int>(out.size() - 1));
      last = nullptr;
      continue;
    }
    if (!out.empty() && marks == static_cast<size_t>(out.back().depth) + 1 &&
        body.substr(0, 9) == "Snapshot ") {
      size_t colon = body.find(':');
      if (colon != std::string_view::npos) {
        std::string_view key = trim(body.substr(9, colon - 9));
        std::string_view value = body.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        Snapshot& s = out.back();
        std::string* field = key == "Name"                                 ? &s.name
                             : key == "Id"                                 ? &s.id
                             : key == "Desciption" || key == "Description" ? &s.description
                             : key == "Created On"                         ? &s.created
                             : key == "State"                              ? &s.state
                                                                           : nullptr;
        if (field == &s.id &&
            (value.empty() || value.size() > 10 || !std::all_of(value.begin(), value.end(), digit)))
          unexpected(kCommand, output, i + 1, line, "the snapshot id is not a number");
        if (field) *field = std::string(value);
        last = field == &s.name || field == &s.description ? field : nullptr;
        continue;
      }
    }
    // A description (or name) that spans lines goes on here.
    if (last && !line.empty()) {
      *last += '\n';
      *last += line;
      continue;
    }
    if (!trim(line).empty()) unexpected(kCommand, output, i + 1, line, "not part of the tree");
  }
  check_done(lines.size());
  return out;
}

std::optional<Fault> find_fault(std::string_view text, std::string_view command,
                                const std::string& host) {
  auto lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    // "(vim.fault.NotFound) {", "(vmodl.fault.ManagedObjectNotFound) {"
    if (line.size() < 5 || line.front() != '(' || line.substr(line.size() - 3) != ") {") continue;
    std::string_view dotted = line.substr(1, line.size() - 4);
    if (dotted.substr(0, 4) != "vim." && dotted.substr(0, 6) != "vmodl.") continue;
    if (!std::all_of(dotted.begin(), dotted.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_';
        }))
      continue;
    std::string type(dotted.substr(dotted.rfind('.') + 1));
    std::string message;
    for (size_t j = i + 1; j < lines.size() && lines[j] != "}"; ++j) {
      std::string_view field = trim(lines[j]);
      if (field.substr(0, 6) != "msg = ") continue;
      std::string_view v = field.substr(6);
      if (!v.empty() && v.back() == ',') v.remove_suffix(1);
      // msg = "Unable to find a VM corresponding to "2"": the outer quotes.
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      message = std::string(v);
      break;
    }
    const FaultMeaning meaning = fault_meaning(type);
    std::string msg = std::string(command) + " on " + host + " failed: " + host_text(type, 100);
    if (!message.empty()) msg += ": " + host_text(message);
    if (!meaning.explanation.empty()) msg += " — " + std::string(meaning.explanation);
    return Fault(msg, meaning.code, host_text(type, 100), std::string(command));
  }
  return std::nullopt;
}

void check_result(const SshResult& result, std::string_view command, const std::string& host) {
  if (auto f = find_fault(result.out, command, host)) throw *f;
  if (auto f = find_fault(result.err, command, host)) throw *f;
  if (result.ok()) return;
  std::string line;
  for (std::string_view text : {std::string_view(result.err), std::string_view(result.out)}) {
    for (std::string_view l : split_lines(text))
      if (!trim(l).empty()) {
        line = std::string(trim(l));
        break;
      }
    if (!line.empty()) break;
  }
  std::string msg =
      std::string(command) + " on " + host + " failed (" +
      (result.exit_signal.empty() ? "exit status " + std::to_string(result.exit_status)
                                  : "killed by SIG" + result.exit_signal) +
      ")";
  if (!line.empty()) msg += ": " + host_text(line);
  fail(msg);
}

}  // namespace ceso::vim
