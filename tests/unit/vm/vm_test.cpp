// The rules by which a record or a name finds its VM (match_vm,
// wanted_identity): identity, not names.
#include "vm/vm.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace {

using ceso::Exit;
using ceso::VmIdentity;

const std::string kU1 = "4211aaaa-0000-0000-0000-000000000001";
const std::string kU2 = "4211bbbb-0000-0000-0000-000000000002";

struct Host {
  std::vector<VmIdentity> vms;
  int listings = 0;

  std::optional<VmIdentity> by_id(const std::string& id) const {
    for (const auto& v : vms)
      if (v.id == id) return v;
    return std::nullopt;
  }
  VmIdentity match(const VmIdentity& want, bool from_record = true) {
    return ceso::match_vm(
        want, want.id.empty() ? std::nullopt : by_id(want.id),
        [this] {
          ++listings;
          return vms;
        },
        from_record, "<stdin>:3", "esxi1.lab:443");
  }
  // The error of match(), or "" when it matched.
  std::string refusal(const VmIdentity& want, Exit code = Exit::bad_input) {
    try {
      match(want);
    } catch (const ceso::Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      return e.what();
    }
    return "";
  }
};

TEST(MatchVm, RecordWhoseIdStillHasItsUuidIsFoundWithOneLookup) {
  Host h{{{"vm-42", "web01", kU1}, {"vm-43", "db", kU2}}};
  VmIdentity got = h.match({"vm-42", "web01", kU1});
  EXPECT_EQ(got.id, "vm-42");
  EXPECT_EQ(h.listings, 0);
}

TEST(MatchVm, RenamedVmIsTheSameVmAndReportsItsCurrentName) {
  Host h{{{"vm-42", "web01-new", kU1}}};
  VmIdentity got = h.match({"vm-42", "web01", kU1});
  EXPECT_EQ(got.id, "vm-42");
  EXPECT_EQ(got.name, "web01-new");
}

TEST(MatchVm, ReRegisteredVmIsFoundByNameAndUuid) {
  // Unregistered and registered again: new id, same uuid, same name.
  Host h{{{"vm-57", "web01", kU1}, {"vm-58", "other", kU2}}};
  VmIdentity got = h.match({"vm-42", "web01", kU1});
  EXPECT_EQ(got.id, "vm-57");
  EXPECT_EQ(got.uuid, kU1);
  // Its old id reused by another VM: still the re-registered one.
  Host reused{{{"vm-42", "other", kU2}, {"vm-57", "web01", kU1}}};
  EXPECT_EQ(reused.match({"vm-42", "web01", kU1}).id, "vm-57");
  // A record with uuid but no id (hand-written): by name and uuid.
  EXPECT_EQ(h.match({"", "web01", kU1}).id, "vm-57");
}

TEST(MatchVm, UuidsCompareWithoutRegardToCase) {
  std::string upper = "4211AAAA-0000-0000-0000-000000000001";
  Host h{{{"vm-42", "web01", kU1}, {"vm-57", "web02", kU1}}};
  EXPECT_EQ(h.match({"vm-42", "web01", upper}).id, "vm-42");
  EXPECT_EQ(h.match({"vm-9", "web02", upper}).id, "vm-57");
  // but a uuid differing in one digit is another VM
  EXPECT_NE(h.refusal({"vm-42", "web01", "4211aaaa-0000-0000-0000-000000000002"}), "");
}

TEST(MatchVm, NewerVmThatTookTheNameIsAMismatch) {
  // The saved record's VM was deleted; a new VM got its name.
  Host h{{{"vm-57", "web01", kU2}}};
  std::string e = h.refusal({"vm-42", "web01", kU1});
  EXPECT_NE(e.find("error (at <stdin>:3)"), std::string::npos) << e;
  EXPECT_NE(e.find("id vm-42"), std::string::npos) << e;
  EXPECT_NE(e.find("uuid " + kU1), std::string::npos) << e;
  EXPECT_NE(e.find("no VM has id vm-42 now"), std::string::npos) << e;
  EXPECT_NE(e.find("'web01' (vm-57, uuid " + kU2 + "), another uuid"), std::string::npos) << e;
  EXPECT_NE(e.find("esxi1.lab:443"), std::string::npos) << e;
}

