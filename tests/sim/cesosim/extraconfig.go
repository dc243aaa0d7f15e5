package main

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// fixExtraConfig makes a reconfigured VM's ExtraConfig what a host keeps: vcsim 0.24
// appends every OptionValue of a ReconfigVM_Task, so a key set twice appears twice
// (readers see the old value first) and a key set to "" stays. A host replaces the
// value of an existing key and removes a key whose new value is empty.
func fixExtraConfig(ref types.ManagedObjectReference) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		fixed, changed := mergeExtraConfig(vm.Config.ExtraConfig)
		if changed {
			simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.extraConfig", Val: fixed}})
		}
	})
}

// mergeExtraConfig keeps each key once, at its first position, with its last value,
// and drops keys whose last value is "".
func mergeExtraConfig(in []types.BaseOptionValue) ([]types.BaseOptionValue, bool) {
	last := map[string]int{}
	for i, o := range in {
		last[o.GetOptionValue().Key] = i
	}
	var out []types.BaseOptionValue
	done := map[string]bool{}
	for _, o := range in {
		k := o.GetOptionValue().Key
		if done[k] {
			continue
		}
		done[k] = true
		v := in[last[k]]
		if s, ok := v.GetOptionValue().Value.(string); ok && s == "" {
			continue
		}
		out = append(out, v)
	}
	return out, len(out) != len(in)
}
