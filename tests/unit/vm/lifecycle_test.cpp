#include "vm/lifecycle.hpp"

#include <gtest/gtest.h>

namespace ceso {
namespace {

TEST(VmopsTest, PowerOpWords) {
  for (const char* w : {"on", "off", "shutdown", "reboot", "reset", "suspend"}) {
    auto op = power_op_from(w);
    ASSERT_TRUE(op.has_value()) << w;
    EXPECT_EQ(to_string(*op), w);
  }
  EXPECT_FALSE(power_op_from("On").has_value());
  EXPECT_FALSE(power_op_from("").has_value());
  EXPECT_EQ(power_method(PowerOp::shutdown), "ShutdownGuest");
  EXPECT_EQ(power_method(PowerOp::on), "PowerOnVM_Task");
  EXPECT_EQ(target_power(PowerOp::suspend), "suspended");
}

TEST(VmopsTest, NoopWhenAlreadyThere) {
  EXPECT_TRUE(power_op_is_noop(PowerOp::on, "on"));
  EXPECT_TRUE(power_op_is_noop(PowerOp::off, "off"));
  EXPECT_TRUE(power_op_is_noop(PowerOp::shutdown, "off"));
  EXPECT_TRUE(power_op_is_noop(PowerOp::suspend, "suspended"));
  EXPECT_FALSE(power_op_is_noop(PowerOp::on, "suspended"));
  EXPECT_FALSE(power_op_is_noop(PowerOp::off, "suspended"));
  EXPECT_FALSE(power_op_is_noop(PowerOp::reboot, "on"));
  EXPECT_FALSE(power_op_is_noop(PowerOp::reset, "on"));
}

TEST(VmopsTest, ImpossibleTransitionsAreRefusedWithAHint) {
  EXPECT_THROW(check_power_op(PowerOp::reboot, "off", true), Error);
  EXPECT_THROW(check_power_op(PowerOp::reset, "suspended", true), Error);
  EXPECT_THROW(check_power_op(PowerOp::suspend, "off", false), Error);
  EXPECT_THROW(check_power_op(PowerOp::shutdown, "suspended", false), Error);
  EXPECT_NO_THROW(check_power_op(PowerOp::shutdown, "suspended", true));
  EXPECT_NO_THROW(check_power_op(PowerOp::off, "suspended", false));
  EXPECT_NO_THROW(check_power_op(PowerOp::on, "suspended", false));
  EXPECT_NO_THROW(check_power_op(PowerOp::reset, "on", false));
  try {
    check_power_op(PowerOp::reboot, "off", false);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Exit::failure);
    EXPECT_STREQ(e.what(), "cannot reboot a VM that is powered off; power it on instead");
  }
}

TEST(VmopsTest, PlanLine) {
  ordered_json plan = {{"type", "plan"}, {"vm", "web 01"}, {"operation", "Destroy_Task"}};
  EXPECT_EQ(plan_line(plan), "web 01: would call Destroy_Task");
  plan["refused"] = "…";
  EXPECT_EQ(plan_line(plan), "web 01: would call Destroy_Task (refused in restricted mode)");
}

}  // namespace
}  // namespace ceso