TEST(MatchVm, IdReusedByAnotherVmIsAMismatch) {
  // ESXi reuses ids: vm-42 is now a different VM, web01 is gone.
  Host h{{{"vm-42", "web01", kU2}}};  // even with the same name
  std::string e = h.refusal({"vm-42", "web01", kU1});
  EXPECT_NE(e.find("VM vm-42 is now 'web01' (vm-42, uuid " + kU2 + "), another uuid"),
            std::string::npos)
      << e;
  Host gone{{{"vm-42", "db", kU2}}};
  e = gone.refusal({"vm-42", "web01", kU1});
  EXPECT_NE(e.find("no VM is named 'web01'"), std::string::npos) << e;
}

TEST(MatchVm, RecordWithIdButNoUuidNeedsIdAndName) {
  Host h{{{"vm-42", "web01", kU1}, {"vm-57", "web02", kU2}}};
  EXPECT_EQ(h.match({"vm-42", "web01", ""}).id, "vm-42");
  // id now names another VM: no fallback to the name, even when one exists.
  Host moved{{{"vm-42", "web02", kU2}, {"vm-57", "web01", kU1}}};
  std::string e = moved.refusal({"vm-42", "web01", ""});
  EXPECT_NE(e.find("VM vm-42 is now named 'web02'"), std::string::npos) << e;
  EXPECT_NE(e.find("without uuid"), std::string::npos) << e;
  EXPECT_EQ(moved.listings, 0);
  e = moved.refusal({"vm-99", "web01", ""});
  EXPECT_NE(e.find("no VM has id vm-99 now"), std::string::npos) << e;
}

