#include "vm/migrate.hpp"

#include <gtest/gtest.h>

#include "base/error.hpp"

namespace {

const std::string kVmx =
    ".encoding = \"UTF-8\"\n"
    "displayName = \"web01\"\n"
    "uuid.bios = \"56 4d 2b 1c 8e 3f 4a 5b-9c 0d 1e 2f 3a 4b 5c 6d\"\n"
    "uuid.location = \"56 4d 00 00 00 00 00 00-00 00 00 00 00 00 00 01\"\n"
    "ethernet0.present = \"TRUE\"\n"
    "ethernet0.addressType = \"generated\"\n"
    "ethernet0.generatedAddress = \"00:0C:29:AA:BB:CC\"\n"
    "ethernet1.present = \"FALSE\"\n"
    "ethernet1.address = \"00:50:56:00:00:01\"\n"
    "annotation = \"a |22quoted|22 note\"\n";

TEST(VmxValues, LowerCaseKeysAndDecodedValues) {
  auto v = ceso::vmx_values(kVmx);
  EXPECT_EQ(v.at("displayname"), "web01");
  EXPECT_EQ(v.at("annotation"), "a \"quoted\" note");
  EXPECT_EQ(v.at("ethernet0.generatedaddress"), "00:0C:29:AA:BB:CC");
}

TEST(MovedVmx, AMoveOnlyAddsUuidActionKeep) {
  std::string out = ceso::moved_vmx(kVmx, false, "", "", "", {}, {});
  EXPECT_EQ(out, kVmx + "uuid.action = \"keep\"\n");
}

TEST(MovedVmx, ACopyGetsANewIdentityAndMacs) {
  auto macs = ceso::copy_macs(ceso::vmx_values(kVmx), {"00:50:56:12:34:56"});
  ASSERT_EQ(macs.size(), 1u);  // ethernet1 is not present
  EXPECT_EQ(macs[0].first, "00:0c:29:aa:bb:cc");
  EXPECT_EQ(macs[0].second, "00:50:56:12:34:56");
  std::string out =
      ceso::moved_vmx(kVmx, true, "web02", "11111111-2222-3333-4444-555555555555",
                      "66666666-7777-8888-9999-aaaaaaaaaaaa", {{"guestinfo.metadata", "x"}}, macs);
  auto v = ceso::vmx_values(out);
  EXPECT_EQ(v.at("displayname"), "web02");
  EXPECT_EQ(v.at("uuid.bios"), "11 11 11 11 22 22 33 33-44 44 55 55 55 55 55 55");
  EXPECT_EQ(v.at("vc.uuid"), "66 66 66 66 77 77 88 88-99 99 aa aa aa aa aa aa");
  EXPECT_EQ(v.count("uuid.location"), 0u);
  EXPECT_EQ(v.at("ethernet0.address"), "00:50:56:12:34:56");
  EXPECT_EQ(v.at("ethernet0.addresstype"), "static");
  EXPECT_EQ(v.count("ethernet0.generatedaddress"), 0u);
  EXPECT_EQ(v.at("ethernet1.address"), "00:50:56:00:00:01");  // not present: untouched
  EXPECT_EQ(v.at("guestinfo.metadata"), "x");
  EXPECT_EQ(v.at("uuid.action"), "keep");
}

TEST(CopyMacs, GeneratesTheMacsNotGiven) {
  auto macs = ceso::copy_macs(ceso::vmx_values(kVmx), {});
  ASSERT_EQ(macs.size(), 1u);
  EXPECT_NE(macs[0].second, macs[0].first);
  EXPECT_EQ(macs[0].second.size(), 17u);
}

}  // namespace