TEST(MatchVm, HostileNamesNeverReachTheMessageRaw) {
  std::string csi =
      "web\xc2\x9b"
      "31m";
  Host h{{{"vm-57", csi, kU2}}};
  std::string e = h.refusal({"vm-42", csi, kU1});
  EXPECT_EQ(e.find("\xc2\x9b"), std::string::npos) << e;
  EXPECT_NE(e.find("'web\\u{009B}31m'"), std::string::npos) << e;
  e = h.refusal({"", "a\nb", ""}, Exit::failure);
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST(MatchVm, TwoVmsWithTheRecordsNameAndUuidAreAmbiguous) {
  // Copied files keep the BIOS uuid.
  Host h{{{"vm-57", "web01", kU1}, {"vm-60", "web01", kU1}}};
  std::string e = h.refusal({"vm-42", "web01", kU1});
  EXPECT_NE(e.find("2 VMs have its name and uuid (vm-57, vm-60)"), std::string::npos) << e;
}

TEST(MatchVm, NamesAloneFindTheOneVmOfThatName) {
  Host h{{{"vm-42", "web01", kU1}, {"vm-43", "a%2fb", kU2}}};
  EXPECT_EQ(h.match({"", "web01", ""}, false).id, "vm-42");
  // A record with only a name is a name too.
  EXPECT_EQ(h.match({"", "web01", ""}, true).id, "vm-42");
  // vSphere's escaped form and the plain one name the same VM.
  EXPECT_EQ(h.match({"", "a/b", ""}, false).id, "vm-43");
  EXPECT_EQ(h.match({"", "a%2Fb", ""}, false).id, "vm-43");
  std::string e = h.refusal({"", "nope", ""}, Exit::failure);
  EXPECT_NE(e.find("no VM named 'nope' on esxi1.lab:443"), std::string::npos) << e;
  Host two{{{"vm-1", "x", kU1}, {"vm-2", "x", kU2}}};
  e = two.refusal({"", "x", ""}, Exit::failure);
  EXPECT_NE(e.find("2 VMs are named 'x'"), std::string::npos) << e;
}

TEST(MatchVm, EscapedNamesMatchInRecordsToo) {
  // The record says 'a/b'; the host returns the escaped 'a%2fb' after a re-registration.
  Host h{{{"vm-9", "a%2fb", kU1}}};
  EXPECT_EQ(h.match({"vm-3", "a/b", kU1}).id, "vm-9");
  Host same{{{"vm-3", "a%2fb", kU1}}};
  EXPECT_EQ(same.match({"vm-3", "a/b", ""}).id, "vm-3");
}

ceso::Target record_target(ceso::ordered_json r) {
  std::string name = r.value("name", "");
  return {name, std::move(r), "<stdin>:7"};
}

TEST(WantedIdentity, TakesIdNameUuidFromRecordsAndOnlyTheNameFromOperands) {
  VmIdentity w = ceso::wanted_identity(record_target(
      {{"type", "vm"}, {"id", "vm-1"}, {"name", "web01"}, {"uuid", kU1}, {"ip", nullptr}}));
  EXPECT_EQ(w.id, "vm-1");
  EXPECT_EQ(w.name, "web01");
  EXPECT_EQ(w.uuid, kU1);
  w = ceso::wanted_identity({"web01", ceso::ordered_json::object(), "argument 1"});
  EXPECT_EQ(w.id, "");
  EXPECT_EQ(w.uuid, "");
  w = ceso::wanted_identity(record_target({{"type", "vm"}, {"name", "x"}, {"uuid", nullptr}}));
  EXPECT_EQ(w.uuid, "");
}

TEST(WantedIdentity, NonStringIdOrUuidIsBadInputNamingTheLine) {
  for (const char* key : {"id", "uuid"}) {
    ceso::ordered_json r = {{"type", "vm"}, {"name", "web01"}};
    for (ceso::ordered_json bad :
         {ceso::ordered_json(42), ceso::ordered_json::array(), ceso::ordered_json(true)}) {
      r[key] = bad;
      try {
        ceso::wanted_identity(record_target(r));
        ADD_FAILURE() << key << " " << bad.dump();
      } catch (const ceso::Error& e) {
        EXPECT_EQ(e.code(), Exit::bad_input);
        EXPECT_NE(std::string(e.what()).find("<stdin>:7"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      }
    }
  }
}

// pass_through drops an owned field a tool did not state: the list must hold
// every field vm_record and vm_details write, or a stale upstream value of
// the missing one would survive (ceso(7) RECORDS, "our fields fresh").
TEST(VmOwnedFields, HoldEveryFieldOfVmRecordAndVmDetailsAndTheResults) {
  ceso::vim::ObjectContent oc;
  oc.obj = {"VirtualMachine", "vm-7"};
  oc.props = {{"name", ceso::xml::parse("<val>t1</val>")},
              {"config.template", ceso::xml::parse("<val>true</val>")}};
  ceso::Endpoint ep;
  ep.id = "127.0.0.1:8989";
  auto owned = ceso::vm_owned_fields({"changed", "forced"});
  auto has = [&](const std::string& k) {
    return std::find(owned.begin(), owned.end(), k) != owned.end();
  };
  auto record = ceso::vm_record(oc, ep);
  ASSERT_TRUE(record.contains("template"));
  for (const auto& [k, v] : record.items()) EXPECT_TRUE(has(k)) << k;
  auto details = ceso::vm_details(oc, ep, false);
  EXPECT_GT(details.size(), record.size());
  for (const auto& [k, v] : details.items()) EXPECT_TRUE(has(k)) << k;
  EXPECT_TRUE(has("changed"));
  EXPECT_TRUE(has("forced"));
  EXPECT_FALSE(has("note"));
}

}  // namespace
